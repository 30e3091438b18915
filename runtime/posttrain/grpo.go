package posttrain

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"

	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/posttrain/tasks"
)

// RewardFunc scores a completion to a problem.
type RewardFunc func(p tasks.Problem, completion string) (float64, error)

// VerifiableReward is tasks.Reward: exact match of the answer after
// "Answer:", plus a bonus for the format.
func VerifiableReward(p tasks.Problem, completion string) (float64, error) {
	return tasks.Reward(completion, p.Answer), nil
}

// ModelReward scores completions with a reward model.
func ModelReward(rm *RewardModel) RewardFunc {
	return func(p tasks.Problem, completion string) (float64, error) {
		return rm.Score(p.Prompt, completion)
	}
}

// GRPOConfig configures group relative policy optimisation.
type GRPOConfig struct {
	Common
	Stage    string  `json:"stage"`
	Problems string  `json:"problems"`      // tasks.Problem JSON lines
	Val      string  `json:"val,omitempty"` // held-out problems
	G        int     `json:"g"`             // completions per prompt
	Eps      float64 `json:"clip_eps"`      // PPO clip range
	Beta     float64 `json:"beta"`          // KL coefficient
	Temp     float64 `json:"temperature"`
	MaxNew   int     `json:"max_new"` // completion length bound
	Updates  int     `json:"updates"` // optimizer updates per batch of samples
	// RewardModel is the reward model run folder that scores completions,
	// kept so that a resumed run scores as it did (empty: the verifiable
	// reward); the command loads it into Reward.
	RewardModel string `json:"reward_model,omitempty"`
	// Reward scores completions (default VerifiableReward).
	Reward RewardFunc `json:"-"`
}

func (c *GRPOConfig) checkGRPO() error {
	n := c.names()
	switch {
	case c.G < 2:
		return fmt.Errorf("%s: a group needs at least 2 completions, got %d", n.Name("g"), c.G)
	// Each test is written so that NaN fails it.
	case !(c.Eps > 0 && c.Eps < 1):
		return fmt.Errorf("%s: must be in (0, 1), got %g", n.Name("clip-eps"), c.Eps)
	case !(c.Beta >= 0) || math.IsInf(c.Beta, 0):
		return fmt.Errorf("%s: must be a number ≥ 0, got %g", n.Name("beta"), c.Beta)
	case !(c.Temp > 0) || math.IsInf(c.Temp, 0):
		return fmt.Errorf("%s: must be a number > 0 to sample a group, got %g", n.Name("temperature"), c.Temp)
	case c.MaxNew < 1:
		return fmt.Errorf("%s: must be ≥ 1, got %d", n.Name("max-new"), c.MaxNew)
	case c.MaxNew >= c.Seq:
		// Prompt and completion are one sequence of at most --seq tokens.
		return fmt.Errorf("%s: a completion and its prompt must fit %s %d, got %d", n.Name("max-new"), n.Name("seq"), c.Seq, c.MaxNew)
	case c.Updates < 1:
		return fmt.Errorf("%s: must be ≥ 1, got %d", n.Name("updates"), c.Updates)
	}
	return nil
}

// EvalProblems answers each problem greedily and returns the share answered
// exactly and the share in the reply format.
func EvalProblems(m model.Model, e *Encoder, ps []tasks.Problem, maxNew int) (acc, format float64, err error) {
	return evalProblems(context.Background(), m, e, ps, maxNew, nil)
}

func evalProblems(ctx context.Context, m model.Model, e *Encoder, ps []tasks.Problem, maxNew int, show func(p tasks.Problem, reply string)) (acc, format float64, err error) {
	right, formed := 0, 0
	for i, p := range ps {
		if err := ctx.Err(); err != nil {
			return 0, 0, fmt.Errorf("interrupted after %d of %d problems: %w", i, len(ps), err)
		}
		prompt, err := e.Prompt(p.Prompt)
		if err != nil {
			return 0, 0, err
		}
		out := sampleReply(m, prompt, maxNew, 0, e.Tok.EOS(), nil)
		text := decodeReply(e, out)
		if show != nil {
			show(p, text)
		}
		if v, err := tasks.ParseAnswer(text); err == nil && v == p.Answer {
			right++
		}
		if tasks.WellFormed(text) {
			formed++
		}
	}
	return float64(right) / float64(len(ps)), float64(formed) / float64(len(ps)), nil
}

// GRPO trains the policy on verifiable problems: for each prompt it samples
// G completions, scores them, normalises the rewards within the group into
// advantages, and maximises the clipped ratio objective minus β times the
// k3 KL estimate to the frozen starting model, Updates times per batch.
func GRPO(ctx context.Context, cfg GRPOConfig) (*Result, error) {
	cfg.Stage = "grpo"
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := cfg.checkGRPO(); err != nil {
		return nil, err
	}
	if cfg.Reward == nil {
		cfg.Reward = VerifiableReward
	}
	e, err := cfg.encoder()
	if err != nil {
		return nil, err
	}
	probs, err := ReadProblems(cfg.Problems)
	if err != nil {
		return nil, err
	}
	var val []tasks.Problem
	if cfg.Val != "" {
		if val, err = ReadProblems(cfg.Val); err != nil {
			return nil, err
		}
	}
	ref, err := cfg.params()
	if err != nil {
		return nil, err
	}
	p := model.NewParams(cfg.Spec)
	copy(p.Data, ref.Data)
	cfg.Problems, _ = filepath.Abs(cfg.Problems)
	if cfg.Val != "" { // resumed from another folder, a relative path would not be found
		cfg.Val, _ = filepath.Abs(cfg.Val)
	}
	l := cfg.loop(cfg, e)
	if err := l.start(p); err != nil {
		return nil, err
	}
	P, G, T, V := cfg.Batch, cfg.G, cfg.Seq, cfg.Spec.Vocab
	B := P * G
	tr, _, err := newTrainer(cfg.Factory, p, B, T)
	if err != nil {
		return nil, err
	}
	refTr, _, err := newTrainer(cfg.Factory, ref, B, T)
	if err != nil {
		return nil, err
	}
	// Sampling runs the factory's (compiled) model, bound afresh to the
	// current weights before each step's sampling and each evaluation (a
	// factory may lay the weights out anew), or the generic model, which
	// reads the live weights.
	sampler, err := samplerFor(cfg.Factory, p)
	if err != nil {
		return nil, err
	}
	rebind := func() error {
		if cfg.Factory == nil {
			return nil
		}
		sampler, err = samplerFor(cfg.Factory, p)
		return err
	}
	N := B * T
	tokens, targets, losses := make([]int32, N), make([]int32, N), make([]float64, N)
	oldLP, refLP := make([]float64, N), make([]float64, N)
	grads := func() ([]float32, []float32) { return tr.Grads(), nil }
	step := func(s int) (stepResult, error) {
		if err := rebind(); err != nil {
			return stepResult{}, beforeUpdate{err}
		}
		rng := rand.New(rand.NewPCG(cfg.Hyper.Seed, 0x6772706f+uint64(s))) // "grpo"
		idx := order(cfg.Hyper.Seed, len(probs), P, s)
		ss := make([]seq, 0, B)
		rewards := make([]float64, 0, B)
		right := 0
		ntok := 0
		for _, i := range idx {
			pr := probs[i]
			prompt, err := e.Prompt(pr.Prompt)
			if err != nil {
				return stepResult{}, fmt.Errorf("problem %q: %w", pr.Prompt, err)
			}
			if len(prompt) >= T {
				return stepResult{}, fmt.Errorf("problem %q: the prompt's %d tokens leave no room in --seq %d", pr.Prompt, len(prompt), T)
			}
			for k := range G {
				out := sampleReply(sampler, prompt, min(cfg.MaxNew, T-len(prompt)), cfg.Temp, e.Tok.EOS(), rng)
				text := decodeReply(e, out)
				r, err := cfg.Reward(pr, text)
				if err == nil && (math.IsNaN(r) || math.IsInf(r, 0)) {
					err = fmt.Errorf("reward is %v", r)
				}
				if err != nil {
					return stepResult{}, beforeUpdate{fmt.Errorf("reward of completion %d of %q: %w", k+1, pr.Prompt, err)}
				}
				if v, err := tasks.ParseAnswer(text); err == nil && v == pr.Answer {
					right++
				}
				rewards = append(rewards, r)
				sq := seq{ids: append(append([]int(nil), prompt...), out...)}
				sq.train = make([]bool, len(sq.ids))
				for j := len(prompt); j < len(sq.ids); j++ {
					sq.train[j] = true
				}
				ss = append(ss, sq)
				ntok += len(sq.ids)
			}
		}
		adv := GroupAdvantages(rewards, G)
		// Per-token log-probs of the sampling policy and the reference.
		seqLogProbs(tr, ss, T, tokens, targets, losses)
		for n := range N {
			oldLP[n] = -losses[n]
		}
		seqLogProbs(refTr, ss, T, tokens, targets, losses)
		for n := range N {
			refLP[n] = -losses[n]
		}
		olen := make([]float64, B)
		for n, t := range targets[:N] {
			if t >= 0 {
				olen[n/T]++
			}
		}
		var obj, kl, norm float64
		for u := range cfg.Updates {
			tr.ZeroGrads()
			seqLogProbs(tr, ss, T, tokens, targets, losses)
			obj, kl = 0, 0
			coef := make([]float64, N)
			for n, t := range targets[:N] {
				if t < 0 {
					continue
				}
				b := n / T
				o, d, k := GRPOToken(-losses[n], oldLP[n], refLP[n], adv[b], cfg.Eps, cfg.Beta)
				w := 1 / (olen[b] * float64(B))
				obj += o * w
				kl += k * w
				coef[n] = -d * w // the loss is −J
			}
			backwardTokenCoef(tr, targets, N, V, func(n int) float64 { return coef[n] })
			var err error
			if norm, err = l.apply(grads, l.lr); err != nil {
				return stepResult{}, fmt.Errorf("update %d: %w", u+1, err)
			}
		}
		var mean float64
		for _, r := range rewards {
			mean += r
		}
		return stepResult{Loss: -obj, Tokens: ntok, Applied: true, Norm: norm,
			Extra: map[string]float64{"reward": mean / float64(B), "kl": kl, "sample_acc": float64(right) / float64(B)}}, nil
	}
	var last map[string]float64
	eval := func() (map[string]float64, error) {
		if len(val) == 0 {
			return nil, nil
		}
		if err := rebind(); err != nil {
			return nil, err
		}
		acc, format, err := EvalProblems(sampler, e, val, cfg.MaxNew)
		if err != nil {
			return nil, err
		}
		last = map[string]float64{"val_acc": acc, "val_format": format}
		return last, nil
	}
	if err := l.run(ctx, grads, step, eval); err != nil {
		return nil, err
	}
	return &Result{Step: l.step, Loss: l.lastLoss, Metrics: last}, nil
}

// samplerFor binds p to the factory's model (nil: the generic model).
func samplerFor(factory model.Factory, p *model.Params) (model.Model, error) {
	if factory != nil {
		return factory(p)
	}
	return generic.New(p)
}
