package tokenizer

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/modelc/modelc/gguf"
)

// blHugCorpus is the textbook example: hug×10, pug×5, pun×12, bun×4,
// hugs×5, one word per line.
func blHugCorpus() string {
	var sb strings.Builder
	for _, w := range []struct {
		s string
		n int
	}{{"hug", 10}, {"pug", 5}, {"pun", 12}, {"bun", 4}, {"hugs", 5}} {
		for i := 0; i < w.n; i++ {
			sb.WriteString(w.s + "\n")
		}
	}
	return sb.String()
}

// TestTrainByteLevelByHand checks the merge order worked out by hand. Pair
// counts: ug 20, pu 17, un 16, hu 15, gs 5, bu 4. After ug: un 16, h·ug 15,
// p·u 12, then h·ug, p·un; p·ug and hug·s tie at 5 and p (byte id 79 in
// GPT-2's order) is lower than hug (a merged id); then hug·s, b·un.
func TestTrainByteLevelByHand(t *testing.T) {
	v, err := Train(strings.NewReader(blHugCorpus()), TrainOptions{VocabSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"u g", "u n", "h ug", "p un", "p ug", "hug s", "b un"}
	if fmt.Sprint(v.Merges) != fmt.Sprint(want) {
		t.Fatalf("merges %q, want %q", v.Merges, want)
	}
	if len(v.Tokens) != 1+256+7 || v.Tokens[0] != GPT2EndOfText || v.Tokens[1] != "!" || v.Tokens[257] != "ug" || v.Tokens[263] != "bun" {
		t.Fatalf("tokens: %d, [0]=%q [1]=%q [257]=%q", len(v.Tokens), v.Tokens[0], v.Tokens[1], v.Tokens[257])
	}
	if v.Stats.Words != 36+36 || v.Stats.DistinctWords != 6 || v.Stats.Merges != 7 || v.Stats.Tokens != 72 {
		t.Fatalf("stats %+v", v.Stats)
	}
	b, err := v.ByteLevel()
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := b.Encode("hugs\npug bun<|endoftext|>", false, false)
	nl, sp := int(b.byteTok['\n']), int(b.byteTok[' '])
	if w := []int{262, nl, 261, sp, 263, 0}; fmt.Sprint(ids) != fmt.Sprint(w) {
		t.Fatalf("encode = %v, want %v", ids, w)
	}

	// A smaller vocabulary keeps the first merges; a higher minimum
	// frequency stops before b·un (4).
	v, err = Train(strings.NewReader(blHugCorpus()), TrainOptions{VocabSize: 1 + 256 + 3})
	if err != nil || fmt.Sprint(v.Merges) != fmt.Sprint(want[:3]) {
		t.Fatalf("vocab 260: %q %v", v.Merges, err)
	}
	v, err = Train(strings.NewReader(blHugCorpus()), TrainOptions{VocabSize: 1000, MinFrequency: 5})
	if err != nil || fmt.Sprint(v.Merges) != fmt.Sprint(want[:6]) {
		t.Fatalf("min frequency 5: %q %v", v.Merges, err)
	}
}

// TestTrainSentencePieceByHand: words are "▁hug" etc. Characters by count:
// ▁ 36, u 36, g 20, p 17, n 16, h 15, s 5, b 4 (ids 0..7, ties by code
// point). Pairs: ug 20, ▁p 17, pu 17, un 16, ▁h 15, hu 15 → ug; ▁p (id 0
// beats p·u); un; ▁h (0,5) beats h·ug (5,8); ▁h·ug; ▁p·un; then at 5
// ▁p·ug beats ▁hug·s (lower left id), ▁hug·s; ▁b and b·un (4).
func TestTrainSentencePieceByHand(t *testing.T) {
	v, err := Train(strings.NewReader(blHugCorpus()), TrainOptions{VocabSize: 1000, Style: StyleSentencePiece})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"u g", "▁ p", "u n", "▁ h", "▁h ug", "▁p un", "▁p ug", "▁hug s", "▁ b", "▁b un"}
	if fmt.Sprint(v.Merges) != fmt.Sprint(want) {
		t.Fatalf("merges %q, want %q", v.Merges, want)
	}
	if len(v.Tokens) != 259+10+8 {
		t.Fatalf("%d tokens", len(v.Tokens))
	}
	checks := []struct {
		id    int
		tok   string
		score float32
		typ   TokenType
	}{
		{0, "<unk>", 0, TokenUnknown}, {1, "<s>", 0, TokenControl}, {2, "</s>", 0, TokenControl},
		{3, "<0x00>", 0, TokenByte}, {258, "<0xFF>", 0, TokenByte},
		{259, "ug", 0, TokenNormal}, {260, "▁p", -1, TokenNormal}, {268, "▁bun", -9, TokenNormal},
		{269, "▁", -10, TokenNormal}, {270, "u", -11, TokenNormal}, {276, "b", -17, TokenNormal},
	}
	for _, c := range checks {
		if v.Tokens[c.id] != c.tok || v.Scores[c.id] != c.score || TokenType(v.Types[c.id]) != c.typ {
			t.Errorf("token %d = %q %v %v, want %q %v %v", c.id, v.Tokens[c.id], v.Scores[c.id], TokenType(v.Types[c.id]), c.tok, c.score, c.typ)
		}
	}
	sp, err := v.SentencePiece()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := sp.Encode("hugs pug", true, false)
	if err != nil {
		t.Fatal(err)
	}
	if w := []int{1, 266, 265}; fmt.Sprint(ids) != fmt.Sprint(w) {
		t.Fatalf("encode = %v, want %v", ids, w)
	}
	// A character never seen falls back to bytes.
	ids, _ = sp.Encode("é", false, false)
	if w := []int{269, 3 + 0xC3, 3 + 0xA9}; fmt.Sprint(ids) != fmt.Sprint(w) {
		t.Fatalf("encode é = %v, want %v", ids, w)
	}
}

func blTrainText(t testing.TB, n int) string {
	s := blReadData(t, "text/tinyshakespeare.txt")
	return s[:n]
}

func TestTrainDeterministicAndChunkFree(t *testing.T) {
	text := blTrainText(t, 150000)
	for _, style := range []TrainStyle{StyleByteLevel, StyleSentencePiece} {
		opts := TrainOptions{VocabSize: 800, Style: style, Special: []string{"<|sep|>"}}
		a, err := Train(strings.NewReader(text), opts)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Train(strings.NewReader(text), opts)
		if err != nil {
			t.Fatal(err)
		}
		// Chunk boundaries everywhere (37-byte buffers, reads of one byte)
		// must not change the split.
		old := trainChunk
		trainChunk = 37
		c, err := Train(iotest.OneByteReader(strings.NewReader(text)), opts)
		trainChunk = old
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range []*TrainedVocab{b, c} {
			if fmt.Sprint(x.Tokens) != fmt.Sprint(a.Tokens) || fmt.Sprint(x.Merges) != fmt.Sprint(a.Merges) ||
				fmt.Sprint(x.Scores) != fmt.Sprint(a.Scores) || x.Stats.Tokens != a.Stats.Tokens || x.Stats.DistinctWords != a.Stats.DistinctWords {
				t.Fatalf("%v: runs differ", style)
			}
		}
		if len(a.Tokens) != 800 {
			t.Fatalf("%v: %d tokens, want 800", style, len(a.Tokens))
		}
	}
}

// TestTrainEncodeUsesMerges: encoding the training text with the learned
// vocabulary gives exactly the segmentation training ended with.
func TestTrainEncodeUsesMerges(t *testing.T) {
	text := blTrainText(t, 300000)
	v, err := Train(strings.NewReader(text), TrainOptions{VocabSize: 2000})
	if err != nil {
		t.Fatal(err)
	}
	b, err := v.ByteLevel()
	if err != nil {
		t.Fatal(err)
	}
	ids := b.EncodeOrdinary(text)
	if int64(len(ids)) != v.Stats.Tokens {
		t.Fatalf("encode gives %d tokens, training ended with %d", len(ids), v.Stats.Tokens)
	}
	if ratio := float64(len(text)) / float64(len(ids)); ratio < 2.5 {
		t.Fatalf("only %.2f bytes per token", ratio)
	}
	if d, err := b.Decode(ids); err != nil || d != text {
		t.Fatal("decode differs")
	}
	// The first merge is Shakespeare's commonest pair, and it is used.
	first := v.Tokens[257]
	n := 0
	for _, id := range ids {
		if id == 257 {
			n++
		}
	}
	if n == 0 {
		t.Fatalf("first merged token %q never used", first)
	}

	s, err := Train(strings.NewReader(text), TrainOptions{VocabSize: 2000, Style: StyleSentencePiece})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := s.SentencePiece()
	if err != nil {
		t.Fatal(err)
	}
	var total int
	for _, line := range strings.Split(text, "\n") {
		if line == "" {
			continue
		}
		ids, err := sp.Encode(line, false, false)
		if err != nil {
			t.Fatal(err)
		}
		if d, err := sp.Decode(ids); err != nil || d != line {
			t.Fatalf("decode %q = %q, %v", line, d, err)
		}
		total += len(ids)
	}
	if ratio := float64(len(text)) / float64(total); ratio < 2.5 {
		t.Fatalf("sentencepiece: only %.2f bytes per token", ratio)
	}
	// Scoring every concatenation (SentencePiece) may find a few other
	// splits than replaying the merges, but not many.
	if d := float64(total)/float64(s.Stats.Tokens) - 1; d > 0.02 || d < -0.02 {
		t.Fatalf("sentencepiece encode gives %d tokens, training ended with %d", total, s.Stats.Tokens)
	}
}

func TestTrainSpecialsAndGGUF(t *testing.T) {
	text := strings.Repeat("one ### two <|sep|>three\n", 50)
	for _, style := range []TrainStyle{StyleByteLevel, StyleSentencePiece} {
		v, err := Train(strings.NewReader(text), TrainOptions{VocabSize: 400, Style: style, Special: []string{"<|sep|>", "###"}})
		if err != nil {
			t.Fatal(err)
		}
		for i, tok := range v.Tokens {
			if TokenType(v.Types[i]) == TokenNormal && strings.Contains(tok, "sep|") {
				t.Fatalf("%v: special text was learned from: %q", style, tok)
			}
		}
		path := filepath.Join(t.TempDir(), "vocab.gguf")
		if err := v.SaveGGUF(path); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := FromGGUF(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		direct, err := v.Tokenizer()
		if err != nil {
			t.Fatal(err)
		}
		in := "one ### two<|sep|>three four"
		a, err1 := tok.Encode(in, false, false)
		b, err2 := direct.Encode(in, false, false)
		if err1 != nil || err2 != nil || fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("%v: from GGUF %v %v, direct %v %v", style, a, err1, b, err2)
		}
		sep := -1
		for i, tk := range v.Tokens {
			if tk == "<|sep|>" {
				sep = i
			}
		}
		if !strings.Contains(fmt.Sprint(a), fmt.Sprint(sep)) {
			t.Fatalf("%v: <|sep|> (%d) not one token in %v", style, sep, a)
		}
		// No dummy space after a user-defined special: decode is exact.
		if d, err := tok.Decode(a); err != nil || d != in {
			t.Fatalf("%v: decode %q %v", style, d, err)
		}
		plain := "three one two four"
		ids, _ := tok.Encode(plain, false, false)
		if d, err := tok.Decode(ids); err != nil || d != plain {
			t.Fatalf("%v: decode %q %v", style, d, err)
		}
	}
}

func TestTrainErrorsAndProgress(t *testing.T) {
	cases := []struct {
		opts TrainOptions
		want string
	}{
		{TrainOptions{VocabSize: 200}, "vocab size 200 is below the 1 special and 256 byte tokens"},
		{TrainOptions{VocabSize: 259, Style: StyleSentencePiece}, "leaves no room"},
		{TrainOptions{VocabSize: 1000, Special: []string{"a", "a"}}, `special token "a" given twice`},
		{TrainOptions{VocabSize: 1000, Special: []string{""}}, "empty special token"},
		{TrainOptions{VocabSize: 1000, Style: StyleSentencePiece, Special: []string{"<s>"}}, `"<s>" is already`},
		{TrainOptions{VocabSize: 1000, Style: 7}, "unknown style 7"},
	}
	for _, c := range cases {
		_, err := Train(strings.NewReader("abc"), c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.opts, err, c.want)
		}
	}
	_, err := Train(iotest.ErrReader(fmt.Errorf("disk on fire")), TrainOptions{VocabSize: 1000})
	if err == nil || !strings.Contains(err.Error(), "read corpus: disk on fire") {
		t.Errorf("reader error: %v", err)
	}
	var progress bytes.Buffer
	if _, err := Train(strings.NewReader(blHugCorpus()), TrainOptions{VocabSize: 1000, Progress: &progress}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "bpe train: 264 tokens, 7 merges") {
		t.Errorf("progress:\n%s", progress.String())
	}
	if s, err := ParseTrainStyle("spm"); err != nil || s != StyleSentencePiece || s.String() != "sentencepiece" {
		t.Errorf("ParseTrainStyle: %v %v", s, err)
	}
}

// FuzzTrain: any corpus trains without panicking, and the byte-level result
// encodes its own corpus to exactly the segmentation training ended with.
func FuzzTrain(f *testing.F) {
	f.Add("hug hug pug pun bun hugs\n\n  aaaa", uint16(300))
	f.Add("\xff\xfe abab abab ababab", uint16(270))
	f.Fuzz(func(t *testing.T, text string, size uint16) {
		v, err := Train(strings.NewReader(text), TrainOptions{VocabSize: int(size%600) + 257})
		if err != nil {
			t.Fatal(err)
		}
		b, err := v.ByteLevel()
		if err != nil {
			t.Fatal(err)
		}
		ids := b.EncodeOrdinary(text)
		if int64(len(ids)) != v.Stats.Tokens {
			t.Fatalf("encode gives %d tokens, training ended with %d", len(ids), v.Stats.Tokens)
		}
		if d, _ := b.Decode(ids); d != text {
			t.Fatal("round trip")
		}
		s, err := Train(strings.NewReader(text), TrainOptions{VocabSize: int(size%600) + 260, Style: StyleSentencePiece})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SentencePiece(); err != nil {
			t.Fatal(err)
		}
	})
}

func benchTrain(b *testing.B, style TrainStyle, vocab int) {
	text := blReadData(b, "text/tinyshakespeare.txt")
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		v, err := Train(strings.NewReader(text), TrainOptions{VocabSize: vocab, Style: style})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(v.Stats.Merges), "merges")
	}
}

func BenchmarkTrainByteLevel4096(b *testing.B)     { benchTrain(b, StyleByteLevel, 4096) }
func BenchmarkTrainSentencePiece4096(b *testing.B) { benchTrain(b, StyleSentencePiece, 4096) }
