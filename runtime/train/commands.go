package train

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/cpu"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

// Option adjusts the commands.
type Option func(*commands)

// WithThreads registers f to be called with --threads (default: all cores)
// before a model is built, so that compiled code can size its worker pool.
// The Go scheduler (GOMAXPROCS), which the generic model's threads follow,
// is set either way.
func WithThreads(f func(n int)) Option {
	return func(c *commands) { c.threads = append(c.threads, f) }
}

type commands struct {
	name    string
	spec    *spec.Spec
	factory model.Factory
	threads []func(int)
}

// Commands returns `train` and `eval` for a binary compiled for s whose
// models factory builds (nil: the generic model). A model that does not
// implement model.Trainable trains and evaluates with the generic model.
func Commands(name string, s *spec.Spec, factory model.Factory, opts ...Option) []*cobra.Command {
	c := &commands{name: name, spec: s, factory: factory}
	for _, o := range opts {
		o(c)
	}
	return []*cobra.Command{c.trainCmd(), c.evalCmd()}
}

func (c *commands) setThreads(n int) error {
	if err := cpu.CheckThreads(n); err != nil {
		return err
	}
	runtime.GOMAXPROCS(n)
	for _, f := range c.threads {
		f(n)
	}
	return nil
}

// defaults is the compiled spec's training block, with defaults for what it
// leaves out.
func (c *commands) defaults() spec.Train {
	s := *c.spec
	s.SetDefaults()
	return s.Train
}

func (c *commands) trainCmd() *cobra.Command {
	var (
		data, tokPath, out, resume, init  string
		steps, threads, evalBatches, mask int
		quiet                             bool
	)
	hp := c.defaults()
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train the model on a text corpus (or continue a run with --resume)",
		Long: fmt.Sprintf(`train runs AdamW on random windows of a corpus with the %s objective,
evaluates on its last 10 %% every --eval-every steps, and writes to --out:
model.gguf (the weights, with the tokenizer), state.bin (what --resume needs),
metrics.jsonl, loss.png and run.json. Defaults come from the spec's train block.`, objectiveName(c.spec)),
		Example: fmt.Sprintf(`  %[1]s train --data corpus.txt --tokenizer tok.bin --steps 2000 --out run/
  %[1]s train --resume run/
  %[1]s train --resume run/ --steps 4000`, c.name),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.setThreads(threads); err != nil {
				return err
			}
			f := cmd.Flags()
			if f.Changed("mask-id") && model.Causal(c.spec) {
				return errors.New("--mask-id: this model predicts the next token; a mask token is for a masked (objective: masked) model")
			}
			cfg := Config{Spec: c.spec, Factory: c.factory, Quiet: quiet, Log: cmd.ErrOrStderr()}
			if resume != "" {
				if f.Changed("data") || f.Changed("init") {
					return errors.New("--data and --init cannot change on --resume: the run continues on its own data")
				}
				if f.Changed("out") && filepath.Clean(out) != filepath.Clean(resume) {
					return fmt.Errorf("--out %s differs from --resume %s: a resumed run stays in its folder", out, resume)
				}
				if f.Changed("tokenizer") {
					tok, err := tokenizer.Load(tokPath, 0)
					if err != nil {
						return err
					}
					cfg.Tokenizer, cfg.TokenizerPath = tok, tokPath
				}
				var err error
				if cfg, err = ResumeConfig(resume, cfg); err != nil {
					return err
				}
				if f.Changed("steps") {
					cfg.Steps = steps
				}
				if f.Changed("mask-id") {
					cfg.MaskID = mask
				}
				if f.Changed("eval-batches") {
					cfg.EvalBatches = evalBatches
				}
				overrideTrain(f.Changed, &cfg.Train, &hp)
			} else {
				if !f.Changed("steps") {
					return errors.New("--steps N is required")
				}
				if data == "" {
					return errors.New("--data FILE is required (a text corpus, or a token file from `modelc data prepare`)")
				}
				if hp.WarmupSteps >= steps && steps > 0 {
					note := fmt.Sprintf("--warmup %d ≥ --steps %d: the learning rate never decays", hp.WarmupSteps, steps)
					if !f.Changed("warmup") {
						note = fmt.Sprintf("the spec's warm-up of %d steps is longer than the run: warming up for %d (a tenth of --steps)", hp.WarmupSteps, steps/10)
						hp.WarmupSteps = steps / 10
					}
					if !quiet {
						fmt.Fprintf(cmd.ErrOrStderr(), "note: %s\n", note)
					}
				}
				if tokPath == "" && ggufHasTokenizer(init) {
					// As eval does: the vocabulary a GGUF --init carries.
					tokPath = init
				}
				cfg.Train, cfg.Steps, cfg.Data, cfg.Out, cfg.Init = hp, steps, data, out, init
				cfg.TokenizerPath, cfg.MaskID, cfg.EvalBatches = tokPath, mask, evalBatches
				if tokPath != "" {
					tok, err := tokenizer.Load(tokPath, 0)
					if err != nil {
						return err
					}
					cfg.Tokenizer = tok
				}
			}
			res, err := Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "trained %d steps (%d tokens): loss %.4f, validation loss %.4f (perplexity %.2f); weights in %s\n",
				res.Step, res.Tokens, res.TrainLoss, res.ValLoss, math.Exp(res.ValLoss), filepath.Join(cfg.Out, ModelFile))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&data, "data", "", "training corpus: a UTF-8 text file, or a token file (.tok) from modelc data prepare")
	f.StringVar(&tokPath, "tokenizer", "", "tokenizer file (llama2.c tokenizer.bin, GGUF, or GPT-2 encoder.json); needed for a text corpus")
	f.IntVar(&steps, "steps", 0, "optimizer steps of the whole run (the learning rate's cosine decay ends at --min-lr one step after the last, as nanoGPT's)")
	f.StringVar(&out, "out", "run", "run folder to write")
	f.StringVar(&resume, "resume", "", "continue the run in this folder from its last checkpoint")
	f.StringVar(&init, "init", "", "start from the weights of this model file (fine-tuning) instead of random ones")
	f.IntVar(&hp.BatchSize, "batch", hp.BatchSize, "sequences per micro-batch")
	f.IntVar(&hp.SeqLen, "seq", hp.SeqLen, "tokens per sequence")
	f.Float64Var(&hp.LR, "lr", hp.LR, "peak learning rate")
	f.Float64Var(&hp.MinLR, "min-lr", hp.MinLR, "learning rate at the end of the cosine decay")
	f.IntVar(&hp.WarmupSteps, "warmup", hp.WarmupSteps, "linear warm-up steps (a spec default longer than --steps becomes a tenth of --steps)")
	f.Float64Var(&hp.WeightDecay, "weight-decay", hp.WeightDecay, "AdamW weight decay (not applied to norm weights)")
	f.Float64Var(&hp.Beta1, "beta1", hp.Beta1, "AdamW β1")
	f.Float64Var(&hp.Beta2, "beta2", hp.Beta2, "AdamW β2")
	f.Float64Var(&hp.GradClip, "grad-clip", hp.GradClip, "clip gradients to this global norm (0: no clipping)")
	f.IntVar(&hp.GradAccum, "grad-accum", hp.GradAccum, "micro-batches accumulated per optimizer step")
	f.Uint64Var(&hp.Seed, "seed", hp.Seed, "seed of the initial weights and of the data order")
	f.IntVar(&hp.EvalEvery, "eval-every", hp.EvalEvery, "evaluate on the validation split every N steps")
	f.IntVar(&hp.CheckpointEv, "checkpoint-every", hp.CheckpointEv, "write a checkpoint every N steps")
	f.IntVar(&evalBatches, "eval-batches", 20, "validation batches per evaluation")
	f.IntVar(&mask, "mask-id", -1, "mask token id for the masked objective; -1: the tokenizer's")
	f.IntVar(&threads, "threads", runtime.NumCPU(), "threads to use")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress on stderr")
	return cmd
}

// overrideTrain copies into t the hyperparameters given on the command line.
func overrideTrain(changed func(string) bool, t, flags *spec.Train) {
	for _, o := range []struct {
		flag string
		set  func()
	}{
		{"batch", func() { t.BatchSize = flags.BatchSize }},
		{"seq", func() { t.SeqLen = flags.SeqLen }},
		{"lr", func() { t.LR = flags.LR }},
		{"min-lr", func() { t.MinLR = flags.MinLR }},
		{"warmup", func() { t.WarmupSteps = flags.WarmupSteps }},
		{"weight-decay", func() { t.WeightDecay = flags.WeightDecay }},
		{"beta1", func() { t.Beta1 = flags.Beta1 }},
		{"beta2", func() { t.Beta2 = flags.Beta2 }},
		{"grad-clip", func() { t.GradClip = flags.GradClip }},
		{"grad-accum", func() { t.GradAccum = flags.GradAccum }},
		{"seed", func() { t.Seed = flags.Seed }},
		{"eval-every", func() { t.EvalEvery = flags.EvalEvery }},
		{"checkpoint-every", func() { t.CheckpointEv = flags.CheckpointEv }},
	} {
		if changed(o.flag) {
			o.set()
		}
	}
}

func objectiveName(s *spec.Spec) string {
	if model.Causal(s) {
		return "causal (next-token)"
	}
	return "masked language modelling"
}

func (c *commands) evalCmd() *cobra.Command {
	var (
		modelPath, data, tokPath        string
		batch, seq, maxBatches, threads int
		mask                            int
		useGeneric                      bool
	)
	hp := c.defaults()
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Print a model's loss and perplexity on a text",
		Long: `eval runs the model over consecutive windows of a text (or token file) and
prints the mean cross-entropy per token and its exponential, the perplexity.`,
		Example: fmt.Sprintf(`  %[1]s eval --model run/model.gguf --data val.txt`, c.name),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.setThreads(threads); err != nil {
				return err
			}
			if modelPath == "" {
				return errors.New("--model FILE is required")
			}
			if data == "" {
				return errors.New("--data FILE is required")
			}
			if batch < 1 || seq < 1 {
				return fmt.Errorf("--batch and --seq must be ≥ 1, got %d and %d", batch, seq)
			}
			if cmd.Flags().Changed("mask-id") && model.Causal(c.spec) {
				return errors.New("--mask-id: this model predicts the next token; a mask token is for a masked (objective: masked) model")
			}
			p, f, err := checkpoint.Load(modelPath)
			if err != nil {
				return err
			}
			if f != nil {
				defer f.Close()
			}
			s := *c.spec
			factory := c.factory
			if useGeneric {
				factory = nil
				s = p.Spec
				s.Objective = c.spec.Objective
			} else if err := model.CheckShape(&p.Spec, c.spec); err != nil {
				return fmt.Errorf("%s: %w (use --generic to run it anyway)", modelPath, err)
			}
			// The compiled spec says what the model is for (its objective).
			bound, err := model.Bind(&s, p.Data)
			if err != nil {
				return err
			}
			tok, err := evalTokenizer(tokPath, f, modelPath, s.Vocab, data)
			if err != nil {
				return err
			}
			// A masked model file says the mask token it was trained with.
			if f != nil && f.Has(gguf.KeyMask) {
				id, err := f.Uint32(gguf.KeyMask)
				if err != nil {
					return fmt.Errorf("%s: %w", modelPath, err)
				}
				if cmd.Flags().Changed("mask-id") && mask != int(id) {
					return fmt.Errorf("--mask-id %d: %s was trained with mask token %d", mask, modelPath, id)
				}
				mask = int(id)
			}
			obj, err := objective(&s, mask, tok)
			if err != nil {
				return err
			}
			toks, cleanup, err := openData(data, tok)
			if err != nil {
				return err
			}
			defer cleanup()
			if toks.Vocab() != s.Vocab {
				return fmt.Errorf("token file %s was made for a vocabulary of %d, the model's vocabulary is %d", data, toks.Vocab(), s.Vocab)
			}
			// A short text is evaluated in one shorter window.
			T := min(seq, s.MaxSeq, toks.Len()-obj.Need(0))
			if T < 1 {
				return fmt.Errorf("--data %s holds %d tokens: too few to evaluate", data, toks.Len())
			}
			m, _, err := trainable(factory, bound)
			if err != nil {
				return err
			}
			tr, err := m.NewTrainer(batch, T)
			if err != nil {
				return err
			}
			all := Split{Tokens: toks, Lo: 0, Hi: toks.Len()}
			loss, n, err := Evaluate(cmd.Context(), tr, all, obj, batch, T, maxBatches)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "loss %.4f nats/token  perplexity %.3f  (%d predicted tokens, windows of %d)\n", loss, math.Exp(loss), n, T)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&modelPath, "model", "m", "", "model file (GGUF or llama2.c .bin)")
	f.StringVar(&data, "data", "", "text to evaluate on (UTF-8), or a token file")
	f.StringVarP(&tokPath, "tokenizer", "z", "", "tokenizer file (default: the one inside a GGUF model)")
	f.IntVar(&batch, "batch", hp.BatchSize, "sequences per batch")
	f.IntVar(&seq, "seq", hp.SeqLen, "tokens per window")
	f.IntVar(&maxBatches, "max-batches", 0, "evaluate at most this many batches (0: the whole text)")
	f.IntVar(&mask, "mask-id", -1, "mask token id for a masked model; -1: the tokenizer's")
	f.BoolVar(&useGeneric, "generic", false, "run the generic model (any shape) instead of the compiled code")
	f.IntVar(&threads, "threads", runtime.NumCPU(), "threads to use")
	return cmd
}

// ggufHasTokenizer reports whether path is a GGUF file with a vocabulary.
func ggufHasTokenizer(path string) bool {
	if path == "" {
		return false
	}
	f, err := gguf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	_, ok := f.Get(gguf.KeyTokenizerModel)
	return ok
}

// evalTokenizer loads --tokenizer, or the one a GGUF model carries; a token
// file needs none.
func evalTokenizer(path string, f *gguf.File, modelPath string, vocab int, data string) (tokenizer.Tokenizer, error) {
	var tok tokenizer.Tokenizer
	var err error
	switch {
	case path != "":
		if tok, err = tokenizer.Load(path, 0); err != nil {
			return nil, err
		}
	case f != nil:
		if _, ok := f.Get(gguf.KeyTokenizerModel); ok {
			if tok, err = tokenizer.FromGGUF(f); err != nil {
				return nil, fmt.Errorf("%s: %w (pass --tokenizer FILE)", modelPath, err)
			}
		}
	}
	if tok == nil {
		if IsTokenFile(data) {
			return nil, nil
		}
		return nil, fmt.Errorf("no tokenizer: %s carries none, pass --tokenizer FILE", modelPath)
	}
	if err := tokenizer.CheckVocab(nameOr(path, modelPath), tok, vocab); err != nil {
		return nil, err
	}
	return tok, nil
}

// openData opens a token file, or tokenizes a text into a temporary one.
func openData(path string, tok tokenizer.Tokenizer) (*Tokens, func(), error) {
	if IsTokenFile(path) {
		t, err := OpenTokens(path)
		if err != nil {
			return nil, nil, err
		}
		return t, func() { t.Close() }, nil
	}
	if tok == nil {
		return nil, nil, fmt.Errorf("--data %s is text: a tokenizer is needed", path)
	}
	dir, err := os.MkdirTemp("", "modelc-eval")
	if err != nil {
		return nil, nil, err
	}
	tmp := filepath.Join(dir, "data.tok")
	if _, err := PrepareData([]string{path}, tok, tmp); err != nil {
		os.RemoveAll(dir)
		if errors.Is(err, ErrEmptyCorpus) {
			return nil, nil, fmt.Errorf("--data %s is empty", path)
		}
		return nil, nil, err
	}
	t, err := OpenTokens(tmp)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return t, func() { t.Close(); os.RemoveAll(dir) }, nil
}
