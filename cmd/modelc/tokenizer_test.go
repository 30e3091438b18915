package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/modelc/modelc/tokenizer"
)

// runIO runs modelc in-process with stdin and returns stdout and stderr apart.
func runIO(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := newRoot()
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func shakespeare(t *testing.T) string {
	t.Helper()
	_, data := repo(t)
	b, err := os.ReadFile(filepath.Join(data, "text", "tinyshakespeare.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func parseIDLine(t *testing.T, line string) []int {
	t.Helper()
	var ids []int
	for _, f := range strings.Fields(line) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("id line %q: %v", line, err)
		}
		ids = append(ids, n)
	}
	return ids
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// train on two corpus files, then encode | decode gives every line of
// tinyshakespeare back exactly, and the ids are the library's.
func TestTokenizerTrainEncodeDecode(t *testing.T) {
	text := shakespeare(t)
	dir := t.TempDir()
	// The first 5,000 lines as two files, the first without its last newline.
	lines := strings.SplitAfter(text, "\n")
	a := filepath.Join(dir, "a.txt")
	b := filepath.Join(dir, "b.txt")
	os.WriteFile(a, []byte(strings.TrimSuffix(strings.Join(lines[:2000], ""), "\n")), 0o644)
	os.WriteFile(b, []byte(strings.Join(lines[2000:5000], "")), 0o644)
	joined := filepath.Join(dir, "joined.txt")
	os.WriteFile(joined, []byte(strings.Join(lines[:5000], "")), 0o644)

	for _, tc := range []struct {
		style string
		want  string // the Go type Load must give back
	}{{"bytelevel", "*tokenizer.ByteLevel"}, {"sentencepiece", "*tokenizer.SentencePiece"}} {
		t.Run(tc.style, func(t *testing.T) {
			out := filepath.Join(dir, tc.style+".gguf")
			_, stderr, err := runIO(t, "", "tokenizer", "train", "--vocab", "700", "--style", tc.style,
				"--special", "<|im_start|>", "--special", "<|im_end|>", a, b, "-o", out)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(stderr, "bpe train:") || !strings.Contains(stderr, "wrote "+out+": 700 tokens") {
				t.Errorf("progress on stderr:\n%s", stderr)
			}
			tok, err := tokenizer.Load(out, 700)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%T", tok); got != tc.want {
				t.Fatalf("trained %s vocabulary loads as %s", tc.style, got)
			}
			// Two files train exactly as their concatenation (a newline is put
			// between them where the first lacks one).
			out2 := filepath.Join(dir, tc.style+"-joined.gguf")
			_, stderr, err = runIO(t, "", "tokenizer", "train", "--vocab", "700", "--style", tc.style,
				"--special", "<|im_start|>", "--special", "<|im_end|>", "--quiet", joined, "-o", out2)
			if err != nil {
				t.Fatal(err)
			}
			if stderr != "" {
				t.Errorf("--quiet printed %q", stderr)
			}
			g1, _ := os.ReadFile(out)
			g2, _ := os.ReadFile(out2)
			if !bytes.Equal(g1, g2) {
				t.Error("training on two files differs from training on their concatenation")
			}

			ids, _, err := runIO(t, text, "tokenizer", "encode", "--tokenizer", out)
			if err != nil {
				t.Fatal(err)
			}
			idLines := strings.Split(strings.TrimSuffix(ids, "\n"), "\n")
			textLines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
			if len(idLines) != len(textLines) {
				t.Fatalf("%d lines of ids for %d lines of text", len(idLines), len(textLines))
			}
			for _, i := range []int{0, 1, 2, 100, 7777, len(textLines) - 1} {
				want, err := tok.Encode(textLines[i], false, false)
				if err != nil {
					t.Fatal(err)
				}
				if got := parseIDLine(t, idLines[i]); !sameInts(got, want) {
					t.Errorf("line %d %q: CLI ids %v, library %v", i+1, textLines[i], got, want)
				}
			}
			back, _, err := runIO(t, ids, "tokenizer", "decode", "--tokenizer", out)
			if err != nil {
				t.Fatal(err)
			}
			if back != text {
				bl := strings.Split(back, "\n")
				for i := range textLines {
					if i >= len(bl) || bl[i] != textLines[i] {
						t.Fatalf("round trip differs first at line %d: %q, want %q", i+1, bl[min(i, len(bl)-1)], textLines[i])
					}
				}
				t.Fatalf("round trip gives %d bytes, want %d", len(back), len(text))
			}
			// A special token given to train is never split.
			sp, _, err := runIO(t, "<|im_start|>user\n", "tokenizer", "encode", "--tokenizer", out)
			if err != nil {
				t.Fatal(err)
			}
			var special int
			switch tk := tok.(type) {
			case *tokenizer.SentencePiece:
				special, _ = tk.ID("<|im_start|>")
			case *tokenizer.ByteLevel:
				special = 1 // right after <|endoftext|>
				if string(tk.TokenBytes(1)) != "<|im_start|>" {
					t.Fatalf("token 1 is %q", tk.TokenBytes(1))
				}
			}
			got := parseIDLine(t, sp)
			n := 0
			for _, id := range got {
				if id == special {
					n++
				}
			}
			if n != 1 || len(got) < 2 {
				t.Errorf("<|im_start|>user encodes as %v, want the special id %d once", got, special)
			}
		})
	}
}

// encode with llama.cpp's Llama SentencePiece vocabulary gives the ids of
// its test fixture, for every test string that is one line; same for GPT-2.
func TestTokenizerEncodeLlamaCppFixtures(t *testing.T) {
	_, data := repo(t)
	for _, name := range []string{"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"} {
		vocab := filepath.Join(data, "tokenizer", name)
		inp, err := os.ReadFile(vocab + ".inp")
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.ReadFile(vocab + ".out")
		if err != nil {
			t.Fatal(err)
		}
		texts := strings.Split(strings.TrimSuffix(string(inp), "\n__ggml_vocab_test__\n"), "\n__ggml_vocab_test__\n")
		want := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(texts) != 46 || len(want) != 46 {
			t.Fatalf("%s: %d strings, %d id lines", name, len(texts), len(want))
		}
		var in strings.Builder
		var wantLines []string
		for i, s := range texts {
			if !strings.Contains(s, "\n") {
				in.WriteString(s + "\n")
				wantLines = append(wantLines, want[i])
			}
		}
		if len(wantLines) < 30 {
			t.Fatalf("%s: only %d one-line cases", name, len(wantLines))
		}
		got, _, err := runIO(t, in.String(), "tokenizer", "encode", "--tokenizer", vocab)
		if err != nil {
			t.Fatal(err)
		}
		gotLines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
		if len(gotLines) != len(wantLines) {
			t.Fatalf("%s: %d output lines for %d inputs", name, len(gotLines), len(wantLines))
		}
		for i := range wantLines {
			if g, w := parseIDLine(t, gotLines[i]), parseIDLine(t, wantLines[i]); !sameInts(g, w) {
				t.Errorf("%s case %d: %v, llama.cpp %v", name, i, g, w)
			}
		}
	}
}

// --tokenizer takes every format: the same vocabulary (Llama's 32000) as
// llama2.c tokenizer.bin and as GGUF encodes alike; tok512 as tokenizer.bin
// and tokenizer.model alike; GPT-2 as encoder.json and as GGUF alike.
func TestTokenizerEncodeFormats(t *testing.T) {
	_, data := repo(t)
	in := "First Citizen:\nBefore we proceed any further, hear me speak.\n\n  naïve café 東京 🙂\n"
	groups := [][][]string{
		{{filepath.Join(data, "models", "llama2c_tokenizer32000.bin"), "--vocab", "32000"},
			{filepath.Join(data, "tokenizer", "ggml-vocab-llama-spm.gguf")}},
		{{filepath.Join(data, "models", "tok512.bin")}, {filepath.Join(data, "models", "tok512.model"), "--vocab", "512"}},
		{{filepath.Join(data, "tokenizer", "gpt2", "encoder.json")}, {filepath.Join(data, "tokenizer", "ggml-vocab-gpt-2.gguf")}},
	}
	for _, g := range groups {
		var first string
		for i, args := range g {
			out, _, err := runIO(t, in, append([]string{"tokenizer", "encode", "--tokenizer"}, args...)...)
			if err != nil {
				t.Fatalf("%v: %v", args, err)
			}
			if strings.Count(out, "\n") != 4 {
				t.Fatalf("%v: %d lines out for 4 in:\n%s", args, strings.Count(out, "\n"), out)
			}
			if i == 0 {
				first = out
			} else if out != first {
				t.Errorf("%v encodes\n%s\nbut %v\n%s", args, out, g[0], first)
			}
			back, _, err := runIO(t, out, append([]string{"tokenizer", "decode", "--tokenizer"}, args...)...)
			if err != nil || back != in {
				t.Errorf("%v: decode(encode) = %q, %v", args, back, err)
			}
		}
	}
	// A vocabulary size that does not match is refused.
	if _, _, err := runIO(t, "x\n", "tokenizer", "encode", "--tokenizer", filepath.Join(data, "models", "tok512.model"), "--vocab", "500"); err == nil ||
		!strings.Contains(err.Error(), "512 tokens") {
		t.Errorf("--vocab 500 for a 512-token file: %v", err)
	}
}

func TestTokenizerEncodeOptions(t *testing.T) {
	_, data := repo(t)
	tok512 := filepath.Join(data, "models", "tok512.bin")
	plain, _, err := runIO(t, "hi\n", "tokenizer", "encode", "--tokenizer", tok512)
	if err != nil {
		t.Fatal(err)
	}
	hi := parseIDLine(t, plain)
	if len(hi) == 0 || sameInts(hi[:1], []int{1}) {
		t.Fatalf("hi = %v", hi)
	}
	out, _, err := runIO(t, "hi\n\n", "tokenizer", "encode", "--tokenizer", tok512, "--bos", "--eos")
	if err != nil {
		t.Fatal(err)
	}
	want := "1 " + strings.TrimSuffix(plain, "\n") + " 2\n1 2\n"
	if out != want {
		t.Errorf("--bos --eos: %q, want %q", out, want)
	}
	// "<s>" is BOS when special text is parsed (the default), plain text otherwise.
	out, _, err = runIO(t, "<s>hi\n", "tokenizer", "encode", "--tokenizer", tok512)
	if err != nil {
		t.Fatal(err)
	}
	if got := parseIDLine(t, out); len(got) < 2 || got[0] != 1 {
		t.Errorf("<s>hi parsed: %v, want BOS (1) first", got)
	}
	out2, _, err := runIO(t, "<s>hi\n", "tokenizer", "encode", "--tokenizer", tok512, "--parse-special")
	if err != nil || out2 != out {
		t.Errorf("--parse-special differs from the default: %q, %v", out2, err)
	}
	out, _, err = runIO(t, "<s>hi\n", "tokenizer", "encode", "--tokenizer", tok512, "--no-parse-special")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range parseIDLine(t, out) {
		if id == 1 {
			t.Errorf("--no-parse-special: %q holds BOS", out)
		}
	}
	if back, _, err := runIO(t, out, "tokenizer", "decode", "--tokenizer", tok512); err != nil || back != "<s>hi\n" {
		t.Errorf("decode of plain-text <s>: %q, %v", back, err)
	}
	// GPT-2: <|endoftext|> is one id, or six tokens of text.
	gpt2 := filepath.Join(data, "tokenizer", "ggml-vocab-gpt-2.gguf")
	out, _, err = runIO(t, "a<|endoftext|>\n", "tokenizer", "encode", "--tokenizer", gpt2)
	if err != nil || len(parseIDLine(t, out)) != 2 || parseIDLine(t, out)[1] != 50256 {
		t.Errorf("gpt-2 special: %q, %v", out, err)
	}
	out, _, err = runIO(t, "a<|endoftext|>\n", "tokenizer", "encode", "--tokenizer", gpt2, "--no-parse-special")
	if err != nil || len(parseIDLine(t, out)) < 4 {
		t.Errorf("gpt-2 --no-parse-special: %q, %v", out, err)
	}
	// Last line without a newline, and CRLF kept byte for byte.
	in := "a b\r\nlast"
	out, _, err = runIO(t, in, "tokenizer", "encode", "--tokenizer", tok512)
	if err != nil || strings.Count(out, "\n") != 2 {
		t.Fatalf("%q -> %q, %v", in, out, err)
	}
	if back, _, err := runIO(t, out, "tokenizer", "decode", "--tokenizer", tok512); err != nil || back != in+"\n" {
		t.Errorf("decode: %q, %v", back, err)
	}
	// decode --special shows control tokens.
	if back, _, err := runIO(t, "1 "+strings.TrimSuffix(plain, "\n")+" 2\n", "tokenizer", "decode", "--tokenizer", tok512, "--special"); err != nil ||
		!strings.Contains(back, "hi") || !strings.Contains(back, "<s>") || !strings.Contains(back, "</s>") {
		t.Errorf("decode --special: %q, %v", back, err)
	}
}

func TestTokenizerBadInput(t *testing.T) {
	_, data := repo(t)
	tok512 := filepath.Join(data, "models", "tok512.bin")
	dir := t.TempDir()
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"1 2 3\n4 512 6\n", []string{"decode", "--tokenizer", tok512}, "line 2, token 2: id 512 is not in the vocabulary [0, 512)"},
		{"1 2\n\n5 x7 6\n", []string{"decode", "--tokenizer", tok512}, `line 3, token 2: "x7" is not a token id`},
		{"-1\n", []string{"decode", "--tokenizer", tok512}, "line 1, token 1: id -1 is not in the vocabulary"},
		{"hi\n", []string{"encode", "--tokenizer", filepath.Join(dir, "missing.gguf")}, "missing.gguf"},
		{"hi\n", []string{"encode"}, `"tokenizer" not set`},
		{"hi\n", []string{"encode", "--tokenizer", tok512, "--parse-special", "--no-parse-special"}, "parse-special"},
		{"hi\n", []string{"encode", "--tokenizer", filepath.Join(data, "tokenizer", "gpt2", "encoder.json"), "--bos"}, ""},
		{"", []string{"train", "--vocab", "600", filepath.Join(data, "text", "tinyshakespeare.txt")}, "-o FILE is required"},
		{"", []string{"train", "--vocab", "600", "--style", "wordpiece", filepath.Join(data, "text", "tinyshakespeare.txt"), "-o", filepath.Join(dir, "x.gguf")}, `--style: unknown tokenizer style "wordpiece"`},
		{"", []string{"train", "--vocab", "100", filepath.Join(data, "text", "tinyshakespeare.txt"), "-o", filepath.Join(dir, "x.gguf")}, "vocab size 100"},
		{"", []string{"train", "--vocab", "600", filepath.Join(dir, "nope.txt"), "-o", filepath.Join(dir, "x.gguf")}, "nope.txt"},
		{"", []string{"train", "--vocab", "600", "-", "-", "-o", filepath.Join(dir, "x.gguf")}, "given twice"},
		{"", []string{"stats", "--tokenizer", tok512, filepath.Join(dir, "nope.txt")}, "nope.txt"},
	} {
		_, _, err := runIO(t, tc.stdin, append([]string{"tokenizer"}, tc.args...)...)
		if err == nil {
			if tc.want != "" {
				t.Errorf("%v: no error, want %q", tc.args, tc.want)
			}
			continue
		}
		if tc.want == "" {
			t.Errorf("%v: %v", tc.args, err)
		} else if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error %q, want one line containing %q", tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.gguf")); err == nil {
		t.Error("a failed train left an output file")
	}
	// The lines before a bad one are written, as a stream's should be.
	if out, _, err := runIO(t, "400 401\n5 9999\n", "tokenizer", "decode", "--tokenizer", tok512); err == nil || out == "" || strings.Count(out, "\n") != 1 {
		t.Errorf("decode with a bad second line: stdout %q, %v", out, err)
	}
	// GPT-2 has a BOS (<|endoftext|>), so --bos above worked; a vocabulary
	// without one is refused with a clear error.
	noBOS := filepath.Join(dir, "nobos.gguf")
	v := tokenizer.ByteLevelVocab{BOS: -1, EOS: -1}
	for b := 0; b < 256; b++ {
		v.Tokens = append(v.Tokens, tokenizer.ByteLevelText([]byte{byte(b)}))
	}
	bl, err := tokenizer.NewByteLevel(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := bl.SaveGGUF(noBOS); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runIO(t, "hi\n", "tokenizer", "encode", "--tokenizer", noBOS, "--bos"); err == nil || !strings.Contains(err.Error(), "no BOS") {
		t.Errorf("--bos without BOS: %v", err)
	}
}

// stats counts what the library's encoder gives, line by line.
func TestTokenizerStats(t *testing.T) {
	_, data := repo(t)
	tok512 := filepath.Join(data, "models", "tok512.bin")
	text := strings.Join(strings.SplitAfter(shakespeare(t), "\n")[:3000], "")
	corpus := filepath.Join(t.TempDir(), "c.txt")
	os.WriteFile(corpus, []byte(text), 0o644)

	tok, err := tokenizer.Load(tok512, 0)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[int]int{}
	var tokens, nbytes int
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		ids, err := tok.Encode(l, false, false)
		if err != nil {
			t.Fatal(err)
		}
		tokens += len(ids)
		nbytes += len(l)
		for _, id := range ids {
			counts[id]++
		}
	}
	best := -1
	for id, c := range counts {
		if best < 0 || c > counts[best] || (c == counts[best] && id < best) {
			best = id
		}
	}
	out, _, err := runIO(t, "", "tokenizer", "stats", "--tokenizer", tok512, corpus, "--top", "3")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("3000 lines, %d bytes", nbytes),
		fmt.Sprintf("tokens      %d: %.4f tokens per byte, %.3f bytes per token", tokens, float64(tokens)/float64(nbytes), float64(nbytes)/float64(tokens)),
		fmt.Sprintf("%d of 512 ids used", len(counts)),
		fmt.Sprintf("%d never used", 512-len(counts)),
		fmt.Sprintf("     1 %8d %10d", best, counts[best]),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stats output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 4+2+3 {
		t.Errorf("--top 3 gave %d lines:\n%s", n, out)
	}
	// --whole: one text per file, newlines counted.
	out, _, err = runIO(t, "", "tokenizer", "stats", "--tokenizer", tok512, corpus, "--whole")
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := tok.Encode(text, false, false)
	if want := fmt.Sprintf("%d bytes (each file whole)", len(text)); !strings.Contains(out, want) || !strings.Contains(out, fmt.Sprintf("tokens      %d:", len(ids))) {
		t.Errorf("--whole: want %q and %d tokens:\n%s", want, len(ids), out)
	}
}

// The corpus reader separates files that do not end with a newline and
// names the file in its errors.
func TestCorpusReader(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	a, b, e, c := write("a", "one\ntwo"), write("b", "three\n"), write("e", ""), write("c", "four")
	r := &corpusReader{paths: []string{a, e, b, "-", c}, stdin: strings.NewReader("in")}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "one\ntwo\nthree\nin\nfour" || r.total != int64(len("one\ntwothree\ninfour")) {
		t.Errorf("read %q (%d bytes)", got, r.total)
	}
	r = &corpusReader{paths: []string{a, filepath.Join(dir, "missing")}}
	if _, err := io.ReadAll(r); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
}

// decode never panics on any input: it prints text or fails with one line
// naming the line of input.
func FuzzTokenizerDecode(f *testing.F) {
	for _, s := range []string{"1 2 3\n", "\n\n", "x", "-5 6\n", "511 0\n7", "99999999999999999999", " 1\t2 \r\n"} {
		f.Add(s)
	}
	tok512 := ""
	f.Fuzz(func(t *testing.T, in string) {
		if tok512 == "" {
			_, data := repo(t)
			tok512 = filepath.Join(data, "models", "tok512.bin")
		}
		out, _, err := runIO(t, in, "tokenizer", "decode", "--tokenizer", tok512)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q", err)
			}
			return
		}
		if want := strings.Count(strings.TrimSuffix(in, "\n"), "\n") + 1; in != "" && strings.Count(out, "\n") < want {
			t.Fatalf("%d input lines gave %q", want, out)
		}
	})
}

// encode then decode gives every line of valid UTF-8 text back.
func FuzzTokenizerEncodeDecode(f *testing.F) {
	for _, s := range []string{"hello\nworld", "", "\n", "  a  \r\n\tb", "naïve 東京 🙂\n<s>x</s>", "\x00\x7f"} {
		f.Add(s)
	}
	tok512 := ""
	f.Fuzz(func(t *testing.T, in string) {
		if !utf8.ValidString(in) {
			return
		}
		if tok512 == "" {
			_, data := repo(t)
			tok512 = filepath.Join(data, "models", "tok512.bin")
		}
		ids, _, err := runIO(t, in, "tokenizer", "encode", "--tokenizer", tok512, "--no-parse-special")
		if err != nil {
			t.Fatal(err)
		}
		back, _, err := runIO(t, ids, "tokenizer", "decode", "--tokenizer", tok512)
		if err != nil {
			t.Fatal(err)
		}
		want := in
		if in != "" && !strings.HasSuffix(in, "\n") {
			want += "\n"
		}
		if back != want {
			t.Fatalf("decode(encode(%q)) = %q", in, back)
		}
	})
}

// An empty corpus is an error (no file written); a --vocab the corpus cannot
// reach is said.
func TestTokenizerTrainSmallCorpus(t *testing.T) {
	dir := t.TempDir()
	empty, tiny := filepath.Join(dir, "empty.txt"), filepath.Join(dir, "tiny.txt")
	os.WriteFile(empty, nil, 0o644)
	os.WriteFile(tiny, []byte("ab ab ab cd"), 0o644)
	out := filepath.Join(dir, "v.gguf")
	if _, err := run(t, "tokenizer", "train", "--vocab", "300", empty, "-o", out); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty corpus: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("an empty corpus wrote a vocabulary")
	}
	got, err := run(t, "tokenizer", "train", "--vocab", "100000", tiny, "-o", out)
	if err != nil || !strings.Contains(got, "fewer than --vocab 100000") {
		t.Errorf("unreachable vocabulary: %v %q", err, got)
	}
}
