package generic

import (
	"sync"

	"github.com/modelc/modelc/runtime/kernels"
	"github.com/modelc/modelc/runtime/model"
)

// The mixture-of-experts feed-forward block (llama.cpp's llama with
// expert_count > 0, Mixtral's routing): router logits = W_r·x, softmax over
// the experts, the top_k most probable chosen and their probabilities
// renormalised to sum to 1; the output is the weighted sum of the chosen
// experts' SwiGLU outputs, plus the shared expert's when the spec has one.
// Only the chosen experts' weights are read.

// moeLayer holds one layer's router and expert tensors, resolved once.
type moeLayer struct {
	router           []float32 // [E, dim]
	gate, up, down   []float32 // [E, F, dim], [E, F, dim], [E, dim, F]
	shGateUp, shDown []float32 // shared expert: [2F, dim] (gate and up adjacent), [dim, F]; nil without
	E, K, F          int
}

func newMoELayer(p *model.Params, l int) *moeLayer {
	m := p.Spec.MoE
	d := p.Spec.Dim
	ml := &moeLayer{
		router: p.T(model.LayerTensor(l, model.FFNGateInp)),
		gate:   p.T(model.LayerTensor(l, model.FFNGateExps)),
		up:     p.T(model.LayerTensor(l, model.FFNUpExps)),
		down:   p.T(model.LayerTensor(l, model.FFNDownExps)),
		E:      m.Experts, K: m.TopK, F: m.FFNDim,
	}
	if m.SharedExpert {
		g, _ := p.Lookup(model.LayerTensor(l, model.FFNGateShexp))
		ml.shGateUp = p.Data[g.Off : g.Off+2*m.FFNDim*d]
		ml.shDown = p.T(model.LayerTensor(l, model.FFNDownShexp))
	}
	return ml
}

// expert returns expert e's gate, up and down matrices.
func (ml *moeLayer) expert(e, d int) (gate, up, down []float32) {
	n := ml.F * d
	return ml.gate[e*n : (e+1)*n], ml.up[e*n : (e+1)*n], ml.down[e*n : (e+1)*n]
}

// moeScratch is one row's working memory.
type moeScratch struct {
	logits, probs, w, gu, tmp []float32
	sel                       []int32
}

func newMoEScratch(ml *moeLayer, d int) *moeScratch {
	return &moeScratch{
		logits: make([]float32, ml.E), probs: make([]float32, ml.E), w: make([]float32, ml.K),
		sel: make([]int32, ml.K), gu: make([]float32, 2*ml.F), tmp: make([]float32, d),
	}
}

// moeRow computes out = MoE(x) for one normalised row x of width d.
func (m *Model) moeRow(l int, ml *moeLayer, out, x []float32, sc *moeScratch) {
	d, F := len(x), ml.F
	kernels.MatVec(sc.logits, ml.router, x)
	kernels.MoERoute(sc.sel, sc.w, sc.probs, sc.logits)
	if ml.shDown != nil {
		kernels.MatVec(sc.gu, ml.shGateUp, x)
		kernels.SwiGLU(sc.gu[:F], sc.gu[F:])
		kernels.MatVec(out, ml.shDown, sc.gu[:F])
	} else {
		clear(out[:d])
	}
	for j, e := range sc.sel {
		if m.expertRead != nil {
			m.expertRead(l, int(e))
		}
		gate, up, down := ml.expert(int(e), d)
		kernels.MatVec(sc.gu[:F], gate, x)
		kernels.MatVec(sc.gu[F:], up, x)
		kernels.SwiGLU(sc.gu[:F], sc.gu[F:])
		kernels.MatVec(sc.tmp, down, sc.gu[:F])
		w := sc.w[j]
		for i, v := range sc.tmp {
			out[i] += w * v
		}
	}
}

// moeBatch is the working memory of moeRows, reused through a pool.
type moeBatch struct {
	logits, probs, w, xe, ga, ub, eo, shGU, shH []float32
	sel, order, slotAt                          []int32
	eoff, fill                                  []int
}

var moeBatchPool sync.Pool

func growInt32(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	return s[:n]
}

func growInt(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n)
	}
	return s[:n]
}

// moeRows computes out = MoE(x) for B normalised rows at once: every row is
// routed, the rows are grouped by expert, and each chosen expert runs as one
// matrix product over its rows, so a batch reads each chosen expert once
// and no other. Each output equals moeRow's bit for bit: linear sums as
// MatVec does, and the chosen experts are added in the same order.
func (m *Model) moeRows(l int, ml *moeLayer, out, x []float32, B, d int) {
	mb, _ := moeBatchPool.Get().(*moeBatch)
	if mb == nil {
		mb = &moeBatch{}
	}
	defer moeBatchPool.Put(mb)
	E, K, F := ml.E, ml.K, ml.F
	BK := B * K
	mb.logits, mb.probs, mb.w = grow(mb.logits, B*E), grow(mb.probs, B*E), grow(mb.w, BK)
	mb.sel, mb.order, mb.slotAt = growInt32(mb.sel, BK), growInt32(mb.order, BK), growInt32(mb.slotAt, BK)
	mb.eoff, mb.fill = growInt(mb.eoff, E+1), growInt(mb.fill, E)
	mb.xe, mb.eo = grow(mb.xe, BK*d), grow(mb.eo, BK*d)
	mb.ga, mb.ub = grow(mb.ga, BK*F), grow(mb.ub, BK*F)

	linear(mb.logits, x, ml.router, B, d, E)
	for b := range B {
		kernels.MoERoute(mb.sel[b*K:(b+1)*K], mb.w[b*K:(b+1)*K], mb.probs[b*E:(b+1)*E], mb.logits[b*E:(b+1)*E])
	}
	clear(mb.fill)
	for _, e := range mb.sel {
		mb.fill[e]++
	}
	mb.eoff[0] = 0
	for e := range E {
		mb.eoff[e+1] = mb.eoff[e] + mb.fill[e]
	}
	clear(mb.fill)
	for slot, e := range mb.sel {
		r := mb.eoff[e] + mb.fill[e]
		mb.fill[e]++
		mb.order[r], mb.slotAt[slot] = int32(slot), int32(r)
		b := slot / K
		copy(mb.xe[r*d:(r+1)*d], x[b*d:(b+1)*d])
	}
	n := F * d
	for e := range E {
		lo, hi := mb.eoff[e], mb.eoff[e+1]
		ne := hi - lo
		if ne == 0 {
			continue // not read
		}
		if m.expertRead != nil {
			m.expertRead(l, e)
		}
		xe := mb.xe[lo*d : hi*d]
		ga, ub := mb.ga[:ne*F], mb.ub[:ne*F]
		linear(ga, xe, ml.gate[e*n:(e+1)*n], ne, d, F)
		linear(ub, xe, ml.up[e*n:(e+1)*n], ne, d, F)
		for r := range ne {
			kernels.SwiGLU(ga[r*F:(r+1)*F], ub[r*F:(r+1)*F])
		}
		linear(mb.eo[lo*d:hi*d], ga, ml.down[e*n:(e+1)*n], ne, F, d)
	}
	if ml.shDown != nil {
		mb.shGU, mb.shH = grow(mb.shGU, B*2*F), grow(mb.shH, B*F)
		linear(mb.shGU, x, ml.shGateUp, B, d, 2*F)
		for b := range B {
			g := mb.shGU[b*2*F : (b+1)*2*F]
			kernels.SwiGLU(g[:F], g[F:])
			copy(mb.shH[b*F:(b+1)*F], g[:F])
		}
		linear(out, mb.shH, ml.shDown, B, F, d)
	} else {
		clear(out[:B*d])
	}
	for b := range B {
		o := out[b*d : (b+1)*d]
		for k := range K {
			r := int(mb.slotAt[b*K+k])
			w := mb.w[b*K+k]
			for i, v := range mb.eo[r*d : (r+1)*d] {
				o[i] += w * v
			}
		}
	}
}
