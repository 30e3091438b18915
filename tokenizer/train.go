package tokenizer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelc/modelc/gguf"
)

// TrainStyle selects the kind of vocabulary Train learns.
type TrainStyle int

const (
	// StyleByteLevel learns GPT-2-style merges over bytes, on words split by
	// GPT-2's pre-tokenizer; the result is a "gpt2" GGUF vocabulary.
	StyleByteLevel TrainStyle = iota
	// StyleSentencePiece learns merges over characters, each line being a
	// sentence with "▁" for spaces (and one in front), words starting at
	// each "▁"; the result is a "llama" GGUF vocabulary with <unk>, <s>,
	// </s>, byte-fallback tokens <0x00>..<0xFF> and scores (-merge rank).
	StyleSentencePiece
)

func (s TrainStyle) String() string {
	switch s {
	case StyleByteLevel:
		return "bytelevel"
	case StyleSentencePiece:
		return "sentencepiece"
	}
	return fmt.Sprintf("TrainStyle(%d)", int(s))
}

// ParseTrainStyle reads "bytelevel" or "sentencepiece".
func ParseTrainStyle(s string) (TrainStyle, error) {
	switch s {
	case "bytelevel", "byte-level", "gpt2":
		return StyleByteLevel, nil
	case "sentencepiece", "spm", "llama":
		return StyleSentencePiece, nil
	}
	return 0, fmt.Errorf("unknown tokenizer style %q (want bytelevel or sentencepiece)", s)
}

// TrainOptions configures Train.
type TrainOptions struct {
	// VocabSize is the number of tokens wanted, special and byte tokens
	// included. Training stops earlier when no pair is frequent enough.
	VocabSize int
	// MinFrequency is the lowest count a pair must have to be merged
	// (0 means 2: a pair seen once is not worth a token).
	MinFrequency int
	// Special tokens are never split, and their text in the corpus is not
	// learned from; they are user-defined tokens (decoded as their text).
	// Byte-level: they follow "<|endoftext|>" (id 0, a control token, BOS
	// and EOS). SentencePiece: they follow <unk> <s> </s> and the byte
	// tokens.
	Special []string
	Style   TrainStyle
	// Progress, when set, receives a few lines of progress.
	Progress io.Writer
}

// TrainStats describes a training run.
type TrainStats struct {
	Bytes         int64 // corpus size
	Words         int64 // pre-tokenized words (SentencePiece: "▁" words)
	DistinctWords int
	Alphabet      int // base symbols (bytes, or characters kept)
	Merges        int
	Tokens        int64         // the corpus's words in learned tokens (specials not counted)
	CountTime     time.Duration // reading and counting words
	MergeTime     time.Duration
}

// TrainedVocab is a learned vocabulary in GGUF form: byte-level token text
// ("Ġthe") or SentencePiece pieces ("▁the").
type TrainedVocab struct {
	Style  TrainStyle
	Tokens []string
	Types  []int32
	// Scores are SentencePiece scores: 0 for special and byte tokens, then
	// 0, -1, -2, … for merged pieces in merge order, then lower still for
	// single characters. Byte-level vocabularies carry none.
	Scores []float32
	// Merges are "left right" in merge order, in the tokens' own spelling.
	Merges []string
	// BOS, EOS and Unknown are token ids, -1 when there is none.
	BOS, EOS, Unknown int
	Stats             TrainStats
}

// Train learns a BPE vocabulary from a corpus: words are counted once, then
// the most frequent adjacent pair is merged repeatedly, pair counts being
// updated only where a merge changed a word, with a max-heap of candidate
// pairs whose stale entries are skipped when popped. Ties go to the pair
// with the lowest (left, right) ids, so training is deterministic.
func Train(corpus io.Reader, opts TrainOptions) (*TrainedVocab, error) {
	minFreq := int64(opts.MinFrequency)
	if minFreq <= 0 {
		minFreq = 2
	}
	seen := map[string]bool{}
	for _, s := range opts.Special {
		if s == "" {
			return nil, errors.New("bpe train: empty special token")
		}
		if seen[s] {
			return nil, fmt.Errorf("bpe train: special token %q given twice", s)
		}
		seen[s] = true
	}
	switch opts.Style {
	case StyleByteLevel:
		return trainByteLevel(corpus, opts, minFreq)
	case StyleSentencePiece:
		return trainSentencePiece(corpus, opts, minFreq)
	}
	return nil, fmt.Errorf("bpe train: unknown style %d", opts.Style)
}

// wordTable counts distinct words.
type wordTable struct {
	index map[string]int32
	words []string
	freq  []int64
	total int64
}

func newWordTable() *wordTable { return &wordTable{index: map[string]int32{}} }

func (t *wordTable) add(w string) {
	t.total++
	if i, ok := t.index[w]; ok {
		t.freq[i]++
		return
	}
	w = strings.Clone(w) // w points into a reused buffer
	t.index[w] = int32(len(t.words))
	t.words = append(t.words, w)
	t.freq = append(t.freq, 1)
}

func (t *wordTable) addBytes(w []byte) {
	t.total++
	if i, ok := t.index[string(w)]; ok { // no allocation for the look-up
		t.freq[i]++
		return
	}
	s := string(w)
	t.index[s] = int32(len(t.words))
	t.words = append(t.words, s)
	t.freq = append(t.freq, 1)
}

// trainChunk is how much of the corpus is read at a time (a variable so
// tests can make chunk boundaries fall everywhere).
var trainChunk = 1 << 20

// specialFinder finds special-token text in the corpus, which is not
// learned from: it is cut out, and the text on each side is a separate
// stretch, as at encode time.
type specialFinder struct {
	list   []string
	maxLen int
}

func newSpecialFinder(list []string) specialFinder {
	f := specialFinder{list: list}
	for _, s := range list {
		f.maxLen = max(f.maxLen, len(s))
	}
	return f
}

// next returns the earliest special at or after from (longest on ties),
// or -1.
func (f *specialFinder) next(s string, from int) (pos, n int) {
	pos = -1
	for _, sp := range f.list {
		k := strings.Index(s[from:], sp)
		if k < 0 {
			continue
		}
		if k += from; pos < 0 || k < pos || (k == pos && len(sp) > n) {
			pos, n = k, len(sp)
		}
	}
	return pos, n
}

// readChunks calls fn with the buffered corpus whenever the buffer is full
// or the input ends; fn returns how many bytes it used, and the rest is
// kept for the next call. A buffer fn cannot use at all grows.
func readChunks(r io.Reader, fn func(buf []byte, eof bool) int) (int64, error) {
	buf := make([]byte, 0, trainChunk)
	var total int64
	for eof := false; !eof; {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), 2*cap(buf))
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		total += int64(n)
		if err == io.EOF {
			eof = true
		} else if err != nil {
			return total, fmt.Errorf("read corpus: %w", err)
		}
		if !eof && len(buf) < cap(buf) {
			continue
		}
		used := fn(buf, eof)
		buf = buf[:copy(buf, buf[used:])]
	}
	return total, nil
}

// countPretokens splits the corpus with GPT-2's pre-tokenizer. A word is
// counted only when it ends far enough before the buffer's end that no byte
// past the buffer could change it (the scanner looks at most 8 bytes past a
// word, and a special token must be seen whole); the rest is carried over,
// so chunking never changes the split.
func countPretokens(r io.Reader, t *wordTable, specials []string) (int64, error) {
	sf := newSpecialFinder(specials)
	return readChunks(r, func(buf []byte, eof bool) int {
		s := string(buf)
		limit := len(s) - 16 - sf.maxLen
		sp, sn := sf.next(s, 0)
		i := 0
		for i < len(s) {
			if i == sp {
				i += sn
				sp, sn = sf.next(s, i)
				continue
			}
			end := len(s)
			if sp >= 0 {
				end = sp
			}
			j := gpt2Next(s[:end], i)
			if !eof && j > limit {
				break
			}
			t.add(s[i:j])
			i = j
		}
		return i
	})
}

// countSentencePieceWords splits each line (a trailing "\r" dropped, empty
// lines skipped) into words that start at a space, with a space in front of
// the line: "a  b" -> " a", " ", " b". Special tokens cut the line, and
// each piece gets its own leading space.
func countSentencePieceWords(r io.Reader, t *wordTable, specials []string) (int64, error) {
	sf := newSpecialFinder(specials)
	line := []byte{' '}
	words := func(seg []byte) {
		start := 0
		for i := 1; i < len(seg); i++ {
			if seg[i] == ' ' {
				t.addBytes(seg[start:i])
				start = i
			}
		}
		if start < len(seg) {
			t.addBytes(seg[start:])
		}
	}
	doLine := func(l []byte) {
		l = bytes.TrimSuffix(l, []byte{'\r'})
		if len(l) == 0 {
			return
		}
		if len(sf.list) == 0 {
			line = append(line[:1], l...)
			words(line)
			return
		}
		// As llama.cpp encodes, the text after a special token gets the
		// space prefix too.
		s := string(l)
		for i := 0; i < len(s); {
			sp, sn := sf.next(s, i)
			end := sp
			if sp < 0 {
				end = len(s)
			}
			if end > i {
				line = append(line[:1], l[i:end]...)
				words(line)
			}
			if sp < 0 {
				break
			}
			i = sp + sn
		}
	}
	return readChunks(r, func(buf []byte, eof bool) int {
		rest := buf
		for {
			k := bytes.IndexByte(rest, '\n')
			if k < 0 {
				break
			}
			doLine(rest[:k])
			rest = rest[k+1:]
		}
		if eof {
			doLine(rest)
			rest = rest[len(rest):]
		}
		return len(buf) - len(rest)
	})
}

// bpeTrainer holds the word table as symbol sequences and the pair counts.
type bpeTrainer struct {
	sym   [][]int32 // each distinct word's symbols (negative: a barrier that never pairs)
	freq  []int64
	stamp []int32 // last merge step that rewrote each word

	pairIdx   map[uint64]int32
	pairKeys  []uint64
	pairCount []int64
	pairWords [][]int32 // words that may hold each pair (stale entries allowed)
	pairTouch []int32   // last merge step that raised each pair's count
	heap      pairHeap
	touched   []int32
	step      int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// pairItem is a heap entry: a count the pair had when pushed.
type pairItem struct {
	count int64
	a, b  int32
}

// pairHeap is a max-heap by count, then by lowest (a, b).
type pairHeap []pairItem

func (h pairHeap) before(i, j int) bool {
	x, y := h[i], h[j]
	if x.count != y.count {
		return x.count > y.count
	}
	if x.a != y.a {
		return x.a < y.a
	}
	return x.b < y.b
}

func (h pairHeap) down(i int) {
	for {
		l, m := 2*i+1, i
		if l < len(h) && h.before(l, m) {
			m = l
		}
		if l+1 < len(h) && h.before(l+1, m) {
			m = l + 1
		}
		if m == i {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (h *pairHeap) push(it pairItem) {
	*h = append(*h, it)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.before(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *pairHeap) pop() pairItem {
	s := *h
	top := s[0]
	s[0] = s[len(s)-1]
	s = s[:len(s)-1]
	s.down(0)
	*h = s
	return top
}

func newBPETrainer(sym [][]int32, freq []int64) *bpeTrainer {
	t := &bpeTrainer{sym: sym, freq: freq, stamp: make([]int32, len(sym)), pairIdx: map[uint64]int32{}}
	for wi, s := range sym {
		for i := 0; i+1 < len(s); i++ {
			if s[i] >= 0 && s[i+1] >= 0 {
				t.add(s[i], s[i+1], freq[wi], int32(wi))
			}
		}
	}
	t.heap = make(pairHeap, 0, len(t.pairCount))
	for k, pi := range t.pairIdx {
		t.heap = append(t.heap, pairItem{t.pairCount[pi], int32(k >> 32), int32(uint32(k))})
	}
	for i := len(t.heap)/2 - 1; i >= 0; i-- {
		t.heap.down(i)
	}
	t.touched = t.touched[:0]
	return t
}

// add changes the count of pair (a, b) by delta; a rise records that word
// wi holds the pair and queues the pair for a new heap entry.
func (t *bpeTrainer) add(a, b int32, delta int64, wi int32) {
	k := pairKey(a, b)
	pi, ok := t.pairIdx[k]
	if !ok {
		pi = int32(len(t.pairCount))
		t.pairIdx[k] = pi
		t.pairKeys = append(t.pairKeys, k)
		t.pairCount = append(t.pairCount, 0)
		t.pairWords = append(t.pairWords, nil)
		t.pairTouch = append(t.pairTouch, -1)
	}
	t.pairCount[pi] += delta
	if delta > 0 {
		if w := t.pairWords[pi]; len(w) == 0 || w[len(w)-1] != wi {
			t.pairWords[pi] = append(w, wi)
		}
		if t.pairTouch[pi] != t.step {
			t.pairTouch[pi] = t.step
			t.touched = append(t.touched, pi)
		}
	}
}

// best pops the most frequent pair (lowest ids on ties). Heap entries may be
// stale: every pair with a positive count has an entry at least as high
// (a pair whose count rises gets a fresh entry), so an entry above the
// current count is pushed back with the current count, and one below it is
// a leftover that can be dropped.
func (t *bpeTrainer) best() (a, b int32, count int64, ok bool) {
	for len(t.heap) > 0 {
		it := t.heap.pop()
		cur := t.pairCount[t.pairIdx[pairKey(it.a, it.b)]]
		if cur == it.count {
			return it.a, it.b, cur, true
		}
		if cur > 0 && cur < it.count {
			it.count = cur
			t.heap.push(it)
		}
	}
	return 0, 0, 0, false
}

// merge replaces every (a, b) in every word holding it by m, left to right,
// and updates the counts of the neighbouring pairs.
func (t *bpeTrainer) merge(a, b, m int32) {
	t.step++
	pi := t.pairIdx[pairKey(a, b)]
	words := t.pairWords[pi]
	t.pairWords[pi] = nil
	t.touched = t.touched[:0]
	skip := pairKey(a, b)
	upd := func(x, y int32, delta int64, wi int32) {
		if x < 0 || y < 0 || pairKey(x, y) == skip {
			return
		}
		t.add(x, y, delta, wi)
	}
	for _, wi := range words {
		if t.stamp[wi] == t.step {
			continue
		}
		t.stamp[wi] = t.step
		s, f := t.sym[wi], t.freq[wi]
		j := 0
		for i := 0; i < len(s); {
			if i+1 < len(s) && s[i] == a && s[i+1] == b {
				if j > 0 {
					upd(s[j-1], a, -f, wi)
					upd(s[j-1], m, f, wi)
				}
				if i+2 < len(s) {
					upd(b, s[i+2], -f, wi)
					upd(m, s[i+2], f, wi)
				}
				s[j] = m
				j++
				i += 2
				continue
			}
			s[j] = s[i]
			j++
			i++
		}
		t.sym[wi] = s[:j]
	}
	t.pairCount[pi] = 0
	for _, p := range t.touched {
		if c := t.pairCount[p]; c > 0 {
			k := t.pairKeys[p]
			t.heap.push(pairItem{c, int32(k >> 32), int32(uint32(k))})
		}
	}
}

// run merges until there are target symbols or no pair is seen minFreq
// times. names holds each symbol's text; a merge that spells an existing
// symbol reuses it (BPE can reach one string by two routes), so the names
// stay unique. It returns the merges as (left, right, result).
func (t *bpeTrainer) run(names []string, target int, minFreq int64, progress io.Writer, start time.Time) ([][3]int32, []string) {
	byName := make(map[string]int32, target)
	for i, n := range names {
		byName[n] = int32(i)
	}
	var merges [][3]int32
	every := (target - len(names)) / 10
	if every < 1 {
		every = 1
	}
	for len(names) < target {
		a, b, c, ok := t.best()
		if !ok || c < minFreq {
			break
		}
		s := names[a] + names[b]
		m, ok := byName[s]
		if !ok {
			m = int32(len(names))
			names = append(names, s)
			byName[s] = m
		}
		t.merge(a, b, m)
		merges = append(merges, [3]int32{a, b, m})
		if progress != nil && (len(merges)%every == 0 || len(names) == target) {
			fmt.Fprintf(progress, "bpe train: %d merges, %d/%d symbols, last pair seen %d times, %.2fs\n",
				len(merges), len(names), target, c, time.Since(start).Seconds())
		}
	}
	return merges, names
}

// tokens is the number of symbols the corpus's words are now made of.
func (t *bpeTrainer) tokens() int64 {
	var n int64
	for i, s := range t.sym {
		n += int64(len(s)) * t.freq[i]
	}
	return n
}

// symbolize lays the words' symbols out in one backing array.
func symbolize(words []string, fn func(w string, dst []int32) []int32) [][]int32 {
	n := 0
	for _, w := range words {
		n += len(w)
	}
	back := make([]int32, 0, n)
	out := make([][]int32, len(words))
	for i, w := range words {
		k := len(back)
		back = fn(w, back)
		out[i] = back[k:len(back):len(back)]
	}
	return out
}

func trainProgress(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, "bpe train: "+format+"\n", args...)
	}
}

func trainByteLevel(r io.Reader, opts TrainOptions, minFreq int64) (*TrainedVocab, error) {
	specials := []string{GPT2EndOfText}
	for _, sp := range opts.Special {
		if sp != GPT2EndOfText {
			specials = append(specials, sp)
		}
	}
	fixed := len(specials)
	if opts.VocabSize < fixed+256 {
		return nil, fmt.Errorf("bpe train: vocab size %d is below the %d special and 256 byte tokens", opts.VocabSize, fixed)
	}
	start := time.Now()
	wt := newWordTable()
	n, err := countPretokens(r, wt, specials)
	if err != nil {
		return nil, fmt.Errorf("bpe train: %w", err)
	}
	stats := TrainStats{Bytes: n, Words: wt.total, DistinctWords: len(wt.words), Alphabet: 256, CountTime: time.Since(start)}
	trainProgress(opts.Progress, "%d bytes, %d words, %d distinct, %.2fs", n, wt.total, len(wt.words), stats.CountTime.Seconds())

	// Byte symbols in GPT-2's order (by their byte-level character), so a
	// trained vocabulary starts like GPT-2's: "!" first.
	var order [256]byte
	for i := range order {
		order[i] = byte(i)
	}
	sort.Slice(order[:], func(i, j int) bool { return byteToRune[order[i]] < byteToRune[order[j]] })
	var symOf [256]int32
	names := make([]string, 256)
	for i, c := range order {
		symOf[c] = int32(i)
		names[i] = string([]byte{c})
	}
	sym := symbolize(wt.words, func(w string, dst []int32) []int32 {
		for i := 0; i < len(w); i++ {
			dst = append(dst, symOf[w[i]])
		}
		return dst
	})
	mstart := time.Now()
	tr := newBPETrainer(sym, wt.freq)
	merges, names := tr.run(names, opts.VocabSize-fixed, minFreq, opts.Progress, start)
	stats.Merges, stats.MergeTime, stats.Tokens = len(merges), time.Since(mstart), tr.tokens()

	v := &TrainedVocab{Style: StyleByteLevel, BOS: 0, EOS: 0, Unknown: -1, Stats: stats}
	for i, s := range specials {
		v.Tokens = append(v.Tokens, s)
		typ := int32(TokenUserDefined)
		if i == 0 {
			typ = int32(TokenControl) // <|endoftext|>, BOS and EOS
		}
		v.Types = append(v.Types, typ)
	}
	for _, s := range names {
		v.Tokens = append(v.Tokens, ByteLevelText([]byte(s)))
		v.Types = append(v.Types, int32(TokenNormal))
	}
	for _, m := range merges {
		v.Merges = append(v.Merges, ByteLevelText([]byte(names[m[0]]))+" "+ByteLevelText([]byte(names[m[1]])))
	}
	trainProgress(opts.Progress, "%d tokens, %d merges in %.2fs (counting %.2fs)", len(v.Tokens), len(merges),
		time.Since(start).Seconds(), stats.CountTime.Seconds())
	return v, nil
}

// SentencePiece-style fixed tokens, as in Llama's vocabulary.
const (
	spmUnk      = "<unk>"
	spmBOS      = "<s>"
	spmEOS      = "</s>"
	spmReserved = 3 + 256
)

func trainSentencePiece(r io.Reader, opts TrainOptions, minFreq int64) (*TrainedVocab, error) {
	fixed := []string{spmUnk, spmBOS, spmEOS}
	fixedTypes := []int32{int32(TokenUnknown), int32(TokenControl), int32(TokenControl)}
	for c := 0; c < 256; c++ {
		fixed = append(fixed, fmt.Sprintf("<0x%02X>", c))
		fixedTypes = append(fixedTypes, int32(TokenByte))
	}
	for _, s := range opts.Special {
		for _, f := range fixed[:spmReserved] {
			if s == f {
				return nil, fmt.Errorf("bpe train: special token %q is already a SentencePiece control or byte token", s)
			}
		}
		fixed = append(fixed, s)
		fixedTypes = append(fixedTypes, int32(TokenUserDefined))
	}
	budget := opts.VocabSize - len(fixed)
	if budget < 1 {
		return nil, fmt.Errorf("bpe train: vocab size %d leaves no room after %d special and byte tokens", opts.VocabSize, len(fixed))
	}
	start := time.Now()
	wt := newWordTable()
	n, err := countSentencePieceWords(r, wt, opts.Special)
	if err != nil {
		return nil, fmt.Errorf("bpe train: %w", err)
	}
	stats := TrainStats{Bytes: n, Words: wt.total, DistinctWords: len(wt.words), CountTime: time.Since(start)}

	// Characters by frequency; those that do not fit the budget are left
	// to byte fallback and act as barriers that never merge.
	charCount := map[rune]int64{}
	for i, w := range wt.words {
		for _, c := range w {
			if c != utf8.RuneError {
				charCount[c] += wt.freq[i]
			}
		}
	}
	chars := make([]rune, 0, len(charCount))
	for c := range charCount {
		chars = append(chars, c)
	}
	sort.Slice(chars, func(i, j int) bool {
		if ci, cj := charCount[chars[i]], charCount[chars[j]]; ci != cj {
			return ci > cj
		}
		return chars[i] < chars[j]
	})
	if len(chars) > budget {
		chars = chars[:budget]
	}
	symOf := make(map[rune]int32, len(chars))
	names := make([]string, len(chars))
	for i, c := range chars {
		symOf[c] = int32(i)
		names[i] = string(c)
	}
	stats.Alphabet = len(chars)
	trainProgress(opts.Progress, "%d bytes, %d words, %d distinct, %d characters, %.2fs", n, wt.total, len(wt.words), len(chars), stats.CountTime.Seconds())
	sym := symbolize(wt.words, func(w string, dst []int32) []int32 {
		for _, c := range w {
			id, ok := symOf[c]
			if !ok || c == utf8.RuneError {
				id = -1
			}
			dst = append(dst, id)
		}
		return dst
	})
	mstart := time.Now()
	tr := newBPETrainer(sym, wt.freq)
	merges, names := tr.run(names, budget, minFreq, opts.Progress, start)
	stats.Merges, stats.MergeTime, stats.Tokens = len(merges), time.Since(mstart), tr.tokens()

	// Ids: fixed tokens, merged pieces in merge order (score 0, -1, …),
	// then the characters (lower scores), as SentencePiece orders them.
	nc, nm := len(chars), len(names)-len(chars)
	v := &TrainedVocab{Style: StyleSentencePiece, BOS: 1, EOS: 2, Unknown: 0, Stats: stats}
	v.Tokens = append(v.Tokens, fixed...)
	v.Types = append(v.Types, fixedTypes...)
	v.Scores = make([]float32, len(fixed), len(fixed)+len(names))
	piece := func(s string) string { return strings.ReplaceAll(s, " ", spmSpace) }
	for j := 0; j < nm; j++ {
		v.Tokens = append(v.Tokens, piece(names[nc+j]))
		v.Types = append(v.Types, int32(TokenNormal))
		v.Scores = append(v.Scores, -float32(j))
	}
	for i := 0; i < nc; i++ {
		v.Tokens = append(v.Tokens, piece(names[i]))
		v.Types = append(v.Types, int32(TokenNormal))
		v.Scores = append(v.Scores, -float32(nm+i))
	}
	for _, m := range merges {
		v.Merges = append(v.Merges, piece(names[m[0]])+" "+piece(names[m[1]]))
	}
	trainProgress(opts.Progress, "%d tokens, %d merges in %.2fs (counting %.2fs)", len(v.Tokens), len(merges),
		time.Since(start).Seconds(), stats.CountTime.Seconds())
	return v, nil
}

// ByteLevel builds the tokenizer of a byte-level vocabulary.
func (v *TrainedVocab) ByteLevel() (*ByteLevel, error) {
	if v.Style != StyleByteLevel {
		return nil, fmt.Errorf("trained vocab: style %v is not bytelevel", v.Style)
	}
	return NewByteLevel(ByteLevelVocab{Tokens: v.Tokens, Merges: v.Merges, Types: v.Types, BOS: v.BOS, EOS: v.EOS})
}

// SentencePiece builds the tokenizer of a SentencePiece-style vocabulary.
func (v *TrainedVocab) SentencePiece() (*SentencePiece, error) {
	if v.Style != StyleSentencePiece {
		return nil, fmt.Errorf("trained vocab: style %v is not sentencepiece", v.Style)
	}
	sv := SPMVocab{
		Pieces: make([]string, len(v.Tokens)),
		Scores: v.Scores,
		Types:  make([]TokenType, len(v.Types)),
		BOS:    v.BOS, EOS: v.EOS, Unknown: v.Unknown, Pad: -1,
		AddBOS: true,
	}
	for i, p := range v.Tokens {
		sv.Pieces[i] = strings.ReplaceAll(p, spmSpace, " ")
	}
	for i, t := range v.Types {
		sv.Types[i] = TokenType(t)
	}
	return NewSentencePiece(sv)
}

// Tokenizer builds the tokenizer of either style.
func (v *TrainedVocab) Tokenizer() (Tokenizer, error) {
	if v.Style == StyleSentencePiece {
		return v.SentencePiece()
	}
	return v.ByteLevel()
}

// GGUFMetadata returns the tokenizer.ggml.* entries of the vocabulary:
// model "gpt2" (tokens, types, merges) or "llama" (tokens, scores, types).
func (v *TrainedVocab) GGUFMetadata() ([]gguf.KV, error) {
	if v.Style == StyleSentencePiece {
		t, err := v.SentencePiece()
		if err != nil {
			return nil, err
		}
		return t.GGUFMetadata(), nil
	}
	b, err := v.ByteLevel()
	if err != nil {
		return nil, err
	}
	return b.GGUFMetadata(), nil
}

// SaveGGUF writes a vocabulary-only GGUF file (no tensors) atomically.
func (v *TrainedVocab) SaveGGUF(path string) error {
	kvs, err := v.GGUFMetadata()
	if err != nil {
		return fmt.Errorf("save vocab %s: %w", path, err)
	}
	return blSaveVocabGGUF(path, kvs)
}
