package tokenizer

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// GPT-2 stores byte-level tokens as text: each byte maps to one printable
// character (the printable Latin-1 bytes to themselves, the others to
// U+0100 onwards), so "Ġthe" is the bytes " the".
var (
	byteToRune [256]rune
	runeToByte = map[rune]byte{}
)

func init() {
	n := 0
	for b := 0; b < 256; b++ {
		if ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || (0xAE <= b && b <= 0xFF) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = rune(256 + n)
			n++
		}
		runeToByte[byteToRune[b]] = byte(b)
	}
}

// ByteLevelText returns the GPT-2 byte-level text of raw bytes ("Ġthe" for
// " the"), the form tokens take in encoder.json, vocab.bpe and GGUF.
func ByteLevelText(raw []byte) string {
	var sb strings.Builder
	for _, c := range raw {
		sb.WriteRune(byteToRune[c])
	}
	return sb.String()
}

// ByteLevelBytes is the inverse of ByteLevelText; it fails on a character
// that is not in GPT-2's byte-to-unicode map.
func ByteLevelBytes(text string) ([]byte, error) {
	out := make([]byte, 0, len(text))
	for i, r := range text {
		b, ok := runeToByte[r]
		if !ok {
			if r == utf8.RuneError {
				return nil, fmt.Errorf("invalid UTF-8 at byte %d", i)
			}
			return nil, fmt.Errorf("character %q (U+%04X) at byte %d is not a byte-level character", r, r, i)
		}
		out = append(out, b)
	}
	return out, nil
}

// ByteLevelVocab describes a byte-level BPE vocabulary the way GGUF stores
// it (tokenizer.ggml.model "gpt2").
type ByteLevelVocab struct {
	// Tokens holds each token's byte-level text (ByteLevelText of its bytes);
	// control and user-defined tokens hold their literal text.
	Tokens []string
	// Merges lists "left right" pairs of token texts, highest priority first.
	Merges []string
	// Types holds GGUF token types (1 normal, 3 control, 4 user-defined, …);
	// nil means all normal.
	Types []int32
	// BOS and EOS are token ids, or -1 when the vocabulary has none.
	BOS, EOS int
}

// ByteLevel is a byte-level BPE tokenizer (GPT-2, and GGUF vocabularies with
// tokenizer.ggml.model "gpt2"): text is split by GPT-2's pre-tokenizer, each
// piece's bytes start as single-byte tokens, and merges apply lowest rank
// first (leftmost on ties), as llama.cpp and tiktoken do. It is safe for
// concurrent use.
type ByteLevel struct {
	vocab ByteLevelVocab // as given, for GGUFMetadata

	data []byte   // the bytes of all tokens, back to back
	off  []uint32 // token i is data[off[i]:off[i+1]]

	byteTok [256]int32
	merges  map[uint64]uint64 // left<<32|right -> rank<<32|merged id

	// Special (control and user-defined) tokens are matched in the text
	// before pre-tokenization, longest first, and never split.
	special      map[byte][]blSpecial // by first byte
	specialFirst [256]bool

	pool sync.Pool // *blState
}

var _ Tokenizer = (*ByteLevel)(nil)

type blSpecial struct {
	text string
	id   int32
}

// blState is per-goroutine scratch space: the cache of words already
// merged and the buffers of the merge loop.
type blState struct {
	cache map[string]uint64 // word -> offset<<32|count into ids
	ids   []int32
	sym   []int32
	rank  []uint32
	heap  blHeap
	next  []int32
	prev  []int32
}

// blCacheMax bounds the word cache; a full cache is dropped and refilled.
const blCacheMax = 1 << 16

// blCacheWordMax is the longest word cached: long runs (of spaces, digits,
// one letter) rarely repeat and would fill the cache with their bytes.
const blCacheWordMax = 256

const noRank = ^uint32(0)

// NewByteLevel builds a tokenizer from a vocabulary and checks it: unique
// token texts, normal tokens in byte-level text, a token for each of the
// 256 bytes, merges naming known tokens whose concatenation is a token.
func NewByteLevel(v ByteLevelVocab) (*ByteLevel, error) {
	n := len(v.Tokens)
	if n == 0 {
		return nil, errors.New("byte-level vocab: no tokens")
	}
	if n >= 1<<31-1 {
		return nil, fmt.Errorf("byte-level vocab: %d tokens is too many", n)
	}
	if v.Types != nil && len(v.Types) != n {
		return nil, fmt.Errorf("byte-level vocab: %d token types for %d tokens", len(v.Types), n)
	}
	for _, x := range []struct {
		name string
		id   int
	}{{"BOS", v.BOS}, {"EOS", v.EOS}} {
		if x.id < -1 || x.id >= n {
			return nil, fmt.Errorf("byte-level vocab: %s id %d out of range [0,%d)", x.name, x.id, n)
		}
	}
	b := &ByteLevel{
		vocab:   v,
		off:     make([]uint32, n+1),
		merges:  make(map[uint64]uint64, len(v.Merges)),
		special: map[byte][]blSpecial{},
	}
	for i := range b.byteTok {
		b.byteTok[i] = -1
	}
	// Special tokens are literal text and normal ones byte-level text: the
	// two spellings live apart, so "###" may be both.
	ids := make(map[string]int32, n)
	specialIDs := map[string]int32{}
	for i, t := range v.Tokens {
		typ := int32(TokenNormal)
		if v.Types != nil && v.Types[i] != int32(TokenUndefined) { // llama.cpp reads undefined as normal
			typ = v.Types[i]
		}
		var raw []byte
		switch typ {
		case int32(TokenControl), int32(TokenUserDefined):
			if t == "" {
				return nil, fmt.Errorf("byte-level vocab: special token %d is empty", i)
			}
			if j, dup := specialIDs[t]; dup {
				return nil, fmt.Errorf("byte-level vocab: special token %d %q duplicates token %d", i, t, j)
			}
			specialIDs[t] = int32(i)
			raw = []byte(t)
			b.special[t[0]] = append(b.special[t[0]], blSpecial{t, int32(i)})
			b.specialFirst[t[0]] = true
		case int32(TokenNormal), int32(TokenByte), int32(TokenUnknown), int32(TokenUnused):
			if j, dup := ids[t]; dup {
				return nil, fmt.Errorf("byte-level vocab: token %d %q duplicates token %d", i, t, j)
			}
			ids[t] = int32(i)
			var err error
			if raw, err = ByteLevelBytes(t); err != nil {
				if typ == int32(TokenNormal) {
					return nil, fmt.Errorf("byte-level vocab: token %d %q: %v", i, t, err)
				}
				raw = []byte(t) // unused or unknown placeholders may be anything
			}
			if typ == int32(TokenNormal) && len(raw) == 0 {
				return nil, fmt.Errorf("byte-level vocab: token %d is empty", i)
			}
			if len(raw) == 1 && typ == int32(TokenNormal) && b.byteTok[raw[0]] < 0 {
				b.byteTok[raw[0]] = int32(i)
			}
		default:
			return nil, fmt.Errorf("byte-level vocab: token %d %q has unknown type %d", i, t, typ)
		}
		b.data = append(b.data, raw...)
		if len(b.data) > 1<<32-1 {
			return nil, errors.New("byte-level vocab: tokens exceed 4 GiB")
		}
		b.off[i+1] = uint32(len(b.data))
	}
	for c, id := range b.byteTok {
		if id < 0 {
			return nil, fmt.Errorf("byte-level vocab: no token for byte 0x%02x (%q)", c, string(byteToRune[c]))
		}
	}
	for _, list := range b.special {
		sort.Slice(list, func(i, j int) bool { return len(list[i].text) > len(list[j].text) })
	}
	for r, m := range v.Merges {
		left, right, ok := strings.Cut(m, " ")
		if !ok || left == "" || right == "" || strings.Contains(right, " ") {
			return nil, fmt.Errorf("byte-level vocab: merge %d %q is not two tokens separated by one space", r, m)
		}
		l, okl := ids[left]
		rt, okr := ids[right]
		mid, okm := ids[left+right]
		switch {
		case !okl:
			return nil, fmt.Errorf("byte-level vocab: merge %d %q names unknown token %q", r, m, left)
		case !okr:
			return nil, fmt.Errorf("byte-level vocab: merge %d %q names unknown token %q", r, m, right)
		case !okm:
			return nil, fmt.Errorf("byte-level vocab: merge %d %q makes unknown token %q", r, m, left+right)
		}
		key := uint64(l)<<32 | uint64(rt)
		if prev, dup := b.merges[key]; dup {
			return nil, fmt.Errorf("byte-level vocab: merge %d %q duplicates merge %d", r, m, prev>>32)
		}
		b.merges[key] = uint64(r)<<32 | uint64(mid)
	}
	b.pool.New = func() any { return &blState{cache: make(map[string]uint64)} }
	return b, nil
}

// VocabSize is the number of tokens.
func (b *ByteLevel) VocabSize() int { return len(b.off) - 1 }

// BOS is the beginning-of-sequence id, or -1.
func (b *ByteLevel) BOS() int { return b.vocab.BOS }

// EOS is the end-of-sequence id, or -1.
func (b *ByteLevel) EOS() int { return b.vocab.EOS }

// Vocab returns the vocabulary the tokenizer was built from (not a copy:
// do not modify it).
func (b *ByteLevel) Vocab() ByteLevelVocab { return b.vocab }

// Encode splits out special tokens (never split themselves), encodes the
// text between them, and adds BOS/EOS when asked.
func (b *ByteLevel) Encode(text string, bos, eos bool) ([]int, error) {
	if bos && b.vocab.BOS < 0 {
		return nil, errors.New("byte-level encode: the vocabulary has no BOS token")
	}
	if eos && b.vocab.EOS < 0 {
		return nil, errors.New("byte-level encode: the vocabulary has no EOS token")
	}
	out := make([]int, 0, len(text)/4+2)
	if bos {
		out = append(out, b.vocab.BOS)
	}
	st := b.pool.Get().(*blState)
	start := 0
	if len(b.special) > 0 {
		for i := 0; i < len(text); i++ {
			if !b.specialFirst[text[i]] {
				continue
			}
			for _, sp := range b.special[text[i]] {
				if strings.HasPrefix(text[i:], sp.text) {
					out = b.appendText(out, text[start:i], st)
					out = append(out, int(sp.id))
					i += len(sp.text) - 1
					start = i + 1
					break
				}
			}
		}
	}
	out = b.appendText(out, text[start:], st)
	b.pool.Put(st)
	if eos {
		out = append(out, b.vocab.EOS)
	}
	return out, nil
}

// EncodeOrdinary encodes text with no special-token matching: "<|endoftext|>"
// becomes the tokens of those characters, as GPT-2's own encoder does.
func (b *ByteLevel) EncodeOrdinary(text string) []int {
	st := b.pool.Get().(*blState)
	out := b.appendText(make([]int, 0, len(text)/4+2), text, st)
	b.pool.Put(st)
	return out
}

// AppendOrdinary is EncodeOrdinary appending to dst (no allocation when dst
// has room).
func (b *ByteLevel) AppendOrdinary(dst []int, text string) []int {
	st := b.pool.Get().(*blState)
	dst = b.appendText(dst, text, st)
	b.pool.Put(st)
	return dst
}

func (b *ByteLevel) appendText(dst []int, s string, st *blState) []int {
	for i := 0; i < len(s); {
		j := gpt2Next(s, i)
		dst = b.appendWord(dst, s[i:j], st)
		i = j
	}
	return dst
}

// appendWord appends the BPE tokens of one pre-token.
func (b *ByteLevel) appendWord(dst []int, w string, st *blState) []int {
	if len(w) == 1 {
		return append(dst, int(b.byteTok[w[0]]))
	}
	if e, ok := st.cache[w]; ok {
		for _, id := range st.ids[e>>32 : e>>32+e&0xffffffff] {
			dst = append(dst, int(id))
		}
		return dst
	}
	sym := st.sym[:0]
	for i := 0; i < len(w); i++ {
		sym = append(sym, b.byteTok[w[i]])
	}
	if len(sym) <= 64 {
		sym = b.mergeShort(sym, st)
	} else {
		sym = b.mergeLong(sym, st)
	}
	st.sym = sym
	if len(w) > blCacheWordMax {
		for _, id := range sym {
			dst = append(dst, int(id))
		}
		return dst
	}
	if len(st.cache) >= blCacheMax || len(st.ids)+len(sym) > 1<<30 {
		clear(st.cache)
		st.ids = st.ids[:0]
	}
	st.cache[strings.Clone(w)] = uint64(len(st.ids))<<32 | uint64(len(sym))
	st.ids = append(st.ids, sym...)
	for _, id := range sym {
		dst = append(dst, int(id))
	}
	return dst
}

func (b *ByteLevel) pairRank(l, r int32) (rank uint32, merged int32) {
	if v, ok := b.merges[uint64(l)<<32|uint64(uint32(r))]; ok {
		return uint32(v >> 32), int32(uint32(v))
	}
	return noRank, -1
}

// mergeShort applies merges to a short word: rank[i] caches the rank of the
// pair (sym[i], sym[i+1]); each step merges the lowest (leftmost on ties)
// and recomputes only its neighbours. Quadratic, but fastest for words of a
// few dozen bytes.
func (b *ByteLevel) mergeShort(sym []int32, st *blState) []int32 {
	rank := st.rank[:0]
	for i := 0; i+1 < len(sym); i++ {
		r, _ := b.pairRank(sym[i], sym[i+1])
		rank = append(rank, r)
	}
	for len(sym) > 1 {
		best, bi := noRank, -1
		for i, r := range rank {
			if r < best {
				best, bi = r, i
			}
		}
		if bi < 0 {
			break
		}
		_, m := b.pairRank(sym[bi], sym[bi+1])
		sym[bi] = m
		sym = append(sym[:bi+1], sym[bi+2:]...)
		rank = append(rank[:bi], rank[bi+1:]...)
		if bi > 0 {
			rank[bi-1], _ = b.pairRank(sym[bi-1], sym[bi])
		}
		if bi < len(rank) {
			rank[bi], _ = b.pairRank(sym[bi], sym[bi+1])
		}
	}
	st.rank = rank
	return sym
}

// blHeapItem is a candidate merge of the symbols starting at pos and right.
type blHeapItem struct {
	rank       uint32
	pos, right int32
	l, r       int32 // the ids it was computed for, to detect stale items
}

// blHeap is a min-heap by (rank, pos): lowest rank, then leftmost.
type blHeap []blHeapItem

func (h blHeap) less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}

func (h *blHeap) push(it blHeapItem) {
	*h = append(*h, it)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *blHeap) pop() blHeapItem {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < len(s) && s.less(l, m) {
			m = l
		}
		if l+1 < len(s) && s.less(l+1, m) {
			m = l + 1
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// mergeLong applies merges to a long word in O(n log n): symbols live in a
// linked list over their start positions, candidate pairs in a heap, and a
// popped candidate whose symbols have changed since is skipped.
func (b *ByteLevel) mergeLong(sym []int32, st *blState) []int32 {
	n := len(sym)
	next, prev := st.next[:0], st.prev[:0]
	for i := 0; i < n; i++ {
		next = append(next, int32(i+1))
		prev = append(prev, int32(i-1))
	}
	next[n-1] = -1
	h := st.heap[:0]
	for i := 0; i+1 < n; i++ {
		if r, _ := b.pairRank(sym[i], sym[i+1]); r != noRank {
			h.push(blHeapItem{r, int32(i), int32(i + 1), sym[i], sym[i+1]})
		}
	}
	const dead = -2
	for len(h) > 0 {
		it := h.pop()
		p, q := it.pos, it.right
		if prev[p] == dead || next[p] != q || sym[p] != it.l || sym[q] != it.r {
			continue
		}
		_, m := b.pairRank(it.l, it.r)
		sym[p] = m
		next[p] = next[q]
		if next[q] >= 0 {
			prev[next[q]] = p
		}
		prev[q] = dead
		if pp := prev[p]; pp >= 0 {
			if r, _ := b.pairRank(sym[pp], m); r != noRank {
				h.push(blHeapItem{r, pp, p, sym[pp], m})
			}
		}
		if nn := next[p]; nn >= 0 {
			if r, _ := b.pairRank(m, sym[nn]); r != noRank {
				h.push(blHeapItem{r, p, nn, m, sym[nn]})
			}
		}
	}
	out := sym[:0]
	for i := int32(0); i >= 0; i = next[i] {
		out = append(out, sym[i])
	}
	st.next, st.prev, st.heap = next, prev, h
	return out
}

// Piece returns a copy of the bytes of token next (prev is ignored: byte-level
// tokens carry their own spaces). Control tokens (BOS, EOS, <|endoftext|>)
// give no bytes, as in llama.cpp; user-defined tokens give their text.
func (b *ByteLevel) Piece(prev, next int) ([]byte, error) {
	if next < 0 || next >= b.VocabSize() {
		return nil, fmt.Errorf("byte-level decode: token id %d out of range [0,%d)", next, b.VocabSize())
	}
	if b.isControl(next) {
		return []byte{}, nil
	}
	return append([]byte(nil), b.data[b.off[next]:b.off[next+1]]...), nil
}

func (b *ByteLevel) isControl(id int) bool {
	return b.vocab.Types != nil && b.vocab.Types[id] == int32(TokenControl)
}

// Decode concatenates the bytes of the tokens, leaving out control tokens
// (BOS, EOS, <|endoftext|>).
func (b *ByteLevel) Decode(ids []int) (string, error) {
	out, err := b.AppendDecoded(nil, ids)
	return string(out), err
}

// DecodeSpecial is Decode with control tokens written as their text.
func (b *ByteLevel) DecodeSpecial(ids []int) (string, error) {
	out, err := b.appendDecoded(nil, ids, true)
	return string(out), err
}

// AppendDecoded appends the bytes of the tokens to dst, leaving out control
// tokens; an invalid id is an error naming its position.
func (b *ByteLevel) AppendDecoded(dst []byte, ids []int) ([]byte, error) {
	return b.appendDecoded(dst, ids, false)
}

func (b *ByteLevel) appendDecoded(dst []byte, ids []int, special bool) ([]byte, error) {
	n := b.VocabSize()
	for i, id := range ids {
		if id < 0 || id >= n {
			return dst, fmt.Errorf("byte-level decode: token %d: id %d out of range [0,%d)", i, id, n)
		}
		if !special && b.isControl(id) {
			continue
		}
		dst = append(dst, b.data[b.off[id]:b.off[id+1]]...)
	}
	return dst, nil
}

// TokenBytes returns the bytes token id stands for (not a copy), or nil
// for an invalid id.
func (b *ByteLevel) TokenBytes(id int) []byte {
	if id < 0 || id >= b.VocabSize() {
		return nil
	}
	return b.data[b.off[id]:b.off[id+1]:b.off[id+1]]
}
