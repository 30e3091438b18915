package posttrain

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/train"
)

// RewardConfig configures reward-model training.
type RewardConfig struct {
	Common
	Stage string `json:"stage"`
	Data  string `json:"data"`          // preferences (pairs and rankings)
	Val   string `json:"val,omitempty"` // held-out preferences
}

// RewardModel is a transformer with a scalar head on the final hidden
// state of the last token.
type RewardModel struct {
	tr    model.GradTrainer
	head  []float32
	enc   *Encoder
	B, T  int
	dim   int
	tok   []int32
	tgt   []int32
	lasts []int
}

func newRewardModel(tr model.GradTrainer, head []float32, enc *Encoder, B, T, dim int) *RewardModel {
	return &RewardModel{tr: tr, head: head, enc: enc, B: B, T: T, dim: dim,
		tok: make([]int32, B*T), tgt: make([]int32, B*T), lasts: make([]int, B)}
}

// forward scores up to B sequences and returns their rewards; Hidden stays
// valid for a backward.
func (rm *RewardModel) forward(ss []seq) []float64 {
	T, d := rm.T, rm.dim
	fillSeqs(rm.tok, rm.tgt, ss, T, false)
	rm.tr.Forward(rm.tok, rm.tgt, len(ss), T)
	h := rm.tr.Hidden()
	r := make([]float64, len(ss))
	for b, s := range ss {
		last := b*T + len(s.ids) - 1
		rm.lasts[b] = last
		var v float64
		for i, w := range rm.head {
			v += float64(w) * float64(h[last*d+i])
		}
		r[b] = v
	}
	return r
}

// Score returns the reward of a reply to a prompt.
func (rm *RewardModel) Score(prompt, reply string) (float64, error) {
	s, err := encodeReply(rm.enc, prompt, reply, rm.T)
	if err != nil {
		return 0, err
	}
	return rm.forward([]seq{s})[0], nil
}

// LoadRewardModel loads a reward model from a run folder (model.gguf and
// head.json) for a model of the common's spec.
func LoadRewardModel(dir string, c *Common, T int) (*RewardModel, error) {
	p, f, err := loadModel(filepath.Join(dir, train.ModelFile), c.Spec)
	if err != nil {
		return nil, fmt.Errorf("reward model: %w", err)
	}
	if f != nil {
		f.Close()
	}
	head, err := LoadHead(filepath.Join(dir, HeadFile), c.Spec.Dim)
	if err != nil {
		return nil, err
	}
	e, err := c.encoder()
	if err != nil {
		return nil, err
	}
	tr, _, err := newTrainer(c.Factory, p, 2, T)
	if err != nil {
		return nil, err
	}
	return newRewardModel(tr, head, e, 2, T, c.Spec.Dim), nil
}

// encodePairs encodes each pair as its chosen and rejected sequences.
func encodePairs(e *Encoder, ps []Pair, T int) ([][2]seq, error) {
	out := make([][2]seq, len(ps))
	for i, p := range ps {
		c, err := encodeReply(e, p.Prompt, p.Chosen, T)
		if err != nil {
			return nil, fmt.Errorf("pair %d: %w", i+1, err)
		}
		r, err := encodeReply(e, p.Prompt, p.Rejected, T)
		if err != nil {
			return nil, fmt.Errorf("pair %d: %w", i+1, err)
		}
		out[i] = [2]seq{c, r}
	}
	return out, nil
}

// pairAccuracy is the share of pairs the reward model ranks right, and
// their mean Bradley–Terry loss.
func (rm *RewardModel) pairAccuracy(pairs [][2]seq) (acc, loss float64) {
	P := rm.B / 2
	right := 0
	for i := 0; i < len(pairs); i += P {
		n := min(P, len(pairs)-i)
		ss := make([]seq, 0, 2*n)
		for _, pr := range pairs[i : i+n] {
			ss = append(ss, pr[0], pr[1])
		}
		r := rm.forward(ss)
		for k := range n {
			if r[2*k] > r[2*k+1] {
				right++
			}
			l, _, _ := BradleyTerry(r[2*k], r[2*k+1])
			loss += l
		}
	}
	return float64(right) / float64(len(pairs)), loss / float64(len(pairs))
}

// TrainReward trains a reward model on preference pairs with the
// Bradley–Terry loss. Batch is in pairs.
func TrainReward(ctx context.Context, cfg RewardConfig) (*Result, error) {
	cfg.Stage = "reward"
	if err := cfg.check(); err != nil {
		return nil, err
	}
	e, err := cfg.encoder()
	if err != nil {
		return nil, err
	}
	prefs, err := ReadPreferences(cfg.Data)
	if err != nil {
		return nil, err
	}
	P, T, d := cfg.Batch, cfg.Seq, cfg.Spec.Dim
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
	p, err := cfg.params()
	if err != nil {
		return nil, err
	}
	cfg.Data, _ = filepath.Abs(cfg.Data)
	if cfg.Val != "" { // resumed from another folder, a relative path would not be found
		cfg.Val, _ = filepath.Abs(cfg.Val)
	}
	head := make([]float32, d)
	headGrad := make([]float32, d)
	l := cfg.loop(cfg, e)
	l.Head = head
	if err := l.start(p); err != nil {
		return nil, err
	}
	tr, _, err := newTrainer(cfg.Factory, p, 2*P, T)
	if err != nil {
		return nil, err
	}
	rm := newRewardModel(tr, head, e, 2*P, T, d)
	dh := make([]float32, 2*P*T*d)
	step := func(s int) (stepResult, error) {
		tr.ZeroGrads()
		clear(headGrad)
		idx := order(cfg.Hyper.Seed, len(pairs), P, s)
		ss := make([]seq, 0, 2*P)
		ntok := 0
		for _, i := range idx {
			ss = append(ss, pairs[i][0], pairs[i][1])
			ntok += len(pairs[i][0].ids) + len(pairs[i][1].ids)
		}
		r := rm.forward(ss)
		h := tr.Hidden()
		clear(dh)
		var loss float64
		right := 0
		for k := range P {
			lk, dc, dr := BradleyTerry(r[2*k], r[2*k+1])
			loss += lk
			if r[2*k] > r[2*k+1] {
				right++
			}
			for j, g := range [2]float64{dc, dr} {
				last := rm.lasts[2*k+j]
				g /= float64(P)
				for i := range d {
					dh[last*d+i] += float32(g) * head[i]
					headGrad[i] += float32(g) * h[last*d+i]
				}
			}
		}
		tr.BackwardGrad(nil, dh)
		return stepResult{Loss: loss / float64(P), Tokens: ntok, Extra: map[string]float64{"acc": float64(right) / float64(P)}}, nil
	}
	var last map[string]float64
	eval := func() (map[string]float64, error) {
		if len(val) == 0 {
			return nil, nil
		}
		acc, vl := rm.pairAccuracy(val)
		last = map[string]float64{"val_acc": acc, "val_loss": vl}
		return last, nil
	}
	grads := func() ([]float32, []float32) { return tr.Grads(), headGrad }
	if err := l.run(ctx, grads, step, eval); err != nil {
		return nil, err
	}
	return &Result{Step: l.step, Loss: l.lastLoss, Metrics: last}, nil
}
