// Package qmodel runs a Q8_0 or Q4_0 GGUF the way a quantised engine does:
// every quantised matrix stays in its blocks (slices of the file's mapping)
// and is multiplied by activations quantised to 8 bits per 32-block, with
// the integer dot products of runtime/quant — the arithmetic of llama.cpp's
// CPU path and of the asm quantised kernels. Matrices left in a float format
// and everything else (norms, RoPE, attention) run in float32 as in the
// generic model.
//
// It is the reference for quantised inference (run-time loops, one thread),
// not a fast path: it also keeps the dequantised parameters for Params.
package qmodel

import (
	"fmt"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/kernels"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/quant"
	"github.com/modelc/modelc/spec"
)

// matrix is a weight matrix [rows, cols]: float32 or quantised blocks.
type matrix struct {
	t          gguf.GGMLType
	rows, cols int
	f          []float32 // F32 (also when the file had F16/BF16)
	q          []byte    // Q8_0 / Q4_0 blocks, row after row
}

// Model is a dense llama model over quantised weights.
type Model struct {
	p     *model.Params // dequantised, for Params and the float tensors
	freqs []float32
	embd  matrix
	out   matrix // classifier (token_embd when tied)
	norm  []float32
	ls    []layer
}

type layer struct {
	attnNorm, ffnNorm            []float32
	wq, wk, wv, wo, gate, up, dn matrix
}

// New binds the tensors of an open GGUF file (which must stay open while
// the model is used: quantised blocks are not copied).
func New(f *gguf.File) (*Model, error) {
	p, err := checkpoint.FromGGUF(f)
	if err != nil {
		return nil, err
	}
	s := &p.Spec
	if s.MoE != nil {
		return nil, fmt.Errorf("qmodel: mixture-of-experts models are not supported")
	}
	m := &Model{p: p, freqs: kernels.RoPEFreqs(s.HeadDim(), s.RopeTheta), norm: p.T(model.OutputNorm)}
	mat := func(name string) (matrix, error) {
		info, _ := f.Tensor(name)
		t, _ := p.Lookup(name)
		mx := matrix{t: info.Type, rows: t.Shape[0], cols: t.Shape[1]}
		if !quant.Supported(info.Type) {
			mx.t, mx.f = gguf.TypeF32, p.T(name)
			return mx, nil
		}
		var err error
		mx.q, err = f.TensorData(name)
		return mx, err
	}
	if m.embd, err = mat(model.TokEmbd); err != nil {
		return nil, err
	}
	m.out = m.embd
	if !s.TieEmbeddings {
		if m.out, err = mat(model.Output); err != nil {
			return nil, err
		}
	}
	for l := 0; l < s.Layers; l++ {
		ly := layer{attnNorm: p.T(model.LayerTensor(l, "attn_norm")), ffnNorm: p.T(model.LayerTensor(l, "ffn_norm"))}
		for _, w := range []struct {
			dst  *matrix
			kind string
		}{{&ly.wq, "attn_q"}, {&ly.wk, "attn_k"}, {&ly.wv, "attn_v"}, {&ly.wo, "attn_output"}, {&ly.gate, "ffn_gate"}, {&ly.up, "ffn_up"}, {&ly.dn, "ffn_down"}} {
			if *w.dst, err = mat(model.LayerTensor(l, w.kind)); err != nil {
				return nil, err
			}
		}
		m.ls = append(m.ls, ly)
	}
	return m, nil
}

// Spec is the model's spec (quant names the file's block format).
func (m *Model) Spec() *spec.Spec { return &m.p.Spec }

// Params are the dequantised parameters.
func (m *Model) Params() *model.Params { return m.p }

// Session is one inference context with its KV cache.
type Session struct {
	m                        *Model
	x, xb, xb2, q, k, v, att []float32
	hb, hb2, logits          []float32
	xq                       []int8
	xs                       []float32
	keys, values             [][]float32
}

// NewSession returns a session with an empty KV cache.
func (m *Model) NewSession() model.Session {
	s := &m.p.Spec
	d, kv, f := s.Dim, s.KVDim(), s.FFNDim
	n := max(d, f)
	ss := &Session{m: m, x: make([]float32, d), xb: make([]float32, d), xb2: make([]float32, d),
		q: make([]float32, d), k: make([]float32, kv), v: make([]float32, kv), att: make([]float32, s.MaxSeq),
		hb: make([]float32, f), hb2: make([]float32, f), logits: make([]float32, s.Vocab),
		xq: make([]int8, n), xs: make([]float32, n/quant.BlockSize+1)}
	for range m.ls {
		ss.keys = append(ss.keys, make([]float32, s.MaxSeq*kv))
		ss.values = append(ss.values, make([]float32, s.MaxSeq*kv))
	}
	return ss
}

// act quantises x for the quantised matrices that follow (shared by all of
// them, as Q/K/V and gate/up share their input).
func (ss *Session) act(x []float32) {
	if len(x)%quant.BlockSize == 0 {
		quant.QuantizeAct(ss.xq[:len(x)], ss.xs[:len(x)/quant.BlockSize], x)
	}
}

// matvec computes out = w·x; for a quantised w, x must have been passed to
// act first.
func (ss *Session) matvec(out []float32, w *matrix, x []float32) {
	if w.t == gguf.TypeF32 {
		kernels.MatVec(out, w.f, x)
		return
	}
	xq, xs := ss.xq[:w.cols], ss.xs[:w.cols/quant.BlockSize]
	rb := w.cols / quant.BlockSize * int(w.t.BlockBytes())
	for r := range out[:w.rows] {
		row := w.q[r*rb : (r+1)*rb]
		if w.t == gguf.TypeQ8_0 {
			out[r] = quant.DotQ8_0(row, xq, xs)
		} else {
			out[r] = quant.DotQ4_0(row, xq, xs)
		}
	}
}

// Forward runs token at position pos and returns the logits.
func (ss *Session) Forward(token, pos int) []float32 {
	m := ss.m
	s := &m.p.Spec
	d, kv, hd, f := s.Dim, s.KVDim(), s.HeadDim(), s.FFNDim
	eps := float32(s.NormEps)
	if m.embd.t == gguf.TypeF32 {
		copy(ss.x, m.embd.f[token*d:(token+1)*d])
	} else {
		rb := d / quant.BlockSize * int(m.embd.t.BlockBytes())
		quant.Decode(m.embd.t, ss.x, m.embd.q[token*rb:(token+1)*rb])
	}
	group := s.Heads / s.KVHeads
	for l := range m.ls {
		w := &m.ls[l]
		kernels.RMSNorm(ss.xb, ss.x, w.attnNorm, eps)
		ss.act(ss.xb)
		ss.matvec(ss.q, &w.wq, ss.xb)
		ss.matvec(ss.k, &w.wk, ss.xb)
		ss.matvec(ss.v, &w.wv, ss.xb)
		kernels.RoPE(ss.q, pos, m.freqs)
		kernels.RoPE(ss.k, pos, m.freqs)
		copy(ss.keys[l][pos*kv:], ss.k)
		copy(ss.values[l][pos*kv:], ss.v)
		for h := 0; h < s.Heads; h++ {
			kernels.Attention(ss.xb[h*hd:(h+1)*hd], ss.q[h*hd:(h+1)*hd], ss.keys[l], ss.values[l], ss.att, pos, kv, (h/group)*hd)
		}
		ss.act(ss.xb)
		ss.matvec(ss.xb2, &w.wo, ss.xb)
		kernels.Add(ss.x, ss.xb2)

		kernels.RMSNorm(ss.xb, ss.x, w.ffnNorm, eps)
		ss.act(ss.xb)
		ss.matvec(ss.hb, &w.gate, ss.xb)
		ss.matvec(ss.hb2, &w.up, ss.xb)
		kernels.SwiGLU(ss.hb, ss.hb2)
		ss.act(ss.hb[:f])
		ss.matvec(ss.xb2, &w.dn, ss.hb[:f])
		kernels.Add(ss.x, ss.xb2)
	}
	kernels.RMSNorm(ss.x, ss.x, m.norm, eps)
	ss.act(ss.x)
	ss.matvec(ss.logits, &m.out, ss.x)
	return ss.logits
}

// Prefill runs tokens one at a time from position pos.
func (ss *Session) Prefill(tokens []int, pos int) []float32 {
	var logits []float32
	for i, t := range tokens {
		logits = ss.Forward(t, pos+i)
	}
	return logits
}
