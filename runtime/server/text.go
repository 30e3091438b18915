package server

import (
	"bytes"
	"unicode/utf8"
)

// textDecoder is the part of a tokenizer the decode loop uses.
type textDecoder interface {
	Piece(prev, next int) ([]byte, error)
}

// textStream turns token pieces into the text a client sees. It holds back
// what might still become a stop string, and the start of a UTF-8 sequence
// whose other bytes are still to come (byte-fallback tokens), so that a
// streamed response is exactly the non-streamed one cut into pieces.
type textStream struct {
	stops [][]byte
	held  []byte
	done  bool
}

func newTextStream(stops []string) *textStream {
	t := &textStream{}
	for _, s := range stops {
		if s != "" {
			t.stops = append(t.stops, []byte(s))
		}
	}
	return t
}

// add appends a piece and returns the text now safe to send, and whether a
// stop string was reached (the text before it is returned; the rest dropped).
func (t *textStream) add(piece []byte) ([]byte, bool) {
	if t.done || !printable(piece) {
		return nil, t.done
	}
	t.held = append(t.held, piece...)
	cut, hit := -1, false
	for _, s := range t.stops {
		if i := bytes.Index(t.held, s); i >= 0 && (cut < 0 || i < cut) {
			cut, hit = i, true
		}
	}
	if hit {
		out := bytes.Clone(t.held[:cut])
		t.held, t.done = t.held[:0], true
		return out, true
	}
	keep := max(t.stopPrefix(), incompleteUTF8(t.held))
	out := bytes.Clone(t.held[:len(t.held)-keep])
	t.held = append(t.held[:0], t.held[len(t.held)-keep:]...)
	return out, false
}

// flush returns whatever is held: the sequence has ended.
func (t *textStream) flush() []byte {
	if t.done {
		return nil
	}
	out := bytes.Clone(t.held)
	t.held, t.done = t.held[:0], true
	return out
}

// stopPrefix is the length of the longest end of held that begins a stop string.
func (t *textStream) stopPrefix() int {
	best := 0
	for _, s := range t.stops {
		for n := min(len(s)-1, len(t.held)); n > best; n-- {
			if bytes.HasSuffix(t.held, s[:n]) {
				best = n
				break
			}
		}
	}
	return best
}

// incompleteUTF8 is the length of a UTF-8 sequence begun at the end of b and
// not yet complete (0 when b ends on a whole character or on invalid bytes,
// which no later byte can mend).
func incompleteUTF8(b []byte) int {
	for n := 1; n <= min(3, len(b)); n++ {
		c := b[len(b)-n]
		if c < 0x80 {
			return 0
		}
		if c >= 0xC0 { // a leading byte: how long a sequence does it start?
			need := 0
			switch {
			case c >= 0xF0:
				need = 4
			case c >= 0xE0:
				need = 3
			default:
				need = 2
			}
			if n < need && !utf8.FullRune(b[len(b)-n:]) {
				return n
			}
			return 0
		}
	}
	return 0
}

// printable drops what run.c's safe_printf drops and a client cannot use: a
// piece that is a single control byte other than whitespace. Bytes ≥ 0x80 are
// kept: they are parts of UTF-8 characters spelled out by byte tokens.
func printable(piece []byte) bool {
	if len(piece) == 0 {
		return false
	}
	if len(piece) == 1 {
		c := piece[0]
		return c >= 0x20 && c != 0x7f || (c >= '\t' && c <= '\r')
	}
	return true
}
