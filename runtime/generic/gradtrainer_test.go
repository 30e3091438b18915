package generic

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/modelc/modelc/runtime/model"
)

var _ model.GradTrainer = (*Trainer)(nil)

// TestBackwardGradMatchesBackward: handing BackwardGrad the mean
// cross-entropy's own logit gradient gives Backward's gradients.
func TestBackwardGradMatchesBackward(t *testing.T) {
	s := tinySpec(model.ObjectiveCausal, false)
	m := randomModel(t, s, 3)
	B, T := 2, 6
	tokens, targets := batch(s, B, T, 4)
	targets[3] = model.IgnoreTarget
	tr, _ := m.NewTrainer(B, T)
	gt := tr.(model.GradTrainer)
	gt.Forward(tokens, targets, B, T)
	gt.Backward()
	want := append([]float32(nil), gt.Grads()...)
	gt.ZeroGrads()
	gt.Forward(tokens, targets, B, T)
	p := gt.Probs()
	M, V := len(p)/s.Vocab, s.Vocab
	if M != B*T-1 {
		t.Fatalf("Probs has %d rows, want %d", M, B*T-1)
	}
	r := 0
	for n, tg := range targets {
		if tg < 0 {
			continue
		}
		for v := range V {
			p[r*V+v] /= float32(M)
		}
		p[r*V+int(tg)] -= 1 / float32(M)
		r++
		_ = n
	}
	gt.BackwardGrad(p, nil)
	for i, g := range gt.Grads() {
		if math.Abs(float64(g-want[i])) > 1e-6*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("grad %d: BackwardGrad %g, Backward %g", i, g, want[i])
		}
	}
}

// TestBackwardGradObjective: the gradient of a weighted per-token loss plus
// a linear function of the final hidden state, checked against finite
// differences along a random direction per tensor.
func TestBackwardGradObjective(t *testing.T) {
	s := tinySpec(model.ObjectiveCausal, true)
	m := randomModel(t, s, 8)
	B, T := 2, 5
	N, V, d := B*T, s.Vocab, s.Dim
	tokens, targets := batch(s, B, T, 9)
	targets[0], targets[7] = model.IgnoreTarget, model.IgnoreTarget
	rng := rand.New(rand.NewPCG(1, 2))
	w := make([]float64, N)
	for i := range w {
		w[i] = rng.Float64()*2 - 1
	}
	c := make([]float32, N*d)
	for i := range c {
		c[i] = float32(rng.NormFloat64())
	}
	tri, _ := m.NewTrainer(B, T)
	tr := tri.(model.GradTrainer)
	losses := make([]float64, N)
	objective := func() float64 {
		tr.Forward(tokens, targets, B, T)
		tr.TokenLosses(losses)
		var j float64
		for n := range N {
			j += w[n] * losses[n]
		}
		for i, h := range tr.Hidden() {
			j += float64(c[i]) * float64(h)
		}
		return j
	}
	objective()
	for n, tg := range targets {
		if tg < 0 && losses[n] != 0 {
			t.Fatalf("TokenLosses[%d] = %g for an ignored target", n, losses[n])
		}
		if tg >= 0 && !(losses[n] > 0) {
			t.Fatalf("TokenLosses[%d] = %g", n, losses[n])
		}
	}
	tr.ZeroGrads()
	objective()
	p := tr.Probs()
	r := 0
	for n, tg := range targets {
		if tg < 0 {
			continue
		}
		for v := range V {
			p[r*V+v] *= float32(w[n])
		}
		p[r*V+int(tg)] -= float32(w[n])
		r++
	}
	tr.BackwardGrad(p, c)
	grads := append([]float32(nil), tr.Grads()...)
	data := m.p.Data
	const H = 2e-3
	for _, ts := range m.p.Tensors {
		sign := make([]float32, ts.Len())
		var a float64
		for i := range sign {
			sign[i] = float32(2*rng.IntN(2) - 1)
			a += float64(sign[i]) * float64(grads[ts.Off+i])
		}
		wt := data[ts.Off : ts.Off+ts.Len()]
		orig := append([]float32(nil), wt...)
		diff := func(h float32) float64 {
			for i := range wt {
				wt[i] = orig[i] + h*sign[i]
			}
			lp := objective()
			for i := range wt {
				wt[i] = orig[i] - h*sign[i]
			}
			lm := objective()
			copy(wt, orig)
			return (lp - lm) / (2 * float64(h))
		}
		num := (4*diff(H) - diff(2*H)) / 3
		if rel := math.Abs(a-num) / (0.1 + math.Max(math.Abs(a), math.Abs(num))); rel > 2e-3 {
			t.Errorf("%s: directional derivative analytic %.7g, numeric %.7g (relative error %.2g)", ts.Name, a, num, rel)
		}
	}
}
