package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/internal/atomicfile"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

// Names of the files in a run folder besides StateFile, MetricsFile and PlotFile.
const (
	ModelFile = "model.gguf" // the weights, F32, with the tokenizer's metadata
	RunFile   = "run.json"   // the run's configuration, read back by --resume
	DataFile  = "data.tok"   // the tokenized corpus, when the corpus was text
)

// Config describes a training run.
type Config struct {
	// Spec is the model's shape and objective.
	Spec *spec.Spec
	// Factory binds weights to code. When it is nil, or the model it builds
	// does not implement model.Trainable, the generic model trains.
	Factory model.Factory
	// Train holds the hyperparameters (start from Spec.Train).
	Train spec.Train
	// Steps is the number of optimizer steps of the whole run; the learning
	// rate's cosine decay ends there.
	Steps int

	// Data is a text corpus, tokenized into the run folder's data.tok, or a
	// token file (PrepareData) used in place.
	Data string
	// Tokenizer encodes a text corpus; a tokenizer that has GGUFMetadata()
	// []gguf.KV has its vocabulary stored in model.gguf. It may be nil for a
	// token file. TokenizerPath is recorded so that a resumed run finds it.
	Tokenizer     tokenizer.Tokenizer
	TokenizerPath string
	// Init, if set, is a model file whose weights the run starts from
	// (fine-tuning); otherwise weights are drawn from Train.Seed.
	Init string
	// Out is the run folder.
	Out string
	// Resume continues the run in Out from its last checkpoint.
	Resume bool
	// MaskID is the mask token of the masked objective; when negative, the
	// tokenizer's (see MaskTokenizer) is used.
	MaskID int
	// EvalBatches bounds the validation batches of one evaluation (default 20).
	EvalBatches int

	// Log receives progress (default os.Stderr); Quiet silences it.
	Log   io.Writer
	Quiet bool
	// StopAfter, when positive, ends the process's work after that many
	// steps as if it were killed right after a checkpoint at that step:
	// what resume tests need.
	StopAfter int

	// saved is what ResumeConfig read from runFile (run.json): a value
	// still equal to it came from the file, not from a flag.
	saved   *RunInfo
	runFile string
}

// MaskTokenizer is a tokenizer that names a mask token for masked language
// modelling.
type MaskTokenizer interface {
	MaskID() (id int, ok bool)
}

// GGUFMetadataer is a tokenizer whose vocabulary can be stored in a GGUF file.
type GGUFMetadataer interface {
	GGUFMetadata() []gguf.KV
}

// RunInfo is run.json: what --resume needs besides the state.
type RunInfo struct {
	Spec        spec.Spec  `json:"spec"`
	Train       spec.Train `json:"train"`
	Steps       int        `json:"steps"`
	Data        string     `json:"data"`             // the token file trained on (absolute)
	Corpus      string     `json:"corpus,omitempty"` // the text it came from
	Tokenizer   string     `json:"tokenizer,omitempty"`
	MaskID      int        `json:"mask_id"`
	EvalBatches int        `json:"eval_batches"`
	Init        string     `json:"init,omitempty"`
}

// ReadRunInfo reads run.json from a run folder.
func ReadRunInfo(dir string) (*RunInfo, error) {
	b, err := os.ReadFile(filepath.Join(dir, RunFile))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("%s is not a run folder (no %s)", dir, RunFile)
		}
		return nil, fmt.Errorf("resume: %w", err)
	}
	var ri RunInfo
	if err := json.Unmarshal(b, &ri); err != nil {
		return nil, fmt.Errorf("resume: %s: %w", filepath.Join(dir, RunFile), err)
	}
	return &ri, nil
}

// ResumeConfig fills cfg, for continuing the run in dir, from its run.json:
// the data, steps, hyperparameters, mask id and evaluation size it was
// started with, and, unless cfg has one, its tokenizer (loaded again). Change fields of the result to override them
// (more steps, say); changing the batch, sequence or data gives a valid run
// that no longer matches an uninterrupted one.
func ResumeConfig(dir string, cfg Config) (Config, error) {
	ri, err := ReadRunInfo(dir)
	if err != nil {
		return cfg, err
	}
	if cfg.Spec != nil {
		if err := model.CheckShape(&ri.Spec, cfg.Spec); err != nil {
			return cfg, fmt.Errorf("resume %s: %w", dir, err)
		}
		if model.Causal(&ri.Spec) != model.Causal(cfg.Spec) {
			return cfg, fmt.Errorf("resume %s: the run's objective is %q, this model's is %q", dir, ri.Spec.Objective, cfg.Spec.Objective)
		}
	} else {
		cfg.Spec = &ri.Spec
	}
	cfg.Out, cfg.Resume = dir, true
	cfg.saved, cfg.runFile = ri, filepath.Join(dir, RunFile)
	cfg.Train, cfg.Steps, cfg.Data = ri.Train, ri.Steps, ri.Data
	cfg.MaskID, cfg.EvalBatches = ri.MaskID, ri.EvalBatches
	if cfg.Tokenizer == nil && ri.Tokenizer != "" {
		tok, err := tokenizer.Load(ri.Tokenizer, 0)
		if err != nil {
			return cfg, fmt.Errorf("resume %s: %w", dir, err)
		}
		cfg.Tokenizer, cfg.TokenizerPath = tok, ri.Tokenizer
	}
	return cfg, nil
}

// Result sums up a run.
type Result struct {
	Step      int     // steps done
	TrainLoss float64 // loss of the last step
	ValLoss   float64 // last validation loss (0 if none)
	Tokens    int64   // training tokens seen
}

// ErrNaN is wrapped by the error of a run stopped by a NaN or infinite loss.
var ErrNaN = errors.New("loss is not finite")

func (c *Config) check() error {
	t := &c.Train
	s := c.Spec
	n := c.name
	switch {
	case s == nil:
		return errors.New("train: no model spec")
	case c.Steps < 1:
		return fmt.Errorf("%s: must be ≥ 1, got %d", n("steps"), c.Steps)
	case t.BatchSize < 1 || t.BatchSize > spec.MaxBatch:
		return fmt.Errorf("%s: must be between 1 and %d, got %d", n("batch"), spec.MaxBatch, t.BatchSize)
	case t.SeqLen < 1 || t.SeqLen > s.MaxSeq:
		return fmt.Errorf("%s: must be between 1 and the model's max_seq %d, got %d", n("seq"), s.MaxSeq, t.SeqLen)
	case t.GradAccum < 1 || t.GradAccum > spec.MaxBatch:
		return fmt.Errorf("%s: must be between 1 and %d, got %d", n("grad-accum"), spec.MaxBatch, t.GradAccum)
	case !(t.LR > 0) || math.IsInf(t.LR, 0):
		return fmt.Errorf("%s: must be > 0, got %g", n("lr"), t.LR)
	// Each test is written so that NaN fails it.
	case !(t.MinLR >= 0 && t.MinLR <= t.LR):
		return fmt.Errorf("%s: must be between 0 and %s %g, got %g", n("min-lr"), c.ref("lr"), t.LR, t.MinLR)
	case t.WarmupSteps < 0:
		return fmt.Errorf("%s: must be ≥ 0, got %d", n("warmup"), t.WarmupSteps)
	case !(t.WeightDecay >= 0) || math.IsInf(t.WeightDecay, 0):
		return fmt.Errorf("%s: must be a number ≥ 0, got %g", n("weight-decay"), t.WeightDecay)
	case !(t.Beta1 >= 0 && t.Beta1 < 1):
		return fmt.Errorf("%s: must be in [0, 1), got %g", n("beta1"), t.Beta1)
	case !(t.Beta2 >= 0 && t.Beta2 < 1):
		return fmt.Errorf("%s: must be in [0, 1), got %g", n("beta2"), t.Beta2)
	case !(t.GradClip >= 0) || math.IsInf(t.GradClip, 0):
		return fmt.Errorf("%s: must be a number ≥ 0 (0 = no clipping), got %g", n("grad-clip"), t.GradClip)
	case t.EvalEvery < 0:
		return fmt.Errorf("%s: must be ≥ 0 (0 = only at the end), got %d", n("eval-every"), t.EvalEvery)
	case t.CheckpointEv < 0:
		return fmt.Errorf("%s: must be ≥ 0 (0 = only at the end), got %d", n("checkpoint-every"), t.CheckpointEv)
	case !model.Causal(s) && c.MaskID >= s.Vocab:
		return fmt.Errorf("%s: must be below the vocabulary size %d, got %d", n("mask-id"), s.Vocab, c.MaskID)
	case c.Out == "":
		return errors.New("--out: the run folder is required")
	case c.Data == "" && !c.Resume:
		return errors.New("--data: a text corpus or token file is required")
	}
	return nil
}

// Names calls settings in errors: "--lr", or, when a resumed run's value is
// still the one its run file holds, that file and field
// (`run/run.json: field "train.lr"`), since the user typed no such flag.
// Post-training's stages share it.
type Names struct {
	File string // the run file a resumed run read
	// Field is the run file's field the setting of flag still comes from,
	// or "" (not resumed, or a flag replaced it); nil: none.
	Field func(flag string) string
}

// Name calls the setting of flag at the head of an error.
func (n Names) Name(flag string) string {
	if n.Field != nil {
		if field := n.Field(flag); field != "" {
			return fmt.Sprintf("%s: field %q", n.File, field)
		}
	}
	return "--" + flag
}

// Ref calls a setting mentioned inside another's error.
func (n Names) Ref(flag string) string {
	if n.Field != nil {
		if field := n.Field(flag); field != "" {
			return field
		}
	}
	return "--" + flag
}

// name and ref call settings in c's errors (see Names).
func (c *Config) name(flag string) string { return Names{c.runFile, c.savedField}.Name(flag) }
func (c *Config) ref(flag string) string  { return Names{c.runFile, c.savedField}.Ref(flag) }

// savedField is the run.json field the setting of flag came from, or "" if
// the run was not resumed or the value was changed since (by the flag).
func (c *Config) savedField(flag string) string {
	ri := c.saved
	if ri == nil {
		return ""
	}
	t, f := &c.Train, &ri.Train
	var field string
	var same bool
	switch flag {
	case "steps":
		field, same = "steps", c.Steps == ri.Steps
	case "mask-id":
		field, same = "mask_id", c.MaskID == ri.MaskID
	case "batch":
		field, same = "train.batch_size", t.BatchSize == f.BatchSize
	case "seq":
		field, same = "train.seq_len", t.SeqLen == f.SeqLen
	case "grad-accum":
		field, same = "train.grad_accum", t.GradAccum == f.GradAccum
	case "lr":
		field, same = "train.lr", t.LR == f.LR
	case "min-lr":
		field, same = "train.min_lr", t.MinLR == f.MinLR
	case "warmup":
		field, same = "train.warmup_steps", t.WarmupSteps == f.WarmupSteps
	case "weight-decay":
		field, same = "train.weight_decay", t.WeightDecay == f.WeightDecay
	case "beta1":
		field, same = "train.beta1", t.Beta1 == f.Beta1
	case "beta2":
		field, same = "train.beta2", t.Beta2 == f.Beta2
	case "grad-clip":
		field, same = "train.grad_clip", t.GradClip == f.GradClip
	case "eval-every":
		field, same = "train.eval_every", t.EvalEvery == f.EvalEvery
	case "checkpoint-every":
		field, same = "train.checkpoint_every", t.CheckpointEv == f.CheckpointEv
	}
	if !same {
		return ""
	}
	return field
}

// InitParams draws fresh weights for s: Gaussian with standard deviation
// 0.02, the residual projections (attn_output, ffn_down, and the experts'
// ffn_down_exps and ffn_down_shexp) scaled down by √(2·layers) as GPT-2
// does, norm weights one.
func InitParams(s *spec.Spec, seed uint64) *model.Params {
	p := model.NewParams(s)
	rng := rand.New(rand.NewPCG(seed, 0x696e6974)) // "init"
	resid := 0.02 / math.Sqrt(2*float64(max(1, s.Layers)))
	for _, t := range p.Tensors {
		d := p.Data[t.Off : t.Off+t.Len()]
		if len(t.Shape) == 1 {
			for i := range d {
				d[i] = 1
			}
			continue
		}
		std := 0.02
		if name := t.Name; len(name) > 0 && (hasSuffix(name, ".attn_output.weight") || hasSuffix(name, ".ffn_down.weight") ||
			hasSuffix(name, ".ffn_down_exps.weight") || hasSuffix(name, ".ffn_down_shexp.weight")) {
			std = resid
		}
		for i := range d {
			d[i] = float32(rng.NormFloat64() * std)
		}
	}
	return p
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

// trainable builds the model for p and returns it as Trainable, and
// whether that is the generic model standing in for a factory's model that
// cannot train.
func trainable(factory model.Factory, p *model.Params) (model.Trainable, bool, error) {
	if factory != nil {
		m, err := factory(p)
		if err != nil {
			return nil, false, err
		}
		if t, ok := m.(model.Trainable); ok {
			return t, false, nil
		}
	}
	m, err := generic.New(p)
	if err != nil {
		return nil, false, err
	}
	return m.(model.Trainable), factory != nil, nil
}

// OpenOut prepares a run's output folder. A new run needs a folder that is
// new or empty — one that holds a run is continued with --resume, and one
// that holds anything else is refused rather than written over (a base
// model the run starts from, say). The folder is made and checked
// writable. abandon removes it again if it was made here and the run
// failed before saving a state, so a failed command leaves nothing behind.
func OpenOut(dir string, resume bool) (abandon func(), err error) {
	es, err := os.ReadDir(dir)
	made := errors.Is(err, fs.ErrNotExist)
	switch {
	case err != nil && !made:
		return nil, fmt.Errorf("output folder %s: %w", dir, rootCause(err))
	case resume:
	case slices.ContainsFunc(es, func(e os.DirEntry) bool { return e.Name() == StateFile }):
		return nil, fmt.Errorf("output folder %s already holds a run; continue it with --resume %s or choose another --out", dir, dir)
	case slices.ContainsFunc(es, func(e os.DirEntry) bool { return e.Name() == RunFile }):
		// Stopped hard (a second Ctrl-C, a kill) before its first save.
		return nil, fmt.Errorf("output folder %s holds a run stopped before its first checkpoint, nothing to resume: remove it and start again, or choose another --out", dir)
	case len(es) > 0:
		return nil, fmt.Errorf("output folder %s is not empty and holds no run: choose a new or empty folder (nothing in it is written over)", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("output folder %s cannot be made: %w", dir, rootCause(err))
	}
	f, err := atomicfile.Create(filepath.Join(dir, ".write-test"))
	if err != nil {
		if made {
			os.Remove(dir)
		}
		return nil, fmt.Errorf("output folder %s is not writable: %w", dir, rootCause(err))
	}
	f.Abort()
	untrack := func() {}
	if made {
		// Stopped hard (a second Ctrl-C) before its first checkpoint, the
		// run takes its folder with it, as a failed one does.
		untrack = atomicfile.TrackDir(dir, StateFile)
	}
	return func() {
		untrack()
		if _, err := os.Stat(filepath.Join(dir, StateFile)); made && err != nil {
			os.RemoveAll(dir)
		}
	}, nil
}

// rootCause strips the path wrappers off a file system error: the caller
// names the folder itself.
func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// objective resolves the spec's objective and mask token.
func objective(s *spec.Spec, maskID int, tok tokenizer.Tokenizer) (Objective, error) {
	obj := Objective{Masked: !model.Causal(s), Vocab: s.Vocab, MaskID: -1}
	if !obj.Masked {
		return obj, nil
	}
	if maskID < 0 {
		if mt, ok := tok.(MaskTokenizer); ok {
			if id, ok := mt.MaskID(); ok {
				maskID = id
			}
		}
	}
	if maskID < 0 {
		return obj, errors.New("the masked objective needs a mask token: the tokenizer names none, pass --mask-id")
	}
	if maskID >= s.Vocab {
		return obj, fmt.Errorf("--mask-id %d: not below the vocabulary size %d", maskID, s.Vocab)
	}
	obj.MaskID = int32(maskID)
	return obj, nil
}

// Run trains as cfg says: a fresh run into cfg.Out, or, with cfg.Resume, the
// continuation of the run there. It checkpoints every
// Train.CheckpointEv steps and at the end, evaluates every Train.EvalEvery
// steps and at the end, and stops with an error wrapping ErrNaN, keeping
// the last good checkpoint, if the loss stops being finite. When ctx is
// cancelled it saves a checkpoint and returns ctx's error.
func Run(ctx context.Context, cfg Config) (_ *Result, runErr error) {
	if cfg.EvalBatches <= 0 {
		cfg.EvalBatches = 20
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	s, hp := cfg.Spec, cfg.Train
	log := cfg.Log
	if log == nil {
		log = os.Stderr
	}
	if cfg.Quiet {
		log = io.Discard
	}
	if cfg.Tokenizer != nil {
		if err := tokenizer.CheckVocab(cfg.TokenizerPath, cfg.Tokenizer, s.Vocab); err != nil {
			return nil, err
		}
	}
	obj, err := objective(s, cfg.MaskID, cfg.Tokenizer)
	if err != nil {
		return nil, err
	}
	abandon, err := OpenOut(cfg.Out, cfg.Resume)
	if err != nil {
		return nil, err
	}
	defer func() {
		if runErr != nil {
			abandon()
		}
	}()
	statePath := filepath.Join(cfg.Out, StateFile)

	// The data: a token file as is, or a text corpus tokenized once into
	// the run folder.
	var st *State
	dataPath := cfg.Data
	if cfg.Resume {
		layout, _ := model.Layout(s)
		if st, err = ResumeState(cfg.Out, layout, cfg.Steps); err != nil {
			return nil, err
		}
	} else {
		if _, err := os.Stat(cfg.Data); err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
		if !IsTokenFile(cfg.Data) {
			if cfg.Tokenizer == nil {
				return nil, fmt.Errorf("--data %s is text: a --tokenizer is needed to tokenize it", cfg.Data)
			}
			dataPath = filepath.Join(cfg.Out, DataFile)
			fmt.Fprintf(log, "tokenizing %s ...\n", cfg.Data)
			n, err := PrepareData([]string{cfg.Data}, cfg.Tokenizer, dataPath)
			if errors.Is(err, ErrEmptyCorpus) {
				return nil, fmt.Errorf("--data %s: the corpus is empty", cfg.Data)
			}
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(log, "%d tokens in %s\n", n, dataPath)
		}
	}
	toks, err := OpenTokens(dataPath)
	if err != nil {
		return nil, err
	}
	defer toks.Close()
	if _, ok := cfg.Tokenizer.(GGUFMetadataer); !ok {
		fmt.Fprintf(log, "note: no --tokenizer with a vocabulary to store: %s will carry none, so generate, eval and serve will need --tokenizer\n", filepath.Join(cfg.Out, ModelFile))
	}
	if toks.Vocab() != s.Vocab {
		return nil, fmt.Errorf("token file %s was made for a vocabulary of %d, the model's vocabulary is %d", dataPath, toks.Vocab(), s.Vocab)
	}
	B, T := hp.BatchSize, hp.SeqLen
	trainSplit, valSplit, err := SplitTokens(toks, obj.Need(T))
	if err != nil {
		return nil, err
	}

	// The weights.
	var p *model.Params
	switch {
	case st != nil:
		if _, n := model.Layout(s); st.Params != n {
			return nil, fmt.Errorf("resume %s: the state holds %d parameters, this model has %d", cfg.Out, st.Params, n)
		}
		p, err = model.Bind(s, st.Weights)
		if err != nil {
			return nil, fmt.Errorf("resume %s: %w", cfg.Out, err)
		}
	case cfg.Init != "":
		ip, f, err := checkpoint.Load(cfg.Init)
		if err != nil {
			return nil, fmt.Errorf("--init: %w", err)
		}
		if err := model.CheckShape(&ip.Spec, s); err != nil {
			if f != nil {
				f.Close()
			}
			return nil, fmt.Errorf("--init %s: %w", cfg.Init, err)
		}
		p = model.NewParams(s)
		copy(p.Data, ip.Data)
		if f != nil {
			f.Close()
		}
	default:
		p = InitParams(s, hp.Seed)
	}
	m, fallback, err := trainable(cfg.Factory, p)
	if err != nil {
		return nil, err
	}
	if fallback {
		fmt.Fprintln(log, "the compiled model has no trainer: training with the generic model")
	}
	tr, err := m.NewTrainer(B, T)
	if err != nil {
		return nil, err
	}
	opt := NewAdamW(p, hp.Beta1, hp.Beta2, hp.WeightDecay)
	sampler := NewSampler(trainSplit, obj, hp.Seed)
	sched := Schedule{LR: hp.LR, MinLR: hp.MinLR, Warmup: hp.WarmupSteps, Total: cfg.Steps}
	metricsPath := filepath.Join(cfg.Out, MetricsFile)
	res := &Result{}
	var metrics []Metric
	var elapsed float64 // training seconds before this process
	if st != nil {
		copy(opt.M, st.M)
		copy(opt.V, st.V)
		opt.Step = st.AdamStep
		if err := sampler.PCG.UnmarshalBinary(st.RNG); err != nil {
			return nil, fmt.Errorf("resume %s: sampler state: %w", cfg.Out, err)
		}
		sampler.Drawn = st.Drawn
		res.Step, res.Tokens, res.TrainLoss, res.ValLoss = st.Step, st.Tokens, st.TrainLoss, st.ValLoss
		elapsed = st.Elapsed
		if metrics, err = readMetrics(metricsPath, st.Step); err != nil {
			return nil, err
		}
		// The settings now in force (a new --steps or --lr), or a later
		// resume would go back to the old ones.
		ri, err := ReadRunInfo(cfg.Out)
		if err != nil {
			return nil, err
		}
		ri.Train, ri.Steps = hp, cfg.Steps
		if err := WriteRunFile(cfg.Out, ri); err != nil {
			return nil, err
		}
	} else {
		abs, _ := filepath.Abs(dataPath)
		info := RunInfo{Spec: *s, Train: hp, Steps: cfg.Steps, Data: abs, Tokenizer: absOr(cfg.TokenizerPath),
			MaskID: int(obj.MaskID), EvalBatches: cfg.EvalBatches, Init: absOr(cfg.Init)}
		if dataPath != cfg.Data {
			info.Corpus = absOr(cfg.Data)
		}
		if err := WriteRunFile(cfg.Out, info); err != nil {
			return nil, err
		}
	}
	if err := writeMetrics(metricsPath, metrics); err != nil {
		return nil, err
	}
	mlog, err := openMetricsLog(metricsPath)
	if err != nil {
		return nil, err
	}
	defer mlog.close()

	var tokMeta []gguf.KV
	if g, ok := cfg.Tokenizer.(GGUFMetadataer); ok {
		tokMeta = g.GGUFMetadata()
	}
	if obj.Masked {
		// eval reads it back: another id would be scored without a word.
		tokMeta = append(tokMeta, gguf.KV{Key: gguf.KeyMask, Value: uint32(obj.MaskID)})
	}
	lastSaved := res.Step
	if st == nil {
		lastSaved = -1
	}
	save := func() error {
		rng, err := sampler.PCG.MarshalBinary()
		if err != nil {
			return err
		}
		err = SaveState(statePath, &State{
			StateHeader: StateHeader{Step: res.Step, AdamStep: opt.Step, Params: len(p.Data), Drawn: sampler.Drawn,
				Tokens: res.Tokens, RNG: rng, TrainLoss: res.TrainLoss, ValLoss: res.ValLoss, Elapsed: elapsed},
			Weights: p.Data, M: opt.M, V: opt.V,
		})
		if err != nil {
			return err
		}
		if err := checkpoint.SaveGGUF(filepath.Join(cfg.Out, ModelFile), p, tokMeta, false); err != nil {
			return err
		}
		if len(metrics) > 0 {
			if err := PlotLoss(filepath.Join(cfg.Out, PlotFile), fmt.Sprintf("%s: %d steps, batch %d×%d", nameOr(s.Name, "model"), res.Step, B*hp.GradAccum, T), metrics); err != nil {
				return err
			}
		}
		lastSaved = res.Step
		return nil
	}
	prog := newProgress(log, cfg.Steps)
	stopNaN := func(what string, v float64) error {
		where := "no checkpoint was written yet"
		if lastSaved >= 0 {
			where = fmt.Sprintf("the last good checkpoint (step %d) is kept in %s", lastSaved, cfg.Out)
		}
		prog.done()
		return fmt.Errorf("step %d: %s is %v: %w; stopped without saving this step, %s (try a lower --lr)", res.Step+1, what, v, ErrNaN, where)
	}

	tokens := make([]int32, B*T)
	targets := make([]int32, B*T)
	scale := 1 / float32(hp.GradAccum)
	var trainSecs float64 // this process
	stepsHere := 0
	startStep := res.Step
	for res.Step < cfg.Steps {
		if err := ctx.Err(); err != nil {
			if lastSaved != res.Step {
				if serr := save(); serr != nil {
					return res, fmt.Errorf("interrupted at step %d, and saving the checkpoint failed: %w", res.Step, serr)
				}
			}
			prog.done()
			return res, fmt.Errorf("interrupted at step %d (%w); checkpoint saved, continue with --resume %s", res.Step, err, cfg.Out)
		}
		t0 := time.Now()
		lr := sched.At(res.Step)
		tr.ZeroGrads()
		var loss, aux float64
		stats, _ := tr.(model.ExpertStats)
		for a := 0; a < hp.GradAccum; a++ {
			sampler.Next(tokens, targets, B, T)
			l := tr.Forward(tokens, targets, B, T)
			if math.IsNaN(float64(l)) || math.IsInf(float64(l), 0) {
				return res, stopNaN("the training loss", float64(l))
			}
			tr.Backward()
			loss += float64(l)
			if stats != nil {
				aux += stats.AuxLoss()
			}
		}
		loss /= float64(hp.GradAccum)
		var share [][]float64
		if stats != nil {
			share = stats.ExpertUsage() // this step's routing; evaluation's is discarded below
			aux /= float64(hp.GradAccum)
		}
		g := tr.Grads()
		if hp.GradAccum > 1 {
			for i := range g {
				g[i] *= scale
			}
		}
		norm := ClipGradNorm(g, hp.GradClip)
		if math.IsNaN(norm) || math.IsInf(norm, 0) {
			return res, stopNaN("the gradient norm", norm)
		}
		opt.Update(p.Data, g, lr)
		dt := time.Since(t0).Seconds()
		trainSecs += dt
		elapsed += dt
		res.Step++
		stepsHere++
		res.Tokens += int64(B * T * hp.GradAccum)
		res.TrainLoss = loss
		mt := Metric{Step: res.Step, Loss: loss, LR: lr, GradNorm: norm, Tokens: res.Tokens,
			TokPerSec: float64(stepsHere*B*T*hp.GradAccum) / trainSecs, Elapsed: elapsed}
		if len(share) > 0 {
			mt.AuxLoss, mt.ExpertShare = &aux, share
		}
		final := res.Step == cfg.Steps || (cfg.StopAfter > 0 && stepsHere == cfg.StopAfter)
		if (hp.EvalEvery > 0 && res.Step%hp.EvalEvery == 0) || res.Step == cfg.Steps {
			// Not ctx: an interrupt is seen before the next step, which saves
			// the checkpoint; the evaluation is short and finishes first.
			vl, _, err := Evaluate(context.Background(), tr, valSplit, obj, B, T, cfg.EvalBatches)
			if err != nil {
				return res, err
			}
			if math.IsNaN(vl) || math.IsInf(vl, 0) {
				return res, stopNaN("the validation loss", vl)
			}
			res.ValLoss = vl
			mt.ValLoss = &vl
			if stats != nil {
				stats.ExpertUsage()
			}
		}
		metrics = append(metrics, mt)
		if err := mlog.append(mt); err != nil {
			return res, err
		}
		prog.step(mt, res.Step-startStep, trainSecs)
		if (hp.CheckpointEv > 0 && res.Step%hp.CheckpointEv == 0) || final {
			if err := save(); err != nil {
				return res, err
			}
		}
		if final {
			break
		}
	}
	if lastSaved != res.Step {
		if err := save(); err != nil {
			return res, err
		}
	}
	prog.done()
	return res, nil
}

// Evaluate returns the mean loss of tr over fixed windows of split (at most
// maxBatches batches of B; all windows when maxBatches ≤ 0) and the number of
// positions it averaged. The masked objective masks from a fixed seed, so
// every evaluation sees the same positions. Cancelling ctx stops it between
// batches with ctx's error.
func Evaluate(ctx context.Context, tr model.Trainer, split Split, obj Objective, B, T, maxBatches int) (float64, int64, error) {
	need := obj.Need(T)
	starts := Windows(split, need, T, maxBatches*B)
	if len(starts) == 0 {
		return 0, 0, fmt.Errorf("evaluate: %d tokens are fewer than one window of %d", split.Len(), need)
	}
	rng := rand.New(rand.NewPCG(0x6576616c, 1)) // "eval"
	tokens, targets := make([]int32, B*T), make([]int32, B*T)
	win := make([]int32, need)
	var sum float64
	var count int64
	for i := 0; i < len(starts); i += B {
		if err := ctx.Err(); err != nil {
			return 0, 0, fmt.Errorf("evaluation interrupted after %d of %d windows: %w", i, len(starts), err)
		}
		nb := min(B, len(starts)-i)
		var batchTargets int64
		for b := 0; b < nb; b++ {
			split.Tokens.Read(win, starts[i+b])
			obj.Fill(tokens[b*T:(b+1)*T], targets[b*T:(b+1)*T], win, T, rng)
			for _, t := range targets[b*T : (b+1)*T] {
				if t >= 0 {
					batchTargets++
				}
			}
		}
		l := tr.Forward(tokens, targets, nb, T)
		sum += float64(l) * float64(batchTargets)
		count += batchTargets
	}
	return sum / float64(count), count, nil
}

func nameOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func absOr(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
