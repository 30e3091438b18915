package checkpoint

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/quant"
	"github.com/modelc/modelc/spec"
)

// TestLoadQuantized: Q8_0 and Q4_0 layer matrices (rows of 32) load as
// their dequantised values, the F32 norms exactly, and the spec reports the
// block format; unsupported block types and sizes are named in the error.
func TestLoadQuantized(t *testing.T) {
	s := tinySpec
	s.Dim, s.FFNDim = 32, 48 // ffn_down rows are 48 long: they stay F32
	s.SetDefaults()
	p := model.NewParams(&s)
	r := rand.New(rand.NewPCG(5, 6))
	for i := range p.Data {
		p.Data[i] = float32(r.NormFloat64()) * 0.2
	}
	kvs, _ := ggufMetadata(p, nil, false)
	dir := t.TempDir()
	for _, ty := range []gguf.GGMLType{gguf.TypeQ8_0, gguf.TypeQ4_0} {
		ts, _ := ggufTensors(p, false)
		want := model.NewParams(&s)
		copy(want.Data, p.Data)
		nq := 0
		for i, w := range ts {
			if !quant.Quantizable(w.Name, w.Dims) {
				continue
			}
			src := p.T(w.Name)
			data, err := quant.Quantize(ty, src)
			if err != nil {
				t.Fatal(err)
			}
			ts[i] = gguf.WriteTensor{Name: w.Name, Dims: w.Dims, Type: ty, Data: data}
			quant.Dequantize(ty, want.T(w.Name), data)
			nq++
		}
		if nq == 0 {
			t.Fatal("nothing quantised")
		}
		path := filepath.Join(dir, ty.String()+".gguf")
		if err := gguf.WriteFile(path, kvs, ts); err != nil {
			t.Fatal(err)
		}
		got, f, err := LoadGGUF(path)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if q := strings.ToLower(ty.String()); got.Spec.Quant != q {
			t.Errorf("%s: spec quant %q, want %q", ty, got.Spec.Quant, q)
		}
		for i := range want.Data {
			if got.Data[i] != want.Data[i] {
				t.Fatalf("%s: weight %d = %g, want dequantised %g", ty, i, got.Data[i], want.Data[i])
			}
		}
		// And the quantised values differ from the originals, by less than
		// the format's step.
		if d := got.T("blk.0.attn_q.weight")[3] - p.T("blk.0.attn_q.weight")[3]; d == 0 || d > 0.2 || d < -0.2 {
			t.Errorf("%s: quantisation error %g", ty, d)
		}
	}

	// Unsupported block type: Q4_1 has the right sizes but is not loaded.
	ts, _ := ggufTensors(p, false)
	for i, w := range ts {
		if w.Name == "blk.1.attn_k.weight" {
			n, _ := gguf.TypeQ4_1.RowBytes(w.Dims[0] * w.Dims[1])
			ts[i] = gguf.WriteTensor{Name: w.Name, Dims: w.Dims, Type: gguf.TypeQ4_1, Data: make([]byte, n)}
		}
	}
	path := filepath.Join(dir, "q41.gguf")
	if err := gguf.WriteFile(path, kvs, ts); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadGGUF(path)
	oneLine(t, err, path, "blk.1.attn_k.weight", "Q4_1", "not supported")
}

// FuzzLoadQuantGGUF starts from small Q8_0 and Q4_0 files: whatever loads
// has the float count of its layout, and nothing panics.
func FuzzLoadQuantGGUF(f *testing.F) {
	s := spec.Spec{Name: "z", Dim: 32, FFNDim: 32, Layers: 1, Heads: 2, KVHeads: 1, Vocab: 3, MaxSeq: 2}
	s.SetDefaults()
	p := model.NewParams(&s)
	for i := range p.Data {
		p.Data[i] = float32(i%7) - 3
	}
	kvs, _ := ggufMetadata(p, nil, false)
	for _, ty := range []gguf.GGMLType{gguf.TypeQ8_0, gguf.TypeQ4_0} {
		ts, _ := ggufTensors(p, false)
		for i, w := range ts {
			if quant.Quantizable(w.Name, w.Dims) {
				ts[i].Type = ty
				ts[i].Data, _ = quant.Quantize(ty, p.T(w.Name))
			}
		}
		var b bytes.Buffer
		if err := gguf.Write(&b, kvs, ts); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := gguf.Parse(data)
		if err != nil {
			return
		}
		q, err := FromGGUF(g)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if _, n := model.Layout(&q.Spec); len(q.Data) != n {
			t.Fatalf("%d floats, layout needs %d", len(q.Data), n)
		}
	})
}

// A llama.cpp Q4_0 file keeps output.weight in Q6_K: it loads, decoded as
// runtime/quant decodes Q6_K (checked against ggml by quant/ggmlcheck).
func TestLoadQ6KOutput(t *testing.T) {
	raw := make([]byte, 5*quant.Q6KBlockBytes)
	r := rand.New(rand.NewPCG(9, 9))
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	for b := 0; b < 5; b++ {
		raw[b*quant.Q6KBlockBytes+208], raw[b*quant.Q6KBlockBytes+209] = 0x00, 0x20 // d = 2^-7
	}
	path := q6kOutputFile(t, raw)
	got, f, err := LoadGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	want := make([]float32, 5*256)
	quant.DequantizeQ6K(want, raw)
	out := got.T(model.Output)
	for i := range want {
		if out[i] != want[i] {
			t.Fatalf("output.weight[%d] = %g, want %g", i, out[i], want[i])
		}
	}
	if got.Spec.Quant != "f32" {
		t.Errorf("quant %q: only the layer matrices name it", got.Spec.Quant)
	}
}

// q6kOutputFile writes a float GGUF of a 256-wide model whose output.weight
// (5 rows) is the Q6_K blocks raw, as llama.cpp's quantize leaves it.
func q6kOutputFile(t *testing.T, raw []byte) string {
	t.Helper()
	s := spec.Spec{Name: "k", Dim: 256, FFNDim: 256, Layers: 1, Heads: 2, KVHeads: 1, Vocab: 5, MaxSeq: 4}
	s.SetDefaults()
	p := model.NewParams(&s)
	kvs, _ := ggufMetadata(p, nil, false)
	ts, _ := ggufTensors(p, false)
	for i, w := range ts {
		if w.Name == model.Output {
			ts[i] = gguf.WriteTensor{Name: w.Name, Dims: w.Dims, Type: gguf.TypeQ6_K, Data: raw}
		}
	}
	path := filepath.Join(t.TempDir(), "q6k.gguf")
	if err := gguf.WriteFile(path, kvs, ts); err != nil {
		t.Fatal(err)
	}
	return path
}
