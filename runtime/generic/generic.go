// Package generic runs any Llama-family spec (dense or mixture of experts) with run-time loops over the
// reference kernels. It is the oracle the generated code is tested against and
// the baseline `modelc bench` measures it against.
package generic

import (
	"fmt"

	"github.com/modelc/modelc/runtime/kernels"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
)

// Model is the generic model.
type Model struct {
	p     *model.Params
	freqs []float32
	// expertRead, when set (by tests), is called before the weights of
	// expert e of layer l are read.
	expertRead func(l, e int)
}

// New binds parameters to the generic model.
func New(p *model.Params) (model.Model, error) {
	s := &p.Spec
	if s.Dim%s.Heads != 0 || s.Heads%s.KVHeads != 0 {
		return nil, fmt.Errorf("generic model: heads %d and kv_heads %d do not divide dim %d", s.Heads, s.KVHeads, s.Dim)
	}
	_, n := model.Layout(s)
	if len(p.Data) != n {
		return nil, fmt.Errorf("generic model: parameters hold %d floats, spec needs %d", len(p.Data), n)
	}
	for name := range p.Undecoded {
		// Its floats are zeros: only a quantised compiled model reads it.
		return nil, fmt.Errorf("generic model: tensor %s was left in its file's blocks (load the file with checkpoint.Load)", name)
	}
	return &Model{p: p, freqs: kernels.RoPEFreqs(s.HeadDim(), s.RopeTheta)}, nil
}

func (m *Model) Spec() *spec.Spec      { return &m.p.Spec }
func (m *Model) Params() *model.Params { return m.p }

// layer holds the weights of one block, resolved once.
type layer struct {
	attnNorm, wqkv, wo, ffnNorm, wgateUp, wdown []float32
	moe                                         *moeLayer // instead of wgateUp and wdown
}

// Session is the generic model's inference state.
type Session struct {
	m                         *Model
	layers                    []layer
	embd, outNorm, classifier []float32

	x, xb, xb2, qkv, hb, att, logits []float32
	keys, values                     [][]float32 // per layer: [max_seq][kv_dim]
	moe                              *moeScratch
}

func (m *Model) NewSession() model.Session {
	s := &m.p.Spec
	p := m.p
	d, kv := s.Dim, s.KVDim()
	ss := &Session{
		m:          m,
		embd:       p.T(model.TokEmbd),
		outNorm:    p.T(model.OutputNorm),
		classifier: p.Classifier(),
		x:          make([]float32, d),
		xb:         make([]float32, d),
		xb2:        make([]float32, d),
		qkv:        make([]float32, d+2*kv),
		hb:         make([]float32, 2*s.FFNDim),
		att:        make([]float32, s.MaxSeq),
		logits:     make([]float32, s.Vocab),
	}
	for l := 0; l < s.Layers; l++ {
		q, _ := p.Lookup(model.LayerTensor(l, "attn_q"))
		ss.keys = append(ss.keys, make([]float32, s.MaxSeq*kv))
		ss.values = append(ss.values, make([]float32, s.MaxSeq*kv))
		if s.MoE != nil {
			ml := newMoELayer(p, l)
			ss.layers = append(ss.layers, layer{
				attnNorm: p.T(model.LayerTensor(l, "attn_norm")),
				wqkv:     p.Data[q.Off : q.Off+(d+2*kv)*d],
				wo:       p.T(model.LayerTensor(l, "attn_output")),
				ffnNorm:  p.T(model.LayerTensor(l, "ffn_norm")),
				moe:      ml,
			})
			if ss.moe == nil {
				ss.moe = newMoEScratch(ml, d)
			}
			continue
		}
		g, _ := p.Lookup(model.LayerTensor(l, "ffn_gate"))
		ss.layers = append(ss.layers, layer{
			attnNorm: p.T(model.LayerTensor(l, "attn_norm")),
			// Q, K, V (and gate, up) are adjacent in the layout: one matrix each.
			wqkv:    p.Data[q.Off : q.Off+(d+2*kv)*d],
			wo:      p.T(model.LayerTensor(l, "attn_output")),
			ffnNorm: p.T(model.LayerTensor(l, "ffn_norm")),
			wgateUp: p.Data[g.Off : g.Off+2*s.FFNDim*d],
			wdown:   p.T(model.LayerTensor(l, "ffn_down")),
		})
	}
	return ss
}

// Forward runs one token at position pos through the model.
func (ss *Session) Forward(token, pos int) []float32 {
	s := &ss.m.p.Spec
	d, kv, hd, f := s.Dim, s.KVDim(), s.HeadDim(), s.FFNDim
	eps := float32(s.NormEps)
	copy(ss.x, ss.embd[token*d:(token+1)*d])
	for l, w := range ss.layers {
		kernels.RMSNorm(ss.xb, ss.x, w.attnNorm, eps)
		kernels.MatVec(ss.qkv, w.wqkv, ss.xb)
		q, k, v := ss.qkv[:d], ss.qkv[d:d+kv], ss.qkv[d+kv:]
		kernels.RoPE(q, pos, ss.m.freqs)
		kernels.RoPE(k, pos, ss.m.freqs)
		copy(ss.keys[l][pos*kv:], k)
		copy(ss.values[l][pos*kv:], v)
		group := s.Heads / s.KVHeads
		for h := 0; h < s.Heads; h++ {
			kernels.Attention(ss.xb[h*hd:(h+1)*hd], q[h*hd:(h+1)*hd], ss.keys[l], ss.values[l], ss.att, pos, kv, (h/group)*hd)
		}
		kernels.MatVec(ss.xb2, w.wo, ss.xb)
		kernels.Add(ss.x, ss.xb2)

		kernels.RMSNorm(ss.xb, ss.x, w.ffnNorm, eps)
		if w.moe != nil {
			ss.m.moeRow(l, w.moe, ss.xb2, ss.xb, ss.moe)
			kernels.Add(ss.x, ss.xb2)
			continue
		}
		kernels.MatVec(ss.hb, w.wgateUp, ss.xb)
		kernels.SwiGLU(ss.hb[:f], ss.hb[f:])
		kernels.MatVec(ss.xb2, w.wdown, ss.hb[:f])
		kernels.Add(ss.x, ss.xb2)
	}
	kernels.RMSNorm(ss.x, ss.x, ss.outNorm, eps)
	kernels.MatVec(ss.logits, ss.classifier, ss.x)
	return ss.logits
}

// Prefill runs the prompt token by token: the generic model is the baseline.
func (ss *Session) Prefill(tokens []int, pos int) []float32 {
	var logits []float32
	for i, t := range tokens {
		logits = ss.Forward(t, pos+i)
	}
	return logits
}
