package posttrain

import (
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/train"
	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

// Common is what every stage is configured with.
type Common struct {
	// Spec is the shape of the model trained (the binary's).
	Spec *spec.Spec `json:"spec"`
	// Factory binds weights to code (nil: the generic model).
	Factory model.Factory `json:"-"`
	// Init is the model file the stage starts from; empty draws fresh
	// weights from the seed (for tests).
	Init string `json:"init,omitempty"`
	// Tok tokenizes; TokPath is where it came from (recorded for resume).
	Tok      tokenizer.Tokenizer `json:"-"`
	TokPath  string              `json:"tokenizer,omitempty"`
	Template string              `json:"template"`
	Hyper    Hyper               `json:"hyper"`
	Batch    int                 `json:"batch"`
	Seq      int                 `json:"seq"`
	Out      string              `json:"-"`
	Resume   bool                `json:"-"`
	Log      io.Writer           `json:"-"`
	// StopAfter: see loop.StopAfter.
	StopAfter int `json:"-"`

	// runFile is the run.json a resumed run's settings were read from, and
	// flagged tells the flags typed on resuming (prepare lets only --steps
	// replace a setting): errors name the others by file and field, since
	// the user typed no such flag.
	runFile string
	flagged func(flag string) bool
}

// runFields is the run.json field each flag's setting is saved in (a
// stage's own settings are top-level fields of its config).
var runFields = map[string]string{
	"batch": "batch", "seq": "seq",
	"steps": "hyper.steps", "lr": "hyper.lr", "min-lr": "hyper.min_lr", "warmup": "hyper.warmup",
	"weight-decay": "hyper.weight_decay", "grad-clip": "hyper.grad_clip",
	"beta": "beta", "g": "g", "clip-eps": "clip_eps", "temperature": "temperature",
	"max-new": "max_new", "updates": "updates", "alpha": "alpha", "teacher": "teacher",
}

// names calls settings in errors (see train.Names).
func (c *Common) names() train.Names {
	return train.Names{File: c.runFile, Field: func(flag string) string {
		if c.runFile == "" || c.flagged(flag) {
			return ""
		}
		return runFields[flag]
	}}
}

func (c *Common) check() error {
	n := c.names()
	switch {
	case c.Spec == nil:
		return fmt.Errorf("no model spec")
	case c.Tok == nil:
		return fmt.Errorf("--tokenizer: a tokenizer is needed (or a GGUF --init that carries one)")
	case c.Tok.VocabSize() != c.Spec.Vocab:
		return tokenizer.CheckVocab("", c.Tok, c.Spec.Vocab)
	case c.Batch < 1:
		return fmt.Errorf("%s: must be ≥ 1, got %d", n.Name("batch"), c.Batch)
	case c.Seq < 2 || c.Seq > c.Spec.MaxSeq:
		return fmt.Errorf("%s: must be between 2 and the model's max_seq %d, got %d", n.Name("seq"), c.Spec.MaxSeq, c.Seq)
	}
	return c.Hyper.check(n)
}

func (c *Common) encoder() (*Encoder, error) {
	name := c.Template
	if name == "" {
		name = "llama2"
	}
	t, err := tokenizer.ChatTemplate(name)
	if err != nil {
		return nil, err
	}
	return &Encoder{Tok: c.Tok, Template: t}, nil
}

// params returns the starting weights.
func (c *Common) params() (*model.Params, error) {
	if c.Init == "" {
		return train.InitParams(c.Spec, c.Hyper.Seed), nil
	}
	p, f, err := loadModel(c.Init, c.Spec)
	if err != nil {
		return nil, fmt.Errorf("--init: %w", err)
	}
	if f != nil {
		f.Close()
	}
	return p, nil
}

// meta is the GGUF metadata saved with the weights: the tokenizer's
// vocabulary and the chat template.
func (c *Common) meta(e *Encoder) []gguf.KV {
	var kv []gguf.KV
	if g, ok := c.Tok.(train.GGUFMetadataer); ok {
		kv = g.GGUFMetadata()
	}
	if e != nil {
		kv = append(kv, gguf.KV{Key: gguf.KeyChatTemplate, Value: e.Template.Jinja()})
	}
	return kv
}

func (c *Common) loop(info any, e *Encoder) *loop {
	return &loop{Out: c.Out, Resume: c.Resume, Spec: c.Spec, Hyper: c.Hyper, TokMeta: c.meta(e), Log: c.Log, Info: info, StopAfter: c.StopAfter}
}

// order returns the item indices step s uses: k per step through
// successive seeded permutations of n items (one per epoch), so any step's
// batch is known from the seed and the step alone.
func order(seed uint64, n, k, s int) []int {
	out := make([]int, k)
	var perm []int
	epoch := -1
	for i := range k {
		j := s*k + i
		if e := j / n; e != epoch {
			epoch = e
			perm = rand.New(rand.NewPCG(seed, uint64(e))).Perm(n)
		}
		out[i] = perm[j%n]
	}
	return out
}

// Result sums up a stage's run.
type Result struct {
	Step    int
	Loss    float64            // of the last step
	Metrics map[string]float64 // the last evaluation
}
