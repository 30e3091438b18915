package generic

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
)

// tinySpec is the shape every gradient check uses: small enough to perturb
// each parameter, with grouped-query attention (two heads share one kv head).
func tinySpec(objective string, tied bool) *spec.Spec {
	return &spec.Spec{
		Name: "tiny", Vocab: 11, Dim: 8, Layers: 2, Heads: 2, KVHeads: 1, FFNDim: 12, MaxSeq: 6,
		NormEps: 1e-5, RopeTheta: 10000, TieEmbeddings: tied, Objective: objective,
	}
}

// randomModel fills a tiny model with weights large enough that every path
// carries gradient; norm weights sit near one.
func randomModel(t *testing.T, s *spec.Spec, seed uint64) *Model {
	t.Helper()
	p := model.NewParams(s)
	rng := rand.New(rand.NewPCG(seed, 99))
	for _, ts := range p.Tensors {
		data := p.T(ts.Name)
		for i := range data {
			if len(ts.Shape) == 1 {
				data[i] = 1 + 0.2*float32(rng.NormFloat64())
			} else {
				data[i] = 0.4 * float32(rng.NormFloat64())
			}
		}
	}
	m, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	return m.(*Model)
}

func batch(s *spec.Spec, B, T int, seed uint64) (tokens, targets []int32) {
	rng := rand.New(rand.NewPCG(seed, 7))
	tokens, targets = make([]int32, B*T), make([]int32, B*T)
	for i := range tokens {
		tokens[i] = int32(rng.IntN(s.Vocab))
		targets[i] = int32(rng.IntN(s.Vocab))
		if s.Objective == model.ObjectiveMasked && rng.IntN(2) == 0 {
			targets[i] = model.IgnoreTarget
		}
	}
	return tokens, targets
}

// TestForwardMatchesSession: the batched causal forward gives the loss the
// one-token inference path gives.
func TestForwardMatchesSession(t *testing.T) {
	s := tinySpec(model.ObjectiveCausal, false)
	m := randomModel(t, s, 1)
	B, T := 2, 6
	tokens, targets := batch(s, B, T, 2)
	tr, err := m.NewTrainer(B, T)
	if err != nil {
		t.Fatal(err)
	}
	got := tr.Forward(tokens, targets, B, T)
	var want float64
	for b := 0; b < B; b++ {
		ss := m.NewSession()
		for pos := 0; pos < T; pos++ {
			logits := ss.Forward(int(tokens[b*T+pos]), pos)
			mx := logits[0]
			for _, v := range logits {
				mx = max(mx, v)
			}
			var z float64
			for _, v := range logits {
				z += math.Exp(float64(v - mx))
			}
			want += math.Log(z) - float64(logits[targets[b*T+pos]]-mx)
		}
	}
	want /= float64(B * T)
	if math.Abs(float64(got)-want) > 1e-5 {
		t.Fatalf("batched loss %g, session loss %g", got, want)
	}
}

// TestModelGradients checks every parameter's gradient of the whole tiny
// model against central differences, for both objectives, tied or not.
func TestModelGradients(t *testing.T) {
	for _, tc := range []struct {
		objective string
		tied      bool
	}{{model.ObjectiveCausal, false}, {model.ObjectiveMasked, false}, {model.ObjectiveCausal, true}, {model.ObjectiveMasked, true}} {
		s := tinySpec(tc.objective, tc.tied)
		m := randomModel(t, s, 3)
		B, T := 2, 6
		tokens, targets := batch(s, B, T, 4)
		tri, err := m.NewTrainer(B, T)
		if err != nil {
			t.Fatal(err)
		}
		tr := tri.(*Trainer)
		tr.ZeroGrads()
		tr.Forward(tokens, targets, B, T)
		tr.Backward()
		grads := append([]float32(nil), tr.Grads()...)
		// The mean of the per-row float64 losses, not Forward's float32 result:
		// one rounding less in what the differences see.
		loss := func() float64 {
			tr.Forward(tokens, targets, B, T)
			var s float64
			for _, l := range tr.rowLoss[:tr.M] {
				s += l
			}
			return s / float64(tr.M)
		}

		const h = 1e-2
		data := m.p.Data
		bad, worst := 0, 0.0
		for _, ts := range m.p.Tensors {
			for i := ts.Off; i < ts.Off+ts.Len(); i++ {
				// Central differences at h and h/2 combined (Richardson) cancel
				// the h² error term that the curvature of softmax makes large.
				diff := func(h float32) float64 {
					orig := data[i]
					data[i] = orig + h
					up := float64(data[i])
					lp := loss()
					data[i] = orig - h
					dn := float64(data[i])
					lm := loss()
					data[i] = orig
					return (lp - lm) / (up - dn)
				}
				num := (4*diff(h/2) - diff(h)) / 3
				a := float64(grads[i])
				// Float32 round-off in the loss bounds what one element can
				// show: about 5e-5 absolute. The directional check below is
				// the tight one.
				err := math.Abs(a-num) / (1e-4 + 1e-2*math.Max(math.Abs(a), math.Abs(num)))
				worst = max(worst, err)
				if err > 1 {
					if bad < 5 {
						t.Errorf("%s tied=%v: %s[%d]: analytic %.6g, numeric %.6g", tc.objective, tc.tied, ts.Name, i-ts.Off, a, num)
					}
					bad++
				}
			}
		}
		if bad > 0 {
			t.Errorf("%s tied=%v: %d of %d gradients differ", tc.objective, tc.tied, bad, len(data))
		}
		t.Logf("%s tied=%v: worst element error %.2g", tc.objective, tc.tied, worst)

		// Per tensor, a directional derivative along a random ±1 pattern
		// sums many elements' gradients: far above round-off, so it tells
		// apart a gradient that is off by a fraction of a percent.
		rng := rand.New(rand.NewPCG(5, 5))
		const H = 2e-3
		for _, ts := range m.p.Tensors {
			sign := make([]float32, ts.Len())
			var a float64
			for i := range sign {
				sign[i] = float32(2*rng.IntN(2) - 1)
				a += float64(sign[i]) * float64(grads[ts.Off+i])
			}
			w := data[ts.Off : ts.Off+ts.Len()]
			orig := append([]float32(nil), w...)
			diff := func(h float32) float64 {
				for i := range w {
					w[i] = orig[i] + h*sign[i]
				}
				lp := loss()
				for i := range w {
					w[i] = orig[i] - h*sign[i]
				}
				lm := loss()
				copy(w, orig)
				return (lp - lm) / (2 * float64(h))
			}
			num := (4*diff(H) - diff(2*H)) / 3
			if rel := math.Abs(a-num) / (0.1 + math.Max(math.Abs(a), math.Abs(num))); rel > 1e-3 {
				t.Errorf("%s tied=%v: %s: directional derivative analytic %.7g, numeric %.7g (relative error %.2g)", tc.objective, tc.tied, ts.Name, a, num, rel)
			}
		}
	}
}

// TestTrainerDeterministic: one thread or two, and a trainer made for a
// bigger batch than it runs, give the same loss and gradients bit for bit.
// Every pass is split into slices of a few rows, so slices start inside a
// sequence (T is odd) as they do on real shapes.
func TestTrainerDeterministic(t *testing.T) {
	dense := &spec.Spec{Name: "small", Vocab: 37, Dim: 32, Layers: 2, Heads: 4, KVHeads: 2, FFNDim: 48, MaxSeq: 32,
		NormEps: 1e-5, RopeTheta: 10000}
	moe := *dense
	moe.MoE = &spec.MoE{Experts: 4, TopK: 2, FFNDim: 24, SharedExpert: true, AuxLossCoef: 0.01}
	defer func(w int) { minWork = w }(minWork)
	minWork = 3 * 64 // three rows of Q|K|V a slice
	for _, s := range []*spec.Spec{dense, &moe} {
		m := randomModel(t, s, 9)
		B, T := 4, 23
		tokens, targets := batch(s, B, T, 10)
		run := func(procs, capB, capT int) (float32, []float32) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			tr, err := m.NewTrainer(capB, capT)
			if err != nil {
				t.Fatal(err)
			}
			loss := tr.Forward(tokens, targets, B, T)
			tr.Backward()
			return loss, tr.Grads()
		}
		l1, g1 := run(1, B, T)
		for _, c := range []struct{ procs, capB, capT int }{{2, B, T}, {4, B, T}, {1, B + 2, T + 8}} {
			l2, g2 := run(c.procs, c.capB, c.capT)
			if l1 != l2 {
				t.Fatalf("moe=%v %+v: loss %v, want %v", s.MoE != nil, c, l2, l1)
			}
			for i := range g1 {
				if g1[i] != g2[i] {
					t.Fatalf("moe=%v %+v: gradient %d is %v, want %v", s.MoE != nil, c, i, g2[i], g1[i])
				}
			}
		}
	}
}

func TestNewTrainerErrors(t *testing.T) {
	m := randomModel(t, tinySpec(model.ObjectiveCausal, false), 1)
	for _, c := range [][2]int{{0, 4}, {2, 0}, {2, 7}} {
		if _, err := m.NewTrainer(c[0], c[1]); err == nil {
			t.Errorf("NewTrainer(%d, %d) succeeded", c[0], c[1])
		}
	}
}
