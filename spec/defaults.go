package spec

import "strconv"

// Defaults for fields a spec may leave out.
const (
	DefaultNormEps   = 1e-5
	DefaultRopeTheta = 10000.0
	DefaultQuant     = "f32"
	DefaultObjective = "causal"
	DefaultTokenizer = "llama2c"
	DefaultBOS       = 1
	DefaultEOS       = 2

	DefaultBatchSize   = 8
	DefaultSeqLen      = 256 // capped at max_seq
	DefaultLR          = 3e-4
	DefaultWarmup      = 100
	DefaultWeightDecay = 0.1
	DefaultBeta1       = 0.9
	DefaultBeta2       = 0.95
	DefaultGradClip    = 1.0
	DefaultGradAccum   = 1
	DefaultSeed        = 1337
	DefaultEvalEvery   = 100
	DefaultCheckpoint  = 100

	DefaultMoETopK        = 2
	DefaultMoEAuxLossCoef = 0.01
)

// SetDefaults fills the fields of a spec built in code (an importer, a test)
// that are still zero. Zero means "unset" here, so a field that should really
// be zero (min_lr, bos) must be set after SetDefaults. A zero Tokenizer
// becomes llama2.c's (kind llama2c, bos 1, eos 2); a Tokenizer with a kind is
// left alone. Parse instead defaults exactly the fields the input leaves out.
func (s *Spec) SetDefaults() {
	s.applyDefaults(nil)
}

// applyDefaults sets every field for which given(path) is false. With given
// nil a field counts as given when it is not zero.
func (s *Spec) applyDefaults(given func(path string) bool) {
	unset := func(path string, zero bool) bool {
		if given == nil {
			return zero
		}
		return !given(path)
	}
	// kv_heads 0 is llama2.c's "as many as heads", so it is unset either way.
	if unset("kv_heads", s.KVHeads == 0) || s.KVHeads == 0 {
		s.KVHeads = s.Heads
	}
	if unset("norm_eps", s.NormEps == 0) {
		s.NormEps = DefaultNormEps
	}
	if unset("rope_theta", s.RopeTheta == 0) {
		s.RopeTheta = DefaultRopeTheta
	}
	if unset("quant", s.Quant == "") {
		s.Quant = DefaultQuant
	}
	if unset("objective", s.Objective == "") {
		s.Objective = DefaultObjective
	}
	if len(s.Targets) == 0 {
		s.Targets = nil // "targets: []" and no targets both mean all of them
	}

	if m := s.MoE; m != nil {
		// With experts the dense width is unused: either ffn_dim may say it.
		if unset("ffn_dim", s.FFNDim == 0) && !unset("moe.ffn_dim", m.FFNDim == 0) {
			s.FFNDim = m.FFNDim
		}
		if unset("moe.top_k", m.TopK == 0) {
			m.TopK = DefaultMoETopK
		}
		if unset("moe.ffn_dim", m.FFNDim == 0) {
			m.FFNDim = s.FFNDim
		}
		if unset("moe.aux_loss_coef", m.AuxLossCoef == 0) {
			m.AuxLossCoef = DefaultMoEAuxLossCoef
		}
	}

	t := &s.Tokenizer
	if given == nil {
		if *t == (Tokenizer{}) {
			*t = Tokenizer{Kind: DefaultTokenizer, BOS: DefaultBOS, EOS: DefaultEOS}
		}
	} else {
		if !given("tokenizer.kind") {
			t.Kind = DefaultTokenizer
		}
		if !given("tokenizer.bos") {
			t.BOS = DefaultBOS
		}
		if !given("tokenizer.eos") {
			t.EOS = DefaultEOS
		}
	}

	tr := &s.Train
	if unset("train.batch_size", tr.BatchSize == 0) {
		tr.BatchSize = DefaultBatchSize
	}
	if unset("train.seq_len", tr.SeqLen == 0) {
		tr.SeqLen = min(DefaultSeqLen, s.MaxSeq)
	}
	if unset("train.lr", tr.LR == 0) {
		tr.LR = DefaultLR
	}
	if unset("train.min_lr", tr.MinLR == 0) {
		tr.MinLR = round15(tr.LR / 10)
	}
	if unset("train.warmup_steps", tr.WarmupSteps == 0) {
		tr.WarmupSteps = DefaultWarmup
	}
	if unset("train.weight_decay", tr.WeightDecay == 0) {
		tr.WeightDecay = DefaultWeightDecay
	}
	if unset("train.beta1", tr.Beta1 == 0) {
		tr.Beta1 = DefaultBeta1
	}
	if unset("train.beta2", tr.Beta2 == 0) {
		tr.Beta2 = DefaultBeta2
	}
	if unset("train.grad_clip", tr.GradClip == 0) {
		tr.GradClip = DefaultGradClip
	}
	if unset("train.grad_accum", tr.GradAccum == 0) {
		tr.GradAccum = DefaultGradAccum
	}
	if unset("train.seed", tr.Seed == 0) {
		tr.Seed = DefaultSeed
	}
	if unset("train.eval_every", tr.EvalEvery == 0) {
		tr.EvalEvery = DefaultEvalEvery
	}
	if unset("train.checkpoint_every", tr.CheckpointEv == 0) {
		tr.CheckpointEv = DefaultCheckpoint
	}
}

// round15 rounds to 15 significant digits so that lr/10 reads as 3e-05, not
// 2.9999999999999997e-05, when the spec is written back.
func round15(v float64) float64 {
	r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 15, 64), 64)
	if err != nil {
		return v
	}
	return r
}
