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
		// A mixture's expert stack is quantised as llama.cpp does; its router is not.
		{Name: "blk.0.ffn_up_exps.weight", Dims: []uint64{32, 2, 3}, Type: gguf.TypeF32, Data: f32(192)},
		{Name: "blk.0.ffn_gate_inp.weight", Dims: []uint64{64, 3}, Type: gguf.TypeF32, Data: f32(192)},
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
		wantTypes := map[string]gguf.GGMLType{"m": ty, "h": ty, "odd": gguf.TypeF32, "oddh": gguf.TypeF16, "norm": gguf.TypeF32,
			"blk.0.ffn_up_exps.weight": ty, "blk.0.ffn_gate_inp.weight": gguf.TypeF32}
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
		if !bytes.Equal(ots[2].Data, ts[2].Data) || !bytes.Equal(ots[6].Data, ts[6].Data) {
			t.Errorf("%s: kept tensor changed", ty)
		}
		gguf.BytesToF32s(x, ts[5].Data)
		if want, _ := Quantize(ty, x); !bytes.Equal(ots[5].Data, want) {
			t.Errorf("%s: the expert stack's bytes differ from Quantize", ty)
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
	if err := Decode(gguf.TypeQ5_K, make([]float32, 256), make([]byte, 176)); err == nil || !strings.Contains(err.Error(), "Q5_K") {
		t.Errorf("Q5_K decode: %v", err)
	}
	if err := Decode(gguf.TypeQ8_0, make([]float32, 32), make([]byte, 33)); err == nil || !strings.Contains(err.Error(), "misaligned") {
		t.Errorf("short Q8_0: %v", err)
	}
	if _, err := ParseType("q5_0"); err == nil {
		t.Error("q5_0 parsed")
	}
}

// TestQ6KKnownBlock decodes a super-block built by hand: d = 0.5, scale of
// sub-block s = s+1, and codes placed so that each of the four weights a
// (ql, qh) byte pair feeds, in both halves, is distinct.
func TestQ6KKnownBlock(t *testing.T) {
	b := make([]byte, Q6KBlockBytes)
	for s := 0; s < 16; s++ {
		b[192+s] = byte(s + 1)
	}
	b[208], b[209] = 0x00, 0x38 // 0.5
	// First half, l = 17: ql[17] = 0x3a (low 10 → w17, high 3 → w81),
	// ql[49] = 0x5c (low 12 → w49, high 5 → w113), qh[17] = 0b10_01_11_00
	// (bits 0-1: 0 → w17, 2-3: 3 → w49, 4-5: 1 → w81, 6-7: 2 → w113).
	b[17], b[49], b[128+17] = 0x3a, 0x5c, 0x9c
	// Second half, l = 3: ql[64+3] low 1 → w131; qh[160+3] bits 0-1: 2 → +32.
	b[64+3], b[128+32+3] = 0x01, 0x02
	y := make([]float32, 256)
	if err := Decode(gguf.TypeQ6_K, y, b); err != nil {
		t.Fatal(err)
	}
	// weight = 0.5 · scale · (q - 32); sub-block of weight w is w/16.
	want := map[int]float32{
		17:  0.5 * 2 * float32(10-32),    // sub-block 1
		49:  0.5 * 4 * float32(12+48-32), // sub-block 3
		81:  0.5 * 6 * float32(3+16-32),  // sub-block 5
		113: 0.5 * 8 * float32(5+32-32),  // sub-block 7
		131: 0.5 * 9 * float32(1+32-32),  // sub-block 8
		0:   0.5 * 1 * -32,               // all-zero code
		255: 0.5 * 16 * -32,              // last sub-block
	}
	for i, w := range want {
		if y[i] != w {
			t.Errorf("weight %d = %g, want %g", i, y[i], w)
		}
	}
}
