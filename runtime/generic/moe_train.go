package generic

import (
	"github.com/modelc/modelc/runtime/kernels"
	"github.com/modelc/modelc/runtime/model"
)

// Training through the mixture of experts. Forward routes every token, sorts
// the N·K routing slots by expert and runs each expert as one batched
// product over the rows routed to it (so an expert nobody chose is not
// read); backward goes through the experts, the renormalised top-k weights
// and the router's softmax, and adds the gradient of the load-balancing loss
// coef · E · Σ_e f_e · P_e of every layer (kernels.MoEAuxLoss).
//
// The balance statistics count every token of the batch, targets or not:
// the router sees them all.
//
// Forward returns the cross-entropy alone, so that training and evaluation
// losses stay comparable with a dense model's; the auxiliary loss of the
// last Forward is AuxLoss, and Backward differentiates their sum.

var _ model.ExpertStats = (*Trainer)(nil)

// moeActs are one layer's routing and expert activations.
type moeActs struct {
	logits, probs []float32 // [N, E]
	sel           []int32   // [N, K] chosen experts
	w             []float32 // [N, K] their renormalised weights
	order         []int32   // the N·K slots n*K+k, sorted by expert
	slotAt        []int32   // slot -> its index in order
	eoff          []int     // expert e's slots are order[eoff[e]:eoff[e+1]]
	counts        []int     // slots per expert
	xe            []float32 // [N·K, dim] inputs, gathered in order
	gu            []float32 // [N·K, 2F] gate|up
	h             []float32 // [N·K, F] SwiGLU
	eo            []float32 // [N·K, dim] expert outputs, unweighted
	shGU, shH     []float32 // shared expert: [N, 2F], [N, F]
}

// moeTrain is the trainer's MoE state.
type moeTrain struct {
	E, K, F int
	coef    float32
	acts    []moeActs
	aux     float64   // coef · Σ_layers aux of the last Forward
	usage   [][]int64 // slots per layer and expert since the last ExpertUsage
	// backward scratch
	dlog, dprobs []float32 // [N, E]
	dw           []float32 // [N, K]
	deo, dxe     []float32 // [N·K, dim]
	dh, ta, tb   []float32 // [N·K, F]
	dgu          []float32 // [N·K, 2F]
	dshH, dshGU  []float32 // [N, F], [N, 2F]
}

func newMoETrain(tr *Trainer, N int) *moeTrain {
	s := &tr.m.p.Spec
	m := s.MoE
	E, K, F, d := m.Experts, m.TopK, m.FFNDim, s.Dim
	NK := N * K
	mt := &moeTrain{E: E, K: K, F: F, coef: float32(m.AuxLossCoef)}
	mt.acts = make([]moeActs, s.Layers)
	mt.usage = make([][]int64, s.Layers)
	for l := range mt.acts {
		a := moeActs{
			logits: make([]float32, N*E), probs: make([]float32, N*E),
			sel: make([]int32, NK), w: make([]float32, NK),
			order: make([]int32, NK), slotAt: make([]int32, NK), eoff: make([]int, E+1), counts: make([]int, E),
			xe: make([]float32, NK*d), gu: make([]float32, NK*2*F), h: make([]float32, NK*F), eo: make([]float32, NK*d),
		}
		if m.SharedExpert {
			a.shGU, a.shH = make([]float32, N*2*F), make([]float32, N*F)
		}
		mt.acts[l] = a
		mt.usage[l] = make([]int64, E)
	}
	mt.dlog, mt.dprobs, mt.dw = make([]float32, N*E), make([]float32, N*E), make([]float32, NK)
	mt.deo, mt.dxe = make([]float32, NK*d), make([]float32, NK*d)
	mt.dh, mt.ta, mt.tb, mt.dgu = make([]float32, NK*F), make([]float32, NK*F), make([]float32, NK*F), make([]float32, NK*2*F)
	if m.SharedExpert {
		mt.dshH, mt.dshGU = make([]float32, N*F), make([]float32, N*2*F)
	}
	return mt
}

// moeWeights are one layer's MoE tensors in a buffer (weights or gradients).
type moeWeights struct {
	router, gate, up, down, shGateUp, shDown []float32
}

func (tr *Trainer) moeWeights(buf []float32, l int) moeWeights {
	p, s := tr.m.p, &tr.m.p.Spec
	d, F := s.Dim, s.MoE.FFNDim
	at := func(name string, n int) []float32 {
		t, _ := p.Lookup(model.LayerTensor(l, name))
		if n < 0 {
			n = t.Len()
		}
		return buf[t.Off : t.Off+n : t.Off+n]
	}
	w := moeWeights{router: at(model.FFNGateInp, -1), gate: at(model.FFNGateExps, -1), up: at(model.FFNUpExps, -1), down: at(model.FFNDownExps, -1)}
	if s.MoE.SharedExpert {
		w.shGateUp = at(model.FFNGateShexp, 2*F*d) // gate and up adjacent
		w.shDown = at(model.FFNDownShexp, -1)
	}
	return w
}

// moeForward sets next = xMid + MoE(xn) for layer l over N rows.
func (tr *Trainer) moeForward(l int, xn, xMid, next []float32, N int) {
	mt := tr.moe
	a, w := &mt.acts[l], tr.moeWeights(tr.m.p.Data, l)
	d := tr.m.p.Spec.Dim
	E, K, F := mt.E, mt.K, mt.F
	NK := N * K

	matmul(a.logits, xn, w.router, N, d, E)
	rows(N, E*8, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			kernels.MoERoute(a.sel[n*K:(n+1)*K], a.w[n*K:(n+1)*K], a.probs[n*E:(n+1)*E], a.logits[n*E:(n+1)*E])
		}
	})
	if l == 0 {
		mt.aux = 0
	}
	mt.aux += float64(mt.coef) * kernels.MoEAuxLoss(nil, a.counts, a.probs, a.sel, N, E, K, mt.coef)
	for e, c := range a.counts {
		mt.usage[l][e] += int64(c)
	}
	// Counting sort of the slots by expert, stable in slot order.
	a.eoff[0] = 0
	for e := range E {
		a.eoff[e+1] = a.eoff[e] + a.counts[e]
	}
	fill := make([]int, E)
	for slot, e := range a.sel[:NK] {
		r := a.eoff[e] + fill[e]
		fill[e]++
		a.order[r] = int32(slot)
		a.slotAt[slot] = int32(r)
		n := slot / K
		copy(a.xe[r*d:(r+1)*d], xn[n*d:(n+1)*d])
	}

	// The shared expert runs on every row, straight into next.
	if w.shDown != nil {
		matmul(a.shGU, xn, w.shGateUp, N, d, 2*F)
		rows(N, 2*F, func(lo, hi int) { kernels.SwiGLURows(a.shH[lo*F:], a.shGU[lo*2*F:], hi-lo, F) })
		matmul(next, a.shH, w.shDown, N, F, d)
		kernels.Add(next[:N*d], xMid[:N*d])
	} else {
		copy(next[:N*d], xMid[:N*d])
	}

	n := F * d
	for e := range E {
		lo, hi := a.eoff[e], a.eoff[e+1]
		ne := hi - lo
		if ne == 0 {
			continue // not read
		}
		if tr.m.expertRead != nil {
			tr.m.expertRead(l, e)
		}
		xe := a.xe[lo*d : hi*d]
		ga, ub := mt.ta[:ne*F], mt.tb[:ne*F]
		matmul(ga, xe, w.gate[e*n:(e+1)*n], ne, d, F)
		matmul(ub, xe, w.up[e*n:(e+1)*n], ne, d, F)
		gu := a.gu[lo*2*F : hi*2*F]
		for r := range ne {
			copy(gu[r*2*F:r*2*F+F], ga[r*F:(r+1)*F])
			copy(gu[r*2*F+F:(r+1)*2*F], ub[r*F:(r+1)*F])
		}
		h := a.h[lo*F : hi*F]
		kernels.SwiGLURows(h, gu, ne, F)
		matmul(a.eo[lo*d:hi*d], h, w.down[e*n:(e+1)*n], ne, F, d)
	}
	// Weighted sum in slot order per row: deterministic.
	rows(N, K*d, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			out := next[n*d : (n+1)*d]
			for k := range K {
				r := int(a.slotAt[n*K+k])
				wk := a.w[n*K+k]
				for i, v := range a.eo[r*d : (r+1)*d] {
					out[i] += wk * v
				}
			}
		}
	})
}

// moeBackward adds into dxn ([N, dim], cleared by the caller) the gradient
// with respect to the normalised input xn of layer l's MoE block given dx,
// the gradient of its output, and accumulates the weight gradients.
func (tr *Trainer) moeBackward(l int, dx, dxn, xn []float32, N int) {
	mt := tr.moe
	a := &mt.acts[l]
	w, gw := tr.moeWeights(tr.m.p.Data, l), tr.moeWeights(tr.grads, l)
	d := tr.m.p.Spec.Dim
	E, K, F := mt.E, mt.K, mt.F
	NK := N * K

	// Through the weighted sum: d w and d(expert output).
	dw, deo := mt.dw[:NK], mt.deo[:NK*d]
	rows(N, K*d, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			g := dx[n*d : (n+1)*d]
			for k := range K {
				slot := n*K + k
				r := int(a.slotAt[slot])
				eo := a.eo[r*d : (r+1)*d]
				de := deo[r*d : (r+1)*d]
				wk := a.w[slot]
				var s float32
				for i, v := range g {
					s += v * eo[i]
					de[i] = wk * v
				}
				dw[slot] = s
			}
		}
	})

	// Through each chosen expert.
	dxe := mt.dxe[:NK*d]
	clear(dxe)
	n := F * d
	for e := range E {
		lo, hi := a.eoff[e], a.eoff[e+1]
		ne := hi - lo
		if ne == 0 {
			continue
		}
		down, gdown := w.down[e*n:(e+1)*n], gw.down[e*n:(e+1)*n]
		h, gu, xe := a.h[lo*F:hi*F], a.gu[lo*2*F:hi*2*F], a.xe[lo*d:hi*d]
		de := deo[lo*d : hi*d]
		matmulBackwardWeight(gdown, de, h, ne, F, d)
		dh := mt.dh[:ne*F]
		clear(dh)
		matmulBackwardInput(dh, de, down, ne, F, d)
		dgu := mt.dgu[:ne*2*F]
		clear(dgu)
		kernels.SwiGLURowsBackward(dgu, dh, gu, ne, F)
		dg, du := mt.ta[:ne*F], mt.tb[:ne*F]
		for r := range ne {
			copy(dg[r*F:(r+1)*F], dgu[r*2*F:r*2*F+F])
			copy(du[r*F:(r+1)*F], dgu[r*2*F+F:(r+1)*2*F])
		}
		matmulBackwardWeight(gw.gate[e*n:(e+1)*n], dg, xe, ne, d, F)
		matmulBackwardWeight(gw.up[e*n:(e+1)*n], du, xe, ne, d, F)
		dx := dxe[lo*d : hi*d]
		matmulBackwardInput(dx, dg, w.gate[e*n:(e+1)*n], ne, d, F)
		matmulBackwardInput(dx, du, w.up[e*n:(e+1)*n], ne, d, F)
	}
	// Scatter back to the tokens, in slot order.
	rows(N, K*d, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			out := dxn[n*d : (n+1)*d]
			for k := range K {
				r := int(a.slotAt[n*K+k])
				for i, v := range dxe[r*d : (r+1)*d] {
					out[i] += v
				}
			}
		}
	})

	// Through the routing and the router, with the load-balancing loss.
	dprobs, dlog := mt.dprobs[:N*E], mt.dlog[:N*E]
	clear(dprobs)
	clear(dlog)
	kernels.MoEAuxLoss(dprobs, a.counts, a.probs, a.sel, N, E, K, mt.coef)
	rows(N, E*8, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			kernels.MoERouteBackward(dlog[n*E:(n+1)*E], dw[n*K:(n+1)*K], dprobs[n*E:(n+1)*E], a.probs[n*E:(n+1)*E], a.sel[n*K:(n+1)*K], a.w[n*K:(n+1)*K])
		}
	})
	matmulBackwardWeight(gw.router, dlog, xn, N, d, E)
	matmulBackwardInput(dxn, dlog, w.router, N, d, E)

	if w.shDown != nil {
		dshH := mt.dshH[:N*F]
		clear(dshH)
		matmulBackwardWeight(gw.shDown, dx, a.shH, N, F, d)
		matmulBackwardInput(dshH, dx, w.shDown, N, F, d)
		dshGU := mt.dshGU[:N*2*F]
		clear(dshGU)
		rows(N, 2*F, func(lo, hi int) {
			kernels.SwiGLURowsBackward(dshGU[lo*2*F:], dshH[lo*F:], a.shGU[lo*2*F:], hi-lo, F)
		})
		matmulBackwardWeight(gw.shGateUp, dshGU, xn, N, d, 2*F)
		matmulBackwardInput(dxn, dshGU, w.shGateUp, N, d, 2*F)
	}
}

// AuxLoss implements model.ExpertStats: coef times the load-balancing loss
// summed over the layers, for the last Forward.
func (tr *Trainer) AuxLoss() float64 {
	if tr.moe == nil {
		return 0
	}
	return tr.moe.aux
}

// ExpertUsage implements model.ExpertStats.
func (tr *Trainer) ExpertUsage() [][]float64 {
	if tr.moe == nil {
		return nil
	}
	out := make([][]float64, len(tr.moe.usage))
	for l, u := range tr.moe.usage {
		var tot int64
		for _, c := range u {
			tot += c
		}
		out[l] = make([]float64, len(u))
		for e, c := range u {
			if tot > 0 {
				out[l][e] = float64(c) / float64(tot)
			}
		}
		clear(u)
	}
	return out
}
