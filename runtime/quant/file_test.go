package quant

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelc/modelc/gguf"
)

func TestQuantizeFile(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	f32 := func(n int) []byte {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		b := make([]byte, 4*n)
		gguf.F32sToBytes(b, x)
		return b
	}
	h := make([]byte, 2*64*3)
	gguf.F32sToF16s(h, make([]float32, 64*3))
	kvs := []gguf.KV{
		{Key: gguf.KeyArchitecture, Value: "llama"},
		{Key: gguf.KeyFileType, Value: uint32(0)},
		{Key: gguf.KeyTokens, Value: []string{"a", "b"}},
	}
	ts := []gguf.WriteTensor{
		{Name: "m", Dims: []uint64{64, 3}, Type: gguf.TypeF32, Data: f32(192)},
		{Name: "h", Dims: []uint64{64, 3}, Type: gguf.TypeF16, Data: h},
		{Name: "odd", Dims: []uint64{40, 2}, Type: gguf.TypeF32, Data: f32(80)},
		{Name: "oddh", Dims: []uint64{40, 1}, Type: gguf.TypeF16, Data: make([]byte, 80)},
		{Name: "norm", Dims: []uint64{64}, Type: gguf.TypeF32, Data: f32(64)},
	}
	var buf bytes.Buffer
	if err := gguf.Write(&buf, kvs, ts); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for _, ty := range []gguf.GGMLType{gguf.TypeQ8_0, gguf.TypeQ4_0} {
		okv, ots, changes, err := QuantizeFile(f, ty)
		if err != nil {
			t.Fatal(err)
		}
		wantTypes := map[string]gguf.GGMLType{"m": ty, "h": ty, "odd": gguf.TypeF32, "oddh": gguf.TypeF16, "norm": gguf.TypeF32}
		for i, w := range ots {
			if w.Type != wantTypes[w.Name] || changes[i].To != w.Type {
				t.Errorf("%s: %s became %s, want %s", ty, w.Name, w.Type, wantTypes[w.Name])
			}
		}
		// The quantised F32 matrix is exactly Quantize of its values.
		x := make([]float32, 192)
		gguf.BytesToF32s(x, ts[0].Data)
		want, _ := Quantize(ty, x)
		if !bytes.Equal(ots[0].Data, want) {
			t.Errorf("%s: tensor m bytes differ from Quantize", ty)
		}
		if !bytes.Equal(ots[2].Data, ts[2].Data) {
			t.Errorf("%s: kept tensor changed", ty)
		}
		out := filepath.Join(t.TempDir(), "q.gguf")
		if err := gguf.WriteFile(out, okv, ots); err != nil {
			t.Fatal(err)
		}
		g, err := gguf.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		ft, _ := g.Uint32(gguf.KeyFileType)
		wantFT, _ := FileType(ty)
		qv, _ := g.Uint32(KeyQuantizationVersion)
		toks, _ := g.Strings(gguf.KeyTokens)
		if ft != wantFT || qv != 2 || len(toks) != 2 {
			t.Errorf("%s: file_type %d (want %d), quantization_version %d, tokens %v", ty, ft, wantFT, qv, toks)
		}
		g.Close()
	}
	if _, _, _, err := QuantizeFile(f, gguf.TypeQ4_1); err == nil || !strings.Contains(err.Error(), "Q4_1") {
		t.Errorf("Q4_1 target: %v", err)
	}
	if err := Decode(gguf.TypeQ6_K, make([]float32, 256), make([]byte, 210)); err == nil || !strings.Contains(err.Error(), "Q6_K") {
		t.Errorf("Q6_K decode: %v", err)
	}
	if err := Decode(gguf.TypeQ8_0, make([]float32, 32), make([]byte, 33)); err == nil || !strings.Contains(err.Error(), "misaligned") {
		t.Errorf("short Q8_0: %v", err)
	}
	if _, err := ParseType("q5_0"); err == nil {
		t.Error("q5_0 parsed")
	}
}
