package checkpoint

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/quant"
	"github.com/modelc/modelc/spec"
)

func moeParams(t *testing.T, shared bool) *model.Params {
	t.Helper()
	s := &spec.Spec{Name: "moe", Vocab: 7, Dim: 8, Layers: 2, Heads: 2, KVHeads: 1, FFNDim: 12, MaxSeq: 16,
		NormEps: 1e-5, RopeTheta: 10000, MoE: &spec.MoE{Experts: 4, TopK: 2, FFNDim: 6, SharedExpert: shared}}
	s.SetDefaults()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	p := model.NewParams(s)
	rng := rand.New(rand.NewPCG(4, 4))
	for i := range p.Data {
		p.Data[i] = float32(rng.NormFloat64())
	}
	return p
}

// TestMoEGGUFRoundTrip: an MoE model saves with llama.cpp's names, dims and
// metadata, and loads back with its spec and weights.
func TestMoEGGUFRoundTrip(t *testing.T) {
	for _, shared := range []bool{false, true} {
		p := moeParams(t, shared)
		path := filepath.Join(t.TempDir(), "moe.gguf")
		if err := SaveGGUF(path, p, nil, false); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		for key, want := range map[string]uint32{"llama.expert_count": 4, "llama.expert_used_count": 2, "llama.feed_forward_length": 6} {
			if v, err := f.Uint32(key); err != nil || v != want {
				t.Errorf("shared=%v: %s = %d, %v; want %d", shared, key, v, err, want)
			}
		}
		dims := map[string][]uint64{
			"blk.1.ffn_gate_inp.weight":  {8, 4},
			"blk.1.ffn_gate_exps.weight": {8, 6, 4},
			"blk.1.ffn_up_exps.weight":   {8, 6, 4},
			"blk.1.ffn_down_exps.weight": {6, 8, 4},
		}
		if shared {
			dims["blk.0.ffn_gate_shexp.weight"] = []uint64{8, 6}
			dims["blk.0.ffn_down_shexp.weight"] = []uint64{6, 8}
		}
		for name, want := range dims {
			info, ok := f.Tensor(name)
			if !ok || !slices.Equal(info.Dims, want) {
				t.Errorf("shared=%v: %s dims %v (present %v), want %v", shared, name, info.Dims, ok, want)
			}
		}
		f.Close()
		q, g, err := LoadGGUF(path)
		if err != nil {
			t.Fatal(err)
		}
		g.Close()
		if m := q.Spec.MoE; m == nil || *m != *p.Spec.MoE {
			t.Fatalf("shared=%v: loaded moe %+v, saved %+v", shared, m, *p.Spec.MoE)
		}
		if !sameBits(q.Data, p.Data) {
			t.Fatalf("shared=%v: weights differ after the round trip", shared)
		}
		// The binary compiled for the spec takes the file: its dense ffn_dim
		// (12) is not the file's feed_forward_length (6), and aux_loss_coef,
		// training's, is not in the file at all.
		want := p.Spec
		wm := *want.MoE
		wm.AuxLossCoef = 0.05
		want.MoE = &wm
		if err := model.CheckShape(&q.Spec, &want); err != nil {
			t.Errorf("shared=%v: the spec's binary refuses its own file: %v", shared, err)
		}
		dense := p.Spec
		dense.MoE = nil
		if err := model.CheckShape(&q.Spec, &dense); err == nil || !strings.Contains(err.Error(), "model file has moe {experts 4, top_k 2, ffn_dim 6, shared_expert") {
			t.Errorf("shared=%v: an MoE file for a dense binary: %v", shared, err)
		}
		wm.SharedExpert = !shared
		if err := model.CheckShape(&q.Spec, &want); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("shared_expert %v}, this binary was compiled for moe {experts 4, top_k 2, ffn_dim 6, shared_expert %v}", shared, !shared)) {
			t.Errorf("shared=%v: a shared-expert mismatch: %v", shared, err)
		}

		// F16: the expert stacks are stored as F16 too.
		path16 := filepath.Join(t.TempDir(), "moe16.gguf")
		if err := SaveGGUF(path16, p, nil, true); err != nil {
			t.Fatal(err)
		}
		f, err = gguf.Open(path16)
		if err != nil {
			t.Fatal(err)
		}
		if info, _ := f.Tensor("blk.0.ffn_down_exps.weight"); info.Type != gguf.TypeF16 {
			t.Errorf("f16 save: expert stack is %s", info.Type)
		}
		f.Close()
	}
}

// FuzzLoadMoEGGUF: mutated MoE files either fail with a one-line error or
// load, and what loads saves and loads back to the same spec and floats.
func FuzzLoadMoEGGUF(f *testing.F) {
	for _, shared := range []bool{false, true} {
		s := spec.Spec{Name: "z", Dim: 4, FFNDim: 4, Layers: 1, Heads: 2, KVHeads: 1, Vocab: 3, MaxSeq: 2,
			MoE: &spec.MoE{Experts: 2, TopK: 1, FFNDim: 2, SharedExpert: shared}}
		s.SetDefaults()
		var b bytes.Buffer
		if err := WriteGGUF(&b, model.NewParams(&s), nil, false); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := gguf.Parse(data)
		if err != nil {
			return
		}
		p, err := FromGGUF(g)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		var b bytes.Buffer
		if err := WriteGGUF(&b, p, nil, false); err != nil {
			t.Fatalf("save of a loaded model: %v", err)
		}
		g2, err := gguf.Parse(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		q, err := FromGGUF(g2)
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
		if (p.Spec.MoE == nil) != (q.Spec.MoE == nil) || (p.Spec.MoE != nil && *p.Spec.MoE != *q.Spec.MoE) {
			t.Fatalf("reload changed moe: %+v vs %+v", p.Spec.MoE, q.Spec.MoE)
		}
		if !sameBits(p.Data, q.Data) {
			t.Fatal("reload changed the weights")
		}
	})
}

// TestMoEQuantizedLoads: a mixture quantised as llama.cpp does (expert stacks
// in Q8_0, router F32) loads with each stack dequantised and the router
// exact, so a compiled float model runs it.
func TestMoEQuantizedLoads(t *testing.T) {
	s := &spec.Spec{Name: "moe", Vocab: 7, Dim: 32, Layers: 1, Heads: 2, KVHeads: 1, FFNDim: 32, MaxSeq: 16,
		NormEps: 1e-5, RopeTheta: 10000, MoE: &spec.MoE{Experts: 3, TopK: 2, FFNDim: 32}}
	s.SetDefaults()
	p := model.NewParams(s)
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range p.Data {
		p.Data[i] = float32(rng.NormFloat64())
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "moe.gguf")
	if err := SaveGGUF(path, p, nil, false); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the kept tensors' data is the file's mapping
	kvs, ts, _, err := quant.QuantizeFile(f, gguf.TypeQ8_0)
	if err != nil {
		t.Fatal(err)
	}
	qpath := filepath.Join(dir, "moe-q8.gguf")
	if err := gguf.WriteFile(qpath, kvs, ts); err != nil {
		t.Fatal(err)
	}
	q, g, err := LoadGGUF(qpath)
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	for _, w := range ts {
		got, orig := q.T(w.Name), p.T(w.Name)
		want := orig
		switch {
		case w.Name == "blk.0.ffn_gate_inp.weight" && w.Type != gguf.TypeF32:
			t.Fatalf("router stored as %s", w.Type)
		case strings.HasSuffix(w.Name, "_exps.weight") && w.Type != gguf.TypeQ8_0:
			t.Fatalf("%s stored as %s", w.Name, w.Type)
		case w.Type == gguf.TypeQ8_0:
			want = make([]float32, len(orig))
			quant.Dequantize(gguf.TypeQ8_0, want, w.Data)
		}
		if !sameBits(got, want) {
			t.Fatalf("%s (%s): loaded weights differ from the file's", w.Name, w.Type)
		}
	}
}
