package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestMoERoute(t *testing.T) {
	logits := []float32{0, float32(math.Log(3)), float32(math.Log(2)), float32(math.Log(3))}
	probs, w, sel := make([]float32, 4), make([]float32, 2), make([]int32, 2)
	MoERoute(sel, w, probs, logits)
	// probs 1/9, 3/9, 2/9, 3/9: experts 1 and 3 tie; the lower index leads.
	if !slices.Equal(sel, []int32{1, 3}) {
		t.Fatalf("sel %v, want [1 3]", sel)
	}
	for i, want := range []float32{1. / 9, 3. / 9, 2. / 9, 3. / 9} {
		if math.Abs(float64(probs[i]-want)) > 1e-6 {
			t.Fatalf("probs %v", probs)
		}
	}
	if math.Abs(float64(w[0]-0.5)) > 1e-6 || math.Abs(float64(w[1]-0.5)) > 1e-6 {
		t.Fatalf("weights %v, want 0.5 0.5", w)
	}
	sel1, w1 := make([]int32, 3), make([]float32, 3)
	MoERoute(sel1, w1, probs, logits)
	if !slices.Equal(sel1, []int32{1, 3, 2}) || math.Abs(float64(w1[2]-0.25)) > 1e-6 {
		t.Fatalf("top 3: sel %v weights %v", sel1, w1)
	}
}

// TestMoERouteBackward compares the routing gradient with central
// differences of L = Σ_j c_j·w_j + Σ_e a_e·probs_e (random c, a) in the
// logits, away from any tie in the selection.
func TestMoERouteBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for trial := range 50 {
		E, K := 2+rng.IntN(7), 1
		K += rng.IntN(E)
		logits := make([]float32, E)
		for i := range logits {
			logits[i] = float32(rng.NormFloat64())
		}
		c, a := make([]float32, K), make([]float32, E)
		for i := range c {
			c[i] = float32(rng.NormFloat64())
		}
		for i := range a {
			a[i] = float32(rng.NormFloat64())
		}
		probs, w, sel := make([]float32, E), make([]float32, K), make([]int32, K)
		MoERoute(sel, w, probs, logits)
		sel0 := slices.Clone(sel)
		dl := make([]float32, E)
		MoERouteBackward(dl, c, a, probs, sel, w)
		loss := func() (float64, bool) {
			MoERoute(sel, w, probs, logits)
			var l float64
			for j := range K {
				l += float64(c[j]) * float64(w[j])
			}
			for e := range E {
				l += float64(a[e]) * float64(probs[e])
			}
			return l, slices.Equal(sel, sel0)
		}
		const h = 1e-3
		for i := range E {
			orig := logits[i]
			logits[i] = orig + h
			lp, ok1 := loss()
			logits[i] = orig - h
			lm, ok2 := loss()
			logits[i] = orig
			if !ok1 || !ok2 {
				continue
			}
			num := (lp - lm) / (2 * h)
			if math.Abs(num-float64(dl[i])) > 2e-3*(1+math.Abs(num)) {
				t.Fatalf("trial %d (E %d, K %d): d logit %d = %g, numeric %g", trial, E, K, i, dl[i], num)
			}
		}
	}
}
