package posttrain

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/posttrain/tasks"
	"github.com/modelc/modelc/runtime/train"
)

func TestGroupAdvantages(t *testing.T) {
	a := GroupAdvantages([]float64{1, 0, 0.2, 0.2, 3, 1, 2}, 2)
	// Group [1, 0]: mean ½, std ½; group [0.2, 0.2]: all equal; the odd
	// last reward is no whole group.
	w, w2 := 0.5/(0.5+1e-6), 1/(1+1e-6) // group [3, 1]: mean 2, std 1
	want := []float64{w, -w, 0, 0, w2, -w2, 0}
	for i := range want {
		if math.Abs(a[i]-want[i]) > 1e-12 {
			t.Fatalf("advantages %v, want %v", a, want)
		}
	}
	// Group of 4: [1, 0, 0, 0]: mean ¼, std √3/4.
	a = GroupAdvantages([]float64{1, 0, 0, 0}, 4)
	std := math.Sqrt(3) / 4
	if math.Abs(a[0]-0.75/(std+1e-6)) > 1e-12 || math.Abs(a[1]+0.25/(std+1e-6)) > 1e-12 {
		t.Fatalf("advantages %v", a)
	}
}

func TestGRPOTokenHandCases(t *testing.T) {
	l15 := math.Log(1.5)
	l05 := math.Log(0.5)
	for _, c := range []struct {
		name               string
		logp, old, adv     float64
		wantObj, wantDeriv float64
	}{
		{"ratio 1", -2, -2, 0.7, 0.7, 0.7},
		{"ratio 1.5, A>0: clipped at 1.2, no gradient", -2 + l15, -2, 1, 1.2, 0},
		{"ratio 1.5, A<0: unclipped", -2 + l15, -2, -1, -1.5, -1.5},
		{"ratio 0.5, A>0: unclipped", -2 + l05, -2, 1, 0.5, 0.5},
		{"ratio 0.5, A<0: clipped at 0.8", -2 + l05, -2, -1, -0.8, 0},
	} {
		// β 0: the ratio term alone.
		obj, d, _ := GRPOToken(c.logp, c.old, c.logp, c.adv, 0.2, 0)
		if math.Abs(obj-c.wantObj) > 1e-12 || math.Abs(d-c.wantDeriv) > 1e-12 {
			t.Errorf("%s: objective %g, derivative %g; want %g, %g", c.name, obj, d, c.wantObj, c.wantDeriv)
		}
	}
	// k3: logp −1, reference −2: exp(−1) − (−1) − 1 = e⁻¹.
	obj, d, kl := GRPOToken(-1, -1, -2, 0, 0.2, 0.5)
	if math.Abs(kl-math.Exp(-1)) > 1e-12 || math.Abs(obj+0.5*math.Exp(-1)) > 1e-12 {
		t.Fatalf("kl %g, objective %g", kl, obj)
	}
	num := numDeriv(func(x float64) float64 { o, _, _ := GRPOToken(x, -1, -2, 0, 0.2, 0.5); return o }, -1)
	if math.Abs(d-num) > 1e-6 {
		t.Fatalf("KL derivative %g, numeric %g", d, num)
	}
	if _, _, kl := GRPOToken(-3, -3, -3, 1, 0.2, 1); kl != 0 {
		t.Fatalf("KL to itself %g", kl)
	}
}

// TestGRPOGradient: the token coefficients GRPO backpropagates give the
// gradient of the clipped objective with the KL term.
func TestGRPOGradient(t *testing.T) {
	p, s := microModel(t, 2)
	m, _ := generic.New(p)
	B, T, V := 4, 8, s.Vocab
	tri, _ := m.(model.Trainable).NewTrainer(B, T)
	tr := tri.(model.GradTrainer)
	rng := rand.New(rand.NewPCG(5, 5))
	ss := microSeqs(rng, B, T, V)
	N := B * T
	tokens, targets, losses := make([]int32, N), make([]int32, N), make([]float64, N)
	seqLogProbs(tr, ss, T, tokens, targets, losses)
	old, ref := make([]float64, N), make([]float64, N)
	for n := range N {
		// Old log-probs off the current ones so that every clipping branch
		// occurs, each ratio far from the clip edges (where the objective
		// has a kink finite differences would straddle); the reference
		// elsewhere.
		old[n] = -losses[n] + []float64{-0.5, -0.05, 0.05, 0.5}[rng.IntN(4)]
		ref[n] = -losses[n] + 0.5*rng.NormFloat64()
	}
	adv := []float64{1.2, -0.7, 0.3, -1}
	objective := func() (float64, []float64) {
		seqLogProbs(tr, ss, T, tokens, targets, losses)
		coef := make([]float64, N)
		var j float64
		for n, tg := range targets[:N] {
			if tg < 0 {
				continue
			}
			o, d, _ := GRPOToken(-losses[n], old[n], ref[n], adv[n/T], 0.2, 0.3)
			j += o / float64(B)
			coef[n] = -d / float64(B)
		}
		return -j, coef
	}
	tr.ZeroGrads()
	_, coef := objective()
	backwardTokenCoef(tr, targets, N, V, func(n int) float64 { return coef[n] })
	grads := append([]float32(nil), tr.Grads()...)
	checkGrad(t, p, grads, func() float64 { l, _ := objective(); return l })
}

func grpoConfig(t *testing.T, dir string) GRPOConfig {
	var ps []tasks.Problem
	for _, p := range problems(t, 20, false) {
		ps = append(ps, p)
	}
	path := writeJSONL(t, dir, "problems.jsonl", ps)
	val := writeJSONL(t, dir, "val.jsonl", problems(t, 4, true))
	cfg := GRPOConfig{Common: Common{Spec: tinySpec(), Tok: tok512(t), Hyper: hyper(4), Batch: 2, Seq: 128},
		Problems: path, Val: val, G: 4, Eps: 0.2, Beta: 0.04, Temp: 1, MaxNew: 12, Updates: 2}
	return cfg
}

// TestGRPORunResume: a short run reports its figures, and stopping and
// resuming gives the uninterrupted run's weights (sampling is drawn from
// the seed and the step).
func TestGRPORunResume(t *testing.T) {
	dir := t.TempDir()
	cfg := grpoConfig(t, dir)
	// A reward that varies within groups, so that there is a gradient.
	cfg.Reward = func(p tasks.Problem, c string) (float64, error) { return float64(len(c) % 3), nil }
	cfg.Out = filepath.Join(dir, "a")
	res, err := GRPO(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := readMetrics(filepath.Join(cfg.Out, train.MetricsFile), 100)
	if len(ms) != 4 || ms[3].GradNorm == 0 || math.IsNaN(ms[3].Extra["kl"]) || res.Metrics == nil {
		t.Fatalf("metrics %+v, result %+v", ms, res)
	}
	b := cfg
	b.Out = filepath.Join(dir, "b")
	b.StopAfter = 2
	if _, err := GRPO(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	b.StopAfter, b.Resume = 0, true
	if _, err := GRPO(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	wa, _ := os.ReadFile(filepath.Join(cfg.Out, train.ModelFile))
	wb, _ := os.ReadFile(filepath.Join(b.Out, train.ModelFile))
	if len(wa) == 0 || string(wa) != string(wb) {
		t.Fatal("the resumed GRPO run differs from the uninterrupted one")
	}
}

func TestGRPOErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := grpoConfig(t, dir)
	cfg.Out = filepath.Join(dir, "x")
	boom := errors.New("judge offline")
	cfg.Reward = func(tasks.Problem, string) (float64, error) { return 0, boom }
	_, err := GRPO(context.Background(), cfg)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "step 1: reward of completion 1") {
		t.Fatalf("failing reward: %v", err)
	}
	// A reward that fails at step 3: the two steps done are saved, and the
	// run resumes from them once the reward works.
	calls := 0
	cfg.Out = filepath.Join(dir, "w")
	cfg.Reward = func(tasks.Problem, string) (float64, error) {
		calls++
		if calls > 2*cfg.Batch*cfg.G {
			return 0, boom
		}
		return float64(calls % 2), nil
	}
	_, err = GRPO(context.Background(), cfg)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "step 3:") || !strings.Contains(err.Error(), "the 2 steps done are saved") {
		t.Fatalf("reward failing at step 3: %v", err)
	}
	if st, err := train.LoadState(filepath.Join(cfg.Out, train.StateFile)); err != nil || st.Step != 2 {
		t.Fatalf("saved state: %+v, %v", st, err)
	}
	cfg.Out = filepath.Join(dir, "y")
	cfg.Reward = func(tasks.Problem, string) (float64, error) { return math.NaN(), nil }
	if _, err := GRPO(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "reward is NaN") {
		t.Fatalf("NaN reward: %v", err)
	}
	for _, mod := range []func(*GRPOConfig){
		func(c *GRPOConfig) { c.G = 1 },
		func(c *GRPOConfig) { c.Eps = 0 },
		func(c *GRPOConfig) { c.Temp = 0 },
		func(c *GRPOConfig) { c.MaxNew = 0 },
	} {
		c := grpoConfig(t, dir)
		c.Out = filepath.Join(dir, "z")
		mod(&c)
		if _, err := GRPO(context.Background(), c); err == nil {
			t.Errorf("bad flags accepted: %+v", c)
		}
	}
	// A completion longer than the sequence is refused, not cut silently.
	c := grpoConfig(t, dir)
	c.Out, c.MaxNew = filepath.Join(dir, "z"), c.Seq
	if _, err := GRPO(context.Background(), c); err == nil || !strings.Contains(err.Error(), "a completion and its prompt must fit --seq") {
		t.Errorf("--max-new = --seq: %v", err)
	}
}

// countingModel is a model a test factory hands out, counting the binds.
type countingModel struct{ model.Model }

// TestGRPOFactorySampler: with a factory, sampling and evaluation run the
// factory's model, bound afresh before every step, and give the same run
// as the generic model.
func TestGRPOFactorySampler(t *testing.T) {
	dir := t.TempDir()
	cfg := grpoConfig(t, dir)
	cfg.Reward = func(p tasks.Problem, c string) (float64, error) { return float64(len(c) % 3), nil }
	cfg.Out = filepath.Join(dir, "generic")
	if _, err := GRPO(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	binds := 0
	f := cfg
	f.Out = filepath.Join(dir, "factory")
	f.Factory = func(p *model.Params) (model.Model, error) {
		m, err := generic.New(p)
		binds++
		return countingModel{m}, err
	}
	if _, err := GRPO(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	// 2 trainers (which fall back to the generic model's: countingModel
	// is not Trainable), the first sampler, one per step, one for the
	// final evaluation.
	if want := 2 + 1 + cfg.Hyper.Steps + 1; binds != want {
		t.Fatalf("factory bound %d times, want %d", binds, want)
	}
	wa, _ := os.ReadFile(filepath.Join(cfg.Out, train.ModelFile))
	wb, _ := os.ReadFile(filepath.Join(f.Out, train.ModelFile))
	if len(wa) == 0 || string(wa) != string(wb) {
		t.Fatal("the run sampling with the factory's model differs from the generic one")
	}
}
