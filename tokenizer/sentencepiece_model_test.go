package tokenizer

import (
	"os"
	"strings"
	"testing"
)

// TestSentencePieceModelMatchesTokenizerBin: tok512.model and tok512.bin
// hold the same vocabulary and encode alike.
func TestSentencePieceModelMatchesTokenizerBin(t *testing.T) {
	bin := loadTok512(t)
	tk, err := Load(spmFile(t, "models", "tok512.model"), 512)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := tk.(*SentencePiece)
	if !ok {
		t.Fatalf("Load gave %T", tk)
	}
	if m.BOS() != 1 || m.EOS() != 2 || m.Unknown() != 0 || m.Pad() != -1 || !m.SpacePrefix() {
		t.Fatalf("bos %d eos %d unk %d pad %d prefix %v", m.BOS(), m.EOS(), m.Unknown(), m.Pad(), m.SpacePrefix())
	}
	for id := range 512 {
		p1, s1, t1, _ := bin.Token(id)
		p2, s2, t2, _ := m.Token(id)
		if s1 != s2 || t1 != t2 || specialText(p1) != p2 {
			t.Fatalf("token %d: %q %v %v vs %q %v %v", id, p1, s1, t1, p2, s2, t2)
		}
	}
	lines := readLines(t, spmFile(t, "text", "tinyshakespeare.txt"))
	for i := 0; i < len(lines); i += 7 {
		a, _ := bin.Encode(lines[i], true, true)
		b, _ := m.Encode(lines[i], true, true)
		if !sameIDs(a, b) {
			t.Fatalf("line %d: %v vs %v", i+1, a, b)
		}
	}
}

func TestParseSentencePieceModelBad(t *testing.T) {
	good, err := os.ReadFile(spmFile(t, "models", "tok512.model"))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":     {},
		"cut":       good[:len(good)/2],
		"wire type": {0x0F},
		"bad type":  {0x0A, 0x05, 0x0A, 0x01, 'a', 0x18, 0x09},
		"unigram":   {0x0A, 0x03, 0x0A, 0x01, 'a'},
	}
	for name, b := range cases {
		_, err := ParseSentencePieceModel(b)
		if err == nil {
			t.Errorf("%s: no error", name)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: multi-line error %q", name, err)
		}
	}
	if _, err := ParseSentencePieceModel(cases["unigram"]); err == nil || !strings.Contains(err.Error(), "BPE") {
		t.Errorf("unigram error %v", err)
	}
}

func FuzzSentencePieceModel(f *testing.F) {
	good, err := os.ReadFile(spmFile(f, "models", "tok512.model"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:200])
	f.Add([]byte{0x0A, 0x05, 0x0A, 0x01, 'a', 0x18, 0x01, 0x12, 0x02, 0x18, 0x02})
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := ParseSentencePieceModel(data)
		if err != nil {
			return
		}
		ids, err := tok.EncodeWith("hello <s> wörld", EncodeOptions{ParseSpecial: true})
		if err == nil {
			if _, err := tok.Decode(ids); err != nil {
				t.Fatal(err)
			}
		}
	})
}
