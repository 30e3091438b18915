package model

import (
	"fmt"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/spec"
)

// Tensor is a named view into Params.Data, row-major with Shape [rows, cols]
// (or [n] for vectors): Shape[0] is the output dimension of a matrix.
type Tensor struct {
	Name  string
	Shape []int
	Off   int // offset in float32s into Params.Data
}

// Len is the number of elements.
func (t Tensor) Len() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Params are all weights of a model in one contiguous buffer, in the order
// Layout gives. Q, K and V of a layer are adjacent, and so are the gate and up
// projections, so that fused kernels read them as one matrix.
type Params struct {
	Spec    spec.Spec
	Data    []float32
	Tensors []Tensor
	index   map[string]int
	// File is the GGUF file the parameters were read from (nil otherwise):
	// quantised compiled models take their Q8_0/Q4_0 blocks from its mapping.
	File *gguf.File
	// Undecoded names tensors whose blocks were left in File and not
	// dequantised into Data (which stays zero there, untouched): only a
	// quantised compiled model may run such parameters.
	Undecoded map[string]bool
}

// Tensor names follow llama.cpp's `llama` architecture.
const (
	TokEmbd    = "token_embd.weight"
	OutputNorm = "output_norm.weight"
	Output     = "output.weight"
)

// LayerTensor returns the name of a per-layer tensor, e.g. LayerTensor(0, "attn_q").
func LayerTensor(layer int, kind string) string {
	return fmt.Sprintf("blk.%d.%s.weight", layer, kind)
}

// LayerKinds are the per-layer tensors in buffer order.
var LayerKinds = []string{"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"}

// Mixture-of-experts tensor kinds (llama.cpp's names). The experts of a layer
// are 3-D tensors [experts, rows, cols]: expert e's matrix is the e-th
// rows×cols slab, so one expert's weights are contiguous.
const (
	FFNGateInp   = "ffn_gate_inp"   // router [experts, dim]
	FFNGateExps  = "ffn_gate_exps"  // [experts, moe.ffn_dim, dim]
	FFNUpExps    = "ffn_up_exps"    // [experts, moe.ffn_dim, dim]
	FFNDownExps  = "ffn_down_exps"  // [experts, dim, moe.ffn_dim]
	FFNGateShexp = "ffn_gate_shexp" // shared expert [moe.ffn_dim, dim]
	FFNUpShexp   = "ffn_up_shexp"   // shared expert [moe.ffn_dim, dim]
	FFNDownShexp = "ffn_down_shexp" // shared expert [dim, moe.ffn_dim]
)

// Layout returns the tensors of a spec with their offsets, and the total
// size. A mixture-of-experts spec replaces each layer's ffn_gate, ffn_up and
// ffn_down by the router, the three expert tensors and, with a shared expert,
// its gate, up and down (gate and up adjacent, as in the dense layout); a
// dense spec's layout is unchanged.
func Layout(s *spec.Spec) ([]Tensor, int) {
	var ts []Tensor
	off := 0
	add := func(name string, shape ...int) {
		t := Tensor{Name: name, Shape: shape, Off: off}
		ts = append(ts, t)
		off += t.Len()
	}
	d, kv, f := s.Dim, s.KVDim(), s.FFNDim
	add(TokEmbd, s.Vocab, d)
	for l := 0; l < s.Layers; l++ {
		add(LayerTensor(l, "attn_norm"), d)
		add(LayerTensor(l, "attn_q"), d, d)
		add(LayerTensor(l, "attn_k"), kv, d)
		add(LayerTensor(l, "attn_v"), kv, d)
		add(LayerTensor(l, "attn_output"), d, d)
		add(LayerTensor(l, "ffn_norm"), d)
		if m := s.MoE; m != nil {
			E, mf := m.Experts, m.FFNDim
			add(LayerTensor(l, FFNGateInp), E, d)
			add(LayerTensor(l, FFNGateExps), E, mf, d)
			add(LayerTensor(l, FFNUpExps), E, mf, d)
			add(LayerTensor(l, FFNDownExps), E, d, mf)
			if m.SharedExpert {
				add(LayerTensor(l, FFNGateShexp), mf, d)
				add(LayerTensor(l, FFNUpShexp), mf, d)
				add(LayerTensor(l, FFNDownShexp), d, mf)
			}
			continue
		}
		add(LayerTensor(l, "ffn_gate"), f, d)
		add(LayerTensor(l, "ffn_up"), f, d)
		add(LayerTensor(l, "ffn_down"), d, f)
	}
	add(OutputNorm, d)
	if !s.TieEmbeddings {
		add(Output, s.Vocab, d)
	}
	return ts, off
}

// NewParams allocates zeroed parameters for s.
func NewParams(s *spec.Spec) *Params {
	ts, n := Layout(s)
	p := &Params{Spec: *s, Data: make([]float32, n), Tensors: ts}
	p.reindex()
	return p
}

// Bind wraps an existing buffer (for example a memory-mapped file) as parameters.
func Bind(s *spec.Spec, data []float32) (*Params, error) {
	ts, n := Layout(s)
	if len(data) != n {
		return nil, fmt.Errorf("parameters: spec needs %d floats, buffer holds %d", n, len(data))
	}
	p := &Params{Spec: *s, Data: data, Tensors: ts}
	p.reindex()
	return p, nil
}

func (p *Params) reindex() {
	p.index = make(map[string]int, len(p.Tensors))
	for i, t := range p.Tensors {
		p.index[t.Name] = i
	}
}

// Lookup returns the tensor called name.
func (p *Params) Lookup(name string) (Tensor, bool) {
	i, ok := p.index[name]
	if !ok {
		return Tensor{}, false
	}
	return p.Tensors[i], true
}

// T returns the data of the tensor called name; it panics on a name the layout
// does not have, which is a programming error, not bad input.
func (p *Params) T(name string) []float32 {
	t, ok := p.Lookup(name)
	if !ok {
		panic("model: no tensor " + name)
	}
	return p.Data[t.Off : t.Off+t.Len() : t.Off+t.Len()]
}

// Classifier returns the output projection: output.weight, or the token
// embedding when the spec ties them.
func (p *Params) Classifier() []float32 {
	if p.Spec.TieEmbeddings {
		return p.T(TokEmbd)
	}
	return p.T(Output)
}
