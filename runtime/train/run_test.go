package train

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
)

// smallSpec is a tiny model over a character vocabulary.
func smallSpec(vocab int, objective string) *spec.Spec {
	s := &spec.Spec{Name: "small", Vocab: vocab, Dim: 16, Layers: 2, Heads: 2, KVHeads: 1, FFNDim: 32, MaxSeq: 16,
		Objective: objective}
	s.SetDefaults()
	return s
}

// corpus writes the first n bytes of Shakespeare to a temporary file.
func corpus(t *testing.T, n int) (path string, tok *charTok) {
	text := shakespeare(t)[:n]
	path = filepath.Join(t.TempDir(), "corpus.txt")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, newCharTok(text, true)
}

func smallConfig(s *spec.Spec, data string, tok *charTok, out string, steps int) Config {
	hp := s.Train
	hp.BatchSize, hp.SeqLen, hp.GradAccum = 4, 16, 2
	hp.LR, hp.MinLR, hp.WarmupSteps = 3e-3, 3e-4, 5
	hp.EvalEvery, hp.CheckpointEv = 5, 10
	return Config{Spec: s, Train: hp, Steps: steps, Data: data, Tokenizer: tok, Out: out, MaskID: -1,
		EvalBatches: 2, Quiet: true}
}

// TestResumeBitIdentical: 20 straight steps and 10 + resume + 10 end with
// the same weights, moments and model file, for both objectives.
func TestResumeBitIdentical(t *testing.T) {
	for _, objective := range []string{model.ObjectiveCausal, model.ObjectiveMasked} {
		data, tok := corpus(t, 20000)
		s := smallSpec(tok.VocabSize(), objective)
		straight := filepath.Join(t.TempDir(), "straight")
		if _, err := Run(context.Background(), smallConfig(s, data, tok, straight, 20)); err != nil {
			t.Fatal(err)
		}
		split := filepath.Join(t.TempDir(), "split")
		cfg := smallConfig(s, data, tok, split, 20)
		cfg.StopAfter = 10
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Step != 10 {
			t.Fatalf("stopped at step %d, want 10", res.Step)
		}
		// Resume from the folder alone, as `train --resume` does.
		rc, err := ResumeConfig(split, Config{Spec: s, Tokenizer: tok, Quiet: true})
		if err != nil {
			t.Fatal(err)
		}
		if res, err = Run(context.Background(), rc); err != nil {
			t.Fatal(err)
		}
		if res.Step != 20 {
			t.Fatalf("resumed run ended at step %d", res.Step)
		}
		a, err := LoadState(filepath.Join(straight, StateFile))
		if err != nil {
			t.Fatal(err)
		}
		b, err := LoadState(filepath.Join(split, StateFile))
		if err != nil {
			t.Fatal(err)
		}
		for name, pair := range map[string][2][]float32{"weights": {a.Weights, b.Weights}, "m": {a.M, b.M}, "v": {a.V, b.V}} {
			for i := range pair[0] {
				if math.Float32bits(pair[0][i]) != math.Float32bits(pair[1][i]) {
					t.Fatalf("%s: %s[%d] = %v straight, %v resumed", objective, name, i, pair[0][i], pair[1][i])
				}
			}
		}
		if a.Drawn != b.Drawn || a.Tokens != b.Tokens || !bytes.Equal(a.RNG, b.RNG) || a.TrainLoss != b.TrainLoss {
			t.Fatalf("%s: states differ: %+v vs %+v", objective, a.StateHeader, b.StateHeader)
		}
		ga, _ := os.ReadFile(filepath.Join(straight, ModelFile))
		gb, _ := os.ReadFile(filepath.Join(split, ModelFile))
		if !bytes.Equal(ga, gb) {
			t.Fatalf("%s: model.gguf differs", objective)
		}
		// The metrics of the resumed run hold each step once.
		ms, err := readMetrics(filepath.Join(split, MetricsFile), 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 20 || ms[19].Step != 20 || ms[19].Loss != a.TrainLoss {
			t.Fatalf("%s: resumed metrics have %d lines", objective, len(ms))
		}
		// The weights in model.gguf load back exactly.
		p, f, err := checkpoint.Load(filepath.Join(split, ModelFile))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		for i := range p.Data {
			if p.Data[i] != a.Weights[i] {
				t.Fatalf("model.gguf weight %d differs from the state", i)
			}
		}
		if _, err := os.Stat(filepath.Join(split, PlotFile)); err != nil {
			t.Fatalf("no loss curve: %v", err)
		}
	}
}
