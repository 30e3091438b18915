package checkpoint

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/quant"
	"github.com/modelc/modelc/spec"
)

// llama2cOffset is the float offset, after the header, of element i of
// tensor name in a llama2.c file of spec s.
func llama2cOffset(t *testing.T, s *spec.Spec, name string, i int) int {
	t.Helper()
	off := 0
	for _, sec := range llama2cOrder(s) {
		n := sec.rows * sec.cols
		if !sec.perLayer {
			if sec.kind == name {
				return off + i
			}
			off += n
			continue
		}
		for l := 0; l < s.Layers; l++ {
			if model.LayerTensor(l, sec.kind) == name {
				return off + i
			}
			off += n
		}
	}
	t.Fatalf("no tensor %s", name)
	return 0
}

// A llama2.c checkpoint with a NaN or an infinity among its weights is
// refused, naming the file, the tensor and the element: one within the
// first read buffer and one past it (token_embd's element 20000).
func TestLlama2CNonFinite(t *testing.T) {
	raw, err := os.ReadFile(storiesPath(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.FromLlama2C(storiesPath(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tensor string
		i      int
		bits   uint32
		what   string
	}{
		{"blk.2.ffn_down.weight", 1234, 0x7fc00000, "NaN"},
		{model.TokEmbd, 20000, 0xff800000, "-Inf"},
		{model.OutputNorm, 63, 0x7f800000, "+Inf"},
	} {
		b := append([]byte(nil), raw...)
		binary.LittleEndian.PutUint32(b[spec.Llama2CHeaderBytes+4*llama2cOffset(t, &s, c.tensor, c.i):], c.bits)
		path := filepath.Join(t.TempDir(), "stories.bin")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("checkpoint: %s: tensor %s holds %s at element %d", path, c.tensor, c.what, c.i)
		if _, _, err := Load(path); err == nil || err.Error() != want {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}

// So is a GGUF file, F32 or F16.
func TestGGUFNonFinite(t *testing.T) {
	p, err := LoadLlama2C(storiesPath(t))
	if err != nil {
		t.Fatal(err)
	}
	p.T("blk.1.attn_v.weight")[77] = float32(math.NaN())
	for _, f16 := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "stories.gguf")
		if err := SaveGGUF(path, p, nil, f16); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("checkpoint: %s: tensor blk.1.attn_v.weight holds NaN at element 77", path)
		if _, _, err := Load(path); err == nil || err.Error() != want {
			t.Errorf("f16 %v: error %v, want %q", f16, err, want)
		}
	}
}

// A quantised GGUF is checked by its block scales, whether its blocks are
// decoded at load or kept for a quantised binary.
func TestQuantNonFiniteScale(t *testing.T) {
	s := tinySpec
	s.Dim, s.FFNDim = 32, 48
	s.SetDefaults()
	p := model.NewParams(&s)
	r := rand.New(rand.NewPCG(7, 8))
	for i := range p.Data {
		p.Data[i] = float32(r.NormFloat64()) * 0.2
	}
	kvs, _ := ggufMetadata(p, nil, false)
	for _, c := range []struct {
		ty    gguf.GGMLType
		scale uint16
		what  string
	}{
		{gguf.TypeQ8_0, 0x7e00, "NaN"},
		{gguf.TypeQ4_0, 0xfc00, "-Inf"},
	} {
		ts, _ := ggufTensors(p, false)
		for i, w := range ts {
			if quant.Quantizable(w.Name, w.Dims) {
				ts[i].Type = c.ty
				ts[i].Data, _ = quant.Quantize(c.ty, p.T(w.Name))
				if w.Name == "blk.1.attn_q.weight" {
					binary.LittleEndian.PutUint16(ts[i].Data[3*int(c.ty.BlockBytes()):], c.scale)
				}
			}
		}
		path := filepath.Join(t.TempDir(), "q.gguf")
		if err := gguf.WriteFile(path, kvs, ts); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("checkpoint: %s: tensor blk.1.attn_q.weight holds %s in the scale of block 3 (elements 96 to 127)", path, c.what)
		if _, _, err := Load(path); err == nil || err.Error() != want {
			t.Errorf("%s decoded: error %v, want %q", c.ty, err, want)
		}
		if _, _, err := LoadKeepBlocks(path, c.ty); err == nil || err.Error() != want {
			t.Errorf("%s kept: error %v, want %q", c.ty, err, want)
		}
	}

	// Q6_K (llama.cpp's output.weight) keeps its scale d at the end of a
	// super-block of 256.
	raw := make([]byte, 5*quant.Q6KBlockBytes)
	binary.LittleEndian.PutUint16(raw[2*quant.Q6KBlockBytes+208:], 0x7c00)
	path := q6kOutputFile(t, raw)
	want := fmt.Sprintf("checkpoint: %s: tensor output.weight holds +Inf in the scale of block 2 (elements 512 to 767)", path)
	if _, _, err := Load(path); err == nil || err.Error() != want {
		t.Errorf("Q6_K: error %v, want %q", err, want)
	}
}
