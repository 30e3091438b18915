package tokenizer

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/modelc/modelc/gguf"
)

// llamaCppCases reads a llama.cpp vocab fixture: .inp strings separated by
// "\n__ggml_vocab_test__\n", .out one line of space-prefixed ids per string.
func llamaCppCases(t testing.TB, name string) ([]string, [][]int) {
	t.Helper()
	inp, err := os.ReadFile(spmFile(t, "tokenizer", name+".inp"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(spmFile(t, "tokenizer", name+".out"))
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Split(string(inp), "\n__ggml_vocab_test__\n")
	lines := strings.Split(string(out), "\n")
	if texts[len(texts)-1] != "" || lines[len(lines)-1] != "" {
		t.Fatalf("%s: fixture does not end with a separator / newline", name)
	}
	texts, lines = texts[:len(texts)-1], lines[:len(lines)-1]
	if len(texts) != 46 || len(lines) != 46 {
		t.Fatalf("%s: %d strings and %d id lines, want 46", name, len(texts), len(lines))
	}
	ids := make([][]int, len(lines))
	for i, l := range lines {
		for _, f := range strings.Fields(l) {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s.out line %d: %v", name, i+1, err)
			}
			ids[i] = append(ids[i], n)
		}
	}
	return texts, ids
}

func openGGUF(t testing.TB, path string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestFromGGUFLlamaSPM(t *testing.T) {
	f := openGGUF(t, spmFile(t, "tokenizer", "ggml-vocab-llama-spm.gguf"))
	tk, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	tok, ok := tk.(*SentencePiece)
	if !ok {
		t.Fatalf("FromGGUF gave %T", tk)
	}
	if tok.VocabSize() != 32000 || tok.BOS() != 1 || tok.EOS() != 2 || tok.Unknown() != 0 || !tok.AddBOS() || !tok.SpacePrefix() {
		t.Fatalf("vocab %d bos %d eos %d unk %d addbos %v prefix %v", tok.VocabSize(), tok.BOS(), tok.EOS(), tok.Unknown(), tok.AddBOS(), tok.SpacePrefix())
	}
	texts, want := llamaCppCases(t, "ggml-vocab-llama-spm.gguf")
	bin := loadLlama32000(t)
	for i, s := range texts {
		got, err := tok.Encode(s, false, false)
		if err != nil {
			t.Fatal(err)
		}
		if !sameIDs(got, want[i]) {
			t.Errorf("case %d %q: got %v, llama.cpp %v", i, s, got, want[i])
		}
		// The same vocabulary as llama2.c's tokenizer.bin encodes the same.
		if b, _ := bin.Encode(s, false, false); !sameIDs(b, got) {
			t.Errorf("case %d %q: tokenizer.bin gives %v, GGUF %v", i, s, b, got)
		}
		if back, err := tok.Decode(got); err != nil || back != s {
			t.Errorf("case %d: decode(encode(%q)) = %q, %v", i, s, back, err)
		}
	}
}

func TestFromGGUFGPT2(t *testing.T) {
	f := openGGUF(t, spmFile(t, "tokenizer", "ggml-vocab-gpt-2.gguf"))
	tk, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tk.(*ByteLevel); !ok {
		t.Fatalf("FromGGUF gave %T", tk)
	}
	texts, want := llamaCppCases(t, "ggml-vocab-gpt-2.gguf")
	for i, s := range texts {
		got, err := tk.Encode(s, false, false)
		if err != nil {
			t.Fatal(err)
		}
		if !sameIDs(got, want[i]) {
			t.Errorf("case %d %q: got %v, llama.cpp %v", i, s, got, want[i])
		}
	}
}

func TestFromGGUFUnsupported(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.gguf")
	if err := gguf.WriteFile(path, []gguf.KV{{Key: gguf.KeyTokenizerModel, Value: "bert"}, {Key: gguf.KeyTokens, Value: []string{"a"}}}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := FromGGUF(openGGUF(t, path))
	if err == nil || !strings.Contains(err.Error(), `"bert"`) || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("error %v", err)
	}
}

func TestBadGGUFVocab(t *testing.T) {
	base := func() []gguf.KV {
		return []gguf.KV{
			{Key: gguf.KeyTokenizerModel, Value: "llama"},
			{Key: gguf.KeyTokens, Value: []string{"<unk>", "<s>", "</s>", "▁a"}},
		}
	}
	cases := map[string]struct {
		kv   gguf.KV
		want string
	}{
		"scores":   {gguf.KV{Key: gguf.KeyScores, Value: []float32{0, 0}}, "2 entries for 4 tokens"},
		"types":    {gguf.KV{Key: gguf.KeyTokenType, Value: []int32{2, 3, 3, 9}}, "token_type[3] = 9"},
		"bos":      {gguf.KV{Key: gguf.KeyBOS, Value: uint32(7)}, "bos_token_id = 7"},
		"typekind": {gguf.KV{Key: gguf.KeyScores, Value: []string{"x"}}, "scores"},
	}
	for name, c := range cases {
		path := filepath.Join(t.TempDir(), name+".gguf")
		if err := gguf.WriteFile(path, append(base(), c.kv), nil); err != nil {
			t.Fatal(err)
		}
		_, err := FromGGUF(openGGUF(t, path))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, c.want)
		}
	}
}

// TestGGUFMetadataRoundTrip converts tok512.bin to GGUF metadata, writes and
// reads it back, and checks the vocabulary and every Shakespeare line's ids.
func TestGGUFMetadataRoundTrip(t *testing.T) {
	tok := loadTok512(t)
	kvs := tok.GGUFMetadata()
	keys := map[string]any{}
	for _, kv := range kvs {
		keys[kv.Key] = kv.Value
	}
	if keys[gguf.KeyTokenizerModel] != "llama" || keys[gguf.KeyBOS] != uint32(1) || keys[gguf.KeyEOS] != uint32(2) || keys[gguf.KeyUNK] != uint32(0) || keys[gguf.KeyAddBOS] != true {
		t.Fatalf("metadata %v", keys)
	}
	toks := keys[gguf.KeyTokens].([]string)
	types := keys[gguf.KeyTokenType].([]int32)
	if toks[1] != "<s>" || toks[2] != "</s>" || toks[259] != "▁t" || toks[3] != "<0x00>" || types[0] != 2 || types[1] != 3 || types[3] != 6 || types[259] != 1 {
		t.Fatalf("tokens %q types %v", toks[:5], types[:5])
	}
	path := filepath.Join(t.TempDir(), "tok512.gguf")
	if err := gguf.WriteFile(path, kvs, nil); err != nil {
		t.Fatal(err)
	}
	tk, err := Load(path, 512)
	if err != nil {
		t.Fatal(err)
	}
	back := tk.(*SentencePiece)
	for id := range tok.VocabSize() {
		p1, s1, t1, _ := tok.Token(id)
		p2, s2, t2, _ := back.Token(id)
		if s1 != s2 || t1 != t2 || (p1 != p2 && t1 != TokenControl) {
			t.Fatalf("token %d: %q %v %v became %q %v %v", id, p1, s1, t1, p2, s2, t2)
		}
	}
	for i, line := range readLines(t, spmFile(t, "text", "tinyshakespeare.txt")) {
		a, _ := tok.Encode(line, true, true)
		b, err := back.Encode(line, true, true)
		if err != nil || !sameIDs(a, b) {
			t.Fatalf("line %d %q: %v vs %v (%v)", i+1, line, a, b, err)
		}
	}
}

func TestLoadDetectsFormat(t *testing.T) {
	cases := []struct {
		path string
		n    int
		typ  string
		size int
	}{
		{spmFile(t, "models", "tok512.bin"), 512, "*tokenizer.SentencePiece", 512},
		{spmFile(t, "tokenizer", "ggml-vocab-llama-spm.gguf"), 32000, "*tokenizer.SentencePiece", 32000},
		{spmFile(t, "tokenizer", "ggml-vocab-llama-spm.gguf"), 0, "*tokenizer.SentencePiece", 32000},
		{spmFile(t, "tokenizer", "ggml-vocab-gpt-2.gguf"), 0, "*tokenizer.ByteLevel", 50257},
		{spmFile(t, "tokenizer", "gpt2"), 50257, "*tokenizer.ByteLevel", 50257},
		{spmFile(t, "tokenizer", "gpt2", "encoder.json"), 0, "*tokenizer.ByteLevel", 50257},
	}
	for _, c := range cases {
		tk, err := Load(c.path, c.n)
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		if got := typeName(tk); got != c.typ || tk.VocabSize() != c.size {
			t.Errorf("%s: %s with %d tokens, want %s with %d", c.path, got, tk.VocabSize(), c.typ, c.size)
		}
	}
	// A wrong size is an error naming the file and both counts.
	_, err := Load(spmFile(t, "tokenizer", "ggml-vocab-llama-spm.gguf"), 32001)
	if err == nil || !strings.Contains(err.Error(), "ggml-vocab-llama-spm.gguf") || !strings.Contains(err.Error(), "32000") || !strings.Contains(err.Error(), "32001") {
		t.Errorf("size mismatch error %v", err)
	}
	// A directory with tokenizer.bin in it.
	dir := t.TempDir()
	if err := loadTok512(t).WriteLlama2C(filepath.Join(dir, "tokenizer.bin")); err != nil {
		t.Fatal(err)
	}
	if tk, err := Load(dir, 512); err != nil || tk.VocabSize() != 512 {
		t.Errorf("directory with tokenizer.bin: %v", err)
	}
	// A tokenizer.model recognised by content, not by name.
	model, err := os.ReadFile(spmFile(t, "models", "tok512.model"))
	if err != nil {
		t.Fatal(err)
	}
	noext := filepath.Join(dir, "vocab")
	if err := os.WriteFile(noext, model, 0o644); err != nil {
		t.Fatal(err)
	}
	if tk, err := Load(noext, 512); err != nil || typeName(tk) != "*tokenizer.SentencePiece" {
		t.Errorf("tokenizer.model without extension: %v", err)
	}
	if _, err := Load(t.TempDir(), 0); err == nil {
		t.Error("empty directory: no error")
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *SentencePiece:
		return "*tokenizer.SentencePiece"
	case *ByteLevel:
		return "*tokenizer.ByteLevel"
	}
	return "other"
}

// TestWriteLlama2CRoundTrip writes tok512 back as tokenizer.bin: the bytes
// equal the original file.
func TestWriteLlama2CRoundTrip(t *testing.T) {
	src := spmFile(t, "models", "tok512.bin")
	tok := loadTok512(t)
	out := filepath.Join(t.TempDir(), "tok.bin")
	if err := tok.WriteLlama2C(out); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(out)
	if string(a) != string(b) {
		t.Fatalf("rewritten tokenizer.bin differs (%d vs %d bytes)", len(a), len(b))
	}
}

// TestLoadNotATokenizer: a file of no tokenizer format is named as such
// (with the tokenizer.bin parse error kept), a real tokenizer.bin keeps its
// plain error, and a GGUF without tokenizer.ggml.* keys holds no vocabulary.
func TestLoadNotATokenizer(t *testing.T) {
	for _, c := range []struct {
		path   string
		detail string
	}{
		{spmFile(t, "text", "tinyshakespeare.txt"), "token 0 at offset 8: length 1702521204 out of range"},
		{spmFile(t, "models", "stories260K.bin"), "token 2 at offset 31: length 265839806 out of range"},
	} {
		_, err := Load(c.path, 0)
		if err == nil || !strings.Contains(err.Error(), c.path+" is not a recognised tokenizer file") || !strings.Contains(err.Error(), c.detail) {
			t.Errorf("%s: error %v", c.path, err)
		}
	}
	_, err := Load(spmFile(t, "models", "tok512.bin"), 513)
	if err == nil || strings.Contains(err.Error(), "recognised") || !strings.Contains(err.Error(), "vocab size 513 given but the file ends after 512 tokens") {
		t.Errorf("tokenizer.bin of the wrong size: %v", err)
	}

	dir := t.TempDir()
	model := filepath.Join(dir, "model.gguf")
	if err := gguf.WriteFile(model, []gguf.KV{{Key: "general.architecture", Value: "llama"}}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = Load(model, 0)
	if err == nil || !strings.Contains(err.Error(), model) || !strings.Contains(err.Error(), "holds no vocabulary (no tokenizer.ggml.* metadata)") {
		t.Errorf("GGUF without a vocabulary: %v", err)
	}
	// With some tokenizer keys, the missing one is named.
	partial := filepath.Join(dir, "partial.gguf")
	if err := gguf.WriteFile(partial, []gguf.KV{{Key: gguf.KeyTokens, Value: []string{"a"}}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err = Load(partial, 0); err == nil || !strings.Contains(err.Error(), gguf.KeyTokenizerModel) {
		t.Errorf("GGUF without tokenizer.ggml.model: %v", err)
	}
}

// TestCheckVocab: a tokenizer of another size than the model's vocabulary
// gets the one error every command gives, from Load as from CheckVocab.
func TestCheckVocab(t *testing.T) {
	path := spmFile(t, "tokenizer", "ggml-vocab-llama-spm.gguf")
	want := "tokenizer: " + path + " holds 32000 tokens but the model's vocab size is 512"
	if _, err := Load(path, 512); err == nil || err.Error() != want {
		t.Errorf("Load: %v, want %q", err, want)
	}
	tk, err := Load(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckVocab(path, tk, 512); err == nil || err.Error() != want {
		t.Errorf("CheckVocab: %v, want %q", err, want)
	}
	if err := CheckVocab("", tk, 512); err == nil || err.Error() != "the tokenizer holds 32000 tokens but the model's vocab size is 512" {
		t.Errorf("CheckVocab without a source: %v", err)
	}
	if err := CheckVocab(path, tk, 32000); err != nil {
		t.Errorf("CheckVocab of a match: %v", err)
	}
}
