package posttrain

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"

	"github.com/modelc/modelc/runtime/train"
)

// DistillConfig configures distillation: the student (Common's spec) learns
// from a teacher of any shape with the same vocabulary.
type DistillConfig struct {
	Common
	Stage   string  `json:"stage"`
	Teacher string  `json:"teacher"` // teacher model file
	Data    string  `json:"data"`    // text corpus or token file
	Alpha   float64 `json:"alpha"`   // weight of the soft (KL) term; 0 = hard labels only
	Tau     float64 `json:"temperature"`
}

// Distill trains the student on windows of a corpus with α·τ²·KL(teacher‖
// student) at temperature τ plus (1−α) times the cross-entropy of the next
// token. The validation loss is the plain cross-entropy on the corpus's
// last tenth, comparable across α.
func Distill(ctx context.Context, cfg DistillConfig) (_ *Result, runErr error) {
	cfg.Stage = "distill"
	if err := cfg.check(); err != nil {
		return nil, err
	}
	n := cfg.names()
	if !(cfg.Alpha >= 0 && cfg.Alpha <= 1) {
		return nil, fmt.Errorf("%s: must be in [0, 1], got %g", n.Name("alpha"), cfg.Alpha)
	}
	if !(cfg.Tau > 0) || math.IsInf(cfg.Tau, 0) {
		return nil, fmt.Errorf("%s: must be > 0, got %g", n.Name("temperature"), cfg.Tau)
	}
	if cfg.Teacher == "" {
		return nil, fmt.Errorf("%s: a teacher model file is required", n.Name("teacher"))
	}
	tp, tf, err := loadModel(cfg.Teacher, nil)
	if err != nil {
		return nil, fmt.Errorf("--teacher: %w", err)
	}
	if tf != nil {
		tf.Close()
	}
	B, T, V := cfg.Batch, cfg.Seq, cfg.Spec.Vocab
	if tp.Spec.Vocab != V {
		return nil, fmt.Errorf("--teacher %s: its vocabulary has %d tokens, the student's has %d: distillation needs the same vocabulary", cfg.Teacher, tp.Spec.Vocab, V)
	}
	if tp.Spec.MaxSeq < T {
		return nil, fmt.Errorf("--teacher %s: max_seq %d is shorter than --seq %d", cfg.Teacher, tp.Spec.MaxSeq, T)
	}
	dataPath := cfg.Data
	// The folder is checked and made before the corpus is tokenized into it.
	abandon, err := train.OpenOut(cfg.Out, cfg.Resume)
	if err != nil {
		return nil, err
	}
	defer func() {
		if runErr != nil {
			abandon()
		}
	}()
	if !train.IsTokenFile(dataPath) {
		dataPath = filepath.Join(cfg.Out, train.DataFile)
		if !cfg.Resume {
			if _, err := train.PrepareData([]string{cfg.Data}, cfg.Tok, dataPath); err != nil {
				return nil, fmt.Errorf("--data %s: %w", cfg.Data, err)
			}
		}
	}
	toks, err := train.OpenTokens(dataPath)
	if err != nil {
		return nil, err
	}
	defer toks.Close()
	if toks.Vocab() != V {
		return nil, fmt.Errorf("token file %s was made for a vocabulary of %d, the model's is %d", dataPath, toks.Vocab(), V)
	}
	trainSplit, valSplit, err := train.SplitTokens(toks, T+1)
	if err != nil {
		return nil, err
	}
	p, err := cfg.params()
	if err != nil {
		return nil, err
	}
	cfg.Data, _ = filepath.Abs(cfg.Data)
	cfg.Teacher, _ = filepath.Abs(cfg.Teacher)
	l := cfg.loop(cfg, nil)
	l.abandon = abandon // the folder is open already
	if err := l.start(p); err != nil {
		return nil, err
	}
	tr, _, err := newTrainer(cfg.Factory, p, B, T)
	if err != nil {
		return nil, err
	}
	teacher, _, err := newTrainer(nil, tp, B, T)
	if err != nil {
		return nil, fmt.Errorf("--teacher: %w", err)
	}
	N := B * T
	tokens, targets := make([]int32, N), make([]int32, N)
	win := make([]int32, T+1)
	dl := make([]float32, N*V)
	step := func(s int) (stepResult, error) {
		rng := rand.New(rand.NewPCG(cfg.Hyper.Seed, 0x64697374+uint64(s))) // "dist"
		for b := range B {
			start := trainSplit.Lo + rng.IntN(trainSplit.Len()-T)
			toks.Read(win, start)
			copy(tokens[b*T:(b+1)*T], win[:T])
			copy(targets[b*T:(b+1)*T], win[1:])
		}
		tr.ZeroGrads()
		teacher.Forward(tokens, targets, B, T)
		tr.Forward(tokens, targets, B, T)
		pt, ps := teacher.Probs(), tr.Probs()
		M := len(ps) / V
		var loss, kl float64
		for r := range M {
			lr, k := DistillRow(dl[r*V:(r+1)*V], ps[r*V:(r+1)*V], pt[r*V:(r+1)*V], int(targets[r]), cfg.Tau, cfg.Alpha)
			loss += lr
			kl += k
		}
		inv := 1 / float32(M)
		for i := range dl[:M*V] {
			dl[i] *= inv
		}
		tr.BackwardGrad(dl[:M*V], nil)
		return stepResult{Loss: loss / float64(M), Tokens: N, Extra: map[string]float64{"kl": kl / float64(M)}}, nil
	}
	var last map[string]float64
	obj := train.Objective{Vocab: V, MaskID: -1}
	eval := func() (map[string]float64, error) {
		vl, _, err := train.Evaluate(context.Background(), tr, valSplit, obj, B, T, 20)
		if err != nil {
			return nil, err
		}
		last = map[string]float64{"val_loss": vl}
		return last, nil
	}
	grads := func() ([]float32, []float32) { return tr.Grads(), nil }
	if err := l.run(ctx, grads, step, eval); err != nil {
		return nil, err
	}
	return &Result{Step: l.step, Loss: l.lastLoss, Metrics: last}, nil
}
