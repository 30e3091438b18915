package checkpoint

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
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
