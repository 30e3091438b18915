package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	blGPT2Once sync.Once
	blGPT2     *ByteLevel
	blGPT2Err  error
)

// blLoadGPT2 loads GPT-2's vocabulary from the shared data once per test run.
func blLoadGPT2(t testing.TB) *ByteLevel {
	t.Helper()
	dir := filepath.Join(blDataDir(t), "tokenizer", "gpt2")
	blGPT2Once.Do(func() {
		blGPT2, blGPT2Err = LoadGPT2(filepath.Join(dir, "encoder.json"), filepath.Join(dir, "vocab.bpe"))
	})
	if blGPT2Err != nil {
		t.Fatal(blGPT2Err)
	}
	return blGPT2
}

func TestLoadGPT2(t *testing.T) {
	g := blLoadGPT2(t)
	if g.VocabSize() != 50257 || g.BOS() != 50256 || g.EOS() != 50256 {
		t.Fatalf("vocab %d bos %d eos %d, want 50257 50256 50256", g.VocabSize(), g.BOS(), g.EOS())
	}
	if n := len(g.Vocab().Merges); n != 50000 {
		t.Fatalf("%d merges, want 50000", n)
	}
	// Ids from GPT-2's tokenizer, which anyone can check: "Hello world" is
	// 15496 995, " Hello" 18435, and special text stays one token.
	ids, err := g.Encode("Hello world<|endoftext|> Hello", true, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{50256, 15496, 995, 50256, 18435}; fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("Encode = %v, want %v", ids, want)
	}
	if got := g.EncodeOrdinary("<|endoftext|>"); fmt.Sprint(got) != "[27 91 437 1659 5239 91 29]" {
		t.Fatalf("EncodeOrdinary(<|endoftext|>) = %v", got)
	}
	if p, err := g.Piece(-1, 18435); err != nil || string(p) != " Hello" {
		t.Fatalf("Piece(18435) = %q, %v", p, err)
	}
	if _, err := g.Piece(0, 50257); err == nil {
		t.Fatal("Piece(50257): no error")
	}
	if _, err := g.Decode([]int{15496, -1}); err == nil || !strings.Contains(err.Error(), "token 1: id -1") {
		t.Fatalf("Decode with id -1: %v", err)
	}
	if s, err := g.Decode([]int{50256, 15496, 995, 50256}); err != nil || s != "Hello world" {
		t.Fatalf("Decode = %q, %v", s, err)
	}
}

// blGPT3EncoderIDs runs the npm package gpt-3-encoder (GPT-2's encoder in
// JavaScript) over items and returns its ids for each.
func blGPT3EncoderIDs(t *testing.T, items []string) [][]int {
	t.Helper()
	bench := filepath.Join(blRepoRoot(t), "bench", "tokenizer")
	if _, err := os.Stat(filepath.Join(bench, "node_modules", "gpt-3-encoder")); err != nil {
		t.Fatalf("the reference encoder is not installed: run `cd bench/tokenizer && npm ci` (needs Node.js and npm): %v", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found (install Node.js, e.g. apt-get install nodejs npm): %v", err)
	}
	in := filepath.Join(t.TempDir(), "items.json")
	data, err := json.Marshal(items)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(node, filepath.Join(bench, "gpt3ref.js"), in)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gpt3ref.js: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(items) {
		t.Fatalf("gpt3ref.js gave %d lines for %d items", len(lines), len(items))
	}
	ids := make([][]int, len(lines))
	for i, l := range lines {
		for _, f := range strings.Fields(l) {
			v, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("gpt3ref.js line %d: %v", i+1, err)
			}
			ids[i] = append(ids[i], v)
		}
	}
	return ids
}

// TestGPT2MatchesGPT3Encoder compares ids with gpt-3-encoder on every line of
// tinyshakespeare and the Cranfield collection (2.8 MB, CRLF lines) and on
// random text dense in Unicode, whitespace runs and contractions.
func TestGPT2MatchesGPT3Encoder(t *testing.T) {
	g := blLoadGPT2(t)
	var items []string
	for _, f := range []string{"text/tinyshakespeare.txt", "retrieval/cran.all.1400"} {
		s := blReadData(t, f)
		items = append(items, strings.SplitAfter(s, "\n")...)
	}
	corpusLines := len(items)
	r := rand.New(rand.NewPCG(7, 11))
	for i := 0; i < 5000; i++ {
		items = append(items, blRandText(r, 1+r.IntN(60), false))
	}
	// Words longer than 64 bytes take the heap merge path.
	letters := []string{"a", "b", "e", "t", "h", "ä", "z", "Ж"}
	for i := 0; i < 200; i++ {
		var sb strings.Builder
		for sb.Len() < 65+r.IntN(400) {
			sb.WriteString(letters[r.IntN(len(letters))])
		}
		items = append(items, sb.String(), " "+sb.String())
	}
	items = append(items, strings.Repeat("a", 300), strings.Repeat("!", 333), strings.Repeat("9", 200),
		strings.Repeat(" ", 500)+"x", strings.Repeat("\n", 100), strings.Repeat("ab", 150))
	start := time.Now()
	want := blGPT3EncoderIDs(t, items)
	t.Logf("gpt-3-encoder: %d items in %v", len(items), time.Since(start))
	bad := 0
	for i, s := range items {
		got := g.EncodeOrdinary(s)
		if fmt.Sprint(got) != fmt.Sprint(want[i]) {
			what := "random item"
			if i < corpusLines {
				what = "corpus line"
			}
			t.Errorf("%s %d %q:\n got  %v\n want %v", what, i, s, got, want[i])
			if bad++; bad > 5 {
				t.FailNow()
			}
		}
	}
}
