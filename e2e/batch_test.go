package e2e

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/modelc/modelc/generated/stories260k"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/cpu"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
)

// The compiled model's batched passes (model.Batcher and prompt spans beside
// decode tokens, as the server's continuous batching drives them) give each
// session the logits one-token Forward calls give, on every kernel path.
func TestCompiledBatchesMatchGeneric(t *testing.T) {
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
	batcher, ok := cm.(model.Batcher)
	if !ok {
		t.Fatal("the compiled model does not implement model.Batcher")
	}
	spanner := cm.(interface {
		ForwardSpans([]model.Session, [][]int, []int) [][]float32
	})
	defer stories260k.UseKernels(cpu.Best())
	for _, l := range cpu.Levels() {
		t.Run(l.String(), func(t *testing.T) {
			if err := stories260k.UseKernels(l); err != nil {
				t.Fatal(err)
			}
			const n = 5
			rng := rand.New(rand.NewPCG(1, 2))
			cs, gs := make([]model.Session, n), make([]model.Session, n)
			next := make([]int, n)
			for i := range n {
				cs[i], gs[i] = cm.NewSession(), gm.NewSession()
			}
			for step := 0; step < 40; step++ {
				var ss []model.Session
				var spans [][]int
				var pos, idx []int
				for i := range n {
					if rng.IntN(3) == 0 {
						continue
					}
					k := 1
					if step%5 == 0 {
						k = 1 + rng.IntN(30) // a prompt chunk beside decode tokens
					}
					k = min(k, 500-next[i])
					span := make([]int, k)
					for j := range span {
						span[j] = 3 + rng.IntN(500)
					}
					ss, spans, pos, idx = append(ss, cs[i]), append(spans, span), append(pos, next[i]), append(idx, i)
				}
				if len(ss) == 0 {
					continue
				}
				var got [][]float32
				if step%2 == 0 {
					got = spanner.ForwardSpans(ss, spans, pos)
				} else {
					toks := make([]int, len(spans))
					for j, sp := range spans {
						toks[j] = sp[0]
						spans[j] = sp[:1]
					}
					got = batcher.ForwardBatch(ss, toks, pos)
				}
				for j, i := range idx {
					var want []float32
					for k, tok := range spans[j] {
						want = gs[i].Forward(tok, next[i]+k)
					}
					next[i] += len(spans[j])
					for v := range want {
						if d := math.Abs(float64(got[j][v] - want[v])); d > 1e-4 {
							t.Fatalf("step %d session %d logit %d: batched %g, generic %g", step, i, v, got[j][v], want[v])
						}
					}
				}
			}
		})
	}
}
