package qmodel

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/quant"
	"github.com/modelc/modelc/spec"
)

// file writes a random model of dim 64 (ffn 96: every matrix quantisable)
// in format t (F32 for 0) and parses it.
func file(t *testing.T, ty gguf.GGMLType, tied bool) *gguf.File {
	return fileFFN(t, ty, tied, 96)
}

func fileFFN(t *testing.T, ty gguf.GGMLType, tied bool, ffn int) *gguf.File {
	t.Helper()
	s := spec.Spec{Name: "q", Dim: 64, FFNDim: ffn, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 40, MaxSeq: 16, TieEmbeddings: tied}
	s.SetDefaults()
	p := model.NewParams(&s)
	r := rand.New(rand.NewPCG(1, 2))
	for _, tn := range p.Tensors {
		x := p.T(tn.Name)
		for i := range x {
			if len(tn.Shape) == 1 {
				x[i] = 1 + 0.1*float32(r.NormFloat64())
			} else {
				x[i] = 0.15 * float32(r.NormFloat64())
			}
		}
	}
	var b bytes.Buffer
	if err := checkpoint.WriteGGUF(&b, p, nil, false); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if ty == gguf.TypeF32 {
		return f
	}
	kvs, ts, _, err := quant.QuantizeFile(f, ty)
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := gguf.Write(&b, kvs, ts); err != nil {
		t.Fatal(err)
	}
	if f, err = gguf.Parse(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	return f
}

// An F32 file runs exactly as the generic model runs it.
func TestF32EqualsGeneric(t *testing.T) {
	for _, tied := range []bool{true, false} {
		f := file(t, gguf.TypeF32, tied)
		m, err := New(f)
		if err != nil {
			t.Fatal(err)
		}
		g, _ := generic.New(m.Params())
		a, b := m.NewSession(), g.NewSession()
		for pos, tok := range []int{1, 5, 39, 7} {
			la, lb := a.Forward(tok, pos), b.Forward(tok, pos)
			for i := range la {
				if la[i] != lb[i] {
					t.Fatalf("tied %v pos %d logit %d: %g, generic %g", tied, pos, i, la[i], lb[i])
				}
			}
		}
	}
}

// A quantised file: the integer path differs from float32 on the
// dequantised weights only by the 8-bit activations, a small fraction of
// the logits' spread; one matvec equals the reference.
func TestQuantisedCloseToDequantised(t *testing.T) {
	for _, ty := range []gguf.GGMLType{gguf.TypeQ8_0, gguf.TypeQ4_0} {
		f := file(t, ty, false)
		m, err := New(f)
		if err != nil {
			t.Fatal(err)
		}
		if m.ls[0].wq.t != ty || m.ls[1].dn.t != ty || m.out.t != ty {
			t.Fatalf("%s: matrices not kept quantised", ty)
		}
		if m.Spec().Quant != map[gguf.GGMLType]string{gguf.TypeQ8_0: "q8_0", gguf.TypeQ4_0: "q4_0"}[ty] {
			t.Fatalf("spec quant %q", m.Spec().Quant)
		}
		g, _ := generic.New(m.Params())
		a, b := m.NewSession(), g.NewSession()
		for pos, tok := range []int{1, 5, 39, 7, 0, 22} {
			la, lb := a.Forward(tok, pos), b.Forward(tok, pos)
			var diff, spread float64
			for i := range la {
				diff = max(diff, math.Abs(float64(la[i]-lb[i])))
				spread = max(spread, math.Abs(float64(lb[i])))
			}
			if diff == 0 || diff > 0.05*spread {
				t.Fatalf("%s pos %d: max |logit difference| %g, logits up to %g", ty, pos, diff, spread)
			}
		}
		// One matvec against quant.MatVec.
		ss := m.NewSession().(*Session)
		x := make([]float32, 64)
		for i := range x {
			x[i] = float32(i%9) - 4
		}
		ss.act(x)
		got := make([]float32, 64)
		ss.matvec(got, &m.ls[0].wq, x)
		want := make([]float32, 64)
		quant.MatVec(ty, want, m.ls[0].wq.q, x)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s matvec row %d: %g, reference %g", ty, i, got[i], want[i])
			}
		}
	}
}

// ffn_down rows of 80 are not whole blocks: the quantiser keeps them F32 and
// qmodel runs them in float32 beside the quantised matrices.
func TestMixedFile(t *testing.T) {
	f := fileFFN(t, gguf.TypeQ4_0, true, 80)
	m, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	if m.ls[0].dn.t != gguf.TypeF32 || m.ls[0].gate.t != gguf.TypeQ4_0 || m.out.t != gguf.TypeQ4_0 {
		t.Fatalf("types: down %s gate %s classifier %s", m.ls[0].dn.t, m.ls[0].gate.t, m.out.t)
	}
	g, _ := generic.New(m.Params())
	a, b := m.NewSession(), g.NewSession()
	for pos, tok := range []int{3, 9, 1} {
		la, lb := a.Forward(tok, pos), b.Forward(tok, pos)
		var diff, spread float64
		for i := range la {
			diff = max(diff, math.Abs(float64(la[i]-lb[i])))
			spread = max(spread, math.Abs(float64(lb[i])))
		}
		if diff == 0 || diff > 0.05*spread {
			t.Fatalf("pos %d: max |logit difference| %g, logits up to %g", pos, diff, spread)
		}
	}
}
