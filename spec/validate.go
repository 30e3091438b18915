package spec

import (
	"fmt"
	"go/token"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Upper bounds: far above any model modelc means to run, low enough that the
// derived sizes cannot overflow an int64.
const (
	MaxDim     = 1 << 16
	MaxLayers  = 1024
	MaxHeads   = 1024
	MaxFFNDim  = 1 << 20
	MaxVocab   = 1 << 24
	MaxMatrix  = 1 << 28 // floats in one weight matrix
	MaxSeqLen  = 1 << 20
	MaxExperts = 1024
	// MaxHeadDim bounds dim/heads: the largest head the kernels are
	// generated for (asm.Kernel.Validate).
	MaxHeadDim = 1024
	MaxBatch   = 1 << 16
	// maxMatrixRows bounds the rows of one matrix the kernels take.
	maxMatrixRows = 1 << 24
	maxNameLen    = 64
)

// Allowed values of the enumerated fields, in the order messages list them.
var (
	Quants         = []string{"f32", "q8_0", "q4_0"}
	Objectives     = []string{"causal", "masked"}
	TokenizerKinds = []string{"llama2c", "sentencepiece", "bytelevel", "gguf"}
	TargetNames    = []string{"avx512", "avx2", "neon", "purego"}
)

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Validate checks every field and the relations between them and returns the
// first problem as a *FieldError (`layers: must be ≥ 1, got 0`), or nil.
// Fields are checked in the order a spec lists them, so the report points at
// the earliest mistake.
func (s *Spec) Validate() error {
	if err := s.validateShape(); err != nil {
		return err
	}
	if err := s.validateMoE(); err != nil {
		return err
	}
	if err := oneOf("quant", s.Quant, Quants); err != nil {
		return err
	}
	if err := oneOf("objective", s.Objective, Objectives); err != nil {
		return err
	}
	if err := s.validateTokenizer(); err != nil {
		return err
	}
	seen := map[string]int{}
	for i, t := range s.Targets {
		p := fmt.Sprintf("targets[%d]", i)
		if err := oneOf(p, t, TargetNames); err != nil {
			return err
		}
		if j, dup := seen[t]; dup {
			return fieldErr(p, "%q is already listed at targets[%d]", t, j)
		}
		seen[t] = i
	}
	return s.validateTrain()
}

// CheckName reports why name cannot name a spec (a Go package and binary),
// or nil: for tools that take a name before they make a spec of it.
func CheckName(name string) error {
	switch {
	case name == "":
		return fieldErr("name", "must not be empty")
	case len(name) > maxNameLen:
		return fieldErr("name", "must be at most %d characters, got %d", maxNameLen, len(name))
	case !nameRE.MatchString(name):
		return fieldErr("name", "must match ^[a-z][a-z0-9_]*$, got %q", name)
	case token.IsKeyword(name):
		// The name becomes a Go package name.
		return fieldErr("name", "must not be a Go keyword, got %q", name)
	case name == "main" || name == "init":
		// The generated package is imported by cmd/NAME: a package main is
		// a program, not an importable package, and Go cannot import a
		// package as init.
		return fieldErr("name", "must not be main or init (names Go cannot import a package by), got %q", name)
	}
	return nil
}

func (s *Spec) validateShape() error {
	if err := CheckName(s.Name); err != nil {
		return err
	}
	dims := []struct {
		path string
		v    int
		max  int
	}{
		{"vocab", s.Vocab, MaxVocab},
		{"dim", s.Dim, MaxDim},
		{"layers", s.Layers, MaxLayers},
		{"heads", s.Heads, MaxHeads},
		{"kv_heads", s.KVHeads, MaxHeads},
		{"ffn_dim", s.FFNDim, MaxFFNDim},
		{"max_seq", s.MaxSeq, MaxSeqLen},
	}
	for _, d := range dims {
		if err := intRange(d.path, d.v, 1, d.max); err != nil {
			return err
		}
	}
	if s.Dim%s.Heads != 0 {
		return fieldErr("dim", "must be a multiple of heads (%d), got %d", s.Heads, s.Dim)
	}
	if s.Heads%s.KVHeads != 0 {
		return fieldErr("kv_heads", "must divide heads (%d), got %d", s.Heads, s.KVHeads)
	}
	if hd := s.Dim / s.Heads; hd%2 != 0 {
		return fieldErr("heads", "dim/heads must be even for RoPE, got %d/%d = %d", s.Dim, s.Heads, hd)
	}
	// The kernels take matrices of at most 2^28 floats (1 GiB).
	if s.Vocab*s.Dim > MaxMatrix {
		return fieldErr("vocab", "vocab × dim must be ≤ 2^28 (the largest matrix the kernels take), got %d × %d", s.Vocab, s.Dim)
	}
	if 2*s.FFNDim*s.Dim > MaxMatrix {
		return fieldErr("ffn_dim", "2 × ffn_dim × dim must be ≤ 2^28 (gate and up in one matrix), got 2 × %d × %d", s.FFNDim, s.Dim)
	}
	if hd := s.Dim / s.Heads; hd > MaxHeadDim {
		return fieldErr("heads", "dim/heads must be ≤ %d (the largest head the kernels take), got %d/%d = %d", MaxHeadDim, s.Dim, s.Heads, hd)
	}
	if q := s.Dim + 2*s.KVDim(); q*s.Dim > MaxMatrix {
		return fieldErr("dim", "dim × (dim + 2 × kv_heads × dim/heads) must be ≤ 2^28 (Q, K and V in one matrix), got %d × %d", s.Dim, q)
	}
	if err := floatOpen("norm_eps", s.NormEps, 0, 1); err != nil {
		return err
	}
	if err := floatPositive("rope_theta", s.RopeTheta); err != nil {
		return err
	}
	return nil
}

func (s *Spec) validateMoE() error {
	m := s.MoE
	if m == nil {
		return nil
	}
	if err := intRange("moe.experts", m.Experts, 2, MaxExperts); err != nil {
		return err
	}
	if m.TopK < 1 {
		return fieldErr("moe.top_k", "must be ≥ 1, got %d", m.TopK)
	}
	if m.TopK > m.Experts {
		return fieldErr("moe.top_k", "must be ≤ moe.experts (%d), got %d", m.Experts, m.TopK)
	}
	if err := intRange("moe.ffn_dim", m.FFNDim, 1, MaxFFNDim); err != nil {
		return err
	}
	// An expert's gate and up rows are read at a fixed distance: the whole
	// gate tensor of every expert (asm.OpRMSNormSwiGLU's rows × cols).
	if m.Experts*m.FFNDim*s.Dim > MaxMatrix {
		return fieldErr("moe.ffn_dim", "moe.experts × moe.ffn_dim × dim must be ≤ 2^28 (every expert's gate rows in one tensor), got %d × %d × %d", m.Experts, m.FFNDim, s.Dim)
	}
	if m.Experts*m.FFNDim > maxMatrixRows {
		return fieldErr("moe.ffn_dim", "moe.experts × moe.ffn_dim must be ≤ 2^24 (every expert's gate rows in one tensor), got %d × %d", m.Experts, m.FFNDim)
	}
	if !(m.AuxLossCoef >= 0) || math.IsInf(m.AuxLossCoef, 0) {
		return fieldErr("moe.aux_loss_coef", "must be a finite number ≥ 0, got %s", num(m.AuxLossCoef))
	}
	return nil
}

func (s *Spec) validateTokenizer() error {
	t := s.Tokenizer
	if err := oneOf("tokenizer.kind", t.Kind, TokenizerKinds); err != nil {
		return err
	}
	if t.BOS < 0 || t.BOS >= s.Vocab {
		return fieldErr("tokenizer.bos", "must be in [0, vocab) = [0, %d), got %d", s.Vocab, t.BOS)
	}
	if t.EOS < 0 || t.EOS >= s.Vocab {
		return fieldErr("tokenizer.eos", "must be in [0, vocab) = [0, %d), got %d", s.Vocab, t.EOS)
	}
	return nil
}

func (s *Spec) validateTrain() error {
	t := s.Train
	if err := intRange("train.batch_size", t.BatchSize, 1, MaxBatch); err != nil {
		return err
	}
	if t.SeqLen < 1 {
		return fieldErr("train.seq_len", "must be ≥ 1, got %d", t.SeqLen)
	}
	if t.SeqLen > s.MaxSeq {
		return fieldErr("train.seq_len", "must be ≤ max_seq (%d), got %d", s.MaxSeq, t.SeqLen)
	}
	if err := floatPositive("train.lr", t.LR); err != nil {
		return err
	}
	if !(t.MinLR >= 0) || t.MinLR > t.LR {
		return fieldErr("train.min_lr", "must be in [0, train.lr] = [0, %s], got %s", num(t.LR), num(t.MinLR))
	}
	if t.WarmupSteps < 0 {
		return fieldErr("train.warmup_steps", "must be ≥ 0, got %d", t.WarmupSteps)
	}
	if !(t.WeightDecay >= 0) || math.IsInf(t.WeightDecay, 0) {
		return fieldErr("train.weight_decay", "must be a finite number ≥ 0, got %s", num(t.WeightDecay))
	}
	if !(t.Beta1 >= 0 && t.Beta1 < 1) {
		return fieldErr("train.beta1", "must be in [0, 1), got %s", num(t.Beta1))
	}
	if !(t.Beta2 >= 0 && t.Beta2 < 1) {
		return fieldErr("train.beta2", "must be in [0, 1), got %s", num(t.Beta2))
	}
	if !(t.GradClip >= 0) || math.IsInf(t.GradClip, 0) {
		return fieldErr("train.grad_clip", "must be a finite number ≥ 0 (0 turns clipping off), got %s", num(t.GradClip))
	}
	if err := intRange("train.grad_accum", t.GradAccum, 1, MaxBatch); err != nil {
		return err
	}
	if t.EvalEvery < 0 {
		return fieldErr("train.eval_every", "must be ≥ 0 (0 never evaluates), got %d", t.EvalEvery)
	}
	if t.CheckpointEv < 0 {
		return fieldErr("train.checkpoint_every", "must be ≥ 0 (0 saves only at the end), got %d", t.CheckpointEv)
	}
	return nil
}

// Unsupported reports what the code generator cannot compile yet, or nil.
// Each line goes away when gen learns the feature.
func (s *Spec) Unsupported() error {
	if s.Quant == "f32" {
		return nil
	}
	if m := s.MoE; m != nil && (s.Dim%32 != 0 || m.FFNDim%32 != 0) {
		return fieldErr("quant", "%s with moe needs dim and moe.ffn_dim multiples of 32 (the experts' rows are whole blocks), got %d and %d (use f32)", s.Quant, s.Dim, m.FFNDim)
	}
	if s.Dim%32 == 0 && s.Vocab > 1<<22 {
		// The batched pass's quantised classifier takes at most 2^22 rows.
		return fieldErr("quant", "%s needs vocab ≤ 2^22 = 4194304 when dim is a multiple of 32 (the quantised classifier's rows), got %d (use f32)", s.Quant, s.Vocab)
	}
	if len(s.QuantMatrices()) == 0 {
		return fieldErr("quant", "%s needs rows of whole 32-weight blocks, but no matrix has them: dim %d and ffn_dim %d are not multiples of 32 (use f32)", s.Quant, s.Dim, s.FFNDim)
	}
	return nil
}

// QuantMatrices lists the matrices a quantised spec (q8_0, q4_0) stores and
// multiplies in its blocks: those whose rows (cols) are a multiple of 32. The
// names are llama.cpp's; "blk.N" stands for every layer. Nil for f32.
func (s *Spec) QuantMatrices() []string {
	q, _ := s.quantSplit()
	return q
}

// FloatTensors lists the tensors that stay f32 in a quantised spec: the
// norms, and the matrices whose rows are not whole 32-blocks. Nil for f32.
func (s *Spec) FloatTensors() []string {
	_, f := s.quantSplit()
	return f
}

func (s *Spec) quantSplit() (q, f []string) {
	if s.Quant == "f32" || s.Quant == "" {
		return nil, nil
	}
	add := func(name string, cols int) {
		if cols%32 == 0 {
			q = append(q, name)
		} else {
			f = append(f, name)
		}
	}
	d := s.Dim
	add("token_embd", d)
	for _, k := range []string{"attn_q", "attn_k", "attn_v", "attn_output"} {
		add("blk.N."+k, d)
	}
	if m := s.MoE; m != nil {
		// The router stays f32, as llama.cpp's quantize keeps it.
		add("blk.N.ffn_gate_exps", d)
		add("blk.N.ffn_up_exps", d)
		add("blk.N.ffn_down_exps", m.FFNDim)
		if m.SharedExpert {
			add("blk.N.ffn_gate_shexp", d)
			add("blk.N.ffn_up_shexp", d)
			add("blk.N.ffn_down_shexp", m.FFNDim)
		}
		f = append(f, "blk.N.ffn_gate_inp")
	} else {
		add("blk.N.ffn_gate", d)
		add("blk.N.ffn_up", d)
		add("blk.N.ffn_down", s.FFNDim)
	}
	if !s.TieEmbeddings {
		add("output", d)
	}
	f = append(f, "blk.N.attn_norm", "blk.N.ffn_norm", "output_norm")
	return q, f
}

func intRange(path string, v, lo, hi int) error {
	if v < lo {
		return fieldErr(path, "must be ≥ %d, got %d", lo, v)
	}
	if v > hi {
		return fieldErr(path, "must be ≤ %d, got %d", hi, v)
	}
	return nil
}

func floatPositive(path string, v float64) error {
	if !(v > 0) || math.IsInf(v, 0) {
		return fieldErr(path, "must be a finite number > 0, got %s", num(v))
	}
	return nil
}

// floatOpen checks lo < v < hi.
func floatOpen(path string, v, lo, hi float64) error {
	if !(v > lo && v < hi) {
		return fieldErr(path, "must be in (%s, %s), got %s", num(lo), num(hi), num(v))
	}
	return nil
}

func oneOf(path, v string, allowed []string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fieldErr(path, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
}

// num formats a float the shortest way that reads back exactly.
func num(v float64) string {
	return strconv.FormatFloat(v, 'g', -1, 64)
}
