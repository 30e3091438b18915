package e2e

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/modelc/modelc/generated/llama15m"
	"github.com/modelc/modelc/generated/stories260k"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/cpu"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/train"
)

// trainBatch is B×T random tokens whose targets are the next token, with
// every fifth target ignored (masked positions and padding).
func trainBatch(B, T, vocab int) (tokens, targets []int32) {
	r := rand.New(rand.NewPCG(7, 11))
	tokens, targets = make([]int32, B*T), make([]int32, B*T)
	for i := range tokens {
		tokens[i] = int32(r.IntN(vocab))
	}
	for i := range targets {
		targets[i] = int32(r.IntN(vocab))
		if i%5 == 3 {
			targets[i] = model.IgnoreTarget
		}
	}
	return tokens, targets
}

// step runs one forward and backward pass and returns the loss and a copy of
// the gradients.
func step(t *testing.T, m model.Model, B, T int, tokens, targets []int32) (float32, []float32) {
	t.Helper()
	tm, ok := m.(model.Trainable)
	if !ok {
		t.Fatalf("%T does not implement model.Trainable", m)
	}
	tr, err := tm.NewTrainer(B, T)
	if err != nil {
		t.Fatal(err)
	}
	loss := tr.Forward(tokens, targets, B, T)
	tr.Backward()
	return loss, slices.Clone(tr.Grads())
}

// The compiled trainer (compiled forward and backward matrix kernels inside
// the generic trainer) gives the generic trainer's loss and gradients on
// every kernel path. B·T = 300 crosses the trainer's token chunks (128 and
// 256) with a remainder.
func TestCompiledTrainerMatchesGeneric(t *testing.T) {
	p, _, err := checkpoint.Load(filepath.Join(sharedData(t), "models", "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	cm, err := stories260k.New(p)
	if err != nil {
		t.Fatal(err)
	}
	gm, err := generic.New(p)
	if err != nil {
		t.Fatal(err)
	}
	const B, T = 3, 100
	tokens, targets := trainBatch(B, T, p.Spec.Vocab)
	wantLoss, want := step(t, gm, B, T, tokens, targets)
	if wantLoss < 1 || math.IsNaN(float64(wantLoss)) {
		t.Fatalf("generic loss %g: not a plausible cross-entropy", wantLoss)
	}
	defer stories260k.UseKernels(cpu.Best())
	for _, l := range cpu.Levels() {
		t.Run(l.String(), func(t *testing.T) {
			if err := stories260k.UseKernels(l); err != nil {
				t.Fatal(err)
			}
			loss, got := step(t, cm, B, T, tokens, targets)
			if d := math.Abs(float64(loss - wantLoss)); d > 1e-5*float64(wantLoss) {
				t.Errorf("loss %g, generic %g", loss, wantLoss)
			}
			for _, ts := range p.Tensors {
				g, w := got[ts.Off:ts.Off+ts.Len()], want[ts.Off:ts.Off+ts.Len()]
				var scale float64
				for _, v := range w {
					scale = max(scale, math.Abs(float64(v)))
				}
				if scale == 0 {
					t.Errorf("%s: generic gradient is all zero", ts.Name)
				}
				for i := range g {
					if d := math.Abs(float64(g[i] - w[i])); d > 1e-4*scale || math.IsNaN(float64(g[i])) {
						t.Errorf("%s[%d]: %g, generic %g (max |g| %g)", ts.Name, i, g[i], w[i], scale)
						break
					}
				}
			}
		})
	}
}

// One and two threads give the same bits: a resumed run continues exactly
// whatever --threads says.
func TestCompiledTrainerThreadIndependent(t *testing.T) {
	p, _, err := checkpoint.Load(filepath.Join(sharedData(t), "models", "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	cm, err := stories260k.New(p)
	if err != nil {
		t.Fatal(err)
	}
	const B, T = 4, 90
	tokens, targets := trainBatch(B, T, p.Spec.Vocab)
	defer stories260k.SetThreads(0)
	stories260k.SetThreads(1)
	l1, g1 := step(t, cm, B, T, tokens, targets)
	stories260k.SetThreads(2)
	l2, g2 := step(t, cm, B, T, tokens, targets)
	if l1 != l2 {
		t.Errorf("loss %g on one thread, %g on two", l1, l2)
	}
	for i := range g1 {
		if g1[i] != g2[i] {
			t.Fatalf("gradient %d: %g on one thread, %g on two", i, g1[i], g2[i])
		}
	}
}

// The 15M shape has what stories260K lacks: an FFN width (768) and head size
// (48) of whole vectors, so its compiled trainer runs the SwiGLU and
// attention-backward kernels and, from 32 tokens on, the packed forward
// products (asm.TKernel). Random weights, B·T = 2×20, every path against the
// generic trainer.
func TestCompiledTrainerMatchesGeneric15M(t *testing.T) {
	if testing.Short() || runtime.GOARCH != "amd64" {
		t.Skip("15M generic step; the kernels it covers are amd64's")
	}
	p := train.InitParams(llama15m.Spec(), 3)
	cm, err := llama15m.New(p)
	if err != nil {
		t.Fatal(err)
	}
	gm, err := generic.New(p)
	if err != nil {
		t.Fatal(err)
	}
	const B, T = 2, 20
	tokens, targets := trainBatch(B, T, p.Spec.Vocab)
	wantLoss, want := step(t, gm, B, T, tokens, targets)
	defer llama15m.UseKernels(cpu.Best())
	for _, l := range cpu.Levels() {
		t.Run(l.String(), func(t *testing.T) {
			if err := llama15m.UseKernels(l); err != nil {
				t.Fatal(err)
			}
			loss, got := step(t, cm, B, T, tokens, targets)
			if d := math.Abs(float64(loss - wantLoss)); d > 1e-5*float64(wantLoss) {
				t.Errorf("loss %g, generic %g", loss, wantLoss)
			}
			for _, ts := range p.Tensors {
				g, w := got[ts.Off:ts.Off+ts.Len()], want[ts.Off:ts.Off+ts.Len()]
				var scale float64
				for _, v := range w {
					scale = max(scale, math.Abs(float64(v)))
				}
				bad := 0
				for i := range g {
					if d := math.Abs(float64(g[i] - w[i])); d > 1e-4*scale || math.IsNaN(float64(g[i])) {
						if bad++; bad <= 3 {
							t.Errorf("%s[%d]: %g, generic %g (max |g| %g)", ts.Name, i, g[i], w[i], scale)
						}
					}
				}
			}
		})
	}
}
