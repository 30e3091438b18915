package train

import (
	"context"
	"flag"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

var (
	moeSteps    = flag.Int("moe.steps", 60, "steps of each TestMoELoadBalance run")
	moeCoef     = flag.Float64("moe.coef", 0.1, "aux loss coefficient of the balanced run")
	moeContrast = flag.Bool("moe.contrast", false, "also run TestMoELoadBalance without the aux loss")
	moeLog      = flag.Bool("moe.log", false, "print each TestMoELoadBalance run's progress")
)

// moeBalanceRun trains an 8-expert, top-2 MoE on tinyshakespeare and
// returns its metrics. Eight experts, not four: shares count routing slots
// (tokens × top_k), so with top 2 of 4 no expert can exceed 1/2 = 2/E and
// the bound would hold trivially; of 8, one expert can take up to 1/2 while
// the bound is 1/4.
func moeBalanceRun(t *testing.T, coef float64, steps int) []Metric {
	t.Helper()
	d := sharedData(t)
	tok, err := tokenizer.Load(filepath.Join(d, "models", "tok512.bin"), 512)
	if err != nil {
		t.Fatal(err)
	}
	s := &spec.Spec{Name: "moe", Vocab: 512, Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFNDim: 128, MaxSeq: 64,
		MoE: &spec.MoE{Experts: 8, TopK: 2, FFNDim: 32, AuxLossCoef: coef}}
	s.SetDefaults()
	s.MoE.AuxLossCoef = coef // SetDefaults turns 0 into the default
	hp := s.Train
	hp.BatchSize, hp.SeqLen = 8, 64
	hp.LR, hp.MinLR, hp.WarmupSteps = 5e-3, 5e-4, 20
	hp.EvalEvery, hp.CheckpointEv = steps, steps
	cfg := Config{Spec: s, Train: hp, Steps: steps,
		Data: filepath.Join(d, "text", "tinyshakespeare.txt"), Tokenizer: tok, Out: t.TempDir(), MaskID: -1,
		EvalBatches: 4, Quiet: !*moeLog}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := readMetrics(filepath.Join(cfg.Out, MetricsFile), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("aux coef %g: %d steps, train loss %.4f, val loss %.4f", coef, res.Step, res.TrainLoss, res.ValLoss)
	return ms
}

// busiest is the largest expert share of any layer, averaged over the last
// quarter of the run's steps, per layer and expert.
func busiest(ms []Metric) (float64, string) {
	tail := ms[len(ms)*3/4:]
	var worst float64
	var desc string
	for l := range tail[0].ExpertShare {
		mean := make([]float64, len(tail[0].ExpertShare[l]))
		for _, m := range tail {
			for e, v := range m.ExpertShare[l] {
				mean[e] += v / float64(len(tail))
			}
		}
		desc += fmt.Sprintf(" layer %d %.3f", l, mean)
		for _, v := range mean {
			worst = max(worst, v)
		}
	}
	return worst, desc
}

// TestMoELoadBalance: with the load-balancing loss, the busiest expert gets
// at most 2/E of the routing slots. With -moe.contrast the same run without
// it is logged (runtime/generic/MOE-RESULTS.md has longer runs of both).
func TestMoELoadBalance(t *testing.T) {
	steps := *moeSteps
	with := moeBalanceRun(t, *moeCoef, steps)
	if len(with) != steps || with[0].ExpertShare == nil || with[0].AuxLoss == nil {
		t.Fatalf("metrics carry no expert statistics: %d lines, first %+v", len(with), with[0])
	}
	b, desc := busiest(with)
	t.Logf("aux %g: busiest expert %.3f;%s; final aux loss %.5f", *moeCoef, b, desc, *with[len(with)-1].AuxLoss)
	if b > 2.0/8 {
		t.Errorf("with the aux loss the busiest expert has %.3f of the slots, want ≤ 2/E = 0.25", b)
	}
	if !*moeContrast {
		return
	}
	without := moeBalanceRun(t, 0, steps)
	b0, desc0 := busiest(without)
	t.Logf("no aux: busiest expert %.3f;%s", b0, desc0)
}

// TestMoEResumeBitIdentical: an MoE run continues bit for bit after a
// resume, its routing statistics included.
func TestMoEResumeBitIdentical(t *testing.T) {
	data, tok := corpus(t, 20000)
	s := smallSpec(tok.VocabSize(), "causal")
	s.MoE = &spec.MoE{Experts: 4, TopK: 2, FFNDim: 8, AuxLossCoef: 0.05}
	straight := filepath.Join(t.TempDir(), "straight")
	if _, err := Run(context.Background(), smallConfig(s, data, tok, straight, 12)); err != nil {
		t.Fatal(err)
	}
	split := filepath.Join(t.TempDir(), "split")
	cfg := smallConfig(s, data, tok, split, 12)
	cfg.StopAfter = 6
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	rc, err := ResumeConfig(split, Config{Spec: s, Tokenizer: tok, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if rc.Spec.MoE == nil || *rc.Spec.MoE != *s.MoE {
		t.Fatalf("resumed spec lost its moe: %+v", rc.Spec.MoE)
	}
	if _, err := Run(context.Background(), rc); err != nil {
		t.Fatal(err)
	}
	a, err := LoadState(filepath.Join(straight, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadState(filepath.Join(split, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Weights {
		if math.Float32bits(a.Weights[i]) != math.Float32bits(b.Weights[i]) {
			t.Fatalf("weight %d: %v straight, %v resumed", i, a.Weights[i], b.Weights[i])
		}
	}
	ma, _ := readMetrics(filepath.Join(straight, MetricsFile), 1<<30)
	mb, _ := readMetrics(filepath.Join(split, MetricsFile), 1<<30)
	if len(ma) != 12 || len(mb) != 12 {
		t.Fatalf("metrics: %d and %d lines", len(ma), len(mb))
	}
	for i := range ma {
		if *ma[i].AuxLoss != *mb[i].AuxLoss || fmt.Sprint(ma[i].ExpertShare) != fmt.Sprint(mb[i].ExpertShare) {
			t.Fatalf("step %d: routing statistics differ: %v %v vs %v %v", i+1, *ma[i].AuxLoss, ma[i].ExpertShare, *mb[i].AuxLoss, mb[i].ExpertShare)
		}
	}
}
