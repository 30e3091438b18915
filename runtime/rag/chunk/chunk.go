// Package chunk reads text files and splits them into token-bounded,
// overlapping chunks that remember where in the file they came from.
package chunk

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Counter counts the tokens of a text.
type Counter interface {
	Count(text string) (int, error)
}

// Words counts whitespace-separated words: the fallback when no tokenizer
// is given.
type Words struct{}

// Count returns the number of words in text.
func (Words) Count(text string) (int, error) { return len(strings.Fields(text)), nil }

// Encoder is the part of a tokenizer a Tokens counter needs.
type Encoder interface {
	Encode(text string, bos, eos bool) ([]int, error)
}

// Tokens counts with a model's tokenizer (no BOS or EOS).
type Tokens struct{ Enc Encoder }

// Count returns the number of tokens text encodes to.
func (t Tokens) Count(text string) (int, error) {
	ids, err := t.Enc.Encode(text, false, false)
	return len(ids), err
}

// Options say how to split.
type Options struct {
	Size    int     // at most this many tokens per chunk
	Overlap int     // about this many tokens repeated from the end of the previous chunk
	Counter Counter // nil: Words
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	if o.Size < 1 {
		return fmt.Errorf("chunk size must be ≥ 1 token, got %d", o.Size)
	}
	if o.Overlap < 0 || o.Overlap >= o.Size {
		return fmt.Errorf("chunk overlap must be in [0, size %d), got %d", o.Size, o.Overlap)
	}
	return nil
}

// Chunk is a span of a text.
type Chunk struct {
	Start, End int    // byte offsets: Text = source[Start:End]
	Text       string //
	Tokens     int    // as the counter counts them
}

type word struct {
	start, end int
	est        int // tokens when counted alone
}

// Split cuts text into chunks of at most o.Size tokens that start and end
// on word boundaries and share about o.Overlap tokens with their
// neighbours. A word longer than a whole chunk is cut inside. Text with no
// words gives no chunks.
func Split(text string, o Options) ([]Chunk, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Counter == nil {
		o.Counter = Words{}
	}
	words, err := splitWords(text, o)
	if err != nil {
		return nil, err
	}
	var out []Chunk
	need := 0 // each chunk must reach past the previous one: include word need
	for i := 0; i < len(words); {
		// Grow by estimates, then shrink until the real count fits: tokens
		// of joined words need not add up exactly (merges across spaces).
		j, sum := i, 0
		for j < len(words) && (j <= need || sum+words[j].est <= o.Size) {
			sum += words[j].est
			j++
		}
		var n int
		for {
			s := text[words[i].start:words[j-1].end]
			if n, err = o.Counter.Count(s); err != nil {
				return nil, fmt.Errorf("count tokens at byte %d: %w", words[i].start, err)
			}
			if n <= o.Size || j == i+1 {
				break
			}
			if j-1 == need {
				// The overlap left no room for new text: start later.
				i++
				continue
			}
			// Drop at least the excess from the end.
			over := n - o.Size
			for over > 0 && j-1 > need {
				j--
				over -= max(words[j].est, 1)
			}
		}
		out = append(out, Chunk{Start: words[i].start, End: words[j-1].end, Text: text[words[i].start:words[j-1].end], Tokens: n})
		if j == len(words) {
			break
		}
		// The next chunk starts where the last Overlap tokens begin, but
		// always after this one's start.
		k, back := j, 0
		for k > i+1 && back+words[k-1].est <= o.Overlap {
			k--
			back += words[k].est
		}
		i, need = k, j
	}
	return out, nil
}

// splitWords finds the words of text and cuts any that alone exceed a chunk.
func splitWords(text string, o Options) ([]word, error) {
	var ws []word
	start := -1
	emit := func(s, e int) error {
		n, err := o.Counter.Count(text[s:e])
		if err != nil {
			return fmt.Errorf("count tokens at byte %d: %w", s, err)
		}
		if n <= o.Size {
			ws = append(ws, word{s, e, n})
			return nil
		}
		return cutWord(text, s, e, o, &ws)
	}
	for i, r := range text {
		if unicode.IsSpace(r) {
			if start >= 0 {
				if err := emit(start, i); err != nil {
					return nil, err
				}
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		if err := emit(start, len(text)); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

// cutWord splits text[s:e] into the longest rune-aligned pieces that fit a
// chunk, by binary search over rune boundaries (an invalid byte counts as
// one rune).
func cutWord(text string, s, e int, o Options, ws *[]word) error {
	var bounds []int // rune ends after s
	for i := s; i < e; {
		_, n := utf8.DecodeRuneInString(text[i:e])
		i += n
		bounds = append(bounds, i)
	}
	for len(bounds) > 0 {
		// The longest prefix bounds[:j+1] that fits; one rune at least.
		lo, hi, best, bestN := 0, len(bounds)-1, 0, -1
		for lo <= hi {
			mid := (lo + hi) / 2
			n, err := o.Counter.Count(text[s:bounds[mid]])
			if err != nil {
				return fmt.Errorf("count tokens at byte %d: %w", s, err)
			}
			if n <= o.Size {
				best, bestN, lo = mid, n, mid+1
			} else {
				hi = mid - 1
			}
		}
		if bestN < 0 { // even one rune is too many tokens: take it alone
			var err error
			if bestN, err = o.Counter.Count(text[s:bounds[0]]); err != nil {
				return fmt.Errorf("count tokens at byte %d: %w", s, err)
			}
		}
		*ws = append(*ws, word{s, bounds[best], bestN})
		s = bounds[best]
		bounds = bounds[best+1:]
	}
	return nil
}

// ErrBinary is returned by ReadText for a file that is not text.
var ErrBinary = errors.New("not a text file (binary or not UTF-8)")

// MaxFileBytes bounds the size of one text file.
const MaxFileBytes = 256 << 20

// ReadText reads a UTF-8 text file; a file with NUL bytes or invalid UTF-8
// gives an error wrapping ErrBinary, naming the file and the offset.
func ReadText(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s: not a regular file", path)
	}
	if st.Size() > MaxFileBytes {
		return "", fmt.Errorf("%s: %d bytes, more than the %d a text file may have", path, st.Size(), MaxFileBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if off := bytes.IndexByte(b, 0); off >= 0 {
		return "", fmt.Errorf("%s: NUL byte at offset %d: %w", path, off, ErrBinary)
	}
	if bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
		// A byte-order mark is not text; blanking it keeps the offsets.
		copy(b, "   ")
	}
	if !utf8.Valid(b) {
		off := 0
		for off < len(b) {
			r, n := utf8.DecodeRune(b[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		return "", fmt.Errorf("%s: invalid UTF-8 at offset %d: %w", path, off, ErrBinary)
	}
	return string(b), nil
}
