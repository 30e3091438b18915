package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
)

func TestAdamWOneStep(t *testing.T) {
	s := &spec.Spec{Vocab: 1, Dim: 1, Layers: 1, Heads: 1, KVHeads: 1, FFNDim: 1, MaxSeq: 1}
	p := model.NewParams(s)
	for i := range p.Data {
		p.Data[i] = 1
	}
	g := make([]float32, len(p.Data))
	for i := range g {
		g[i] = 0.5
	}
	o := NewAdamW(p, 0.9, 0.999, 0.1)
	o.Update(p.Data, g, 0.1)
	// m = 0.05, v = 0.00025; bias corrections 0.1 and 0.001 give an update
	// of lr·(m/0.1)/(√(v/0.001)) = 0.1·0.5/0.5 = 0.1; decay first multiplies
	// matrices by 1 − lr·wd = 0.99.
	for _, ts := range p.Tensors {
		want := float32(0.89)
		if len(ts.Shape) == 1 {
			want = 0.9
		}
		if got := p.T(ts.Name)[0]; math.Abs(float64(got-want)) > 1e-6 {
			t.Errorf("%s after one step = %v, want %v", ts.Name, got, want)
		}
	}
}

func TestAdamWMatchesFloat64(t *testing.T) {
	s := &spec.Spec{Vocab: 3, Dim: 4, Layers: 1, Heads: 2, KVHeads: 1, FFNDim: 5, MaxSeq: 2}
	p := model.NewParams(s)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range p.Data {
		p.Data[i] = float32(rng.NormFloat64())
	}
	ref := make([]float64, len(p.Data))
	for i, v := range p.Data {
		ref[i] = float64(v)
	}
	m, v := make([]float64, len(ref)), make([]float64, len(ref))
	o := NewAdamW(p, 0.9, 0.95, 0.1)
	g := make([]float32, len(p.Data))
	for step := 1; step <= 5; step++ {
		lr := 0.01 * float64(step)
		for i := range g {
			g[i] = float32(rng.NormFloat64())
		}
		o.Update(p.Data, g, lr)
		for _, ts := range p.Tensors {
			for i := ts.Off; i < ts.Off+ts.Len(); i++ {
				if len(ts.Shape) == 2 {
					ref[i] *= 1 - lr*0.1
				}
				gi := float64(g[i])
				m[i] = 0.9*m[i] + 0.1*gi
				v[i] = 0.95*v[i] + 0.05*gi*gi
				mh := m[i] / (1 - math.Pow(0.9, float64(step)))
				vh := v[i] / (1 - math.Pow(0.95, float64(step)))
				ref[i] -= lr * mh / (math.Sqrt(vh) + 1e-8)
			}
		}
	}
	for i := range ref {
		if math.Abs(ref[i]-float64(p.Data[i])) > 1e-5 {
			t.Fatalf("parameter %d = %v, float64 AdamW gives %v", i, p.Data[i], ref[i])
		}
	}
}

func TestClipGradNorm(t *testing.T) {
	g := []float32{3, 4}
	if n := ClipGradNorm(g, 10); n != 5 || g[0] != 3 {
		t.Fatalf("norm 5 under a limit of 10: got norm %v, grads %v", n, g)
	}
	if n := ClipGradNorm(g, 1); n != 5 || math.Abs(float64(g[0])-0.6) > 1e-6 || math.Abs(float64(g[1])-0.8) > 1e-6 {
		t.Fatalf("clipped to 1: norm %v, grads %v, want [0.6 0.8]", n, g)
	}
}

func TestSchedule(t *testing.T) {
	s := Schedule{LR: 1e-3, MinLR: 1e-4, Warmup: 9, Total: 109}
	for _, c := range []struct {
		step int
		want float64
	}{{0, 1e-4}, {4, 5e-4}, {9, 1e-3}, {59, 5.5e-4}, {109, 1e-4}, {500, 1e-4}} {
		if got := s.At(c.step); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("At(%d) = %g, want %g", c.step, got, c.want)
		}
	}
	prev := s.At(9)
	for step := 10; step <= 109; step++ {
		if lr := s.At(step); lr > prev {
			t.Fatalf("lr rises after warm-up at step %d", step)
		}
		prev = s.At(step)
	}
}
