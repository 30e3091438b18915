package tokenizer

import (
	"os"
	"strings"
	"sync"
	"testing"
)

func FuzzLlama2CReader(f *testing.F) {
	good, err := os.ReadFile(spmFile(f, "models", "tok512.bin"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, 512)
	f.Add(good, 0)
	f.Add(good[:100], 7)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 'a'}, 1)
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		n %= 4096
		tok, err := ParseLlama2C(data, n)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if n > 0 && tok.VocabSize() != n {
			t.Fatalf("asked for %d tokens, got %d", n, tok.VocabSize())
		}
		// Whatever the vocabulary, encoding and decoding must not panic.
		for _, s := range []string{"", "a", "hello world", "é\xff"} {
			ids, err := tok.EncodeWith(s, EncodeOptions{ParseSpecial: true})
			if err != nil {
				continue
			}
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("id %d out of range", id)
				}
			}
			if _, err := tok.Decode(ids); err != nil {
				t.Fatal(err)
			}
		}
	})
}

var fuzzToks struct {
	once sync.Once
	toks []*SentencePiece
	idx  []map[string]int
}

func FuzzSentencePieceRoundTrip(f *testing.F) {
	for _, s := range []string{"", " ", "Once upon a time", "  two  spaces ", "naïve 🙂 日本", "\x80\xff", "<s>", "\n\n\t"} {
		f.Add(s)
	}
	fuzzToks.once.Do(func() {
		fuzzToks.toks = []*SentencePiece{loadTok512(f), loadLlama32000(f)}
		for _, tok := range fuzzToks.toks {
			m := map[string]int{}
			for i, p := range tok.pieces {
				m[p] = i
			}
			fuzzToks.idx = append(fuzzToks.idx, m)
		}
	})
	f.Fuzz(func(t *testing.T, s string) {
		for k, tok := range fuzzToks.toks {
			ids, err := tok.Encode(s, true, false)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tok.Decode(ids)
			if err != nil {
				t.Fatal(err)
			}
			// Any byte string round-trips, valid UTF-8 or not.
			if got != s {
				t.Fatalf("vocab %d: decode(encode(%q)) = %q", tok.VocabSize(), s, got)
			}
			if len(s) <= 256 {
				if want := runcEncode(tok, fuzzToks.idx[k], s, true, false); !sameIDs(ids, want) {
					t.Fatalf("vocab %d, %q: %v, run.c gives %v", tok.VocabSize(), s, ids, want)
				}
			}
		}
	})
}
