package posttrain

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
)

func TestDPOHandCase(t *testing.T) {
	// β = 0.5; policy chosen −3, rejected −5; reference −4, −4:
	// z = 0.5·((−3+4) − (−5+4)) = 1; loss = log(1+e⁻¹) = 0.3132617;
	// d/dπc = −β·σ(−1) = −0.5·0.2689414 = −0.1344707.
	l, dc, dr := DPO(0.5, -3, -5, -4, -4)
	if math.Abs(l-0.31326168751822286) > 1e-12 || math.Abs(dc+0.13447071068499755) > 1e-12 || math.Abs(dr-0.13447071068499755) > 1e-12 {
		t.Fatalf("DPO = %g, %g, %g", l, dc, dr)
	}
	// Policy equal to reference: log 2.
	if l, _, _ := DPO(0.1, -7, -2, -7, -2); math.Abs(l-math.Ln2) > 1e-12 {
		t.Fatalf("DPO at the reference = %g", l)
	}
}

// microModel is a model small enough for finite differences.
func microModel(t *testing.T, seed uint64) (*model.Params, *spec.Spec) {
	s := &spec.Spec{Name: "micro", Vocab: 13, Dim: 8, Layers: 1, Heads: 2, KVHeads: 1, FFNDim: 12, MaxSeq: 8,
		NormEps: 1e-5, RopeTheta: 10000}
	p := model.NewParams(s)
	rng := rand.New(rand.NewPCG(seed, 3))
	for _, ts := range p.Tensors {
		d := p.T(ts.Name)
		for i := range d {
			if len(ts.Shape) == 1 {
				d[i] = 1 + 0.1*float32(rng.NormFloat64())
			} else {
				d[i] = 0.4 * float32(rng.NormFloat64())
			}
		}
	}
	return p, s
}

func microSeqs(rng *rand.Rand, n, T, V int) []seq {
	out := make([]seq, n)
	for i := range out {
		L := T - rng.IntN(3)
		s := seq{ids: make([]int, L), train: make([]bool, L)}
		for j := range L {
			s.ids[j] = rng.IntN(V)
			s.train[j] = j >= 3
		}
		out[i] = s
	}
	return out
}

// checkGrad compares grads with the directional derivative of loss along
// a random direction (per tensor).
func checkGrad(t *testing.T, p *model.Params, grads []float32, loss func() float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(9, 9))
	const H = 1e-3
	for _, ts := range p.Tensors {
		w := p.Data[ts.Off : ts.Off+ts.Len()]
		orig := append([]float32(nil), w...)
		sign := make([]float32, len(w))
		var a float64
		for i := range sign {
			sign[i] = float32(2*rng.IntN(2) - 1)
			a += float64(sign[i]) * float64(grads[ts.Off+i])
		}
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
		if rel := math.Abs(a-num) / (1e-3 + math.Max(math.Abs(a), math.Abs(num))); rel > 3e-3 {
			t.Errorf("%s: directional derivative analytic %.7g, numeric %.7g", ts.Name, a, num)
		}
	}
}

// TestDPOGradient: the gradient DPOTrain's step backpropagates (sequence
// coefficients through the token log-probs) is the DPO loss's.
func TestDPOGradient(t *testing.T) {
	p, s := microModel(t, 1)
	m, _ := generic.New(p)
	P, T, V := 2, 8, s.Vocab
	tri, _ := m.(model.Trainable).NewTrainer(2*P, T)
	tr := tri.(model.GradTrainer)
	rng := rand.New(rand.NewPCG(4, 4))
	ss := microSeqs(rng, 2*P, T, V)
	ref := [][2]float64{{-20, -21}, {-19, -18.5}}
	N := 2 * P * T
	tokens, targets, losses := make([]int32, N), make([]int32, N), make([]float64, N)
	loss := func() (float64, []float64) {
		lp := seqLogProbs(tr, ss, T, tokens, targets, losses)
		var l float64
		coef := make([]float64, 2*P)
		for k := range P {
			lk, dc, dr := DPO(0.7, lp[2*k], lp[2*k+1], ref[k][0], ref[k][1])
			l += lk / float64(P)
			coef[2*k], coef[2*k+1] = dc/float64(P), dr/float64(P)
		}
		return l, coef
	}
	tr.ZeroGrads()
	_, coef := loss()
	backwardTokenCoef(tr, targets, N, V, func(n int) float64 { return coef[n/T] })
	grads := append([]float32(nil), tr.Grads()...)
	checkGrad(t, p, grads, func() float64 { l, _ := loss(); return l })
}

// TestDPOTrain: on synthetic pairs the policy's held-out preference
// accuracy against the reference rises above one half.
func TestDPOTrain(t *testing.T) {
	dir := t.TempDir()
	data, val := prefData(t, dir, 40, 16)
	cfg := DPOConfig{Common: Common{Spec: tinySpec(), Tok: tok512(t), Hyper: hyper(30), Batch: 4, Seq: 128}, Data: data, Val: val, Beta: 0.1}
	cfg.Out = filepath.Join(dir, "dpo")
	res, err := DPOTrain(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("held-out %v", res.Metrics)
	if !(res.Metrics["val_pref_acc"] > 0.5) || !(res.Metrics["val_loss"] < 0.5) {
		t.Fatalf("held-out DPO figures %v", res.Metrics)
	}
	if _, err := DPOTrain(context.Background(), DPOConfig{Common: cfg.Common, Data: data, Beta: 0}); err == nil {
		t.Fatal("β 0 accepted")
	}
}
