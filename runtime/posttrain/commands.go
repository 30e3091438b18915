package posttrain

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/modelc/modelc/internal/atomicfile"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/cpu"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/posttrain/tasks"
	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

// Option adjusts the commands.
type Option func(*cmds)

// WithThreads registers f to be called with --threads before a model is
// built, so that compiled code can size its worker pool.
func WithThreads(f func(n int)) Option { return func(c *cmds) { c.threads = append(c.threads, f) } }

type cmds struct {
	name    string
	spec    *spec.Spec
	factory model.Factory
	threads []func(int)
}

// Commands returns the post-training commands of a binary compiled for s
// whose models factory builds (nil: the generic model): sft, reward (train,
// score), dpo, grpo, distill, and tasks (gen, eval) for offline data.
func Commands(name string, s *spec.Spec, factory model.Factory, opts ...Option) []*cobra.Command {
	c := &cmds{name: name, spec: s, factory: factory}
	for _, o := range opts {
		o(c)
	}
	reward := &cobra.Command{Use: "reward", Short: "Train a reward model from preferences, or score replies with one"}
	reward.AddCommand(c.rewardTrainCmd(), c.rewardScoreCmd())
	tk := &cobra.Command{Use: "tasks", Short: "Generate verifiable problems and preference data, or evaluate a model on problems"}
	tk.AddCommand(c.tasksGenCmd(), c.tasksEvalCmd(), c.tasksPairsCmd())
	return []*cobra.Command{c.sftCmd(), reward, c.dpoCmd(), c.grpoCmd(), c.distillCmd(), tk}
}

// common binds the flags every stage shares.
type commonFlags struct {
	c              Common
	tokPath        string
	resume         string
	threads        int
	quiet          bool
	stopAfterSteps int
}

func (c *cmds) bindCommon(f *pflag.FlagSet, cf *commonFlags, batch, seq int, lr float64) {
	s := *c.spec
	s.SetDefaults()
	cf.c.Hyper = Hyper{LR: lr, MinLR: lr / 10, Warmup: 0, WeightDecay: 0, GradClip: 1, Seed: 1, EvalEvery: 50, CkptEvery: 100}
	f.StringVar(&cf.c.Init, "init", "", "model file to start from (GGUF or llama2.c .bin); required unless --resume")
	f.StringVar(&cf.tokPath, "tokenizer", "", "tokenizer file (default: the one inside a GGUF --init)")
	f.StringVar(&cf.c.Template, "template", "llama2", "chat template: "+strings.Join(tokenizer.ChatTemplates(), ", "))
	f.StringVar(&cf.c.Out, "out", "run", "run folder to write")
	f.StringVar(&cf.resume, "resume", "", "continue the run in this folder from its last checkpoint")
	f.IntVar(&cf.c.Hyper.Steps, "steps", 0, "optimizer steps of the whole run")
	f.Float64Var(&cf.c.Hyper.LR, "lr", cf.c.Hyper.LR, "peak learning rate (cosine decay to --min-lr)")
	f.Float64Var(&cf.c.Hyper.MinLR, "min-lr", cf.c.Hyper.MinLR, "final learning rate")
	f.IntVar(&cf.c.Hyper.Warmup, "warmup", 0, "linear warm-up steps")
	f.Float64Var(&cf.c.Hyper.WeightDecay, "weight-decay", 0, "AdamW weight decay")
	f.Float64Var(&cf.c.Hyper.GradClip, "grad-clip", 1, "clip gradients to this global norm (0: off)")
	f.Uint64Var(&cf.c.Hyper.Seed, "seed", 1, "seed of the data order and sampling")
	f.IntVar(&cf.c.Hyper.EvalEvery, "eval-every", 50, "evaluate every N steps (and at the end)")
	f.IntVar(&cf.c.Hyper.CkptEvery, "checkpoint-every", 100, "checkpoint every N steps (and at the end)")
	f.IntVar(&cf.c.Batch, "batch", batch, "examples per step")
	f.IntVar(&cf.c.Seq, "seq", min(seq, s.MaxSeq), "tokens per sequence")
	f.IntVar(&cf.threads, "threads", runtime.NumCPU(), "threads to use")
	f.BoolVarP(&cf.quiet, "quiet", "q", false, "no progress on stderr")
	f.IntVar(&cf.stopAfterSteps, "stop-after", 0, "stop after this many steps of this process (as if interrupted)")
	f.MarkHidden("stop-after")
}

// resumeFlags are the flags a resumed run takes; the others are settings
// saved in its run.json.
var resumeFlags = map[string]bool{"resume": true, "steps": true, "tokenizer": true, "threads": true, "quiet": true, "stop-after": true}

// prepare finishes the common configuration: threads, resume (stage config
// read from run.json into cfg), tokenizer. cfg is the whole stage config
// (with an embedded Common that cf.c is copied into first).
func (c *cmds) prepare(cmd *cobra.Command, cf *commonFlags, stage string, cfg any, common *Common) error {
	if err := cpu.CheckThreads(cf.threads); err != nil {
		return err
	}
	runtime.GOMAXPROCS(cf.threads)
	for _, f := range c.threads {
		f(cf.threads)
	}
	*common = cf.c
	common.Spec, common.Factory = c.spec, c.factory
	common.Log = cmd.ErrOrStderr()
	if cf.quiet {
		common.Log = io.Discard
	}
	common.StopAfter = cf.stopAfterSteps
	fl := cmd.Flags()
	if cf.resume != "" {
		runFile := filepath.Join(cf.resume, RunFile)
		b, err := os.ReadFile(runFile)
		if err != nil {
			return fmt.Errorf("--resume: %s is not a post-training run folder: %w", cf.resume, err)
		}
		steps := common.Hyper.Steps
		// Another stage's folder would be trained as this one (a reward
		// model's weights and optimizer taken as DPO's), and a pretraining
		// run's data read as this stage's.
		var saved struct {
			Stage string `json:"stage"`
		}
		if err := json.Unmarshal(b, &saved); err != nil {
			return fmt.Errorf("--resume: %s: %w", runFile, err)
		}
		if saved.Stage != stage {
			what := fmt.Sprintf("a %s run", saved.Stage)
			if saved.Stage == "" {
				what = "no post-training run (pretraining continues with train --resume)"
			}
			return fmt.Errorf("--resume %s: it holds %s, not a %s run", cf.resume, what, stage)
		}
		if err := json.Unmarshal(b, cfg); err != nil {
			return fmt.Errorf("--resume: %s: %w", runFile, err)
		}
		if err := model.CheckShape(common.Spec, c.spec); err != nil {
			return fmt.Errorf("--resume %s: %w", cf.resume, err)
		}
		common.Spec, common.Factory, common.Out, common.Resume = c.spec, c.factory, cf.resume, true
		common.runFile, common.flagged = runFile, fl.Changed
		// A resume continues the saved run bit for bit, so a setting typed
		// now would be dropped without a word: refuse it instead.
		var dropped string
		fl.Visit(func(f *pflag.Flag) {
			if dropped == "" && !resumeFlags[f.Name] {
				dropped = f.Name
			}
		})
		if dropped != "" {
			return fmt.Errorf("--%s: a resumed run keeps the settings in %s (only --steps and --tokenizer may change); edit that file or start a new run", dropped, runFile)
		}
		if fl.Changed("steps") && steps != common.Hyper.Steps {
			// The cosine schedule is of the whole run: another length moves
			// the learning rate from where the checkpoint left it.
			fmt.Fprintf(cmd.ErrOrStderr(), "note: --steps %d (the run was set for %d): the learning-rate schedule is recomputed for the new length\n", steps, common.Hyper.Steps)
			common.Hyper.Steps = steps
		}
		if fl.Changed("tokenizer") {
			common.TokPath = cf.tokPath
		}
		common.Log = cmd.ErrOrStderr()
		if cf.quiet {
			common.Log = io.Discard
		}
		common.StopAfter = cf.stopAfterSteps
	} else {
		if common.Init == "" {
			return errors.New("--init MODEL is required: post-training starts from a trained model")
		}
		if !fl.Changed("steps") {
			return errors.New("--steps N is required")
		}
		// The default final rate follows the peak one typed (a tenth of it).
		if !fl.Changed("min-lr") {
			common.Hyper.MinLR = common.Hyper.LR / 10
		}
		common.TokPath = cf.tokPath
	}
	tok, err := loadTokenizer(common.TokPath, common.Init)
	if err != nil {
		return err
	}
	common.Tok = tok
	if common.TokPath != "" {
		common.TokPath, _ = filepath.Abs(common.TokPath)
	}
	if common.Init != "" && common.Init != "-" {
		common.Init, _ = filepath.Abs(common.Init)
	}
	return nil
}

// loadTokenizer loads path, or the tokenizer a GGUF model carries.
func loadTokenizer(path, modelPath string) (tokenizer.Tokenizer, error) {
	if path != "" {
		return tokenizer.Load(path, 0)
	}
	if modelPath != "" && modelPath != "-" {
		_, f, err := checkpoint.Load(modelPath)
		if err != nil {
			return nil, err
		}
		if f != nil {
			defer f.Close()
			if tok, err := tokenizer.FromGGUF(f); err == nil {
				return tok, nil
			}
		}
	}
	return nil, fmt.Errorf("no tokenizer: pass --tokenizer FILE (%s carries none)", nameOr(modelPath, "no model"))
}

func nameOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func report(cmd *cobra.Command, stage string, res *Result, out string) {
	fmt.Fprintf(cmd.OutOrStdout(), "%s: %d steps, loss %.4f%s; weights in %s\n", stage, res.Step, res.Loss, fmtExtra(res.Metrics), filepath.Join(out, "model.gguf"))
}

func (c *cmds) sftCmd() *cobra.Command {
	var cf commonFlags
	var cfg SFTConfig
	cmd := &cobra.Command{
		Use:   "sft",
		Short: "Supervised fine-tuning on chat data (loss on assistant tokens only)",
		Long: `sft renders each conversation of --data (JSON lines {"messages":[{"role","content"},…]})
with the chat template, packs short ones into sequences of --seq tokens and
trains on the assistant tokens only. The run folder is as pretraining's.`,
		Example: fmt.Sprintf("  %s sft --init base.gguf --data sft_train.jsonl --val sft_val.jsonl --steps 500 --out sft/", c.name),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, val := cfg.Data, cfg.Val
			if err := c.prepare(cmd, &cf, "sft", &cfg, &cfg.Common); err != nil {
				return err
			}
			if cf.resume == "" {
				cfg.Data, cfg.Val = data, val
				if cfg.Data == "" {
					return errors.New("--data FILE is required")
				}
			}
			res, err := SFT(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			report(cmd, "sft", res, cfg.Out)
			return nil
		},
	}
	c.bindCommon(cmd.Flags(), &cf, 8, 256, 1e-3)
	cmd.Flags().StringVar(&cfg.Data, "data", "", "conversations, JSON lines")
	cmd.Flags().StringVar(&cfg.Val, "val", "", "held-out conversations for the validation loss")
	return cmd
}

func (c *cmds) rewardTrainCmd() *cobra.Command {
	var cf commonFlags
	var cfg RewardConfig
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train a reward model (scalar head on the last token) with the Bradley–Terry loss",
		Long: `reward train reads preferences (JSON lines {"prompt","chosen","rejected"} or
{"prompt","ranking":[best,…,worst]}, rankings expanded to pairs) and trains the
model with a scalar head on the last token's final hidden state. --batch is in
pairs. The head is saved as head.json beside model.gguf.`,
		Example: fmt.Sprintf("  %s reward train --init sft/model.gguf --data prefs_train.jsonl --val prefs_val.jsonl --steps 300 --out rm/", c.name),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, val := cfg.Data, cfg.Val
			if err := c.prepare(cmd, &cf, "reward", &cfg, &cfg.Common); err != nil {
				return err
			}
			if cf.resume == "" {
				cfg.Data, cfg.Val = data, val
				if cfg.Data == "" {
					return errors.New("--data FILE is required")
				}
			}
			res, err := TrainReward(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			report(cmd, "reward", res, cfg.Out)
			return nil
		},
	}
	c.bindCommon(cmd.Flags(), &cf, 8, 256, 1e-3)
	cmd.Flags().StringVar(&cfg.Data, "data", "", "preferences, JSON lines (pairs or rankings)")
	cmd.Flags().StringVar(&cfg.Val, "val", "", "held-out preferences for the accuracy")
	return cmd
}

func (c *cmds) rewardScoreCmd() *cobra.Command {
	var dir, tokPath, tmpl, data, prompt, reply string
	var seq int
	cmd := &cobra.Command{
		Use:   "score",
		Short: "Print reward-model scores of replies (and the accuracy on a preferences file)",
		Example: fmt.Sprintf(`  %[1]s reward score --model rm/ --prompt "What is 2 + 2?" --reply "<think>2+2=4</think> Answer: 4"
  %[1]s reward score --model rm/ --data prefs_val.jsonl`, c.name),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return errors.New("--model DIR (a reward train run folder) is required")
			}
			if seq < 1 {
				return fmt.Errorf("--seq: must be ≥ 1, got %d", seq)
			}
			fl := cmd.Flags()
			switch {
			case data != "" && (fl.Changed("prompt") || fl.Changed("reply")):
				return errors.New("--data scores a file's pairs; --prompt and --reply score one reply: give one or the other")
			case data == "" && !(fl.Changed("prompt") && fl.Changed("reply")):
				return errors.New("--prompt and --reply, or --data FILE, are required")
			}
			tok, err := loadTokenizer(tokPath, filepath.Join(dir, "model.gguf"))
			if err != nil {
				return err
			}
			cm := &Common{Spec: c.spec, Factory: c.factory, Tok: tok, Template: tmpl}
			rm, err := LoadRewardModel(dir, cm, min(seq, c.spec.MaxSeq))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if data == "" {
				r, err := rm.Score(prompt, reply)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%.4f\n", r)
				return nil
			}
			prefs, err := ReadPreferences(data)
			if err != nil {
				return err
			}
			right := 0
			for i, p := range prefs {
				if err := cmd.Context().Err(); err != nil {
					return fmt.Errorf("interrupted after %d of %d pairs: %w", i, len(prefs), err)
				}
				a, err := rm.Score(p.Prompt, p.Chosen)
				if err != nil {
					return fmt.Errorf("pair %d: %w", i+1, err)
				}
				b, err := rm.Score(p.Prompt, p.Rejected)
				if err != nil {
					return fmt.Errorf("pair %d: %w", i+1, err)
				}
				if a > b {
					right++
				}
				fmt.Fprintf(out, "%d\tchosen %.4f\trejected %.4f\n", i+1, a, b)
			}
			fmt.Fprintf(out, "accuracy %.4f (%d of %d pairs)\n", float64(right)/float64(len(prefs)), right, len(prefs))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "model", "", "reward model run folder (model.gguf and head.json)")
	f.StringVar(&tokPath, "tokenizer", "", "tokenizer file (default: the one inside model.gguf)")
	f.StringVar(&tmpl, "template", "llama2", "chat template")
	f.StringVar(&data, "data", "", "preferences file to score")
	f.StringVar(&prompt, "prompt", "", "a prompt")
	f.StringVar(&reply, "reply", "", "a reply to it")
	f.IntVar(&seq, "seq", 256, "longest sequence scored (longer ones are cut)")
	return cmd
}

func (c *cmds) dpoCmd() *cobra.Command {
	var cf commonFlags
	var cfg DPOConfig
	cmd := &cobra.Command{
		Use:     "dpo",
		Short:   "Direct preference optimisation against the frozen starting model",
		Example: fmt.Sprintf("  %s dpo --init sft/model.gguf --data prefs_train.jsonl --val prefs_val.jsonl --beta 0.1 --steps 200 --out dpo/", c.name),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, val, beta := cfg.Data, cfg.Val, cfg.Beta
			if err := c.prepare(cmd, &cf, "dpo", &cfg, &cfg.Common); err != nil {
				return err
			}
			if cf.resume == "" {
				cfg.Data, cfg.Val, cfg.Beta = data, val, beta
				if cfg.Data == "" {
					return errors.New("--data FILE is required")
				}
			}
			res, err := DPOTrain(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			report(cmd, "dpo", res, cfg.Out)
			return nil
		},
	}
	c.bindCommon(cmd.Flags(), &cf, 8, 256, 1e-4)
	cmd.Flags().StringVar(&cfg.Data, "data", "", "preferences, JSON lines (pairs or rankings)")
	cmd.Flags().StringVar(&cfg.Val, "val", "", "held-out preferences")
	cmd.Flags().Float64Var(&cfg.Beta, "beta", 0.1, "β: strength of the tie to the reference")
	return cmd
}

func (c *cmds) grpoCmd() *cobra.Command {
	var cf commonFlags
	var cfg GRPOConfig
	var rmDir string
	cmd := &cobra.Command{
		Use:   "grpo",
		Short: "Group relative policy optimisation with a verifiable (or learned) reward",
		Long: `grpo samples --g completions per problem of --problems (JSON lines from
"tasks gen"), rewards them (exact match of the integer after "Answer:" plus a
format bonus, or a reward model with --reward-model), normalises the rewards in
each group into advantages, and maximises the PPO-style clipped objective minus
β times the k3 KL estimate to the frozen starting model. --batch is in prompts.`,
		Example: fmt.Sprintf("  %s grpo --init sft/model.gguf --problems problems_train.jsonl --val problems_val.jsonl --g 8 --steps 200 --out grpo/", c.name),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			saved := cfg
			if err := c.prepare(cmd, &cf, "grpo", &cfg, &cfg.Common); err != nil {
				return err
			}
			if cf.resume == "" {
				cm := cfg.Common
				cfg = saved
				cfg.Common = cm
				if cfg.Problems == "" {
					return errors.New("--problems FILE is required")
				}
			}
			if cf.resume == "" && rmDir != "" {
				cfg.RewardModel, _ = filepath.Abs(rmDir)
			}
			if cfg.RewardModel != "" {
				rm, err := LoadRewardModel(cfg.RewardModel, &cfg.Common, cfg.Seq)
				if err != nil {
					return fmt.Errorf("--reward-model: %w", err)
				}
				cfg.Reward = ModelReward(rm)
			}
			res, err := GRPO(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			report(cmd, "grpo", res, cfg.Out)
			return nil
		},
	}
	c.bindCommon(cmd.Flags(), &cf, 4, 256, 1e-4)
	f := cmd.Flags()
	f.StringVar(&cfg.Problems, "problems", "", "problems, JSON lines {\"prompt\",\"answer\"}")
	f.StringVar(&cfg.Val, "val", "", "held-out problems for the exact-match accuracy")
	f.IntVar(&cfg.G, "g", 8, "completions sampled per prompt")
	f.Float64Var(&cfg.Eps, "clip-eps", 0.2, "PPO clip range ε")
	f.Float64Var(&cfg.Beta, "beta", 0.04, "KL coefficient β")
	f.Float64Var(&cfg.Temp, "temperature", 1, "sampling temperature")
	f.IntVar(&cfg.MaxNew, "max-new", 64, "longest completion, in tokens")
	f.IntVar(&cfg.Updates, "updates", 2, "optimizer updates per batch of samples")
	f.StringVar(&rmDir, "reward-model", "", "score with this reward model run folder instead of the verifiable reward")
	return cmd
}

func (c *cmds) distillCmd() *cobra.Command {
	var cf commonFlags
	var cfg DistillConfig
	var fresh bool
	cmd := &cobra.Command{
		Use:   "distill",
		Short: "Distil a teacher model (any shape, same vocabulary) into this model",
		Long: `distill trains this binary's model (from --init, or fresh with --fresh) on
windows of --data with α·τ²·KL(teacher ‖ student) at temperature τ plus (1−α)
times the next-token cross-entropy. The validation loss is the plain
cross-entropy, comparable with --alpha 0 (hard labels only).`,
		Example: fmt.Sprintf("  %s distill --teacher big.gguf --fresh --data corpus.txt --tokenizer tok.bin --alpha 0.5 --temperature 2 --steps 1000 --out student/", c.name),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			saved := cfg
			if fresh && cf.c.Init != "" {
				return errors.New("--fresh starts from random weights, --init from a model: give one of them")
			}
			if fresh && cf.c.Init == "" && cf.resume == "" {
				// Satisfied below; meanwhile the teacher lends its vocabulary
				// when --tokenizer is left out.
				cf.c.Init = "-"
				if cfg.Teacher != "" {
					cf.c.Init = cfg.Teacher
				}
			}
			if err := c.prepare(cmd, &cf, "distill", &cfg, &cfg.Common); err != nil {
				return err
			}
			if cf.resume == "" {
				cm := cfg.Common
				cfg = saved
				cfg.Common = cm
				if fresh {
					cfg.Init = ""
				}
				if cfg.Data == "" {
					return errors.New("--data FILE is required")
				}
			}
			res, err := Distill(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			report(cmd, "distill", res, cfg.Out)
			return nil
		},
	}
	c.bindCommon(cmd.Flags(), &cf, 8, 256, 1e-3)
	f := cmd.Flags()
	f.StringVar(&cfg.Teacher, "teacher", "", "teacher model file (GGUF or llama2.c .bin, any shape with the same vocabulary)")
	f.StringVar(&cfg.Data, "data", "", "text corpus or token file")
	f.Float64Var(&cfg.Alpha, "alpha", 0.5, "weight of the soft (KL) term; 0 trains on hard labels only")
	f.Float64Var(&cfg.Tau, "temperature", 2, "distillation temperature τ")
	f.BoolVar(&fresh, "fresh", false, "start the student from random weights (seeded) instead of --init")
	return cmd
}

func (c *cmds) tasksGenCmd() *cobra.Command {
	var dir, kinds, rejected string
	var n, nval, digits int
	var seed uint64
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Write verifiable problems, SFT conversations and preference data (train and held-out)",
		Long: `tasks gen writes into --dir: problems_{train,val}.jsonl (prompt, answer),
sft_{train,val}.jsonl (conversations whose replies reason between <think> markers
then say "Answer: N"), prefs_{train,val}.jsonl (the solution against a
rejected reply of a --rejected kind) and rankings_train.jsonl (the solution, a
wrong reply, a rambling one). Held-out problems never appear in the training
files.`,
		Example: fmt.Sprintf("  %s tasks gen --dir data/ --n 5000 --n-val 200", c.name),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			// The library's 0 means its default; typed, it is a mistake.
			if digits < 1 || digits > 9 {
				return fmt.Errorf("--digits: must be between 1 and 9, got %d", digits)
			}
			var ks []string
			if kinds != "" {
				ks = strings.Split(kinds, ",")
			}
			rej := strings.Split(rejected, ",")
			if err := tasks.CheckRejected(rej); err != nil {
				return fmt.Errorf("--rejected: %w", err)
			}
			if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
				// A folder made here and left empty by a failure goes again.
				defer func() {
					if err != nil {
						os.Remove(dir)
					}
				}()
			}
			// Both splits are made before any file is written, so that a
			// failure leaves the folder's old data whole, not half replaced.
			rng := rand.New(rand.NewPCG(seed, 0x70726566)) // "pref"
			out := map[string][]byte{}
			var said []string
			for _, split := range []struct {
				name, flag string
				n          int
				held       bool
			}{{"train", "--n", n, false}, {"val", "--n-val", nval, true}} {
				ps, err := tasks.Generate(split.n, tasks.Config{Kinds: ks, Digits: digits, Seed: seed, HeldOut: split.held})
				if err != nil {
					return fmt.Errorf("%s %d: %w", split.flag, split.n, err)
				}
				var convs []tasks.Conversation
				var pairs []tasks.Pair
				var ranks []tasks.Ranking
				for _, p := range ps {
					convs = append(convs, tasks.SFT(p))
					pairs = append(pairs, tasks.PreferenceOf(p, rng, rej))
					ranks = append(ranks, tasks.RankOf(p, rng, rej))
				}
				files := map[string]func(io.Writer) error{
					"problems_" + split.name + ".jsonl": func(w io.Writer) error { return tasks.WriteJSONL(w, ps) },
					"sft_" + split.name + ".jsonl":      func(w io.Writer) error { return tasks.WriteJSONL(w, convs) },
					"prefs_" + split.name + ".jsonl":    func(w io.Writer) error { return tasks.WriteJSONL(w, pairs) },
				}
				if !split.held {
					files["rankings_train.jsonl"] = func(w io.Writer) error { return tasks.WriteJSONL(w, ranks) }
				}
				for name, write := range files {
					var b strings.Builder
					if err := write(&b); err != nil {
						return err
					}
					out[name] = []byte(b.String())
				}
				// The kinds' shares: few digits run out of additions long
				// before comparisons, and the mix would change unseen.
				byKind := map[string]int{}
				for _, p := range ps {
					byKind[p.Kind]++
				}
				var mix []string
				for _, k := range slices.Sorted(maps.Keys(byKind)) {
					mix = append(mix, fmt.Sprintf("%d %s", byKind[k], k))
				}
				said = append(said, fmt.Sprintf("%d %s problems in %s (%s)", len(ps), split.name, dir, strings.Join(mix, ", ")))
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			for _, name := range slices.Sorted(maps.Keys(out)) {
				if err := atomicfile.WriteFile(filepath.Join(dir, name), out[name]); err != nil {
					return err
				}
			}
			for _, s := range said {
				fmt.Fprintln(cmd.OutOrStdout(), s)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "data", "folder to write")
	f.IntVar(&n, "n", 2000, "training problems")
	f.IntVar(&nval, "n-val", 200, "held-out problems")
	f.IntVar(&digits, "digits", 2, "digits of the operands")
	f.StringVar(&kinds, "kinds", "", "comma-separated kinds: add, compare (default both)")
	f.StringVar(&rejected, "rejected", strings.Join(tasks.DefaultRejected, ","),
		"comma-separated kinds of rejected reply in the preference data: wrong-answer (the solution's reasoning, a wrong answer), wrong-work (a slip in the reasoning carried into the answer), rambling")
	f.Uint64Var(&seed, "seed", 1, "seed")
	return cmd
}

func (c *cmds) tasksEvalCmd() *cobra.Command {
	var modelPath, tokPath, tmpl, probsPath, vs, rmDir string
	var maxNew, seq, show int
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Answer problems greedily: exact-match accuracy and format compliance (and a win rate by a reward model)",
		Example: fmt.Sprintf(`  %[1]s tasks eval --model grpo/model.gguf --problems problems_val.jsonl
  %[1]s tasks eval --model dpo/model.gguf --vs sft/model.gguf --reward-model rm/ --problems problems_val.jsonl`, c.name),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if modelPath == "" || probsPath == "" {
				return errors.New("--model FILE and --problems FILE are required")
			}
			// Checked before the evaluation, not after it.
			if vs != "" && rmDir == "" {
				return errors.New("--vs needs --reward-model DIR to judge")
			}
			if rmDir != "" && vs == "" {
				return errors.New("--reward-model judges replies against --vs MODEL's: give --vs too")
			}
			if maxNew < 1 || seq < 1 {
				return fmt.Errorf("--max-new and --seq: must be ≥ 1, got %d and %d", maxNew, seq)
			}
			tok, err := loadTokenizer(tokPath, modelPath)
			if err != nil {
				return err
			}
			cm := &Common{Spec: c.spec, Factory: c.factory, Tok: tok, Template: tmpl}
			e, err := cm.encoder()
			if err != nil {
				return err
			}
			ps, err := ReadProblems(probsPath)
			if err != nil {
				return err
			}
			load := func(path string) (model.Model, error) {
				p, f, err := loadModel(path, c.spec)
				if err != nil {
					return nil, err
				}
				if f != nil {
					f.Close()
				}
				return samplerFor(c.factory, p)
			}
			m, err := load(modelPath)
			if err != nil {
				return err
			}
			// The second model and the judge load before the evaluation, so
			// that a wrong one fails at once, not after the first results.
			var ref model.Model
			var rm *RewardModel
			if vs != "" {
				if ref, err = load(vs); err != nil {
					return fmt.Errorf("--vs: %w", err)
				}
				if rm, err = LoadRewardModel(rmDir, cm, min(seq, c.spec.MaxSeq)); err != nil {
					return err
				}
			}
			var showFn func(tasks.Problem, string)
			if show > 0 {
				showFn = func(p tasks.Problem, reply string) {
					if show > 0 {
						fmt.Fprintf(cmd.OutOrStdout(), "%s\n→ %q (answer %d)\n", p.Prompt, reply, p.Answer)
						show--
					}
				}
			}
			acc, format, err := evalProblems(cmd.Context(), m, e, ps, maxNew, showFn)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "exact match %.4f  format %.4f  (%d problems)\n", acc, format, len(ps))
			if vs == "" {
				return nil
			}
			wins, ties := 0, 0
			for i, p := range ps {
				if err := cmd.Context().Err(); err != nil {
					return fmt.Errorf("interrupted after %d of %d problems: %w", i, len(ps), err)
				}
				prompt, err := e.Prompt(p.Prompt)
				if err != nil {
					return err
				}
				a := decodeReply(e, sampleReply(m, prompt, maxNew, 0, tok.EOS(), nil))
				b := decodeReply(e, sampleReply(ref, prompt, maxNew, 0, tok.EOS(), nil))
				ra, err := rm.Score(p.Prompt, a)
				if err != nil {
					return err
				}
				rb, err := rm.Score(p.Prompt, b)
				if err != nil {
					return err
				}
				switch {
				case ra > rb:
					wins++
				case ra == rb:
					ties++
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "win rate vs %s by the reward model: %.4f (ties %.4f)\n", vs,
				float64(wins)/float64(len(ps)), float64(ties)/float64(len(ps)))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelPath, "model", "", "model file")
	f.StringVar(&tokPath, "tokenizer", "", "tokenizer (default: the one inside a GGUF model)")
	f.StringVar(&tmpl, "template", "llama2", "chat template")
	f.StringVar(&probsPath, "problems", "", "problems, JSON lines")
	f.IntVar(&maxNew, "max-new", 64, "longest reply")
	f.StringVar(&vs, "vs", "", "a second model to compare replies with (win rate)")
	f.StringVar(&rmDir, "reward-model", "", "reward model run folder judging --vs")
	f.IntVar(&seq, "seq", 256, "longest sequence the reward model scores")
	f.IntVar(&show, "show", 0, "print the first N replies")
	return cmd
}

func (c *cmds) tasksPairsCmd() *cobra.Command {
	var modelPath, tokPath, tmpl, probsPath, out string
	var n, maxNew int
	var temp float64
	var seed uint64
	cmd := &cobra.Command{
		Use:   "pairs",
		Short: "Sample a model's replies to problems and write on-policy preference pairs (right against wrong answers)",
		Long: `tasks pairs samples --n replies of --model to each problem of --problems at
--temperature and writes to --out a pair {"prompt","chosen","rejected"} for every
distinct reply with a wrong answer: the chosen reply is one of the model's right
replies (in turn), or the worked solution when it gave none. The pairs train and
test a reward model on the mistakes this model actually makes.`,
		Example: fmt.Sprintf("  %s tasks pairs --model sft/model.gguf --problems problems_train.jsonl --n 4 --temperature 0.7 --out pairs_train.jsonl", c.name),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if modelPath == "" || probsPath == "" || out == "" {
				return errors.New("--model FILE, --problems FILE and --out FILE are required")
			}
			if err := atomicfile.NotInput("--out", out, probsPath, modelPath, tokPath); err != nil {
				return err
			}
			if maxNew < 1 {
				return fmt.Errorf("--max-new: must be ≥ 1, got %d", maxNew)
			}
			tok, err := loadTokenizer(tokPath, modelPath)
			if err != nil {
				return err
			}
			cm := &Common{Spec: c.spec, Factory: c.factory, Tok: tok, Template: tmpl}
			e, err := cm.encoder()
			if err != nil {
				return err
			}
			ps, err := ReadProblems(probsPath)
			if err != nil {
				return err
			}
			p, f, err := loadModel(modelPath, c.spec)
			if err != nil {
				return err
			}
			if f != nil {
				f.Close()
			}
			m, err := samplerFor(c.factory, p)
			if err != nil {
				return err
			}
			// Made now, so that an --out that cannot be written fails before
			// the sampling, not after it.
			outFile, err := atomicfile.Create(out)
			if err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			defer outFile.Abort()
			t0, last := time.Now(), time.Time{}
			pw := cmd.ErrOrStderr()
			progress := func(done, np int) {
				// A line at most every two seconds, and the last.
				if now := time.Now(); now.Sub(last) >= 2*time.Second || done == len(ps) {
					last = now
					el := now.Sub(t0)
					eta := time.Duration(float64(el) / float64(done) * float64(len(ps)-done))
					fmt.Fprintf(pw, "problems %d/%d  pairs %d  %s elapsed  ETA %s\n", done, len(ps), np, el.Round(time.Second), eta.Round(time.Second))
				}
			}
			pairs, err := SamplePairs(cmd.Context(), m, e, ps, n, temp, maxNew, rand.New(rand.NewPCG(seed, 0x70616972)), progress) // "pair"
			if err != nil {
				return err
			}
			if err := tasks.WriteJSONL(outFile, pairs); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			if err := outFile.Commit(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d pairs from %d problems in %s\n", len(pairs), len(ps), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelPath, "model", "", "model file whose replies are sampled")
	f.StringVar(&tokPath, "tokenizer", "", "tokenizer (default: the one inside a GGUF model)")
	f.StringVar(&tmpl, "template", "llama2", "chat template")
	f.StringVar(&probsPath, "problems", "", "problems, JSON lines")
	f.StringVar(&out, "out", "", "pairs file to write (JSON lines)")
	f.IntVar(&n, "n", 4, "replies sampled per problem")
	f.Float64Var(&temp, "temperature", 0.7, "sampling temperature")
	f.IntVar(&maxNew, "max-new", 64, "longest reply")
	f.Uint64Var(&seed, "seed", 1, "seed")
	return cmd
}
