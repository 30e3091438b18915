package posttrain

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelc/modelc/runtime/checkpoint"
)

func TestDistillRow(t *testing.T) {
	// Student uniform over two tokens, teacher (¾, ¼), τ 1, soft only:
	// KL = ¾ ln 1.5 + ¼ ln 0.5.
	dl := make([]float32, 2)
	loss, kl := DistillRow(dl, []float32{0.5, 0.5}, []float32{0.75, 0.25}, 0, 1, 1)
	want := 0.75*math.Log(1.5) + 0.25*math.Log(0.5)
	if math.Abs(kl-want) > 1e-9 || math.Abs(loss-want) > 1e-9 {
		t.Fatalf("KL %g, loss %g, want %g", kl, loss, want)
	}
	// Its logit gradient is qs − qt = (−¼, ¼).
	if math.Abs(float64(dl[0])+0.25) > 1e-7 || math.Abs(float64(dl[1])-0.25) > 1e-7 {
		t.Fatalf("gradient %v", dl)
	}
	// Against finite differences in the logits, for τ 2 and a mixed loss.
	rng := rand.New(rand.NewPCG(1, 1))
	V := 7
	zs, zt := make([]float64, V), make([]float64, V)
	for i := range zs {
		zs[i], zt[i] = rng.NormFloat64(), 2*rng.NormFloat64()
	}
	softmax := func(z []float64) []float32 {
		p := make([]float32, len(z))
		var s float64
		for _, v := range z {
			s += math.Exp(v)
		}
		for i, v := range z {
			p[i] = float32(math.Exp(v) / s)
		}
		return p
	}
	pt := softmax(zt)
	f := func() float64 {
		l, _ := DistillRow(make([]float32, V), softmax(zs), pt, 3, 2, 0.6)
		return l
	}
	g := make([]float32, V)
	DistillRow(g, softmax(zs), pt, 3, 2, 0.6)
	for i := range zs {
		o := zs[i]
		zs[i] = o + 1e-3
		up := f()
		zs[i] = o - 1e-3
		dn := f()
		zs[i] = o
		if num := (up - dn) / 2e-3; math.Abs(num-float64(g[i])) > 2e-4 {
			t.Errorf("logit %d: gradient %g, numeric %g", i, g[i], num)
		}
	}
	// A student equal to the teacher has no soft loss.
	if _, kl := DistillRow(g, pt, pt, 0, 3, 1); math.Abs(kl) > 1e-9 {
		t.Fatalf("KL to itself %g", kl)
	}
}

func corpus(t *testing.T, dir string, n int) string {
	b, err := os.ReadFile(filepath.Join(dataDir(t), "text", "tinyshakespeare.txt"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "corpus.txt")
	os.WriteFile(path, b[:n], 0o644)
	return path
}

// TestDistill: the student learns from stories260K (lower held-out loss
// than at the start), and a teacher of another vocabulary is refused.
func TestDistill(t *testing.T) {
	dir := t.TempDir()
	data := corpus(t, dir, 20000)
	teacher := filepath.Join(dataDir(t), "models", "stories260K.bin")
	cfg := DistillConfig{Common: Common{Spec: tinySpec(), Tok: tok512(t), Hyper: hyper(30), Batch: 4, Seq: 64},
		Teacher: teacher, Data: data, Alpha: 0.5, Tau: 2}
	cfg.Hyper.EvalEvery = 5
	cfg.Hyper.LR = 1e-2
	cfg.Out = filepath.Join(dir, "d")
	res, err := Distill(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := readMetrics(filepath.Join(cfg.Out, "metrics.jsonl"), 100)
	first, last := *ms[4].ValLoss, res.Metrics["val_loss"]
	t.Logf("held-out loss %.3f after 5 steps, %.3f after 30", first, last)
	if !(last < first-0.3) {
		t.Fatalf("held-out loss %.3f after 5 steps, %.3f after 30", first, last)
	}

	p, _ := microModel(t, 1)
	other := filepath.Join(dir, "other.gguf")
	if err := checkpoint.SaveGGUF(other, p, nil, false); err != nil {
		t.Fatal(err)
	}
	cfg.Teacher, cfg.Out = other, filepath.Join(dir, "e")
	if _, err := Distill(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "vocabulary has 13 tokens, the student's has 512") {
		t.Fatalf("vocabulary mismatch: %v", err)
	}
}
