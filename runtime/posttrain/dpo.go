package posttrain

import (
	"context"
	"fmt"
	"math"
	"path/filepath"

	"github.com/modelc/modelc/runtime/model"
)

// DPOConfig configures direct preference optimisation.
type DPOConfig struct {
	Common
	Stage string  `json:"stage"`
	Data  string  `json:"data"`
	Val   string  `json:"val,omitempty"`
	Beta  float64 `json:"beta"`
}

// refLogProbs is the frozen reference's summed reply log-prob of every
// pair's chosen and rejected reply.
func refLogProbs(tr model.GradTrainer, pairs [][2]seq, P, T int) [][2]float64 {
	tokens, targets, losses := make([]int32, 2*P*T), make([]int32, 2*P*T), make([]float64, 2*P*T)
	out := make([][2]float64, len(pairs))
	for i := 0; i < len(pairs); i += P {
		n := min(P, len(pairs)-i)
		ss := make([]seq, 0, 2*n)
		for _, pr := range pairs[i : i+n] {
			ss = append(ss, pr[0], pr[1])
		}
		lp := seqLogProbs(tr, ss, T, tokens, targets, losses)
		for k := range n {
			out[i+k] = [2]float64{lp[2*k], lp[2*k+1]}
		}
	}
	return out
}

// DPOTrain optimises the policy on preference pairs against the frozen
// starting model. Batch is in pairs.
func DPOTrain(ctx context.Context, cfg DPOConfig) (*Result, error) {
	cfg.Stage = "dpo"
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if !(cfg.Beta > 0) || math.IsInf(cfg.Beta, 0) {
		return nil, fmt.Errorf("%s: must be > 0, got %g", cfg.names().Name("beta"), cfg.Beta)
	}
	e, err := cfg.encoder()
	if err != nil {
		return nil, err
	}
	prefs, err := ReadPreferences(cfg.Data)
	if err != nil {
		return nil, err
	}
	P, T, V := cfg.Batch, cfg.Seq, cfg.Spec.Vocab
	pairs, err := encodePairs(e, prefs, T)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Data, err)
	}
	var val [][2]seq
	if cfg.Val != "" {
		vp, err := ReadPreferences(cfg.Val)
		if err != nil {
			return nil, err
		}
		if val, err = encodePairs(e, vp, T); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Val, err)
		}
	}
	ref, err := cfg.params()
	if err != nil {
		return nil, err
	}
	p := model.NewParams(cfg.Spec)
	copy(p.Data, ref.Data)
	cfg.Data, _ = filepath.Abs(cfg.Data)
	if cfg.Val != "" { // resumed from another folder, a relative path would not be found
		cfg.Val, _ = filepath.Abs(cfg.Val)
	}
	// The reference's log-probs, computed when a pair is first used and
	// kept: the reference never changes (on resume too, it is the starting
	// model, not the checkpoint).
	refTr, _, err := newTrainer(cfg.Factory, ref, 2*P, T)
	if err != nil {
		return nil, err
	}
	refLP := make([][2]float64, len(pairs))
	known := make([]bool, len(pairs))
	var refVal [][2]float64
	if len(val) > 0 {
		refVal = refLogProbs(refTr, val, P, T)
	}
	l := cfg.loop(cfg, e)
	if err := l.start(p); err != nil {
		return nil, err
	}
	tr, _, err := newTrainer(cfg.Factory, p, 2*P, T)
	if err != nil {
		return nil, err
	}
	N := 2 * P * T
	tokens, targets, losses := make([]int32, N), make([]int32, N), make([]float64, N)
	step := func(s int) (stepResult, error) {
		tr.ZeroGrads()
		idx := order(cfg.Hyper.Seed, len(pairs), P, s)
		ss := make([]seq, 0, 2*P)
		ntok := 0
		for _, i := range idx {
			ss = append(ss, pairs[i][0], pairs[i][1])
			ntok += len(pairs[i][0].ids) + len(pairs[i][1].ids)
		}
		var missing [][2]seq
		var at []int
		for _, i := range idx {
			if !known[i] {
				missing, at = append(missing, pairs[i]), append(at, i)
				known[i] = true
			}
		}
		if len(missing) > 0 {
			for k, v := range refLogProbs(refTr, missing, P, T) {
				refLP[at[k]] = v
			}
		}
		lp := seqLogProbs(tr, ss, T, tokens, targets, losses)
		coef := make([]float64, 2*P)
		var loss, margin float64
		right := 0
		for k, i := range idx {
			lk, dc, dr := DPO(cfg.Beta, lp[2*k], lp[2*k+1], refLP[i][0], refLP[i][1])
			loss += lk
			m := (lp[2*k] - refLP[i][0]) - (lp[2*k+1] - refLP[i][1])
			margin += m
			if m > 0 {
				right++
			}
			coef[2*k], coef[2*k+1] = dc/float64(P), dr/float64(P)
		}
		// d loss / d log p(token) = d loss / d (sequence log-prob).
		backwardTokenCoef(tr, targets, N, V, func(n int) float64 { return coef[n/T] })
		return stepResult{Loss: loss / float64(P), Tokens: ntok,
			Extra: map[string]float64{"margin": margin / float64(P), "pref_acc": float64(right) / float64(P)}}, nil
	}
	var last map[string]float64
	eval := func() (map[string]float64, error) {
		if len(val) == 0 {
			return nil, nil
		}
		lp := refLogProbs(tr, val, P, T)
		right := 0
		var loss float64
		for i := range val {
			lk, _, _ := DPO(cfg.Beta, lp[i][0], lp[i][1], refVal[i][0], refVal[i][1])
			loss += lk
			if (lp[i][0]-refVal[i][0])-(lp[i][1]-refVal[i][1]) > 0 {
				right++
			}
		}
		last = map[string]float64{"val_loss": loss / float64(len(val)), "val_pref_acc": float64(right) / float64(len(val))}
		return last, nil
	}
	grads := func() ([]float32, []float32) { return tr.Grads(), nil }
	if err := l.run(ctx, grads, step, eval); err != nil {
		return nil, err
	}
	return &Result{Step: l.step, Loss: l.lastLoss, Metrics: last}, nil
}
