package train

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

// TestShakespeareConverges trains a small model on tinyshakespeare with the
// 512-token vocabulary for 200 steps: its validation loss must fall below
// the unigram entropy of the training split, the best any model blind to
// context can do.
func TestShakespeareConverges(t *testing.T) {
	d := sharedData(t)
	tok, err := tokenizer.Load(filepath.Join(d, "models", "tok512.bin"), 512)
	if err != nil {
		t.Fatal(err)
	}
	s := &spec.Spec{Name: "shakespeare", Vocab: 512, Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFNDim: 128, MaxSeq: 64}
	s.SetDefaults()
	hp := s.Train
	hp.BatchSize, hp.SeqLen = 8, 64
	hp.LR, hp.MinLR, hp.WarmupSteps = 5e-3, 5e-4, 20
	hp.EvalEvery, hp.CheckpointEv = 50, 100
	out := t.TempDir()
	start := time.Now()
	res, err := Run(context.Background(), Config{Spec: s, Train: hp, Steps: 200,
		Data: filepath.Join(d, "text", "tinyshakespeare.txt"), Tokenizer: tok, Out: out, MaskID: -1,
		EvalBatches: 8, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}

	toks, err := OpenTokens(filepath.Join(out, DataFile))
	if err != nil {
		t.Fatal(err)
	}
	defer toks.Close()
	trainSplit, _, _ := SplitTokens(toks, 65)
	counts := make([]float64, 512)
	for i := trainSplit.Lo; i < trainSplit.Hi; i++ {
		counts[toks.At(i)]++
	}
	var h float64
	for _, c := range counts {
		if c > 0 {
			p := c / float64(trainSplit.Len())
			h -= p * math.Log(p)
		}
	}
	t.Logf("validation loss %.4f after %d steps (%v), unigram entropy %.4f nats, train loss %.4f",
		res.ValLoss, res.Step, time.Since(start).Round(time.Millisecond), h, res.TrainLoss)
	if !(res.ValLoss < h) {
		t.Fatalf("validation loss %.4f is not below the unigram entropy %.4f", res.ValLoss, h)
	}
	ms, _ := readMetrics(filepath.Join(out, MetricsFile), 1<<30)
	if len(ms) != 200 || ms[0].Loss < math.Log(512)-0.5 {
		t.Fatalf("metrics: %d lines, first loss %v (want about ln 512 = %.2f)", len(ms), ms[0].Loss, math.Log(512))
	}
}
