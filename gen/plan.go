// Package gen is the compiler: it turns a spec into a plan (operations with
// concrete shapes, fusions and kernel choices) and the plan into a Go package
// specialised to exactly those shapes, with kernels from asm/ for every
// instruction set the spec targets.
package gen

import (
	"fmt"
	"slices"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/spec"
)

// ParallelMACs is the size (multiply-adds) from which a kernel call is split
// over the worker pool; below it waking a thread costs more than the work
// (all of stories260K runs on one thread).
const ParallelMACs = 1 << 17

// GrainMACs is the least work one thread gets.
const GrainMACs = 1 << 15

// KCall is one kernel invocation of a token's forward pass.
type KCall struct {
	// Field names the kernel in the generated kernelSet.
	Field string
	// Kernel is the shape-specialised kernel (its ISA is set per target).
	Kernel asm.Kernel
	// Rows is the number of output rows of the call.
	Rows int
	// batch is the token count of a matrix-matrix product.
	batch int
}

// Parallel reports whether the plan splits this call's rows over threads.
func (c KCall) Parallel() bool {
	macs := c.Rows * c.Kernel.Cols
	if c.Kernel.Op == asm.OpMatMul {
		macs *= c.batch
	}
	return c.Kernel.Op != asm.OpAttention && c.Kernel.Op != asm.OpGroupAttention && macs >= ParallelMACs
}

// Grain is the number of rows a thread gets at least: a multiple of 4 so the
// assembly kernels' 4-row blocks stay whole.
func (c KCall) Grain() int { return grainRows(c.Kernel.Cols) }

// grainRows is the least rows a thread gets from a matrix of cols columns
// (GrainMACs of work, rounded up to whole 4-row blocks).
func grainRows(cols int) int {
	g := max(4, GrainMACs/cols)
	return (g + 3) &^ 3
}

// posMinorHead: heads shorter than this many floats (less than a ZMM) keep
// their KV cache position-minor, so that attention's vectors run along
// positions (asm.OpGroupAttentionT): with heads of 8 in rows, every 8
// positions' scores took a horizontal-sum tree per head; stories260K's
// attention went from 3.5 to 1.9 µs a token (positions 0-127).
const posMinorHead = 16

// posMinorMax bounds a layer's position-minor cache (floats): the kernel
// bakes offsets into it (asm.Kernel.Validate). A longer context keeps the
// cache position-major (OpGroupAttention).
const posMinorMax = 1 << 24

// kvCap is a position-minor cache's capacity: MaxSeq rounded up to whole
// tiles of 16 positions.
func kvCap(maxSeq int) int { return (maxSeq + 15) &^ 15 }

// PosMinorKV reports whether the KV cache is position-minor: per layer
// [KVHeads][kvCap/16][HeadDim][16] (asm.TIndex) instead of
// [MaxSeq][KVHeads][HeadDim].
func (p *Plan) PosMinorKV() bool { return p.AttDecode.Kernel.Op == asm.OpGroupAttentionT }

// Plan is everything the emitters need: the spec, the kernel calls of one
// token and the instruction sets to generate them for.
type Plan struct {
	Spec    spec.Spec
	Package string
	// ISAs are the assembly paths to generate; the pure-Go path is always there.
	ISAs []asm.ISA
	// The calls of one token's forward pass, in order.
	QKV, Out, FFN, Down, Classifier, Attention KCall
	// AttDecode is the decode step's attention: every head of a layer in one
	// call, the query heads of a KV head in one pass over its cache rows
	// (unset, Kernel.Op 0, when a KV head has more than 4 query heads: the
	// step then calls Attention per head). Heads shorter than 16 floats use
	// OpGroupAttentionT over a position-minor cache (PosMinorKV).
	AttDecode KCall
	// The batched prefill: matrix-matrix products over PrefillBatch tokens.
	PrefillBatch                          int
	MMQKV, MMOut, MMGateUp, MMDown, MMCls KCall
	// SiLUMul is the batched pass's SwiGLU epilogue: silu(gate)·up over the
	// rows of MMGateUp's output.
	SiLUMul KCall
	// A mixture of experts replaces FFN, Down, MMGateUp and MMDown: the
	// router, then per chosen expert its fused norm+SwiGLU and its down
	// projection (and the shared expert's, when the spec has one). A
	// batched pass runs each expert over the rows routed to it: gate|up
	// (MMExpGU, rows 2·moe.ffn_dim apart), silu·mul at the experts' width
	// (SiLUMulE), down (MMExpDown).
	Router, ExpFFN, ExpDown, SharedFFN KCall
	MMExpGU, MMExpDown, SiLUMulE       KCall
	// RoPE rotates a token's query and key heads (adjacent in the Q|K|V
	// output) by its position's table (Model.rcs).
	RoPE KCall
	// TrainAttention is the trainer's attention: queries, keys and values
	// are rows of the batched Q|K|V output, dim+2·kv_dim floats apart.
	TrainAttention KCall
	// Quant is the block format of a quantised spec (0 for f32). The
	// decode path then multiplies every matrix whose rows are whole
	// 32-blocks in its blocks: QD says the matrices with rows of dim are
	// (Q, K, V, output, gate, up, embedding/classifier), QF that ffn_down
	// is; the others run the float kernels above. QE: a mixture's experts
	// (and shared expert) are quantised, their router stays float.
	Quant      asm.QFormat
	QD, QF, QE bool
	// The quantised matvecs by row length (dim, ffn_dim, moe.ffn_dim).
	QMVD, QMVF, QMVE QCall
}

// QCall is a quantised matrix-vector kernel of the decode path.
type QCall struct {
	Field  string
	Kernel asm.QKernel
}

// QCalls returns the plan's quantised kernel fields.
func (p *Plan) QCalls() []QCall {
	var cs []QCall
	if p.QD {
		cs = append(cs, p.QMVD)
	}
	if p.QF {
		cs = append(cs, p.QMVF)
	}
	if p.QE {
		cs = append(cs, p.QMVE)
	}
	return cs
}

// QKernels lists the quantised kernels for one instruction set (NEON: with
// or without the dot-product extension; AVX-512: the panel kernels too).
func (p *Plan) QKernels(isa asm.ISA, noDot bool) []asm.QKernel {
	var ks []asm.QKernel
	for _, c := range p.QCalls() {
		k := c.Kernel
		k.ISA, k.NoDot = isa, noDot
		ks = append(ks, k)
		if isa == asm.AVX512 {
			k.Panel = true
			ks = append(ks, k)
		}
	}
	if isa == asm.AVX512 {
		for _, c := range p.QMMCalls() {
			ks = append(ks, c.Kernel)
		}
	} else {
		for _, c := range p.GMMCalls() {
			k := c.Kernel
			k.ISA, k.NoDot = isa, noDot
			ks = append(ks, k)
		}
	}
	return ks
}

// PanelField is the kernelSet field of c's panel kernel (nil on the paths
// without one).
func (c QCall) PanelField() string { return c.Field + "P" }

// QMMCalls are the panel QMatMul kernels of the batched quantised pass
// (prefill), set on the AVX-512 VNNI path only: Q|K|V, output, gate|up,
// down (when ffn_down is quantised; otherwise the pass multiplies it row
// by row with the step's float matvec) and classifier, each kernel's Rows
// the stride of its output rows; a mixture's experts (gate|up, down) over
// the rows routed to each. None
// when the dim-wide matrices are not quantised: the pass then runs its rows
// one by one.
func (p *Plan) QMMCalls() []QCall {
	if !p.QD {
		return nil
	}
	s := &p.Spec
	d, kv, f := s.Dim, s.KVDim(), s.FFNDim
	mk := func(field string, stride, cols int) QCall {
		return QCall{field, asm.QKernel{Format: p.Quant, ISA: asm.AVX512, Rows: stride, Cols: cols, Panel: true}}
	}
	cs := []QCall{mk("qmmQKV", d+2*kv, d), mk("qmmOut", d, d)}
	switch {
	case p.MoE(): // each expert over the rows routed to it
		mf := s.MoE.FFNDim
		cs = append(cs, mk("qmmExpGU", 2*mf, d), mk("qmmExpDown", d, mf))
	case p.QF:
		cs = append(cs, mk("qmmGateUp", 2*f, d), mk("qmmDown", d, f))
	default:
		cs = append(cs, mk("qmmGateUp", 2*f, d))
	}
	return append(cs, mk("qmmCls", s.Vocab, d))
}

// GMMCalls are QMMCalls in ggml's block layout (QMatMul, no panels), the
// batched quantised pass of the AVX2, NEON and pure-Go paths: each token's
// sums are those of the same path's QMatVec (e2e: Prefill = Forward bit for
// bit on every path). The AVX-512 set has none (its QMatVec takes 8 rows a
// pass, its QMatMul 4), so without panels it runs rows one by one; without
// VNNI it falls back to AVX2's (qFallback).
func (p *Plan) GMMCalls() []QCall {
	var cs []QCall
	for _, c := range p.QMMCalls() {
		c.Field = gmmField(c.Field)
		c.Kernel.Panel, c.Kernel.ISA = false, asm.Generic
		cs = append(cs, c)
	}
	return cs
}

// gmmField names the ggml-layout matmul of panel matmul field (qmmQKV →
// gmmQKV).
func gmmField(field string) string { return "g" + field[1:] }

// qmm returns the batched pass's panel matmul call named field.
func (p *Plan) qmm(field string) QCall {
	for _, c := range p.QMMCalls() {
		if c.Field == field {
			return c
		}
	}
	panic("gen: no quantised matmul " + field)
}

// QKernelName is the function implementing quantised call c on isa.
func QKernelName(c QCall, isa asm.ISA, noDot bool) string {
	k := c.Kernel
	k.ISA, k.NoDot = isa, noDot
	return k.Name()
}

// MoE reports whether the plan compiles a mixture of experts.
func (p *Plan) MoE() bool { return p.Spec.MoE != nil }

// Calls returns the plan's distinct kernel fields in a stable order.
func (p *Plan) Calls() []KCall {
	if p.MoE() {
		cs := []KCall{p.QKV, p.RoPE, p.Out, p.Classifier, p.Attention, p.MMQKV, p.MMOut, p.MMCls, p.Router, p.ExpFFN, p.ExpDown, p.TrainAttention}
		if p.Spec.MoE.SharedExpert {
			cs = append(cs, p.SharedFFN)
		}
		cs = append(cs, p.MMExpGU, p.MMExpDown, p.SiLUMulE)
		return p.withAttDecode(cs)
	}
	return p.withAttDecode([]KCall{p.QKV, p.RoPE, p.Out, p.FFN, p.Down, p.Classifier, p.Attention, p.MMQKV, p.MMOut, p.MMGateUp, p.SiLUMul, p.MMDown, p.MMCls, p.TrainAttention})
}

// hasSiLUMul reports whether the plan's kernel set has the batched pass's
// SiLU·mul epilogue (dense plans; an MoE plan's experts have their own).
func hasSiLUMul(p *Plan) bool {
	for _, c := range p.Calls() {
		if c.Field == p.SiLUMul.Field {
			return true
		}
	}
	return false
}

func (p *Plan) withAttDecode(cs []KCall) []KCall {
	if p.AttDecode.Kernel.Op != 0 {
		cs = append(cs, p.AttDecode)
	}
	return cs
}

// Kernels lists the kernels for one instruction set.
func (p *Plan) Kernels(isa asm.ISA) []asm.Kernel {
	var ks []asm.Kernel
	for _, c := range p.Calls() {
		k := c.Kernel
		k.ISA = isa
		ks = append(ks, k)
	}
	return ks
}

// KernelName is the function implementing call c on isa.
func KernelName(c KCall, isa asm.ISA) string {
	k := c.Kernel
	k.ISA = isa
	return k.Name()
}

var targetISAs = map[string]asm.ISA{"avx512": asm.AVX512, "avx2": asm.AVX2, "neon": asm.NEON}

// NewPlan checks that gen can compile s and lays out its kernels.
func NewPlan(s *spec.Spec) (*Plan, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := s.Unsupported(); err != nil {
		return nil, err
	}
	d, kv, f := s.Dim, s.KVDim(), s.FFNDim
	// Out and Down add into the residual stream (MatVecAdd).
	p := &Plan{
		Spec:       *s,
		Package:    s.Name,
		QKV:        KCall{"qkv", asm.Kernel{Op: asm.OpRMSNormMatVec, Cols: d}, d + 2*kv, 0},
		Out:        KCall{"wo", asm.Kernel{Op: asm.OpMatVecAdd, Cols: d}, d, 0},
		FFN:        KCall{"ffn", asm.Kernel{Op: asm.OpRMSNormSwiGLU, Rows: f, Cols: d}, f, 0},
		Down:       KCall{"down", asm.Kernel{Op: asm.OpMatVecAdd, Cols: f}, d, 0},
		Classifier: KCall{"cls", asm.Kernel{Op: asm.OpRMSNormMatVec, Cols: d}, s.Vocab, 0},
		Attention:  KCall{"att", asm.Kernel{Op: asm.OpAttention, HeadDim: s.HeadDim(), KVStride: kv}, 1, 0},
	}
	if g := s.Heads / s.KVHeads; g <= 4 && s.HeadDim() < posMinorHead && kvCap(s.MaxSeq)*s.KVDim() <= posMinorMax {
		p.AttDecode = KCall{"attAll", asm.Kernel{Op: asm.OpGroupAttentionT, HeadDim: s.HeadDim(), KVStride: kvCap(s.MaxSeq), Heads: s.KVHeads, Group: g}, 1, 0}
	} else if g <= 4 {
		p.AttDecode = KCall{"attAll", asm.Kernel{Op: asm.OpGroupAttention, HeadDim: s.HeadDim(), KVStride: kv, Heads: s.KVHeads, Group: g}, 1, 0}
	}
	p.RoPE = KCall{"rope", asm.Kernel{Op: asm.OpRoPE, Heads: s.Heads + s.KVHeads, HeadDim: s.HeadDim()}, 1, 0}
	p.TrainAttention = KCall{"attTrain", asm.Kernel{Op: asm.OpAttention, HeadDim: s.HeadDim(), KVStride: d + 2*kv}, 1, 0}
	// Prefill runs the prompt in batches of up to 64 tokens: each weight row
	// loaded once serves the whole batch.
	b := min(64, s.MaxSeq)
	mm := func(field string, rows, cols int) KCall {
		return KCall{field, asm.Kernel{Op: asm.OpMatMul, Rows: rows, Cols: cols}, rows, b}
	}
	p.PrefillBatch = b
	p.MMQKV = mm("mmQKV", d+2*kv, d)
	p.MMOut = mm("mmOut", d, d)
	p.MMGateUp = mm("mmGateUp", 2*f, d)
	p.MMDown = mm("mmDown", d, f)
	p.SiLUMul = KCall{"siluMul", asm.Kernel{Op: asm.OpSiLUMul, Cols: f}, f, 0}
	p.MMCls = mm("mmCls", s.Vocab, d)
	if m := s.MoE; m != nil {
		mf := m.FFNDim
		p.Router = KCall{"router", asm.Kernel{Op: asm.OpRMSNormMatVec, Cols: d}, m.Experts, 0}
		// An expert's up rows lie experts·ffn rows after its gate rows (the
		// gate and up tensors hold all experts each): the kernel bakes that.
		p.ExpFFN = KCall{"expFFN", asm.Kernel{Op: asm.OpRMSNormSwiGLU, Rows: m.Experts * mf, Cols: d}, mf, 0}
		p.ExpDown = KCall{"expDown", asm.Kernel{Op: asm.OpMatVec, Cols: mf}, d, 0}
		p.SharedFFN = KCall{"sharedFFN", asm.Kernel{Op: asm.OpRMSNormSwiGLU, Rows: mf, Cols: d}, mf, 0}
		p.MMExpGU = mm("mmExpGU", 2*mf, d)
		p.MMExpDown = mm("mmExpDown", d, mf)
		p.SiLUMulE = KCall{"siluMulE", asm.Kernel{Op: asm.OpSiLUMul, Cols: mf}, mf, 0}
	}
	if s.Quant != "f32" {
		p.Quant = asm.Q8_0
		if s.Quant == "q4_0" {
			p.Quant = asm.Q4_0
		}
		p.QD, p.QF = d%32 == 0, f%32 == 0
		p.QMVD = QCall{"qmvD", asm.QKernel{Format: p.Quant, Cols: d}}
		p.QMVF = QCall{"qmvF", asm.QKernel{Format: p.Quant, Cols: f}}
		if m := s.MoE; m != nil {
			// No dense feed-forward; the experts' rows are whole blocks
			// (spec.Unsupported).
			p.QF, p.QE = false, true
			p.QMVE = QCall{"qmvE", asm.QKernel{Format: p.Quant, Cols: m.FFNDim}}
		}
	}
	targets := s.Targets
	if len(targets) == 0 {
		targets = []string{"avx512", "avx2", "neon"}
	}
	for _, t := range targets {
		if isa, ok := targetISAs[t]; ok && !slices.Contains(p.ISAs, isa) {
			p.ISAs = append(p.ISAs, isa)
		}
	}
	slices.Sort(p.ISAs)
	for _, isa := range append([]asm.ISA{asm.Generic}, p.ISAs...) {
		for _, k := range p.Kernels(isa) {
			if err := k.Validate(); err != nil {
				return nil, fmt.Errorf("%s: %w", s.Name, err)
			}
		}
		for _, k := range p.QKernels(isa, false) {
			if err := k.Validate(); err != nil {
				return nil, fmt.Errorf("%s: %w", s.Name, err)
			}
		}
	}
	return p, nil
}

// archISAs groups the plan's assembly paths by GOARCH.
func (p *Plan) archISAs() map[string][]asm.ISA {
	m := map[string][]asm.ISA{}
	for _, isa := range p.ISAs {
		arch := "amd64"
		if isa == asm.NEON {
			arch = "arm64"
		}
		m[arch] = append(m[arch], isa)
	}
	return m
}
