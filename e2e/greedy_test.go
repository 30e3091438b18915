package e2e

import (
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/modelc/modelc/generated/llama15m"
	"github.com/modelc/modelc/generated/stories260k"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/cpu"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/sample"
	"github.com/modelc/modelc/runtime/screen"
	"github.com/modelc/modelc/runtime/train"
)

// exactBlocker is the generated float models' screen.Exact.
type exactBlocker interface {
	ExactBlock(r int, out *[screen.Block]float32) (base, n int)
}

// TestGreedyMatchesForward: a compiled float model's Greedy returns
// sample.Argmax of Forward's logits at every position, on every kernel path
// and at one and two threads (the 15M shape's classifier is split over the
// pool); ExactBlock gives every row the bits Forward gave it; and where the
// screen runs it answers without making the logits.
func TestGreedyMatchesForward(t *testing.T) {
	p, _, err := checkpoint.Load(filepath.Join(sharedData(t), "models", "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		new        model.Factory
		p          *model.Params
		use        func(cpu.Level) error
		setThreads func(int)
		steps      int
	}{
		{"stories260k", stories260k.New, p, stories260k.UseKernels, stories260k.SetThreads, 200},
		{"llama15m", llama15m.New, train.InitParams(llama15m.Spec(), 7), llama15m.UseKernels, llama15m.SetThreads, 12},
	}
	if runtime.GOARCH != "amd64" {
		cases[1].steps = 3 // arm64 under qemu: the bits and the screen, at a tenth of the speed
	}
	for _, c := range cases {
		m, err := c.new(c.p)
		if err != nil {
			t.Fatal(err)
		}
		gp, ok := m.(model.GreedyPreparer)
		if !ok {
			t.Fatal("the compiled float model does not implement model.GreedyPreparer")
		}
		gp.PrepareGreedy() // as generate does: the sessions below get their scratch at once
		for _, l := range cpu.Levels() {
			for _, threads := range []int{1, 2} {
				t.Run(fmt.Sprintf("%s/%s/threads=%d", c.name, l, threads), func(t *testing.T) {
					if err := c.use(l); err != nil {
						t.Fatal(err)
					}
					defer c.use(cpu.Best())
					screen.Use(l) // the screen's kernel for this level (AVX-512 VNNI, AVX2, NEON SDOT, none)
					defer screen.Use(cpu.Best())
					c.setThreads(threads)
					defer c.setThreads(0)
					full, scr := m.NewSession(), m.NewSession()
					g, ok := scr.(model.Greedy)
					if !ok {
						t.Fatal("the compiled float model does not implement model.Greedy")
					}
					eb := full.(exactBlocker)
					var out [screen.Block]float32
					tok, screened := 1, 0
					for pos := range c.steps {
						logits := full.Forward(tok, pos)
						for r := 0; r < len(logits); {
							base, n := eb.ExactBlock(r, &out)
							if base != r || n < 1 || n > screen.Block {
								t.Fatalf("pos %d: ExactBlock(%d) = %d, %d", pos, r, base, n)
							}
							for i, v := range out[:n] {
								if math.Float32bits(v) != math.Float32bits(logits[r+i]) {
									t.Fatalf("pos %d: ExactBlock row %d = %v, Forward gave %v", pos, r+i, v, logits[r+i])
								}
							}
							r += n
						}
						want := sample.Argmax(logits)
						// Another token's logits first: Greedy replaces them only
						// when it makes the logits.
						kept := scr.Forward((tok+1)%len(logits), pos)
						before := slices.Clone(kept)
						if got := g.Greedy(tok, pos); got != want {
							t.Fatalf("pos %d: Greedy = %d, Argmax(Forward) = %d", pos, got, want)
						}
						if slices.Equal(kept, before) {
							screened++
						}
						tok = want
					}
					if screen.Available() && screened < c.steps*9/10 {
						t.Errorf("the screen answered %d of %d positions; want nearly all", screened, c.steps)
					}
					if !screen.Available() && screened != 0 {
						t.Errorf("Greedy left the logits unmade %d times without the screen", screened)
					}
				})
			}
		}
	}
}

// TestGreedyKernelOverflow: inputs whose logits the F32 classifier kernel
// overflows on (a product, or its sum of squares) while the screen's own
// arithmetic would not: Greedy still returns Forward's argmax (the screen
// declines). Weights: all zero but a few embedding rows and the final norm,
// so that the hidden state is token 5's embedding.
func TestGreedyKernelOverflow(t *testing.T) {
	const dim, vocab = 64, 512
	for _, variant := range []string{"product", "sum of squares"} {
		p := train.InitParams(stories260k.Spec(), 7)
		clear(p.Data)
		emb := func(tok, i int) *float32 { return &p.Data[tok*dim+i] }
		norm := p.Data[len(p.Data)-dim:]
		for i := range norm {
			norm[i] = 1
		}
		switch variant {
		case "product": // row 0's product overflows to +Inf; its real logit is not the largest
			*emb(0, 0), *emb(0, 1) = 1e6, 1e6
			*emb(1, 0) = 3e4
			*emb(5, 0), *emb(5, 1) = 1, -1
			for i := 2; i < dim; i++ {
				*emb(5, i) = 1e18
			}
			norm[0], norm[1] = 3.41e32, 3.4028e32
		case "sum of squares": // the kernel's Σx² overflows: every logit is ±0
			for _, c := range []int{0, 16, 32, 48} {
				*emb(0, c), *emb(1, c) = -1, 1
				norm[c] = 1e-10
			}
			*emb(5, 0), *emb(5, 16), *emb(5, 32), *emb(5, 48) = 9.223364e+18, 9.223382e+18, 9.2233297e+18, 9.223412e+18
		}
		m, err := stories260k.New(p)
		if err != nil {
			t.Fatal(err)
		}
		want := sample.Argmax(m.NewSession().Forward(5, 0))
		if got := m.NewSession().(model.Greedy).Greedy(5, 0); got != want {
			t.Errorf("%s: Greedy(5, 0) = %d, Argmax(Forward(5, 0)) = %d", variant, got, want)
		}
	}
}

// TestGreedyAfterNewTrainer: once a trainer is made for a model (which then
// changes its weights in place), Greedy makes every logit, so that it sees
// the weights Forward sees.
func TestGreedyAfterNewTrainer(t *testing.T) {
	p := train.InitParams(stories260k.Spec(), 7)
	m, err := stories260k.New(p)
	if err != nil {
		t.Fatal(err)
	}
	s := m.NewSession()
	g := s.(model.Greedy)
	g.Greedy(1, 0) // makes the screen
	if _, err := m.(model.Trainable).NewTrainer(1, 8); err != nil {
		t.Fatal(err)
	}
	// A step in place: row 7 of the classifier becomes the input's clear winner.
	kept := s.Forward(1, 0)
	before := slices.Clone(kept)
	for i := range 64 {
		p.Data[7*64+i] = 100 * float32(math.Copysign(1, float64(p.Data[1*64+i])))
	}
	if got := g.Greedy(1, 0); got != 7 || slices.Equal(kept, before) {
		t.Errorf("Greedy after NewTrainer = %d (want 7, from every logit); logits made: %v", got, !slices.Equal(kept, before))
	}
}
