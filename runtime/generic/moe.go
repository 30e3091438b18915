package generic

import (
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
