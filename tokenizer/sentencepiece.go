package tokenizer

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// TokenType is the kind of a vocabulary entry, numbered as llama.cpp numbers
// GGUF's tokenizer.ggml.token_type so the values can be written unchanged.
type TokenType int32

const (
	TokenUndefined   TokenType = 0
	TokenNormal      TokenType = 1
	TokenUnknown     TokenType = 2
	TokenControl     TokenType = 3
	TokenUserDefined TokenType = 4
	TokenUnused      TokenType = 5
	TokenByte        TokenType = 6
)

func (t TokenType) String() string {
	switch t {
	case TokenUndefined:
		return "undefined"
	case TokenNormal:
		return "normal"
	case TokenUnknown:
		return "unknown"
	case TokenControl:
		return "control"
	case TokenUserDefined:
		return "user-defined"
	case TokenUnused:
		return "unused"
	case TokenByte:
		return "byte"
	}
	return fmt.Sprintf("TokenType(%d)", int32(t))
}

// SPMVocab describes a SentencePiece-style vocabulary. Pieces spell a space
// as ' ' (as llama2.c's tokenizer.bin does), not as SentencePiece's "▁".
type SPMVocab struct {
	Pieces []string
	Scores []float32
	// Types may be nil: then they are inferred as llama2.c does implicitly
	// (id 0 "<unk>" unknown, ids 1 and 2 control, "<0xXX>" byte, the rest normal).
	Types []TokenType
	// BOS, EOS, Unknown and Pad are token ids, -1 when the vocabulary has none.
	BOS, EOS, Unknown, Pad int
	// AddBOS and AddEOS record what the vocabulary asks for by default
	// (GGUF tokenizer.ggml.add_bos_token); Encode's arguments decide.
	AddBOS, AddEOS bool
	// NoSpacePrefix turns off the dummy " " that run.c and SentencePiece put
	// in front of non-empty text (GGUF tokenizer.ggml.add_space_prefix=false).
	NoSpacePrefix bool
}

// SentencePiece is a score-merging BPE vocabulary with byte fallback, the
// kind llama2.c's tokenizer.bin, Llama's tokenizer.model and GGUF "llama"
// vocabularies hold. Encode and Decode are safe for concurrent use;
// AddSpecial is not safe concurrently with them.
type SentencePiece struct {
	pieces []string
	scores []float32
	types  []TokenType
	// lookup maps the text of every normal and user-defined piece to its id
	// (the lowest id when a text repeats); only these pieces take part in
	// lookups and merges, like SentencePiece's own piece table.
	lookup map[string]int32
	// pairs maps left<<32|right token ids to the id their concatenated
	// text looks up to, precomputed from every split of every lookup piece:
	// the same answer as run.c's concatenate-and-search, without strings.
	pairs    map[uint64]int32
	charID   [256]int32 // lookup of single-byte characters, -1 if absent
	inPair   []bool     // inPair[id]: id is the left or right of some pair
	byteIDs  [256]int32
	space    int32 // id of " ", -1 if absent
	bos, eos int
	unk, pad int
	addBOS   bool
	addEOS   bool
	prefix   bool
	maxLen   int // longest piece in bytes (tokenizer.bin's max_token_length)
	specials specialSet
}

var _ Tokenizer = (*SentencePiece)(nil)

// mergeFloor is run.c's initial best score: a pair whose merged token scores
// at or below it (or is NaN) is never merged.
const mergeFloor = float32(-1e10)

// NewSentencePiece checks v and builds the lookup tables.
func NewSentencePiece(v SPMVocab) (*SentencePiece, error) {
	n := len(v.Pieces)
	if n == 0 {
		return nil, fmt.Errorf("tokenizer: empty vocabulary")
	}
	if n > math.MaxInt32 {
		return nil, fmt.Errorf("tokenizer: vocabulary of %d pieces is too large", n)
	}
	if len(v.Scores) != n {
		return nil, fmt.Errorf("tokenizer: %d pieces but %d scores", n, len(v.Scores))
	}
	if v.Types != nil && len(v.Types) != n {
		return nil, fmt.Errorf("tokenizer: %d pieces but %d token types", n, len(v.Types))
	}
	for _, c := range []struct {
		name string
		id   int
	}{{"bos", v.BOS}, {"eos", v.EOS}, {"unknown", v.Unknown}, {"padding", v.Pad}} {
		if c.id < -1 || c.id >= n {
			return nil, fmt.Errorf("tokenizer: %s id %d out of range [-1, %d)", c.name, c.id, n)
		}
	}
	t := &SentencePiece{
		pieces: append([]string(nil), v.Pieces...),
		scores: append([]float32(nil), v.Scores...),
		types:  make([]TokenType, n),
		lookup: make(map[string]int32, n),
		space:  -1,
		bos:    v.BOS,
		eos:    v.EOS,
		unk:    v.Unknown,
		pad:    v.Pad,
		addBOS: v.AddBOS,
		addEOS: v.AddEOS,
		prefix: !v.NoSpacePrefix,
	}
	if v.Types != nil {
		copy(t.types, v.Types)
	} else {
		for i, p := range t.pieces {
			t.types[i] = inferType(i, p)
		}
	}
	t.rebuild()
	return t, nil
}

// inferType guesses a token's type from its id and text the way llama2.c
// treats a tokenizer.bin: 0 is <unk>, 1 and 2 are BOS and EOS, <0xXX> are bytes.
func inferType(id int, piece string) TokenType {
	switch {
	case id == 0 && piece == "<unk>":
		return TokenUnknown
	case id == 1 || id == 2:
		return TokenControl
	}
	if _, ok := parseBytePiece(piece); ok {
		return TokenByte
	}
	return TokenNormal
}

// parseBytePiece reads "<0xXX>" (two hex digits, either case).
func parseBytePiece(p string) (byte, bool) {
	if len(p) != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>' {
		return 0, false
	}
	hi, ok1 := hexVal(p[3])
	lo, ok2 := hexVal(p[4])
	if !ok1 || !ok2 {
		return 0, false
	}
	return hi<<4 | lo, true
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// rebuild recomputes every derived table from pieces, scores and types.
func (t *SentencePiece) rebuild() {
	clear(t.lookup)
	t.maxLen, t.space = 0, -1
	for i := range t.byteIDs {
		t.byteIDs[i] = -1
	}
	for i, p := range t.pieces {
		t.maxLen = max(t.maxLen, len(p))
		switch t.types[i] {
		case TokenNormal, TokenUserDefined:
			if p == "" {
				continue // an empty piece would merge with anything forever
			}
			if _, dup := t.lookup[p]; !dup {
				t.lookup[p] = int32(i)
			}
		case TokenByte:
			if b, ok := parseBytePiece(p); ok && t.byteIDs[b] < 0 {
				t.byteIDs[b] = int32(i)
			}
		}
	}
	if id, ok := t.lookup[" "]; ok {
		t.space = id
	}
	for c := range t.charID {
		t.charID[c] = -1
		if id, ok := t.lookup[string([]byte{byte(c)})]; ok {
			t.charID[c] = id
		}
	}
	t.buildPairs()
	t.specials = buildSpecials(t)
}

// buildPairs fills t.pairs: for each lookup piece p and each way to cut it
// into two texts that are both tokens (of any type, every id sharing the
// text), the pair of ids maps to p's id.
func (t *SentencePiece) buildPairs() {
	ids := make(map[string][]int32, len(t.pieces))
	for i, p := range t.pieces {
		if p != "" {
			ids[p] = append(ids[p], int32(i))
		}
	}
	t.pairs = make(map[uint64]int32, len(t.lookup))
	t.inPair = make([]bool, len(t.pieces))
	for p, target := range t.lookup {
		for k := 1; k < len(p); k++ {
			left, ok := ids[p[:k]]
			if !ok {
				continue
			}
			right, ok := ids[p[k:]]
			if !ok {
				continue
			}
			for _, a := range left {
				for _, b := range right {
					t.pairs[uint64(uint32(a))<<32|uint64(uint32(b))] = target
					t.inPair[a], t.inPair[b] = true, true
				}
			}
		}
	}
}

func (t *SentencePiece) pairable(id int32) bool { return t.inPair[id] }

// VocabSize is the number of tokens.
func (t *SentencePiece) VocabSize() int { return len(t.pieces) }

// BOS is the beginning-of-sequence id (-1 if none).
func (t *SentencePiece) BOS() int { return t.bos }

// EOS is the end-of-sequence id (-1 if none).
func (t *SentencePiece) EOS() int { return t.eos }

// Unknown is the <unk> id (-1 if none).
func (t *SentencePiece) Unknown() int { return t.unk }

// Pad is the padding id (-1 if none).
func (t *SentencePiece) Pad() int { return t.pad }

// AddBOS reports whether the vocabulary asks for BOS before text by default.
func (t *SentencePiece) AddBOS() bool { return t.addBOS }

// AddEOS reports whether the vocabulary asks for EOS after text by default.
func (t *SentencePiece) AddEOS() bool { return t.addEOS }

// SpacePrefix reports whether Encode puts a dummy " " before non-empty text.
func (t *SentencePiece) SpacePrefix() bool { return t.prefix }

// MaxTokenLength is the longest piece in bytes.
func (t *SentencePiece) MaxTokenLength() int { return t.maxLen }

// Token returns the raw text (space as ' '), score and type of id.
func (t *SentencePiece) Token(id int) (piece string, score float32, typ TokenType, err error) {
	if id < 0 || id >= len(t.pieces) {
		return "", 0, 0, fmt.Errorf("tokenizer: token id %d out of range [0, %d)", id, len(t.pieces))
	}
	return t.pieces[id], t.scores[id], t.types[id], nil
}

// ID returns the id of a normal or user-defined piece, or of a special
// token's text ("<s>"), and whether there is one.
func (t *SentencePiece) ID(piece string) (int, bool) {
	if id, ok := t.lookup[piece]; ok {
		return int(id), true
	}
	if id, ok := t.specials.byText[piece]; ok {
		return id, true
	}
	return 0, false
}

// EncodeOptions controls EncodeWith.
type EncodeOptions struct {
	BOS, EOS bool
	// ParseSpecial makes the text of special tokens ("<s>", "</s>",
	// "<|im_start|>") in the input map to their ids instead of being
	// tokenized as plain text. Leave it off for untrusted text.
	ParseSpecial bool
	// Continue says the text goes on from earlier text (the next chunk of
	// a file), so it gets no dummy prefix: encoding a text in pieces cut
	// where no piece can span (at a newline) then gives its whole ids.
	Continue bool
}

// Encode tokenizes text exactly as llama2.c run.c's encode() does: optional
// BOS, a dummy " " before non-empty text, one token per UTF-8 character
// (each byte as its <0xXX> token when the character is not a piece), then
// repeated merging of the adjacent pair whose concatenation is the best
// scoring piece (the leftmost pair on ties), optional EOS. Special-token
// text is not parsed; use EncodeWith for that.
func (t *SentencePiece) Encode(text string, bos, eos bool) ([]int, error) {
	return t.EncodeWith(text, EncodeOptions{BOS: bos, EOS: eos})
}

// EncodeWith is Encode with options.
func (t *SentencePiece) EncodeWith(text string, o EncodeOptions) ([]int, error) {
	ids, _, err := t.encode(text, o, false)
	return ids, err
}

// EncodeOffsets is EncodeWith that also returns, for every token, the byte
// range of text it came from (BOS, EOS and the dummy prefix are empty
// ranges), so a caller can map character spans to tokens.
func (t *SentencePiece) EncodeOffsets(text string, o EncodeOptions) ([]int, []Span, error) {
	return t.encode(text, o, true)
}

// Span is a half-open byte range [Start, End) of a text.
type Span struct{ Start, End int }

func (t *SentencePiece) encode(text string, o EncodeOptions, wantSpans bool) ([]int, []Span, error) {
	ids := make([]int, 0, len(text)/3+4)
	var spans []Span
	if wantSpans {
		spans = make([]Span, 0, cap(ids))
	}
	if o.BOS {
		if t.bos < 0 {
			return nil, nil, fmt.Errorf("tokenizer: BOS requested but the vocabulary has no BOS token")
		}
		ids = append(ids, t.bos)
		if wantSpans {
			spans = append(spans, Span{0, 0})
		}
	}
	var m merger
	prevSpecial := !o.Continue // the first text fragment gets the dummy prefix
	err := t.specials.split(text, o.ParseSpecial, func(start, end, special int) error {
		if special >= 0 {
			ids = append(ids, special)
			if wantSpans {
				spans = append(spans, Span{start, end})
			}
			prevSpecial = true
			return nil
		}
		var err error
		ids, spans, err = m.run(t, text, start, end, t.prefix && prevSpecial, ids, spans, wantSpans)
		prevSpecial = false
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if o.EOS {
		if t.eos < 0 {
			return nil, nil, fmt.Errorf("tokenizer: EOS requested but the vocabulary has no EOS token")
		}
		ids = append(ids, t.eos)
		if wantSpans {
			spans = append(spans, Span{len(text), len(text)})
		}
	}
	return ids, spans, nil
}

// merger holds the scratch state of one fragment's BPE merge: a doubly
// linked list of symbols and a max-heap of candidate pairs. A heap entry
// goes stale when either side changes; it is recognised by comparing ids
// (a merged token is a longer piece, so its id always differs).
type merger struct {
	id    []int32
	prev  []int32
	next  []int32
	start []int32
	end   []int32
	heap  []pairCand
}

type pairCand struct {
	score       float32
	left, right int32
	lid, rid    int32
	merged      int32
}

// less orders the heap: higher score first, then the leftmost pair, which is
// the pair run.c's linear scan with a strict > picks.
func (a pairCand) before(b pairCand) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return a.left < b.left
}

func (m *merger) push(c pairCand) {
	m.heap = append(m.heap, c)
	i := len(m.heap) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !m.heap[i].before(m.heap[p]) {
			break
		}
		m.heap[i], m.heap[p] = m.heap[p], m.heap[i]
		i = p
	}
}

func (m *merger) pop() pairCand {
	h := m.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		c := l
		if r := l + 1; r < len(h) && h[r].before(h[l]) {
			c = r
		}
		if !h[c].before(h[i]) {
			break
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
	m.heap = h
	return top
}

func (m *merger) add(id int32, start, end int) {
	n := int32(len(m.id))
	m.id = append(m.id, id)
	m.prev = append(m.prev, n-1)
	m.next = append(m.next, n+1)
	m.start = append(m.start, int32(start))
	m.end = append(m.end, int32(end))
}

// consider pushes the pair (l, r) if its concatenation is a mergeable piece.
func (m *merger) consider(t *SentencePiece, l, r int32) {
	if l < 0 || r < 0 || int(r) >= len(m.id) {
		return
	}
	id, ok := t.pairs[uint64(uint32(m.id[l]))<<32|uint64(uint32(m.id[r]))]
	if !ok {
		return
	}
	s := t.scores[id]
	if !(s > mergeFloor) {
		return
	}
	m.push(pairCand{score: s, left: l, right: r, lid: m.id[l], rid: m.id[r], merged: id})
}

// run tokenizes text[from:to] as one fragment and appends its ids.
func (m *merger) run(t *SentencePiece, text string, from, to int, prefix bool, ids []int, spans []Span, wantSpans bool) ([]int, []Span, error) {
	m.id, m.prev, m.next, m.start, m.end, m.heap = m.id[:0], m.prev[:0], m.next[:0], m.start[:0], m.end[:0], m.heap[:0]
	if from >= to {
		return ids, spans, nil
	}
	// At most one symbol a byte (and the prefix): sized once, a long line
	// does not pay for append's doublings and their copies.
	n := to - from + 1
	m.id, m.prev, m.next = slices.Grow(m.id, n), slices.Grow(m.prev, n), slices.Grow(m.next, n)
	m.start, m.end = slices.Grow(m.start, n), slices.Grow(m.end, n)
	if prefix {
		if t.space >= 0 {
			m.add(t.space, from, from)
		} else if err := m.fallback(t, " ", from, from); err != nil {
			return nil, nil, err
		}
	}
	// Group bytes the way run.c does: a group starts at any byte and takes
	// following continuation bytes (10xxxxxx) up to 4 bytes in all, so
	// invalid UTF-8 is grouped exactly as run.c groups it.
	for i := from; i < to; {
		n := 1
		for n < 4 && i+n < to && text[i+n]&0xC0 == 0x80 {
			n++
		}
		if n == 1 && t.charID[text[i]] >= 0 {
			m.add(t.charID[text[i]], i, i+1)
		} else if id, ok := t.lookup[text[i:i+n]]; ok {
			m.add(id, i, i+n)
		} else if err := m.fallback(t, text[i:i+n], i, i+n); err != nil {
			return nil, nil, err
		}
		i += n
	}
	cnt := int32(len(m.id))
	// A symbol in no pair of the table never merges, so it cuts the text
	// into runs that merge independently; merging run by run keeps the heap
	// small (the result is the same: merges in different runs commute).
	for s := int32(0); s < cnt; {
		if !t.pairable(m.id[s]) {
			s++
			continue
		}
		e := s + 1
		for e < cnt && t.pairable(m.id[e]) {
			e++
		}
		for i := s; i+1 < e; i++ {
			m.consider(t, i, i+1)
		}
		m.drain(t, cnt)
		s = e
	}
	for i := int32(0); i < cnt; i = m.next[i] {
		ids = append(ids, int(m.id[i]))
		if wantSpans {
			spans = append(spans, Span{int(m.start[i]), int(m.end[i])})
		}
	}
	return ids, spans, nil
}

// drain merges the best pair until the heap is empty.
func (m *merger) drain(t *SentencePiece, cnt int32) {
	for len(m.heap) > 0 {
		c := m.pop()
		if m.id[c.left] != c.lid || m.id[c.right] != c.rid || m.next[c.left] != c.right {
			continue // stale: a side was merged since this pair was pushed
		}
		l, r := c.left, c.right
		m.id[l] = c.merged
		m.end[l] = m.end[r]
		m.id[r] = -1
		nx := m.next[r]
		m.next[l] = nx
		if nx < cnt {
			m.prev[nx] = l
		}
		m.consider(t, m.prev[l], l)
		m.consider(t, l, nx)
	}
}

// fallback adds the <0xXX> token of every byte of s (run.c's byte fallback),
// or <unk> when the vocabulary has no byte tokens. Byte k of s covers input
// byte start+k; the dummy prefix (start == end) covers nothing.
func (m *merger) fallback(t *SentencePiece, s string, start, end int) error {
	for i := 0; i < len(s); i++ {
		if t.byteIDs[s[i]] < 0 {
			if t.unk < 0 {
				return fmt.Errorf("tokenizer: %q at byte %d is not in the vocabulary, which has no byte tokens and no <unk>", s, start)
			}
			m.add(int32(t.unk), start, end)
			return nil
		}
	}
	for i := 0; i < len(s); i++ {
		if start == end {
			m.add(t.byteIDs[s[i]], start, start)
		} else {
			m.add(t.byteIDs[s[i]], start+i, start+i+1)
		}
	}
	return nil
}

// Piece returns the bytes token next stands for after token prev, as run.c's
// decode: a leading space is dropped after BOS (and after any other control
// token) when the vocabulary adds a space prefix, <0xXX> becomes that byte.
// Control tokens (BOS, EOS, chat markers) print nothing.
func (t *SentencePiece) Piece(prev, next int) ([]byte, error) {
	if next < 0 || next >= len(t.pieces) {
		return nil, fmt.Errorf("tokenizer: token id %d out of range [0, %d)", next, len(t.pieces))
	}
	return t.appendPiece(nil, prev, next), nil
}

func (t *SentencePiece) appendPiece(dst []byte, prev, next int) []byte {
	p := t.pieces[next]
	switch t.types[next] {
	case TokenControl:
		return dst
	case TokenByte:
		if b, ok := parseBytePiece(p); ok {
			return append(dst, b)
		}
	}
	// run.c drops the space after BOS; any control or user-defined token
	// is treated alike because Encode puts a dummy prefix after every
	// special (llama.cpp), so decode gives the encoded text back.
	if t.prefix && prev >= 0 && prev < len(t.types) && (t.types[prev] == TokenControl || t.types[prev] == TokenUserDefined) && strings.HasPrefix(p, " ") {
		p = p[1:]
	}
	return append(dst, p...)
}

// Decode turns ids back into text. The text starts as if after BOS, so the
// dummy prefix space Encode added is dropped again; BOS and EOS print nothing.
func (t *SentencePiece) Decode(ids []int) (string, error) {
	out := make([]byte, 0, len(ids)*4)
	prev := t.bos
	if prev < 0 {
		prev = startMarker
	}
	for _, id := range ids {
		if id < 0 || id >= len(t.pieces) {
			return "", fmt.Errorf("tokenizer: decode: token id %d out of range [0, %d)", id, len(t.pieces))
		}
		if prev == startMarker {
			out = t.appendFirst(out, id)
		} else {
			out = t.appendPiece(out, prev, id)
		}
		prev = id
	}
	return string(out), nil
}

// startMarker stands for "start of text" in a vocabulary without BOS.
const startMarker = math.MinInt32

func (t *SentencePiece) appendFirst(dst []byte, id int) []byte {
	p := t.pieces[id]
	if t.prefix && t.types[id] != TokenControl && t.types[id] != TokenByte && strings.HasPrefix(p, " ") {
		return append(dst, p[1:]...)
	}
	return t.appendPiece(dst, -1, id)
}

// DecodeSpecial is Decode that writes control tokens as their text ("<s>",
// "<|im_start|>") instead of nothing, to show what a model saw.
func (t *SentencePiece) DecodeSpecial(ids []int) (string, error) {
	var out []byte
	prev := startMarker
	for _, id := range ids {
		if id < 0 || id >= len(t.pieces) {
			return "", fmt.Errorf("tokenizer: decode: token id %d out of range [0, %d)", id, len(t.pieces))
		}
		switch {
		case t.types[id] == TokenControl:
			out = append(out, specialText(t.pieces[id])...)
		case prev == startMarker:
			out = t.appendFirst(out, id)
		default:
			out = t.appendPiece(out, prev, id)
		}
		prev = id
	}
	return string(out), nil
}
