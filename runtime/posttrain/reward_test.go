package posttrain

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/modelc/modelc/runtime/posttrain/tasks"
)

func numDeriv(f func(float64) float64, x float64) float64 {
	const h = 1e-5
	return (f(x+h) - f(x-h)) / (2 * h)
}

func TestBradleyTerry(t *testing.T) {
	// Hand case: rc − rr = 0 gives log 2 and derivatives ∓½.
	l, dc, dr := BradleyTerry(1.5, 1.5)
	if math.Abs(l-math.Ln2) > 1e-12 || dc != -0.5 || dr != 0.5 {
		t.Fatalf("BT(1.5,1.5) = %g, %g, %g", l, dc, dr)
	}
	// rc − rr = 2: −log σ(2) = log(1+e⁻²) = 0.126928…
	l, dc, _ = BradleyTerry(3, 1)
	if math.Abs(l-0.12692801104297263) > 1e-12 || math.Abs(dc+0.11920292202211755) > 1e-12 {
		t.Fatalf("BT(3,1) = %g, %g", l, dc)
	}
	for _, c := range [][2]float64{{0.3, -1.2}, {-4, 7}, {40, -40}} {
		_, dc, dr := BradleyTerry(c[0], c[1])
		nc := numDeriv(func(x float64) float64 { l, _, _ := BradleyTerry(x, c[1]); return l }, c[0])
		nr := numDeriv(func(x float64) float64 { l, _, _ := BradleyTerry(c[0], x); return l }, c[1])
		if math.Abs(dc-nc) > 1e-6 || math.Abs(dr-nr) > 1e-6 {
			t.Errorf("BT%v: derivatives %g %g, numeric %g %g", c, dc, dr, nc, nr)
		}
	}
	if l, _, _ := BradleyTerry(-800, 0); math.IsInf(l, 0) || math.Abs(l-800) > 1e-9 {
		t.Fatalf("BT(-800, 0) = %g", l)
	}
}

func prefData(t *testing.T, dir string, n, nval int) (string, string) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tr, va []tasks.Pair
	for _, p := range problems(t, n, false) {
		tr = append(tr, tasks.Preference(p, rng))
	}
	for _, p := range problems(t, nval, true) {
		va = append(va, tasks.Preference(p, rng))
	}
	return writeJSONL(t, dir, "prefs.jsonl", tr), writeJSONL(t, dir, "prefs_val.jsonl", va)
}

// TestRewardTrain: held-out accuracy rises well above chance, the head is
// saved, and a loaded reward model scores as the trained one did.
func TestRewardTrain(t *testing.T) {
	dir := t.TempDir()
	data, val := prefData(t, dir, 60, 20)
	cfg := RewardConfig{Common: Common{Spec: tinySpec(), Tok: tok512(t), Hyper: hyper(60), Batch: 4, Seq: 128}, Data: data, Val: val}
	cfg.Hyper.LR = 1e-2
	cfg.Out = filepath.Join(dir, "rm")
	res, err := TrainReward(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("held-out accuracy %.2f, loss %.3f", res.Metrics["val_acc"], res.Metrics["val_loss"])
	if res.Metrics["val_acc"] < 0.75 {
		t.Fatalf("held-out accuracy %.2f", res.Metrics["val_acc"])
	}
	rm, err := LoadRewardModel(cfg.Out, &cfg.Common, 128)
	if err != nil {
		t.Fatal(err)
	}
	p := problems(t, 1, true)[0]
	good, _ := rm.Score(p.Prompt, p.Solution())
	bad, _ := rm.Score(p.Prompt, "Once upon a time there was a number, and it was happy, and then it met another number.")
	if !(good > bad) {
		t.Fatalf("score of the solution %g, of rambling %g", good, bad)
	}
}
