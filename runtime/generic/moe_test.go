package generic

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/modelc/modelc/runtime/kernels"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
)

// tinyMoESpec: four experts, two chosen, optionally a shared expert.
func tinyMoESpec(shared bool, coef float64) *spec.Spec {
	s := tinySpec(model.ObjectiveCausal, false)
	s.MoE = &spec.MoE{Experts: 4, TopK: 2, FFNDim: 6, SharedExpert: shared, AuxLossCoef: coef}
	return s
}

// refMoE computes one row's MoE output the slow, obvious way: every expert
// evaluated, the probabilities sorted, the top k renormalised.
func refMoE(p *model.Params, l int, x []float32) []float64 {
	s := &p.Spec
	d, E, K, F := s.Dim, s.MoE.Experts, s.MoE.TopK, s.MoE.FFNDim
	router := p.T(model.LayerTensor(l, model.FFNGateInp))
	gate, up, down := p.T(model.LayerTensor(l, model.FFNGateExps)), p.T(model.LayerTensor(l, model.FFNUpExps)), p.T(model.LayerTensor(l, model.FFNDownExps))
	ffn := func(g, u, dn []float32) []float64 {
		h := make([]float64, F)
		for f := range F {
			var a, b float64
			for i := range d {
				a += float64(g[f*d+i]) * float64(x[i])
				b += float64(u[f*d+i]) * float64(x[i])
			}
			h[f] = a / (1 + math.Exp(-a)) * b
		}
		out := make([]float64, d)
		for i := range d {
			for f := range F {
				out[i] += float64(dn[i*F+f]) * h[f]
			}
		}
		return out
	}
	z := make([]float64, E)
	mx := math.Inf(-1)
	for e := range E {
		for i := range d {
			z[e] += float64(router[e*d+i]) * float64(x[i])
		}
		mx = max(mx, z[e])
	}
	var sum float64
	for e := range z {
		z[e] = math.Exp(z[e] - mx)
		sum += z[e]
	}
	idx := []int{}
	for e := range E {
		idx = append(idx, e)
	}
	sort.SliceStable(idx, func(a, b int) bool { return z[idx[a]] > z[idx[b]] })
	var tot float64
	for _, e := range idx[:K] {
		tot += z[e]
	}
	out := make([]float64, d)
	n := F * d
	for _, e := range idx[:K] {
		y := ffn(gate[e*n:(e+1)*n], up[e*n:(e+1)*n], down[e*n:(e+1)*n])
		for i := range out {
			out[i] += z[e] / tot * y[i]
		}
	}
	if s.MoE.SharedExpert {
		y := ffn(p.T(model.LayerTensor(l, model.FFNGateShexp)), p.T(model.LayerTensor(l, model.FFNUpShexp)), p.T(model.LayerTensor(l, model.FFNDownShexp)))
		for i := range out {
			out[i] += y[i]
		}
	}
	return out
}

func TestMoERowMatchesReference(t *testing.T) {
	for _, shared := range []bool{false, true} {
		m := randomModel(t, tinyMoESpec(shared, 0.01), 11)
		d := m.p.Spec.Dim
		rng := rand.New(rand.NewPCG(1, 2))
		ml := newMoELayer(m.p, 1)
		sc := newMoEScratch(ml, d)
		for trial := range 20 {
			x := make([]float32, d)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			got := make([]float32, d)
			m.moeRow(1, ml, got, x, sc)
			want := refMoE(m.p, 1, x)
			for i := range got {
				if math.Abs(float64(got[i])-want[i]) > 1e-4*(1+math.Abs(want[i])) {
					t.Fatalf("shared=%v trial %d: out[%d] = %g, reference %g", shared, trial, i, got[i], want[i])
				}
			}
		}
	}
}

// TestMoEUnchosenExpertsNotRead counts the expert weight reads of a
// decoding run, checks they are exactly the router's choices, and then
// poisons every expert that was not chosen with NaN: the logits must come
// out bit for bit the same, so those weights were never touched.
func TestMoEUnchosenExpertsNotRead(t *testing.T) {
	s := tinyMoESpec(false, 0.01)
	s.MoE.Experts, s.MoE.TopK = 8, 2
	m := randomModel(t, s, 21)
	tokens := []int{3, 1, 4}
	reads := map[[2]int]int{}
	calls := 0
	m.expertRead = func(l, e int) { reads[[2]int{l, e}]++; calls++ }
	ss := m.NewSession()
	var logits [][]float32
	for pos, tok := range tokens {
		logits = append(logits, slices.Clone(ss.Forward(tok, pos)))
	}
	if want := len(tokens) * s.Layers * s.MoE.TopK; calls != want {
		t.Fatalf("%d expert reads for %d tokens × %d layers × top %d, want %d", calls, len(tokens), s.Layers, s.MoE.TopK, want)
	}
	if len(reads) == s.Layers*s.MoE.Experts {
		t.Fatalf("every expert was read: the test needs a run that leaves some out")
	}
	m.expertRead = nil
	F, d := s.MoE.FFNDim, s.Dim
	poisoned := 0
	for l := range s.Layers {
		for e := range s.MoE.Experts {
			if reads[[2]int{l, e}] > 0 {
				continue
			}
			for _, kind := range []string{model.FFNGateExps, model.FFNUpExps, model.FFNDownExps} {
				w := m.p.T(model.LayerTensor(l, kind))[e*F*d : (e+1)*F*d]
				for i := range w {
					w[i] = float32(math.NaN())
				}
			}
			poisoned++
		}
	}
	ss = m.NewSession()
	for pos, tok := range tokens {
		got := ss.Forward(tok, pos)
		for i, v := range got {
			if math.Float32bits(v) != math.Float32bits(logits[pos][i]) {
				t.Fatalf("after poisoning %d unchosen experts, position %d logit %d is %g, was %g", poisoned, pos, i, v, logits[pos][i])
			}
		}
	}
	// The batched trainer skips them too.
	tr, err := m.NewTrainer(1, len(tokens))
	if err != nil {
		t.Fatal(err)
	}
	tok32, tg := []int32{3, 1, 4}, []int32{1, 4, 1}
	if l := tr.Forward(tok32, tg, 1, 3); math.IsNaN(float64(l)) {
		t.Fatalf("trainer loss is NaN: it read a poisoned (unchosen) expert")
	}
}

// TestMoEBatchAndTrainerMatchSession: ForwardBatch equals Forward bit for
// bit, and the trainer's loss is the sessions' cross-entropy.
func TestMoEBatchAndTrainerMatchSession(t *testing.T) {
	for _, shared := range []bool{false, true} {
		s := tinyMoESpec(shared, 0.01)
		m := randomModel(t, s, 5)
		B, T := 2, 6
		tokens, targets := batch(s, B, T, 6)
		var want float64
		a, b := m.NewSession(), m.NewSession()
		for pos := range T {
			one := slices.Clone(a.Forward(int(tokens[pos]), pos))
			bl := m.ForwardBatch([]model.Session{b}, []int{int(tokens[pos])}, []int{pos})[0]
			if !slices.Equal(one, bl) {
				t.Fatalf("shared=%v pos %d: ForwardBatch differs from Forward", shared, pos)
			}
		}
		for bi := range B {
			ss := m.NewSession()
			for pos := range T {
				logits := ss.Forward(int(tokens[bi*T+pos]), pos)
				mx := slices.Max(logits)
				var z float64
				for _, v := range logits {
					z += math.Exp(float64(v - mx))
				}
				want += math.Log(z) - float64(logits[targets[bi*T+pos]]-mx)
			}
		}
		want /= float64(B * T)
		tr, err := m.NewTrainer(B, T)
		if err != nil {
			t.Fatal(err)
		}
		if got := tr.Forward(tokens, targets, B, T); math.Abs(float64(got)-want) > 1e-5 {
			t.Fatalf("shared=%v: trainer loss %g, sessions' %g", shared, got, want)
		}
	}
}

// TestMoEGradients checks every gradient — router, experts, shared expert,
// and the load-balancing loss's share of the router's — against central
// differences of cross-entropy + aux loss. A perturbation that changes some
// token's expert choice crosses a discontinuity and is not compared; the
// test requires those to be rare.
func TestMoEGradients(t *testing.T) {
	for _, shared := range []bool{false, true} {
		s := tinyMoESpec(shared, 0.5) // a large coefficient: the aux gradient must show
		m := randomModel(t, s, 7)
		B, T := 2, 6
		tokens, targets := batch(s, B, T, 8)
		tri, err := m.NewTrainer(B, T)
		if err != nil {
			t.Fatal(err)
		}
		tr := tri.(*Trainer)
		tr.ZeroGrads()
		tr.Forward(tokens, targets, B, T)
		tr.Backward()
		grads := slices.Clone(tr.Grads())
		selOf := func() []int32 {
			var all []int32
			for _, a := range tr.moe.acts {
				all = append(all, a.sel[:B*T*s.MoE.TopK]...)
			}
			return all
		}
		tr.Forward(tokens, targets, B, T)
		sel0 := selOf()
		if tr.AuxLoss() <= 0 {
			t.Fatalf("aux loss %g, want > 0", tr.AuxLoss())
		}
		flipped := false
		loss := func() float64 {
			tr.Forward(tokens, targets, B, T)
			if !slices.Equal(selOf(), sel0) {
				flipped = true
			}
			var sum float64
			for _, l := range tr.rowLoss[:tr.M] {
				sum += l
			}
			return sum/float64(tr.M) + tr.AuxLoss()
		}
		// A smaller step than the dense check: fewer near-tied routings crossed.
		const h = 4e-3
		data := m.p.Data
		bad, skipped, checked, worst := 0, 0, 0, 0.0
		for _, ts := range m.p.Tensors {
			for i := ts.Off; i < ts.Off+ts.Len(); i++ {
				flipped = false
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
				if flipped {
					skipped++
					continue
				}
				checked++
				a := float64(grads[i])
				err := math.Abs(a-num) / (1e-4 + 1e-2*math.Max(math.Abs(a), math.Abs(num)))
				worst = max(worst, err)
				if err > 1 {
					if bad < 5 {
						t.Errorf("shared=%v: %s[%d]: analytic %.6g, numeric %.6g", shared, ts.Name, i-ts.Off, a, num)
					}
					bad++
				}
			}
		}
		if bad > 0 {
			t.Errorf("shared=%v: %d of %d gradients differ", shared, bad, checked)
		}
		if skipped*20 > len(data) {
			t.Errorf("shared=%v: %d of %d perturbations changed the routing", shared, skipped, len(data))
		}
		t.Logf("shared=%v: %d checked, %d skipped (routing changed), worst error %.2g", shared, checked, skipped, worst)
	}
}

// TestMoEAuxGradient isolates the load-balancing term: with no targets the
// cross-entropy has no gradient, so every gradient is the aux loss's alone,
// and the routers' must match its finite differences along random
// directions (sums of many elements: far above round-off).
func TestMoEAuxGradient(t *testing.T) {
	s := tinyMoESpec(false, 1)
	m := randomModel(t, s, 9)
	B, T := 2, 6
	tokens, targets := batch(s, B, T, 10)
	for i := range targets {
		targets[i] = model.IgnoreTarget
	}
	tri, _ := m.NewTrainer(B, T)
	tr := tri.(*Trainer)
	tr.ZeroGrads()
	tr.Forward(tokens, targets, B, T)
	tr.Backward()
	grads := slices.Clone(tr.Grads())
	rng := rand.New(rand.NewPCG(3, 3))
	for l := range s.Layers {
		ts, _ := m.p.Lookup(model.LayerTensor(l, model.FFNGateInp))
		w := m.p.Data[ts.Off : ts.Off+ts.Len()]
		orig := slices.Clone(w)
		sign := make([]float32, len(w))
		var a float64
		for i := range sign {
			sign[i] = float32(2*rng.IntN(2) - 1)
			a += float64(sign[i]) * float64(grads[ts.Off+i])
		}
		at := func(h float32) float64 {
			for i := range w {
				w[i] = orig[i] + h*sign[i]
			}
			tr.Forward(tokens, targets, B, T)
			return tr.AuxLoss()
		}
		const h = 1e-3
		num := (at(h) - at(-h)) / (2 * h)
		copy(w, orig)
		if a == 0 || math.Abs(a-num) > 2e-2*math.Abs(a)+1e-5 {
			t.Errorf("layer %d router: directional gradient %.6g, numeric %.6g", l, a, num)
		}
		t.Logf("layer %d router: directional gradient %.6g, numeric %.6g", l, a, num)
	}
}

func TestMoEAuxLossValues(t *testing.T) {
	// Uniform routing gives 1; everything on one expert gives E·P_e.
	N, E, K := 4, 4, 1
	probs := make([]float32, N*E)
	sel := make([]int32, N*K)
	for i := range probs {
		probs[i] = 0.25
	}
	for n := range N {
		sel[n] = int32(n)
	}
	counts := make([]int, E)
	if got := kernels.MoEAuxLoss(nil, counts, probs, sel, N, E, K, 1); math.Abs(got-1) > 1e-6 {
		t.Fatalf("uniform aux loss %g, want 1", got)
	}
	for n := range N {
		sel[n] = 0
		probs[n*E] = 0.7
		probs[n*E+1], probs[n*E+2], probs[n*E+3] = 0.1, 0.1, 0.1
	}
	if got := kernels.MoEAuxLoss(nil, counts, probs, sel, N, E, K, 1); math.Abs(got-4*0.7) > 1e-6 {
		t.Fatalf("collapsed aux loss %g, want 2.8", got)
	}
	if counts[0] != 4 {
		t.Fatalf("counts %v", counts)
	}
}

func TestMoELayout(t *testing.T) {
	s := tinyMoESpec(true, 0.01)
	ts, n := model.Layout(s)
	byName := map[string]model.Tensor{}
	for _, x := range ts {
		byName[x.Name] = x
	}
	want := map[string][]int{
		"blk.1.ffn_gate_inp.weight":   {4, 8},
		"blk.1.ffn_gate_exps.weight":  {4, 6, 8},
		"blk.1.ffn_up_exps.weight":    {4, 6, 8},
		"blk.1.ffn_down_exps.weight":  {4, 8, 6},
		"blk.1.ffn_gate_shexp.weight": {6, 8},
		"blk.1.ffn_up_shexp.weight":   {6, 8},
		"blk.1.ffn_down_shexp.weight": {8, 6},
	}
	for name, shape := range want {
		if !slices.Equal(byName[name].Shape, shape) {
			t.Errorf("%s: shape %v, want %v", name, byName[name].Shape, shape)
		}
	}
	if _, ok := byName["blk.0.ffn_gate.weight"]; ok {
		t.Errorf("an MoE layout has a dense ffn_gate")
	}
	if g, u := byName["blk.0.ffn_gate_shexp.weight"], byName["blk.0.ffn_up_shexp.weight"]; u.Off != g.Off+g.Len() {
		t.Errorf("shared gate and up are not adjacent")
	}
	figs := s.Figures()
	if int64(n) != figs.Params {
		t.Errorf("layout holds %d floats, spec figures say %d params", n, figs.Params)
	}
}

// TestMoEForwardBatchManySessions: sessions at different positions decode
// together; every session's logits equal its own one-token Forward bit for
// bit, and each batched step reads each chosen expert once.
func TestMoEForwardBatchManySessions(t *testing.T) {
	for _, shared := range []bool{false, true} {
		s := tinyMoESpec(shared, 0.01)
		s.MoE.Experts = 6
		m := randomModel(t, s, 31)
		const S = 5
		rng := rand.New(rand.NewPCG(8, 8))
		batched, single := make([]model.Session, S), make([]model.Session, S)
		pos := make([]int, S)
		for i := range S {
			batched[i], single[i] = m.NewSession(), m.NewSession()
			// Stagger the sessions: session i starts with i tokens of its own.
			for p := range i {
				tok := rng.IntN(s.Vocab)
				m.ForwardBatch(batched[i:i+1], []int{tok}, []int{p})
				single[i].Forward(tok, p)
			}
			pos[i] = i
		}
		for step := 0; step < 2; step++ {
			toks := make([]int, S)
			for i := range toks {
				toks[i] = rng.IntN(s.Vocab)
			}
			reads := map[[2]int]int{}
			m.expertRead = func(l, e int) { reads[[2]int{l, e}]++ }
			got := m.ForwardBatch(batched, toks, pos)
			m.expertRead = nil
			for k, c := range reads {
				if c != 1 {
					t.Fatalf("shared=%v step %d: layer %d expert %d read %d times in one batched step", shared, step, k[0], k[1], c)
				}
			}
			for i := range S {
				want := single[i].Forward(toks[i], pos[i])
				for j := range want {
					if math.Float32bits(got[i][j]) != math.Float32bits(want[j]) {
						t.Fatalf("shared=%v step %d session %d: logit %d batched %g, alone %g", shared, step, i, j, got[i][j], want[j])
					}
				}
				pos[i]++
			}
		}
	}
}
