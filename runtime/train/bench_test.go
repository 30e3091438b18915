package train

import (
	"flag"
	"math/rand/v2"
	"testing"

	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
)

var benchBatch = flag.Int("train-batch", 8, "sequences per step in BenchmarkTrainStep15M")

// BenchmarkTrainStep15M times whole optimizer steps (forward, backward,
// clipping, AdamW) of the generic model at the 15M shape (dim 288, 6
// layers, 6 heads, ffn 768, vocab 32000, tied) over -train-batch sequences
// of 256 random tokens: the figure is batch 8 × 256. A step at
// batch 8 takes tens of seconds on one thread: run with -benchtime=2x.
func BenchmarkTrainStep15M(b *testing.B) {
	s := &spec.Spec{Name: "llama15m", Vocab: 32000, Dim: 288, Layers: 6, Heads: 6, KVHeads: 6, FFNDim: 768,
		MaxSeq: 256, TieEmbeddings: true}
	s.SetDefaults()
	p := InitParams(s, 1)
	m, err := generic.New(p)
	if err != nil {
		b.Fatal(err)
	}
	B, T := *benchBatch, 256
	tr, err := m.(model.Trainable).NewTrainer(B, T)
	if err != nil {
		b.Fatal(err)
	}
	opt := NewAdamW(p, 0.9, 0.95, 0.1)
	rng := rand.New(rand.NewPCG(1, 2))
	tokens, targets := make([]int32, B*T), make([]int32, B*T)
	for i := range tokens {
		tokens[i], targets[i] = int32(rng.IntN(s.Vocab)), int32(rng.IntN(s.Vocab))
	}
	step := func() {
		tr.ZeroGrads()
		tr.Forward(tokens, targets, B, T)
		tr.Backward()
		ClipGradNorm(tr.Grads(), 1)
		opt.Update(p.Data, tr.Grads(), 3e-4)
	}
	step() // warm-up: first touches of the buffers
	b.ResetTimer()
	for b.Loop() {
		step()
	}
	b.ReportMetric(float64(B*T*b.N)/b.Elapsed().Seconds(), "tok/s")
}
