package tokenizer

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// blRepoRoot walks up from the package directory to the folder holding go.mod.
func blRepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the package directory")
		}
		dir = parent
	}
}

// blDataDir is the shared data folder beside the repository root.
func blDataDir(t testing.TB) string {
	t.Helper()
	d := filepath.Join(filepath.Dir(blRepoRoot(t)), "shared", "data")
	if _, err := os.Stat(d); err != nil {
		t.Fatalf("shared data folder missing (expected beside the repo root): %v", err)
	}
	return d
}

func blReadData(t testing.TB, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(blDataDir(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// blRefSplit is the slow reference pre-tokenizer: RE2 runs the GPT-2 pattern
// without the look-ahead alternative, and a whitespace-only match followed by
// more text gives back its last character, which is what "\s+(?!\S)" does.
// \s is spelled out as Unicode White_Space, since RE2's \s is ASCII only.
var blRefRE = func() *regexp.Regexp {
	ws := `\t\n\v\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}`
	return regexp.MustCompile(`'s|'t|'re|'ve|'m|'ll|'d| ?\pL+| ?\pN+| ?[^` + ws + `\pL\pN]+|[` + ws + `]+`)
}()

func blRefSplit(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		loc := blRefRE.FindStringIndex(s[i:])
		if loc == nil || loc[0] != 0 {
			panic("reference split: no match at " + s[i:])
		}
		end := i + loc[1]
		m := s[i:end]
		allSpace := true
		for _, r := range m {
			if runeClass(r) != clsSpace {
				allSpace = false
				break
			}
		}
		if allSpace && end < len(s) && utf8.RuneCountInString(m) > 1 {
			_, w := utf8.DecodeLastRuneInString(m)
			end -= w
		}
		out = append(out, s[i:end])
		i = end
	}
	return out
}

func blScanSplit(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		j := gpt2Next(s, i)
		if j <= i || j > len(s) {
			panic("gpt2Next made no progress")
		}
		out = append(out, s[i:j])
		i = j
	}
	return out
}

func blSameSplit(t *testing.T, s string) {
	t.Helper()
	got, want := blScanSplit(s), blRefSplit(s)
	if strings.Join(got, "\x00") != strings.Join(want, "\x00") || len(got) != len(want) {
		t.Fatalf("split of %q:\n got  %q\n want %q", s, got, want)
	}
}

func TestPretokKnownSplits(t *testing.T) {
	cases := map[string][]string{
		"Hello world":           {"Hello", " world"},
		"  Hello":               {" ", " Hello"},
		"a  \n\n b":             {"a", "  \n\n", " b"},
		"x \t\ty":               {"x", " \t", "\t", "y"},
		"end   ":                {"end", "   "},
		"I'm he's we'll they'd": {"I", "'m", " he", "'s", " we", "'ll", " they", "'d"},
		"'S 'Re 're":            {"'", "S", " '", "Re", " '", "re"},
		"!!'s":                  {"!!'", "s"},
		"ab12 34cd":             {"ab", "12", " 34", "cd"},
		"\u3000\u3000x":         {"\u3000", "\u3000", "x"},
		"caf\xe9 ok":            {"caf", "\xe9", " ok"},
		" ½ ":                   {" ½", " "},
	}
	for in, want := range cases {
		if got := blScanSplit(in); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("scan %q = %q, want %q", in, got, want)
		}
		blSameSplit(t, in)
	}
}

// blRandText makes text dense in the cases the pre-tokenizer must get right:
// runs of mixed whitespace, contractions, digits, letters of several
// scripts, symbols, and (when invalid is set) stray bytes.
func blRandText(r *rand.Rand, n int, invalid bool) string {
	pieces := []string{" ", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2003",
		"'", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'x",
		"a", "Z", "hello", "é", "ß", "Ж", "щ", "ע", "ب", "中", "ก", "ǅ",
		"0", "7", "42", "½", "²", "٣", "Ⅻ",
		".", ",", "!", "?", "-", "_", "@", "#", "(", ")", "\"", "🦙", "€", "\u0301", "\u200d", "\x00"}
	if invalid {
		pieces = append(pieces, "\xff", "\xe2\x82", "\xc3", "\x80")
	}
	var sb strings.Builder
	for sb.Len() < n {
		sb.WriteString(pieces[r.IntN(len(pieces))])
	}
	return sb.String()
}

func TestPretokMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 3000; i++ {
		blSameSplit(t, blRandText(r, 1+r.IntN(40), i%2 == 0))
	}
	for _, f := range []string{"text/tinyshakespeare.txt", "retrieval/cran.all.1400"} {
		s := blReadData(t, f)
		blSameSplit(t, s[:200000])
	}
}

func FuzzPretok(f *testing.F) {
	f.Add("Hello  world\n\n  it's 42½ 🦙")
	f.Add("\xff\xfe 'll \t\t")
	f.Fuzz(func(t *testing.T, s string) {
		blSameSplit(t, s)
	})
}
