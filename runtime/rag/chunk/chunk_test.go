package chunk

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/modelc/modelc/runtime/rag/internal/ragtest"
	"github.com/modelc/modelc/tokenizer"
)

// quarters counts ceil(bytes/4) per word plus one per space between words:
// not additive over words, so Split has to shrink after estimating.
type quarters struct{}

func (quarters) Count(s string) (int, error) {
	n := 0
	for _, w := range strings.Fields(s) {
		n += (len(w) + 3) / 4
	}
	return n + max(len(strings.Fields(s))-1, 0), nil
}

// check asserts the invariants of a split: chunks are spans of the text in
// order, fit the size (unless one indivisible rune), start after their
// predecessor, and together cover every non-space byte.
func check(t *testing.T, text string, o Options, cs []Chunk) {
	t.Helper()
	cover := make([]bool, len(text))
	prevStart, prevEnd := -1, -1
	for i, c := range cs {
		if c.Start < 0 || c.End > len(text) || c.Start >= c.End || text[c.Start:c.End] != c.Text {
			t.Fatalf("chunk %d [%d,%d) is not a span of the text", i, c.Start, c.End)
		}
		if c.Start <= prevStart || c.End <= prevEnd {
			t.Fatalf("chunk %d [%d,%d) does not move past chunk %d [%d,%d)", i, c.Start, c.End, i-1, prevStart, prevEnd)
		}
		n, _ := o.Counter.Count(c.Text)
		if n != c.Tokens {
			t.Fatalf("chunk %d says %d tokens, counter says %d", i, c.Tokens, n)
		}
		if n > o.Size && len([]rune(c.Text)) > 1 {
			t.Fatalf("chunk %d has %d tokens > size %d: %q", i, n, o.Size, c.Text)
		}
		for j := c.Start; j < c.End; j++ {
			cover[j] = true
		}
		prevStart, prevEnd = c.Start, c.End
	}
	for i, r := range text {
		if !unicode.IsSpace(r) && !cover[i] {
			t.Fatalf("byte %d (%q) is in no chunk", i, r)
		}
	}
}

func TestSplitWords(t *testing.T) {
	var words []string
	for i := 0; i < 100; i++ {
		words = append(words, "w"+string(rune('a'+i%26)))
	}
	text := strings.Join(words, " ")
	o := Options{Size: 10, Overlap: 3, Counter: Words{}}
	cs, err := Split(text, o)
	if err != nil {
		t.Fatal(err)
	}
	check(t, text, o, cs)
	// 100 words, 10 per chunk, each new chunk advancing 7: starts at 0, 7, …, 84, 91.
	if len(cs) != 14 {
		t.Fatalf("%d chunks, want 14", len(cs))
	}
	for i, c := range cs[:13] {
		if c.Tokens != 10 {
			t.Errorf("chunk %d has %d words, want 10", i, c.Tokens)
		}
		if next := cs[i+1]; next.Start != c.Start+7*3 {
			t.Errorf("chunk %d starts at %d, want %d (3 words of overlap)", i+1, next.Start, c.Start+21)
		}
	}
	if cs[13].Tokens != 9 {
		t.Errorf("last chunk has %d words, want 9", cs[13].Tokens)
	}
}

func TestSplitEdges(t *testing.T) {
	o := Options{Size: 4, Overlap: 1, Counter: Words{}}
	if cs, err := Split(" \n\t ", o); err != nil || len(cs) != 0 {
		t.Errorf("blank text: %v, %v; want no chunks", cs, err)
	}
	for _, bad := range []Options{{Size: 0}, {Size: 4, Overlap: 4}, {Size: 4, Overlap: -1}} {
		if _, err := Split("a b", bad); err == nil {
			t.Errorf("options %+v: no error", bad)
		}
	}
	// A word longer than a chunk is cut into pieces that fit.
	long := strings.Repeat("x", 70)
	oq := Options{Size: 4, Overlap: 1, Counter: quarters{}}
	cs, err := Split("a "+long+" b", oq)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "a "+long+" b", oq, cs)
	if len(cs) < 5 {
		t.Errorf("a 70-byte word with 16 bytes per chunk gave %d chunks", len(cs))
	}
}

func TestSplitRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	seps := []string{" ", "  ", "\n", "\n\n", "\t", " — "}
	for trial := 0; trial < 300; trial++ {
		var b strings.Builder
		for i, n := 0, r.IntN(200); i < n; i++ {
			b.WriteString(strings.Repeat("é", r.IntN(3)) + strings.Repeat("z", r.IntN(30)))
			b.WriteString(seps[r.IntN(len(seps))])
		}
		size := 1 + r.IntN(20)
		o := Options{Size: size, Overlap: r.IntN(size), Counter: quarters{}}
		cs, err := Split(b.String(), o)
		if err != nil {
			t.Fatal(err)
		}
		check(t, b.String(), o, cs)
	}
}

func TestSplitTokenizer(t *testing.T) {
	data := ragtest.DataDir(t)
	tok, err := tokenizer.Load(filepath.Join(data, "models", "tok512.bin"), 512)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(data, "text", "tinyshakespeare.txt"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw[:20000])
	o := Options{Size: 64, Overlap: 8, Counter: Tokens{tok}}
	cs, err := Split(text, o)
	if err != nil {
		t.Fatal(err)
	}
	check(t, text, o, cs)
	full := 0
	for _, c := range cs {
		if c.Tokens >= 56 {
			full++
		}
	}
	if full < len(cs)*3/4 {
		t.Errorf("only %d of %d chunks are at least 56 of 64 tokens: the packing is loose", full, len(cs))
	}
}

func TestReadText(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if s, err := ReadText(write("ok.md", "# héllo\n")); err != nil || s != "# héllo\n" {
		t.Errorf("text file: %q, %v", s, err)
	}
	if s, err := ReadText(write("bom.txt", "\xef\xbb\xbfabc")); err != nil || s != "   abc" {
		t.Errorf("BOM file: %q, %v (want the BOM blanked, offsets kept)", s, err)
	}
	for name, body := range map[string]string{"nul.bin": "ab\x00cd", "latin1.txt": "caf\xe9 au lait"} {
		p := write(name, body)
		_, err := ReadText(p)
		if !errors.Is(err, ErrBinary) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "offset") {
			t.Errorf("%s: error %v, want ErrBinary naming the file and offset", name, err)
		}
	}
	if _, err := ReadText(filepath.Join(dir, "missing.txt")); err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadText(dir); err == nil {
		t.Error("a directory read as text")
	}
}

func FuzzSplit(f *testing.F) {
	f.Add("the quick brown fox", 3, 1)
	f.Add("aaaaaaaaaaaaaaaaaaaaaaaaaaaaa b\n\nc", 2, 0)
	f.Add("\xff\xfe bad utf8 \x00", 5, 2)
	f.Fuzz(func(t *testing.T, text string, size, overlap int) {
		o := Options{Size: (size%50+50)%50 + 1, Counter: quarters{}}
		o.Overlap = (overlap%o.Size + o.Size) % o.Size
		cs, err := Split(text, o)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range cs {
			if text[c.Start:c.End] != c.Text || (i > 0 && c.Start <= cs[i-1].Start) {
				t.Fatalf("chunk %d [%d,%d) bad", i, c.Start, c.End)
			}
		}
	})
}
