package tokenizer

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/modelc/modelc/gguf"
)

// blFixture reads a llama.cpp tokenizer fixture: the .inp strings separated
// by "\n__ggml_vocab_test__\n" and one line of space-prefixed ids per string.
func blFixture(t *testing.T, name string) (inputs []string, ids [][]int) {
	t.Helper()
	inp := blReadData(t, filepath.Join("tokenizer", name+".inp"))
	out := blReadData(t, filepath.Join("tokenizer", name+".out"))
	const sep = "\n__ggml_vocab_test__\n"
	if !strings.HasSuffix(inp, sep) {
		t.Fatalf("%s.inp does not end with the separator", name)
	}
	inputs = strings.Split(strings.TrimSuffix(inp, sep), sep)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(inputs) {
		t.Fatalf("%s: %d inputs but %d output lines", name, len(inputs), len(lines))
	}
	for i, l := range lines {
		var row []int
		for _, f := range strings.Fields(l) {
			v, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s.out line %d: %v", name, i+1, err)
			}
			row = append(row, v)
		}
		ids = append(ids, row)
	}
	return inputs, ids
}

func blOpenGGUFVocab(t testing.TB) *ByteLevel {
	t.Helper()
	f, err := gguf.Open(filepath.Join(blDataDir(t), "tokenizer", "ggml-vocab-gpt-2.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := ByteLevelFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestByteLevelLlamaCppFixture(t *testing.T) {
	b := blOpenGGUFVocab(t)
	if b.VocabSize() != 50257 || b.BOS() != 50256 || b.EOS() != 50256 {
		t.Fatalf("vocab %d bos %d eos %d", b.VocabSize(), b.BOS(), b.EOS())
	}
	inputs, want := blFixture(t, "ggml-vocab-gpt-2.gguf")
	if len(inputs) != 46 {
		t.Fatalf("%d fixture strings, want 46", len(inputs))
	}
	g := blLoadGPT2(t)
	for i, s := range inputs {
		got, err := b.Encode(s, false, false)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want[i]) {
			t.Errorf("fixture %d %q:\n got  %v\n want %v", i, s, got, want[i])
		}
		// GPT-2's own files hold the same vocabulary.
		if g2 := g.EncodeOrdinary(s); fmt.Sprint(g2) != fmt.Sprint(want[i]) {
			t.Errorf("fixture %d %q with encoder.json: %v", i, s, g2)
		}
		if d, err := b.Decode(got); err != nil || d != s {
			t.Errorf("fixture %d: decode = %q, %v; want %q", i, d, err, s)
		}
	}
}

// blSlowBPE is the textbook algorithm, written independently of the fast
// paths: find the lowest-ranked adjacent pair (leftmost on ties), merge it,
// repeat.
func blSlowBPE(b *ByteLevel, word string) []int {
	var sym []int32
	for i := 0; i < len(word); i++ {
		sym = append(sym, b.byteTok[word[i]])
	}
	for {
		best, bi := noRank, -1
		for i := 0; i+1 < len(sym); i++ {
			if r, _ := b.pairRank(sym[i], sym[i+1]); r < best {
				best, bi = r, i
			}
		}
		if bi < 0 {
			break
		}
		_, m := b.pairRank(sym[bi], sym[bi+1])
		sym = append(sym[:bi], append([]int32{m}, sym[bi+2:]...)...)
	}
	out := make([]int, len(sym))
	for i, s := range sym {
		out[i] = int(s)
	}
	return out
}

func TestByteLevelMergePaths(t *testing.T) {
	g := blLoadGPT2(t)
	r := rand.New(rand.NewPCG(3, 4))
	alpha := []string{"a", "b", "e", "r", "s", "t", "h", "in", "ing", "ä", "\xff", " "}
	for i := 0; i < 400; i++ {
		var sb strings.Builder
		n := 2 + r.IntN(200)
		for sb.Len() < n {
			sb.WriteString(alpha[r.IntN(len(alpha))])
		}
		w := sb.String()
		st := &blState{cache: map[string]uint64{}}
		got := g.appendWord(nil, w, st)
		if want := blSlowBPE(g, w); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("word %q (%d bytes):\n got  %v\n want %v", w, len(w), got, want)
		}
		// The cached answer is the same.
		if again := g.appendWord(nil, w, st); fmt.Sprint(again) != fmt.Sprint(got) {
			t.Fatalf("cached %q: %v vs %v", w, again, got)
		}
	}
}

func TestByteLevelRoundTripBytes(t *testing.T) {
	g := blLoadGPT2(t)
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 2000; i++ {
		buf := make([]byte, r.IntN(50))
		for j := range buf {
			buf[j] = byte(r.UintN(256))
		}
		s := string(buf)
		if d, err := g.Decode(g.EncodeOrdinary(s)); err != nil || d != s {
			t.Fatalf("round trip of %q: %q, %v", s, d, err)
		}
		s = blRandText(r, 80, true)
		if d, err := g.Decode(g.EncodeOrdinary(s)); err != nil || d != s {
			t.Fatalf("round trip of %q: %q, %v", s, d, err)
		}
	}
}

func TestByteLevelGGUFRoundTrip(t *testing.T) {
	g := blLoadGPT2(t)
	path := filepath.Join(t.TempDir(), "gpt2-vocab.gguf")
	if err := g.SaveGGUF(path); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := ByteLevelFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	s := blReadData(t, "text/tinyshakespeare.txt")[:20000] + "<|endoftext|>"
	want, _ := g.Encode(s, true, true)
	got, _ := b.Encode(s, true, true)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatal("ids differ after a GGUF round trip")
	}
	if b.BOS() != 50256 || b.EOS() != 50256 || b.VocabSize() != 50257 {
		t.Fatalf("bos %d eos %d vocab %d", b.BOS(), b.EOS(), b.VocabSize())
	}
}

func TestByteLevelSpecialTokens(t *testing.T) {
	v := blTinyVocab()
	v.Tokens = append(v.Tokens, "<|a|>", "<|ab|>", "<u>")
	v.Types = make([]int32, len(v.Tokens))
	for i := range v.Types {
		v.Types[i] = int32(TokenNormal)
	}
	n := len(v.Tokens)
	v.Types[n-3], v.Types[n-2], v.Types[n-1] = int32(TokenControl), int32(TokenControl), int32(TokenUserDefined)
	v.BOS, v.EOS = n-3, n-2
	b, err := NewByteLevel(v)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := b.Encode("x<|ab|>y<|a|><u><|a", false, false)
	if err != nil {
		t.Fatal(err)
	}
	x, y := int(b.byteTok['x']), int(b.byteTok['y'])
	lt, bar, a := int(b.byteTok['<']), int(b.byteTok['|']), int(b.byteTok['a'])
	want := []int{x, n - 2, y, n - 3, n - 1, lt, bar, a}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("Encode = %v, want %v", ids, want)
	}
	// Control tokens are left out of Decode and Piece; user-defined ones
	// are their text.
	if d, _ := b.Decode(ids); d != "xy<u><|a" {
		t.Fatalf("Decode = %q", d)
	}
	if d, _ := b.DecodeSpecial(ids); d != "x<|ab|>y<|a|><u><|a" {
		t.Fatalf("DecodeSpecial = %q", d)
	}
	if p, err := b.Piece(0, n-2); err != nil || p == nil || len(p) != 0 {
		t.Fatalf("Piece(control) = %q, %v", p, err)
	}
	if p, _ := b.Piece(0, n-1); string(p) != "<u>" {
		t.Fatalf("Piece(user-defined) = %q", p)
	}
}

// blTinyVocab is the 256 byte tokens plus the merges "a b" and "ab c".
func blTinyVocab() ByteLevelVocab {
	var v ByteLevelVocab
	for c := 0; c < 256; c++ {
		v.Tokens = append(v.Tokens, string(byteToRune[c]))
	}
	v.Tokens = append(v.Tokens, "ab", "abc")
	v.Merges = []string{"a b", "ab c"}
	v.BOS, v.EOS = -1, -1
	return v
}

func TestByteLevelBadVocab(t *testing.T) {
	mod := func(f func(v *ByteLevelVocab)) ByteLevelVocab {
		v := blTinyVocab()
		f(&v)
		return v
	}
	cases := []struct {
		v    ByteLevelVocab
		want string
	}{
		{mod(func(v *ByteLevelVocab) { v.Tokens[256] = "a" }), `token 256 "a" duplicates token 97`},
		{mod(func(v *ByteLevelVocab) { v.Merges = append(v.Merges, "a q") }), `merge 2 "a q" makes unknown token "aq"`},
		{mod(func(v *ByteLevelVocab) { v.Merges = append(v.Merges, "zz c") }), `merge 2 "zz c" names unknown token "zz"`},
		{mod(func(v *ByteLevelVocab) { v.Merges = append(v.Merges, "a b") }), `merge 2 "a b" duplicates merge 0`},
		{mod(func(v *ByteLevelVocab) { v.Merges = append(v.Merges, "ab") }), `merge 2 "ab" is not two tokens`},
		{mod(func(v *ByteLevelVocab) { v.Tokens = v.Tokens[1:] }), `no token for byte 0x00`},
		{mod(func(v *ByteLevelVocab) { v.Tokens[256] = "a b" }), `token 256 "a b": character ' ' (U+0020)`},
		{mod(func(v *ByteLevelVocab) { v.BOS = 999 }), `BOS id 999 out of range`},
		{mod(func(v *ByteLevelVocab) { v.Types = []int32{1} }), `1 token types for 258 tokens`},
		{ByteLevelVocab{}, `no tokens`},
	}
	for _, c := range cases {
		_, err := NewByteLevel(c.v)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %v, want one line containing %q", err, c.want)
		}
	}
}

func TestGPT2BadFiles(t *testing.T) {
	dir := filepath.Join(blDataDir(t), "tokenizer", "gpt2")
	ej, err := os.ReadFile(filepath.Join(dir, "encoder.json"))
	if err != nil {
		t.Fatal(err)
	}
	vb, err := os.ReadFile(filepath.Join(dir, "vocab.bpe"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ej, vb []byte
		want   string
	}{
		{ej[:len(ej)/2], vb, "encoder.json: offset"},
		{[]byte(`{"a": 0, "a": 1}`), vb, `duplicate token "a"`},
		{[]byte(`{"a": 0, "b": 0}`), vb, `tokens "a" and "b" share id 0`},
		{[]byte(`{"a": 0, "b": 2}`), vb, `token "b" has id 2 but there are only 2 tokens`},
		{[]byte(`["a"]`), vb, "want a JSON object"},
		{[]byte(`{"a": "x"}`), vb, `token "a": want an integer id`},
		{[]byte(`{"a": 1.5}`), vb, `token "a": bad id 1.5`},
		{ej, []byte("#version: 0.2\nĠ t\nĠ  a\n"), `line 3: "Ġ  a" is not two tokens`},
		{ej, append(append([]byte{}, vb...), "Ġ qqqqqq\n"...), `merge 50000 "Ġ qqqqqq" names unknown token "qqqqqq"`},
		{ej, vb[:len(vb)/2], ""}, // a truncated merge list is valid, just shorter
	}
	for i, c := range cases {
		_, err := GPT2FromBytes(c.ej, c.vb)
		if c.want == "" {
			if err != nil && !strings.Contains(err.Error(), "not two tokens") && !strings.Contains(err.Error(), "unknown token") {
				t.Errorf("case %d: %v", i, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("case %d: error %v, want one line containing %q", i, err, c.want)
		}
	}
	if _, err := LoadGPT2(filepath.Join(dir, "nope.json"), filepath.Join(dir, "vocab.bpe")); err == nil || !strings.Contains(err.Error(), "nope.json") {
		t.Errorf("missing file: %v", err)
	}
}

func TestByteLevelBadGGUF(t *testing.T) {
	good := blLoadGPT2(t).GGUFMetadata()
	set := func(key string, val any) []gguf.KV {
		var out []gguf.KV
		for _, kv := range good {
			if kv.Key != key {
				out = append(out, kv)
			} else if val != nil {
				out = append(out, gguf.KV{Key: key, Value: val})
			}
		}
		return out
	}
	cases := []struct {
		kvs  []gguf.KV
		want string
	}{
		{set(gguf.KeyTokenizerModel, "llama"), `tokenizer.ggml.model is "llama"`},
		{set(gguf.KeyTokenizerPre, "llama-bpe"), `"llama-bpe" is not supported`},
		{set(gguf.KeyMerges, nil), `tokenizer.ggml.merges`},
		{set(gguf.KeyTokens, []int32{1, 2}), `tokenizer.ggml.tokens`},
		{set(gguf.KeyBOS, uint32(60000)), `bos_token_id 60000 out of range`},
		{set(gguf.KeyTokenType, []int32{1}), `1 token types for 50257 tokens`},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		if err := gguf.Write(&buf, c.kvs, nil); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Parse(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		_, err = ByteLevelFromGGUF(f)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %v, want one line containing %q", err, c.want)
		}
	}
}

func FuzzByteLevelRoundTrip(f *testing.F) {
	g := blLoadGPT2(f)
	f.Add("Hello, y'all! How are you 😁 ?我想在apple工作1314151天～")
	f.Add("\xff\xfe\x00 \t\n\n  x")
	f.Add("<|endoftext|> a")
	f.Fuzz(func(t *testing.T, s string) {
		ids := g.EncodeOrdinary(s)
		if d, err := g.Decode(ids); err != nil || d != s {
			t.Fatalf("EncodeOrdinary round trip of %q: %q, %v", s, d, err)
		}
		ids2, err := g.Encode(s, false, false)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(s, GPT2EndOfText) && fmt.Sprint(ids2) != fmt.Sprint(ids) {
			t.Fatalf("Encode and EncodeOrdinary differ on %q", s)
		}
		if utf8.ValidString(s) {
			// Piece by piece gives the same bytes.
			var buf []byte
			for _, id := range ids {
				p, err := g.Piece(0, id)
				if err != nil {
					t.Fatal(err)
				}
				buf = append(buf, p...)
			}
			if string(buf) != s {
				t.Fatalf("pieces of %q: %q", s, buf)
			}
		}
	})
}

func FuzzGPT2Files(f *testing.F) {
	f.Add([]byte(`{"a": 0, "b": 1, "ab": 2}`), []byte("#version: 0.2\na b\n"))
	f.Add([]byte(`{"\u0120": 0}`), []byte("x y\n"))
	f.Fuzz(func(t *testing.T, ej, vb []byte) {
		// Any input gives a tokenizer or a one-line error, never a panic.
		b, err := GPT2FromBytes(ej, vb)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		s := "ab abc a\xff"
		if d, err := b.Decode(b.EncodeOrdinary(s)); err != nil || d != s {
			t.Fatalf("round trip: %q %v", d, err)
		}
	})
}

func FuzzByteLevelGGUF(f *testing.F) {
	v := blTinyVocab()
	b, err := NewByteLevel(v)
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if err := gguf.Write(&buf, b.GGUFMetadata(), nil); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		gf, err := gguf.Parse(data)
		if err != nil {
			return
		}
		b, err := ByteLevelFromGGUF(gf)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		s := "abc ab\x00\xff"
		if d, err := b.Decode(b.EncodeOrdinary(s)); err != nil || d != s {
			t.Fatalf("round trip: %q %v", d, err)
		}
	})
}

// blBenchText is the encode benchmark's text: tinyshakespeare followed by
// the Cranfield collection (2.8 MB), the same file bench/tokenizer uses.
func blBenchText(b *testing.B) string {
	return blReadData(b, "text/tinyshakespeare.txt") + blReadData(b, "retrieval/cran.all.1400")
}

// BenchmarkByteLevelEncode is GPT-2 encode throughput, one goroutine, with
// the word cache warm after the first pass.
func BenchmarkByteLevelEncode(b *testing.B) {
	g := blLoadGPT2(b)
	text := blBenchText(b)
	ids := make([]int, 0, len(text)/2)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ids = g.AppendOrdinary(ids[:0], text)
	}
	b.ReportMetric(float64(len(ids)), "tokens")
}

// BenchmarkByteLevelEncodeCold starts every pass with an empty word cache.
func BenchmarkByteLevelEncodeCold(b *testing.B) {
	g := blLoadGPT2(b)
	text := blBenchText(b)
	ids := make([]int, 0, len(text)/2)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st := &blState{cache: make(map[string]uint64)}
		ids = g.appendText(ids[:0], text, st)
	}
}

// BenchmarkByteLevelDecode is GPT-2 decode throughput (bytes out).
func BenchmarkByteLevelDecode(b *testing.B) {
	g := blLoadGPT2(b)
	text := blBenchText(b)
	ids := g.EncodeOrdinary(text)
	out := make([]byte, 0, len(text))
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, _ = g.AppendDecoded(out[:0], ids)
	}
}
