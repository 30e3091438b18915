package train

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/tokenizer"
)

// sharedData finds /work/shared/data: the "shared/data" sibling of the
// repository root (where go.mod is), walking up from the package.
func sharedData(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(filepath.Dir(dir), "shared", "data")
			if _, err := os.Stat(d); err != nil {
				t.Fatalf("shared data folder %s is missing", d)
			}
			return d
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package")
		}
		dir = parent
	}
}

func shakespeare(t testing.TB) string {
	b, err := os.ReadFile(filepath.Join(sharedData(t), "text", "tinyshakespeare.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTokenFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ vocab, width int }{{300, 2}, {65536, 2}, {65537, 4}, {100000, 4}} {
		ids := []int{0, 1, c.vocab - 1, 7, c.vocab / 2}
		path := filepath.Join(dir, "t.tok")
		if err := WriteTokens(path, ids, c.vocab); err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(path)
		if st.Size() != int64(tokHeaderSize+len(ids)*c.width) {
			t.Fatalf("vocab %d: file of %d bytes, want %d-byte ids", c.vocab, st.Size(), c.width)
		}
		toks, err := OpenTokens(path)
		if err != nil {
			t.Fatal(err)
		}
		if toks.Len() != len(ids) || toks.Vocab() != c.vocab {
			t.Fatalf("read %d ids of vocab %d", toks.Len(), toks.Vocab())
		}
		for i, id := range ids {
			if int(toks.At(i)) != id {
				t.Fatalf("vocab %d: id %d = %d, want %d", c.vocab, i, toks.At(i), id)
			}
		}
		toks.Close()
	}
	if err := WriteTokens(filepath.Join(dir, "bad.tok"), []int{5}, 5); err == nil {
		t.Fatal("an id equal to the vocabulary size was written")
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.tok")); !os.IsNotExist(err) {
		t.Fatal("a failed write left a file behind")
	}
}

func TestTokenFileErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tok")
	if err := WriteTokens(good, []int{1, 2, 3}, 10); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(good)
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"magic":     {append([]byte("XXXX"), data[4:]...), "not a token file"},
		"truncated": {data[:len(data)-1], "offset 16"},
		"width":     {patch(data, 8, 3), "offset 8"},
		"id":        {patch(data, tokHeaderSize, 10), "id 10 at index 0"},
		"short":     {data[:10], "not a token file"},
	} {
		p := filepath.Join(dir, name+".tok")
		os.WriteFile(p, c.data, 0o644)
		_, err := OpenTokens(p)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
}

func patch(b []byte, off int, v byte) []byte {
	c := append([]byte(nil), b...)
	c[off] = v
	return c
}

func FuzzParseTokens(f *testing.F) {
	f.Add([]byte("MCTK\x01\x00\x00\x00\x02\x00\x00\x00\x0a\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		toks, err := parseTokens("fuzz", b)
		if err != nil {
			return
		}
		for i := 0; i < toks.Len(); i++ {
			if int(toks.At(i)) >= toks.Vocab() {
				t.Fatalf("accepted id %d ≥ vocab %d", toks.At(i), toks.Vocab())
			}
		}
	})
}

// TestPrepareData tokenizes all of Shakespeare (many chunks) and decodes it
// back to the same text.
func TestPrepareData(t *testing.T) {
	text := shakespeare(t)
	tok := newCharTok(text, false)
	dir := t.TempDir()
	out := filepath.Join(dir, "s.tok")
	n, err := PrepareData([]string{filepath.Join(sharedData(t), "text", "tinyshakespeare.txt")}, tok, out)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len([]rune(text))) {
		t.Fatalf("%d ids for %d characters", n, len([]rune(text)))
	}
	ids := tokenIDs(t, out)
	back, _ := tok.Decode(ids)
	if back != text {
		t.Fatal("decoded token file differs from the corpus")
	}

	empty := filepath.Join(dir, "empty.txt")
	os.WriteFile(empty, []byte("  \n"), 0o644)
	if _, err := PrepareData([]string{empty}, tok, filepath.Join(dir, "e.tok")); !errors.Is(err, ErrEmptyCorpus) {
		t.Fatalf("empty corpus: %v", err)
	}
	if _, err := PrepareData([]string{filepath.Join(dir, "missing.txt")}, tok, filepath.Join(dir, "m.tok")); err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Fatalf("missing corpus: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "m.tok")); !os.IsNotExist(err) {
		t.Fatal("a failed prepare left a token file")
	}
}

func TestMasking(t *testing.T) {
	obj := Objective{Masked: true, MaskID: 99, Vocab: 100}
	T := 200
	win := make([]int32, T)
	for i := range win {
		win[i] = int32(i % 50)
	}
	tokens, targets := make([]int32, T), make([]int32, T)
	rng := rand.New(rand.NewPCG(1, 2))
	var chosen, masked, kept, random int
	const rounds = 500
	for r := 0; r < rounds; r++ {
		obj.Fill(tokens, targets, win, T, rng)
		for i := range tokens {
			if targets[i] == model.IgnoreTarget {
				if tokens[i] != win[i] {
					t.Fatal("an unchosen position changed")
				}
				continue
			}
			chosen++
			if targets[i] != win[i] {
				t.Fatal("a target is not the original id")
			}
			switch {
			case tokens[i] == 99:
				masked++
			case tokens[i] == win[i]:
				kept++
			default:
				random++
			}
		}
	}
	if chosen != rounds*30 {
		t.Fatalf("%d positions chosen in %d windows of %d, want 15 %%", chosen, rounds, T)
	}
	f := func(n int) float64 { return float64(n) / float64(chosen) }
	// A random id equal to the original counts as kept: 10 % + 10 %/100.
	if math.Abs(f(masked)-0.8) > 0.02 || math.Abs(f(kept)-0.101) > 0.015 || math.Abs(f(random)-0.099) > 0.015 {
		t.Fatalf("masked %.3f kept %.3f random %.3f, want 0.8, 0.1, 0.1", f(masked), f(kept), f(random))
	}

	causal := Objective{Vocab: 100}
	obj.Fill(tokens, targets, win, T, rng)
	causal.Fill(tokens, targets, append(win, 7), T, rng)
	if tokens[0] != 0 || targets[0] != 1 || targets[T-1] != 7 {
		t.Fatalf("causal targets are not the next ids")
	}
}

func TestSplitAndWindows(t *testing.T) {
	dir := t.TempDir()
	ids := make([]int, 100)
	path := filepath.Join(dir, "x.tok")
	WriteTokens(path, ids, 2)
	toks, _ := OpenTokens(path)
	defer toks.Close()
	tr, val, err := SplitTokens(toks, 10)
	if err != nil || tr.Len() != 90 || val.Lo != 90 {
		t.Fatalf("split %+v %+v %v", tr, val, err)
	}
	if _, _, err := SplitTokens(toks, 11); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Fatalf("windows longer than the validation split: %v", err)
	}
	if w := Windows(val, 5, 4, 0); len(w) != 2 || w[0] != 90 || w[1] != 94 {
		t.Fatalf("windows %v", w)
	}
}

// prepared runs PrepareData on one file and returns the ids written.
func prepared(t *testing.T, path string, tok tokenizer.Tokenizer) []int {
	t.Helper()
	out := filepath.Join(t.TempDir(), "p.tok")
	if _, err := PrepareData([]string{path}, tok, out); err != nil {
		t.Fatal(err)
	}
	return tokenIDs(t, out)
}

// tokenIDs reads a token file's ids.
func tokenIDs(t *testing.T, path string) []int {
	t.Helper()
	toks, err := OpenTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	defer toks.Close()
	ids := make([]int, toks.Len())
	for i := range ids {
		ids[i] = int(toks.At(i))
	}
	return ids
}

// TestPrepareDataChunksMatchWholeFile: with small chunks (hundreds of cuts
// in Shakespeare) the token file holds exactly the ids of encoding each
// file at once, BOS first, for a SentencePiece (Llama) and a byte-level
// (GPT-2) vocabulary; also with the blank lines gone (cuts before a
// newline) and with CRLF line ends (cuts before "\r").
func TestPrepareDataChunksMatchWholeFile(t *testing.T) {
	defer func(n int) { chunkSize = n }(chunkSize)
	chunkSize = 4096
	text := shakespeare(t)
	dir := t.TempDir()
	variants := []struct{ name, text string }{
		{"blank", text},
		{"lines", strings.ReplaceAll(text, "\n\n", "\n")},
		{"crlf", strings.ReplaceAll(text[:300000], "\n", "\r\n")},
	}
	for _, c := range []struct {
		vocab string
		whole int // ids of the whole of Shakespeare, BOS included
	}{
		{"ggml-vocab-llama-spm.gguf", 368634},
		{"ggml-vocab-gpt-2.gguf", 338026},
	} {
		tok, err := tokenizer.Load(filepath.Join(sharedData(t), "tokenizer", c.vocab), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range variants {
			path := filepath.Join(dir, v.name+".txt")
			if err := os.WriteFile(path, []byte(v.text), 0o644); err != nil {
				t.Fatal(err)
			}
			got := prepared(t, path, tok)
			want, err := tok.Encode(v.text, true, false)
			if err != nil {
				t.Fatal(err)
			}
			if v.name == "blank" && len(want) != c.whole {
				t.Errorf("%s: the whole file is %d ids, want %d", c.vocab, len(want), c.whole)
			}
			i := 0
			for i < len(got) && i < len(want) && got[i] == want[i] {
				i++
			}
			if i < len(got) || i < len(want) {
				t.Errorf("%s, %s: %d ids prepared, %d for the whole file; first difference at id %d: %v vs %v",
					c.vocab, v.name, len(got), len(want), i, got[i:min(i+3, len(got))], want[i:min(i+3, len(want))])
				continue
			}
			if back, _ := tok.Decode(got); back != v.text {
				t.Errorf("%s, %s: the token file does not decode to the text", c.vocab, v.name)
			}
		}
	}
}

// TestPrepareDataInvalidUTF8 names the offset of the first bad byte, in the
// first chunk and in a later one.
func TestPrepareDataInvalidUTF8(t *testing.T) {
	defer func(n int) { chunkSize = n }(chunkSize)
	text := shakespeare(t)
	tok := newCharTok(text, false)
	dir := t.TempDir()
	for _, size := range []int{1 << 16, 4096} {
		chunkSize = size
		for _, at := range []int{0, 200004, 350001} {
			b := []byte(text[:400000])
			b[at] = 0xff
			path := filepath.Join(dir, "bad.txt")
			os.WriteFile(path, b, 0o644)
			_, err := PrepareData([]string{path}, tok, filepath.Join(dir, "bad.tok"))
			if want := fmt.Sprintf("%s: invalid UTF-8 at byte offset %d", path, at); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("chunk size %d, bad byte at %d: error %v, want %q", size, at, err, want)
			}
		}
	}
}
