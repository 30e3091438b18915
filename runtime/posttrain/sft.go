package posttrain

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/modelc/modelc/runtime/model"
)

// SFTConfig configures supervised fine-tuning.
type SFTConfig struct {
	Common
	Stage string `json:"stage"`
	Data  string `json:"data"`          // conversations (JSON lines)
	Val   string `json:"val,omitempty"` // held-out conversations
}

// SFTRows reads and packs a conversations file.
func SFTRows(path string, e *Encoder, T int) ([]Row, int, error) {
	cs, err := ReadConversations(path)
	if err != nil {
		return nil, 0, err
	}
	exs, err := e.EncodeAll(cs)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	rows, cut := Pack(exs, T, 0)
	return rows, cut, nil
}

// SFT fine-tunes on conversations with the loss on assistant tokens only.
func SFT(ctx context.Context, cfg SFTConfig) (*Result, error) {
	cfg.Stage = "sft"
	if err := cfg.check(); err != nil {
		return nil, err
	}
	e, err := cfg.encoder()
	if err != nil {
		return nil, err
	}
	B, T := cfg.Batch, cfg.Seq
	rows, cut, err := SFTRows(cfg.Data, e, T)
	if err != nil {
		return nil, err
	}
	if cut > 0 {
		fmt.Fprintf(cfg.logw(), "%d conversations longer than %d tokens were cut\n", cut, T+1)
	}
	if trained(rows) == 0 {
		return nil, fmt.Errorf("%s: no assistant token falls within --seq %d tokens of its conversation's start; raise --seq or shorten the prompts", cfg.Data, T)
	}
	var val []Row
	if cfg.Val != "" {
		if val, _, err = SFTRows(cfg.Val, e, T); err != nil {
			return nil, err
		}
	}
	p, err := cfg.params()
	if err != nil {
		return nil, err
	}
	data, _ := filepath.Abs(cfg.Data)
	cfg.Data = data
	if cfg.Val != "" { // resumed from another folder, a relative path would not be found
		cfg.Val, _ = filepath.Abs(cfg.Val)
	}
	l := cfg.loop(cfg, e)
	if err := l.start(p); err != nil {
		return nil, err
	}
	tr, _, err := newTrainer(cfg.Factory, p, B, T)
	if err != nil {
		return nil, err
	}
	tokens, targets := make([]int32, B*T), make([]int32, B*T)
	fill := func(rs []Row, idx []int) {
		for b, i := range idx {
			copy(tokens[b*T:], rs[i].Tokens)
			copy(targets[b*T:], rs[i].Targets)
		}
	}
	step := func(s int) (stepResult, error) {
		tr.ZeroGrads()
		fill(rows, order(cfg.Hyper.Seed, len(rows), B, s))
		loss := tr.Forward(tokens, targets, B, T)
		tr.Backward()
		return stepResult{Loss: float64(loss), Tokens: countTargets(targets)}, nil
	}
	var last map[string]float64
	eval := func() (map[string]float64, error) {
		if len(val) == 0 {
			return nil, nil
		}
		last = map[string]float64{"val_loss": evalRows(tr, val, B, T, tokens, targets)}
		return last, nil
	}
	grads := func() ([]float32, []float32) { return tr.Grads(), nil }
	if err := l.run(ctx, grads, step, eval); err != nil {
		return nil, err
	}
	return &Result{Step: l.step, Loss: l.lastLoss, Metrics: last}, nil
}

func (c *Common) logw() interface{ Write([]byte) (int, error) } {
	if c.Log == nil {
		return discard{}
	}
	return c.Log
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

func countTargets(t []int32) int {
	n := 0
	for _, v := range t {
		if v >= 0 {
			n++
		}
	}
	return n
}

// evalRows is the mean loss per target token over rows.
func evalRows(tr model.Trainer, rows []Row, B, T int, tokens, targets []int32) float64 {
	var sum float64
	var n int
	for i := 0; i < len(rows); i += B {
		nb := min(B, len(rows)-i)
		for b := range nb {
			copy(tokens[b*T:], rows[i+b].Tokens)
			copy(targets[b*T:], rows[i+b].Targets)
		}
		c := countTargets(targets[:nb*T])
		if c == 0 {
			continue
		}
		sum += float64(tr.Forward(tokens, targets, nb, T)) * float64(c)
		n += c
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// trained counts the positions of rows whose target is trained on.
func trained(rows []Row) int {
	n := 0
	for _, r := range rows {
		for _, t := range r.Targets {
			if t != model.IgnoreTarget {
				n++
			}
		}
	}
	return n
}
