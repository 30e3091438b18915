package checkpoint

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/model"
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
