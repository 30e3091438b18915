// Package spec holds the declarative description of a model: its shape, weight
// format, objective, tokenizer, targets and training defaults. A Spec is what
// the compiler specialises code for and what a checkpoint must match.
package spec

// Spec is a transformer language model in the Llama family.
type Spec struct {
	// Name names the generated package and binary (lower case, [a-z0-9_]).
	Name string `yaml:"name" json:"name"`

	Vocab   int `yaml:"vocab" json:"vocab"`
	Dim     int `yaml:"dim" json:"dim"`
	Layers  int `yaml:"layers" json:"layers"`
	Heads   int `yaml:"heads" json:"heads"`
	KVHeads int `yaml:"kv_heads" json:"kv_heads"`
	FFNDim  int `yaml:"ffn_dim" json:"ffn_dim"`
	MaxSeq  int `yaml:"max_seq" json:"max_seq"`

	NormEps       float64 `yaml:"norm_eps" json:"norm_eps"`
	RopeTheta     float64 `yaml:"rope_theta" json:"rope_theta"`
	TieEmbeddings bool    `yaml:"tie_embeddings" json:"tie_embeddings"`

	// MoE, when set, replaces every dense FFN by a gated mixture of experts.
	MoE *MoE `yaml:"moe,omitempty" json:"moe,omitempty"`

	// Quant is the weight format: f32 (default), q8_0 or q4_0.
	Quant string `yaml:"quant" json:"quant"`
	// Objective is causal (next token, default) or masked.
	Objective string `yaml:"objective" json:"objective"`

	Tokenizer Tokenizer `yaml:"tokenizer" json:"tokenizer"`

	// Targets lists the kernel paths to generate: avx512, avx2, neon, purego.
	// Empty means all of them.
	Targets []string `yaml:"targets,omitempty" json:"targets,omitempty"`

	Train Train `yaml:"train" json:"train"`
}

// MoE is a mixture-of-experts feed-forward block.
type MoE struct {
	Experts      int     `yaml:"experts" json:"experts"`
	TopK         int     `yaml:"top_k" json:"top_k"`
	FFNDim       int     `yaml:"ffn_dim" json:"ffn_dim"`
	SharedExpert bool    `yaml:"shared_expert" json:"shared_expert"`
	AuxLossCoef  float64 `yaml:"aux_loss_coef" json:"aux_loss_coef"`
}

// Tokenizer says which vocabulary the model speaks.
type Tokenizer struct {
	// Kind is llama2c, sentencepiece, bytelevel or gguf (carried in the model file).
	Kind string `yaml:"kind" json:"kind"`
	// Path names the tokenizer file the model was made with, relative to the
	// spec: a note for readers (spec show); the binaries take --tokenizer, or
	// the tokenizer a GGUF model carries.
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	BOS  int    `yaml:"bos" json:"bos"`
	EOS  int    `yaml:"eos" json:"eos"`
}

// Train holds training defaults; command-line flags override them.
type Train struct {
	BatchSize    int     `yaml:"batch_size" json:"batch_size"`
	SeqLen       int     `yaml:"seq_len" json:"seq_len"`
	LR           float64 `yaml:"lr" json:"lr"`
	MinLR        float64 `yaml:"min_lr" json:"min_lr"`
	WarmupSteps  int     `yaml:"warmup_steps" json:"warmup_steps"`
	WeightDecay  float64 `yaml:"weight_decay" json:"weight_decay"`
	Beta1        float64 `yaml:"beta1" json:"beta1"`
	Beta2        float64 `yaml:"beta2" json:"beta2"`
	GradClip     float64 `yaml:"grad_clip" json:"grad_clip"`
	GradAccum    int     `yaml:"grad_accum" json:"grad_accum"`
	Seed         uint64  `yaml:"seed" json:"seed"`
	EvalEvery    int     `yaml:"eval_every" json:"eval_every"`
	CheckpointEv int     `yaml:"checkpoint_every" json:"checkpoint_every"`
}

// HeadDim is the size of one attention head.
func (s *Spec) HeadDim() int { return s.Dim / s.Heads }

// KVDim is the width of the keys (and values) of one token.
func (s *Spec) KVDim() int { return s.KVHeads * s.HeadDim() }

// FFNWidth is the width of the feed-forward layers: the experts' ffn_dim
// with experts (the dense ffn_dim is then unused), else ffn_dim. A GGUF's
// feed_forward_length holds it, as llama.cpp sizes expert tensors by it.
func (s *Spec) FFNWidth() int {
	if s.MoE != nil {
		return s.MoE.FFNDim
	}
	return s.FFNDim
}
