package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/checkpoint"
)

// quantize stories260K: the 64-long rows become Q8_0/Q4_0, ffn_down (172)
// and the norms stay F32, and the file loads with the spec's quant set.
func TestQuantizeStories260K(t *testing.T) {
	_, data := repo(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "s.gguf")
	if _, err := run(t, "convert", filepath.Join(data, "models", "stories260K.bin"),
		"--tokenizer", filepath.Join(data, "models", "tok512.bin"), src); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		flag string
		ty   gguf.GGMLType
		ft   uint32
	}{{"q8_0", gguf.TypeQ8_0, 7}, {"q4_0", gguf.TypeQ4_0, 2}} {
		out := filepath.Join(dir, c.flag+".gguf")
		if msg, err := run(t, "quantize", src, out, "--type", c.flag); err != nil {
			t.Fatal(err, msg)
		} else if !strings.Contains(msg, "kept blk.0.ffn_down.weight") {
			t.Errorf("report does not list the kept ffn_down: %s", msg)
		}
		f, err := gguf.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		ft, _ := f.Uint32(gguf.KeyFileType)
		q, _ := f.Tensor("blk.2.attn_q.weight")
		down, _ := f.Tensor("blk.2.ffn_down.weight")
		norm, _ := f.Tensor("blk.2.ffn_norm.weight")
		_, hasTok := f.Get(gguf.KeyTokens)
		f.Close()
		if ft != c.ft || q.Type != c.ty || down.Type != gguf.TypeF32 || norm.Type != gguf.TypeF32 || !hasTok {
			t.Errorf("%s: file_type %d, attn_q %s, ffn_down %s, norm %s, tokens %v", c.flag, ft, q.Type, down.Type, norm.Type, hasTok)
		}
		p, g, err := checkpoint.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		g.Close()
		if p.Spec.Quant != c.flag {
			t.Errorf("loaded spec quant %q, want %q", p.Spec.Quant, c.flag)
		}
	}
	st1, _ := os.Stat(src)
	st8, _ := os.Stat(filepath.Join(dir, "q8_0.gguf"))
	st4, _ := os.Stat(filepath.Join(dir, "q4_0.gguf"))
	if !(st4.Size() < st8.Size() && st8.Size() < st1.Size()/2) {
		t.Errorf("sizes f32 %d, q8_0 %d, q4_0 %d", st1.Size(), st8.Size(), st4.Size())
	}
	if _, err := run(t, "quantize", src, filepath.Join(dir, "x.gguf"), "--type", "q5_1"); err == nil || !strings.Contains(err.Error(), "q5_1") {
		t.Errorf("bad type: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.gguf")); err == nil {
		t.Error("failed quantize left a file")
	}
	// A quantised input is refused unless asked for (it rounds twice), as
	// llama.cpp's quantize does; a file with no matrix, and an empty output
	// name, are refused.
	q4 := filepath.Join(dir, "q4_0.gguf")
	if _, err := run(t, "quantize", q4, filepath.Join(dir, "x.gguf"), "--type", "q8_0"); err == nil || !strings.Contains(err.Error(), "is Q4_0 already: quantise the F32 or F16 model, or pass --allow-requantize") {
		t.Errorf("requantising without the flag: %v", err)
	}
	if _, err := run(t, "quantize", q4, filepath.Join(dir, "x.gguf"), "--type", "q8_0", "--allow-requantize", "-q"); err != nil {
		t.Errorf("--allow-requantize: %v", err)
	}
	vocab := filepath.Join(dir, "vocab.gguf")
	if err := gguf.WriteFile(vocab, []gguf.KV{{Key: gguf.KeyArchitecture, Value: "llama"}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "quantize", vocab, filepath.Join(dir, "y.gguf"), "--type", "q8_0"); err == nil || !strings.Contains(err.Error(), "holds no weight matrix to quantise") {
		t.Errorf("a file without matrices: %v", err)
	}
	if _, err := run(t, "quantize", src, "", "--type", "q8_0"); err == nil || err.Error() != "the output file name is empty" {
		t.Errorf("empty output name: %v", err)
	}
}

// A NaN or infinity in the input, in a matrix it quantises or a norm it
// copies, is refused before anything is written.
func TestQuantizeRefusesNonFinite(t *testing.T) {
	_, data := repo(t)
	p, err := checkpoint.LoadLlama2C(filepath.Join(data, "models", "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tensor string
		i      int
		v      float32
		want   string
	}{
		{"blk.1.ffn_norm.weight", 3, float32(math.NaN()), "NaN at element 3"},
		{"blk.4.attn_q.weight", 100, float32(math.Inf(1)), "+Inf at element 100"},
	} {
		dir := t.TempDir()
		src, out := filepath.Join(dir, "s.gguf"), filepath.Join(dir, "q.gguf")
		old := p.T(c.tensor)[c.i]
		p.T(c.tensor)[c.i] = c.v
		err := checkpoint.SaveGGUF(src, p, nil, false)
		p.T(c.tensor)[c.i] = old
		if err != nil {
			t.Fatal(err)
		}
		want := "quantize " + src + ": tensor " + c.tensor + " holds " + c.want
		if _, err := run(t, "quantize", src, out, "--type", "q8_0"); err == nil || err.Error() != want {
			t.Errorf("error %v, want %q", err, want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s was written (%v)", out, err)
		}
	}
}

// convert of a GGUF that carries no vocabulary names the file and the flag
// that gives one, as for a llama2.c file.
func TestConvertGGUFWithoutVocabulary(t *testing.T) {
	_, data := repo(t)
	p, err := checkpoint.LoadLlama2C(filepath.Join(data, "models", "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src, out := filepath.Join(dir, "novocab.gguf"), filepath.Join(dir, "o.gguf")
	if err := checkpoint.SaveGGUF(src, p, nil, false); err != nil {
		t.Fatal(err)
	}
	_, err = run(t, "convert", src, out)
	if err == nil || !strings.HasPrefix(err.Error(), src+": ") || !strings.HasSuffix(err.Error(), "(give --tokenizer FILE)") {
		t.Errorf("convert of a GGUF without a vocabulary: %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("%s was written (%v)", out, err)
	}
}

// An unknown --type is named as the flag's error.
func TestQuantizeUnknownType(t *testing.T) {
	dir := t.TempDir()
	_, err := run(t, "quantize", filepath.Join(dir, "a.gguf"), filepath.Join(dir, "b.gguf"), "--type", "q5_0")
	if err == nil || err.Error() != `--type: quant: unknown type "q5_0" (want q8_0 or q4_0)` {
		t.Errorf("quantize --type q5_0: %v", err)
	}
}
