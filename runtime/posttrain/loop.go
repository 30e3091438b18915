package posttrain

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/internal/atomicfile"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/train"
	"github.com/modelc/modelc/spec"
)

// Files of a post-training run folder besides train.ModelFile,
// train.StateFile and train.MetricsFile.
const (
	RunFile       = "run.json"   // the stage and its configuration
	HeadFile      = "head.json"  // a reward model's scalar head
	HeadStateFile = "head.state" // its optimizer state
)

// Metric is a line of metrics.jsonl: pretraining's fields and the stage's
// own (accuracy, reward, KL, …).
type Metric struct {
	train.Metric
	Extra map[string]float64 `json:"extra,omitempty"`
}

// Hyper are the optimizer settings every stage shares.
type Hyper struct {
	Steps       int     `json:"steps"`
	LR          float64 `json:"lr"`
	MinLR       float64 `json:"min_lr"`
	Warmup      int     `json:"warmup"`
	WeightDecay float64 `json:"weight_decay"`
	GradClip    float64 `json:"grad_clip"`
	Seed        uint64  `json:"seed"`
	EvalEvery   int     `json:"eval_every"`
	CkptEvery   int     `json:"checkpoint_every"`
}

// check names a bad setting as n calls it.
func (h *Hyper) check(n train.Names) error {
	switch {
	case h.Steps < 1:
		return fmt.Errorf("%s: must be ≥ 1, got %d", n.Name("steps"), h.Steps)
	case !(h.LR > 0) || math.IsInf(h.LR, 0):
		return fmt.Errorf("%s: must be > 0, got %g", n.Name("lr"), h.LR)
	// Each test is written so that NaN fails it.
	case !(h.MinLR >= 0 && h.MinLR <= h.LR):
		return fmt.Errorf("%s: must be between 0 and %s %g, got %g", n.Name("min-lr"), n.Ref("lr"), h.LR, h.MinLR)
	case h.Warmup < 0:
		return fmt.Errorf("%s: must be ≥ 0, got %d", n.Name("warmup"), h.Warmup)
	case !(h.WeightDecay >= 0) || math.IsInf(h.WeightDecay, 0):
		return fmt.Errorf("%s: must be a number ≥ 0, got %g", n.Name("weight-decay"), h.WeightDecay)
	case !(h.GradClip >= 0) || math.IsInf(h.GradClip, 0):
		return fmt.Errorf("%s: must be a number ≥ 0 (0 = no clipping), got %g", n.Name("grad-clip"), h.GradClip)
	}
	return nil
}

// beforeUpdate marks a step error raised before the step changed any
// weight, so the steps done so far can be saved.
type beforeUpdate struct{ error }

func (e beforeUpdate) Unwrap() error { return e.error }

// stepResult is what one step of a stage reports.
type stepResult struct {
	Loss   float64
	Tokens int
	Extra  map[string]float64
	// Applied says the step made its own optimizer updates (through
	// loop.apply), as GRPO does several per batch of samples; Norm is then
	// the gradient norm of the last.
	Applied bool
	Norm    float64
}

// loop is the optimizer loop every stage runs: schedule, clipping, AdamW,
// metrics, progress, checkpoints, resume. A stage's step must depend only
// on the step number and the weights (its data order and sampling are
// drawn from the seed and the step), so a resumed run continues bit for bit.
type loop struct {
	Out     string
	Resume  bool
	Spec    *spec.Spec
	Hyper   Hyper
	TokMeta []gguf.KV
	Log     io.Writer
	// Info is written to run.json on a fresh start.
	Info any
	// Head, when set, is an extra parameter vector trained beside the model
	// (a reward model's head), saved to head.json.
	Head []float32
	// StopAfter ends the work after that many steps of this process, as if
	// killed right after a checkpoint (what resume tests need).
	StopAfter int

	p        *model.Params
	opt      *train.AdamW
	headOpt  *train.AdamW
	step     int
	metrics  []Metric
	elapsed  float64
	tokens   int64
	lastLoss float64
	lr       float64 // of the step running
	abandon  func()  // removes an output folder made for a run that failed
}

// start binds p (the starting weights) and, on resume, replaces them and
// the optimizer state with the checkpoint's.
func (l *loop) start(p *model.Params) error {
	// The stages checked Hyper first, naming it by where it came from.
	if err := l.Hyper.check(train.Names{}); err != nil {
		return err
	}
	if l.Log == nil {
		l.Log = io.Discard
	}
	if l.Out == "" {
		return errors.New("--out: the run folder is required")
	}
	if l.abandon == nil {
		abandon, err := train.OpenOut(l.Out, l.Resume)
		if err != nil {
			return err
		}
		l.abandon = abandon
	}
	if err := l.resume(p); err != nil {
		l.abandon()
		return err
	}
	return nil
}

// resume binds p and writes run.json, or on resume loads the checkpoint.
func (l *loop) resume(p *model.Params) error {
	l.p = p
	l.opt = train.NewAdamW(p, 0.9, 0.95, l.Hyper.WeightDecay)
	if l.Head != nil {
		l.headOpt = train.NewAdamW(&model.Params{Data: l.Head}, 0.9, 0.95, 0)
	}
	if !l.Resume {
		return train.WriteRunFile(l.Out, l.Info)
	}
	st, err := train.ResumeState(l.Out, p.Tensors, l.Hyper.Steps)
	if err != nil {
		return err
	}
	if st.Params != len(p.Data) {
		return fmt.Errorf("resume %s: the state holds %d parameters, this model has %d", l.Out, st.Params, len(p.Data))
	}
	copy(p.Data, st.Weights)
	copy(l.opt.M, st.M)
	copy(l.opt.V, st.V)
	l.opt.Step = st.AdamStep
	l.step, l.tokens, l.elapsed, l.lastLoss = st.Step, st.Tokens, st.Elapsed, st.TrainLoss
	if l.Head != nil {
		hs, err := train.LoadState(filepath.Join(l.Out, HeadStateFile))
		if err != nil {
			return fmt.Errorf("resume %s: %w", l.Out, err)
		}
		if hs.Params != len(l.Head) {
			return fmt.Errorf("resume %s: the head state holds %d parameters, want %d", l.Out, hs.Params, len(l.Head))
		}
		copy(l.Head, hs.Weights)
		copy(l.headOpt.M, hs.M)
		copy(l.headOpt.V, hs.V)
		l.headOpt.Step = hs.AdamStep
	}
	if l.metrics, err = readMetrics(filepath.Join(l.Out, train.MetricsFile), l.step); err != nil {
		return err
	}
	// The settings now in force (a new --steps), or a later resume would
	// go back to the old ones.
	return train.WriteRunFile(l.Out, l.Info)
}

func (l *loop) save() error {
	err := train.SaveState(filepath.Join(l.Out, train.StateFile), &train.State{
		StateHeader: train.StateHeader{Step: l.step, AdamStep: l.opt.Step, Params: len(l.p.Data), Drawn: int64(l.step),
			Tokens: l.tokens, TrainLoss: l.lastLoss, Elapsed: l.elapsed},
		Weights: l.p.Data, M: l.opt.M, V: l.opt.V,
	})
	if err != nil {
		return err
	}
	if l.Head != nil {
		err := train.SaveState(filepath.Join(l.Out, HeadStateFile), &train.State{
			StateHeader: train.StateHeader{Step: l.step, AdamStep: l.headOpt.Step, Params: len(l.Head)},
			Weights:     l.Head, M: l.headOpt.M, V: l.headOpt.V,
		})
		if err != nil {
			return err
		}
		if err := SaveHead(filepath.Join(l.Out, HeadFile), l.Head); err != nil {
			return err
		}
	}
	if err := checkpoint.SaveGGUF(filepath.Join(l.Out, train.ModelFile), l.p, l.TokMeta, false); err != nil {
		return err
	}
	if len(l.metrics) > 0 {
		ms := make([]train.Metric, len(l.metrics))
		for i, m := range l.metrics {
			ms[i] = m.Metric
		}
		title := fmt.Sprintf("%s, %s: %d steps", nameOr(l.Spec.Name, "model"), filepath.Base(l.Out), l.step)
		if err := train.PlotLoss(filepath.Join(l.Out, train.PlotFile), title, ms); err != nil {
			return err
		}
	}
	return writeMetrics(filepath.Join(l.Out, train.MetricsFile), l.metrics)
}

// run steps until Hyper.Steps. step fills grads (the model's, and headGrads
// when there is a head) for step number s; eval, if set, returns
// validation figures every EvalEvery steps and at the end.
func (l *loop) run(ctx context.Context, grads func() (g, headGrads []float32), step func(s int) (stepResult, error), eval func() (map[string]float64, error)) (err error) {
	defer func() {
		if err != nil && l.abandon != nil {
			l.abandon()
		}
	}()
	h := l.Hyper
	sched := train.Schedule{LR: h.LR, MinLR: h.MinLR, Warmup: h.Warmup, Total: h.Steps}
	here := 0
	saved := l.step
	var secs float64
	every := max(1, h.Steps/20)
	for l.step < h.Steps {
		if err := ctx.Err(); err != nil {
			if saved != l.step {
				if serr := l.save(); serr != nil {
					return fmt.Errorf("interrupted at step %d, and saving failed: %w", l.step, serr)
				}
			}
			return fmt.Errorf("interrupted at step %d (%w); checkpoint saved, continue with --resume %s", l.step, err, l.Out)
		}
		t0 := time.Now()
		lr := sched.At(l.step)
		l.lr = lr
		r, err := step(l.step)
		var clean beforeUpdate
		if errors.As(err, &clean) {
			// The step failed before touching the weights (a reward
			// function that fails): keep every finished step.
			if saved != l.step {
				if serr := l.save(); serr != nil {
					return fmt.Errorf("step %d: %w (and saving the checkpoint failed: %v)", l.step+1, err, serr)
				}
			}
			return fmt.Errorf("step %d: %w; the %d steps done are saved in %s (continue with --resume)", l.step+1, err, l.step, l.Out)
		}
		if err != nil {
			return fmt.Errorf("step %d: %w; the last checkpoint (step %d) is kept in %s", l.step+1, err, saved, l.Out)
		}
		if math.IsNaN(r.Loss) || math.IsInf(r.Loss, 0) {
			return fmt.Errorf("step %d: the loss is %v: %w; the last good checkpoint (step %d) is kept in %s (try a lower --lr)", l.step+1, r.Loss, train.ErrNaN, saved, l.Out)
		}
		norm := r.Norm
		if !r.Applied {
			if norm, err = l.apply(grads, lr); err != nil {
				return fmt.Errorf("step %d: %w; the last good checkpoint (step %d) is kept in %s", l.step+1, err, saved, l.Out)
			}
		}
		dt := time.Since(t0).Seconds()
		secs += dt
		l.elapsed += dt
		l.step++
		here++
		l.tokens += int64(r.Tokens)
		l.lastLoss = r.Loss
		m := Metric{Metric: train.Metric{Step: l.step, Loss: r.Loss, LR: lr, GradNorm: norm, Tokens: l.tokens,
			TokPerSec: float64(r.Tokens) / max(dt, 1e-9), Elapsed: l.elapsed}, Extra: r.Extra}
		final := l.step == h.Steps || (l.StopAfter > 0 && here == l.StopAfter)
		if eval != nil && ((h.EvalEvery > 0 && l.step%h.EvalEvery == 0) || l.step == h.Steps) {
			ev, err := eval()
			if err != nil {
				return err
			}
			if m.Extra == nil {
				m.Extra = map[string]float64{}
			}
			for k, v := range ev {
				if k == "val_loss" { // pretraining's field, not again in extra
					m.ValLoss = &v
					continue
				}
				m.Extra[k] = v
			}
		}
		l.metrics = append(l.metrics, m)
		if l.step%every == 0 || final || m.ValLoss != nil {
			val := ""
			if m.ValLoss != nil {
				val = fmt.Sprintf("  val_loss %.4g", *m.ValLoss)
			}
			fmt.Fprintf(l.Log, "step %d/%d  loss %.4f  lr %.2e%s%s\n", l.step, h.Steps, r.Loss, lr, val, fmtExtra(m.Extra))
		}
		if (h.CkptEvery > 0 && l.step%h.CkptEvery == 0) || final {
			if err := l.save(); err != nil {
				return err
			}
			saved = l.step
		}
		if final {
			break
		}
	}
	if saved != l.step {
		return l.save()
	}
	return nil
}

// apply clips the gradients and makes one optimizer update at lr.
func (l *loop) apply(grads func() (g, headGrads []float32), lr float64) (float64, error) {
	g, hg := grads()
	norm := clipTogether(l.Hyper.GradClip, g, hg)
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm, fmt.Errorf("the gradient norm is %v: %w", norm, train.ErrNaN)
	}
	l.opt.Update(l.p.Data, g, lr)
	if l.Head != nil {
		l.headOpt.Update(l.Head, hg, lr)
	}
	return norm, nil
}

func fmtExtra(e map[string]float64) string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s %.4g", k, e[k])
	}
	return b.String()
}

// clipTogether clips the gradients of model and head by their joint norm.
func clipTogether(maxNorm float64, gs ...[]float32) float64 {
	var ss float64
	for _, g := range gs {
		n := train.ClipGradNorm(g, 0)
		ss += n * n
	}
	norm := math.Sqrt(ss)
	if maxNorm > 0 && norm > maxNorm {
		c := float32(maxNorm / (norm + 1e-6))
		for _, g := range gs {
			for i := range g {
				g[i] *= c
			}
		}
	}
	return norm
}

func readMetrics(path string, keep int) ([]Metric, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ms []Metric
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var m Metric
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("metrics %s:%d: %w", path, line, err)
		}
		if m.Step <= keep {
			ms = append(ms, m)
		}
	}
	return ms, sc.Err()
}

func writeMetrics(path string, ms []Metric) error {
	var b bytes.Buffer
	for _, m := range ms {
		line, err := json.Marshal(m)
		if err != nil {
			return err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return atomicfile.WriteFile(path, b.Bytes())
}

// SaveHead writes a reward head.
func SaveHead(path string, head []float32) error {
	b, err := json.Marshal(map[string]any{"dim": len(head), "weights": head})
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b)
}

// LoadHead reads a reward head of dim floats.
func LoadHead(path string, dim int) ([]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reward head: %w", err)
	}
	var h struct {
		Dim     int       `json:"dim"`
		Weights []float32 `json:"weights"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("reward head %s: %w", path, err)
	}
	if h.Dim != dim || len(h.Weights) != dim {
		return nil, fmt.Errorf("reward head %s: %d weights (dim %d), the model's dim is %d", path, len(h.Weights), h.Dim, dim)
	}
	return h.Weights, nil
}

// newTrainer returns a GradTrainer for p: the factory's model's when it has
// one, the generic model's otherwise.
func newTrainer(factory model.Factory, p *model.Params, B, T int) (model.GradTrainer, model.Model, error) {
	if factory != nil {
		m, err := factory(p)
		if err != nil {
			return nil, nil, err
		}
		if t, ok := m.(model.Trainable); ok {
			tr, err := t.NewTrainer(B, T)
			if err != nil {
				return nil, nil, err
			}
			if gt, ok := tr.(model.GradTrainer); ok {
				return gt, m, nil
			}
		}
	}
	m, err := generic.New(p)
	if err != nil {
		return nil, nil, err
	}
	tr, err := m.(model.Trainable).NewTrainer(B, T)
	if err != nil {
		return nil, nil, err
	}
	return tr.(model.GradTrainer), m, nil
}

// loadModel reads a model file whose shape must be s and returns a copy of
// its weights bound to s, and the file's GGUF metadata (nil for llama2.c).
func loadModel(path string, s *spec.Spec) (*model.Params, *gguf.File, error) {
	ip, f, err := checkpoint.Load(path)
	if err != nil {
		return nil, nil, err
	}
	if s == nil {
		s = &ip.Spec
	}
	if err := model.CheckShape(&ip.Spec, s); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	p := model.NewParams(s)
	copy(p.Data, ip.Data)
	return p, f, nil
}
