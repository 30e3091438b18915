package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
)

func TestRunBadInput(t *testing.T) {
	data, tok := corpus(t, 5000)
	s := smallSpec(tok.VocabSize(), model.ObjectiveCausal)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o644)
		return p
	}
	file := write("plain-file", "x")
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"empty corpus", func(c *Config) { c.Data = write("empty.txt", "") }, "corpus is empty"},
		{"short corpus", func(c *Config) { c.Data = write("short.txt", shakespeare(t)[:100]) }, "too short: 100 tokens"},
		{"missing corpus", func(c *Config) { c.Data = filepath.Join(dir, "nope.txt") }, "nope.txt"},
		{"vocabulary mismatch", func(c *Config) { s2 := *s; s2.Vocab += 3; c.Spec = &s2 }, fmt.Sprintf("the tokenizer holds %d tokens but the model's vocab size is %d", tok.VocabSize(), tok.VocabSize()+3)},
		{"unwritable output", func(c *Config) { c.Out = filepath.Join(file, "run") }, "output folder"},
		{"no tokenizer for text", func(c *Config) { c.Tokenizer = nil }, "--tokenizer is needed"},
		{"seq beyond max_seq", func(c *Config) { c.Train.SeqLen = 17 }, "--seq: must be between 1 and the model's max_seq 16"},
		{"no steps", func(c *Config) { c.Steps = 0 }, "--steps"},
		{"masked without a mask token", func(c *Config) {
			s2 := *s
			s2.Objective = model.ObjectiveMasked
			c.Spec = &s2
			c.Tokenizer = newCharTok(shakespeare(t)[:5000], false)
			c.Spec.Vocab = c.Tokenizer.VocabSize()
		}, "pass --mask-id"},
	} {
		cfg := smallConfig(s, data, tok, filepath.Join(t.TempDir(), "run"), 4)
		c.edit(&cfg)
		_, err := Run(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is not one line: %q", c.name, err)
		}
	}

	// A token file made for another vocabulary.
	tf := filepath.Join(dir, "other.tok")
	WriteTokens(tf, make([]int, 1000), 70)
	cfg := smallConfig(s, tf, tok, filepath.Join(t.TempDir(), "run"), 4)
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "made for a vocabulary of 70") {
		t.Errorf("token file vocabulary mismatch: %v", err)
	}

	// A folder holding a run is not overwritten by a fresh one.
	out := filepath.Join(t.TempDir(), "run")
	if _, err := Run(context.Background(), smallConfig(s, data, tok, out, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), smallConfig(s, data, tok, out, 2)); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Errorf("second run into the same folder: %v", err)
	}
	if _, err := ResumeConfig(dir, Config{}); err == nil || !strings.Contains(err.Error(), "not a run folder") {
		t.Errorf("resume of a folder without a run: %v", err)
	}
}

// nanModel is a trainable model whose loss turns NaN after a number of
// backward passes, as a diverging run's does.
type nanModel struct {
	model.Trainable
	after int
}

func (m *nanModel) NewTrainer(B, T int) (model.Trainer, error) {
	tr, err := m.Trainable.NewTrainer(B, T)
	return &nanTrainer{Trainer: tr, left: m.after}, err
}

type nanTrainer struct {
	model.Trainer
	left int
}

func (t *nanTrainer) Forward(tokens, targets []int32, B, T int) float32 {
	l := t.Trainer.Forward(tokens, targets, B, T)
	if t.left <= 0 {
		return float32(math.NaN())
	}
	return l
}

func (t *nanTrainer) Backward() { t.Trainer.Backward(); t.left-- }

// TestNaNKeepsCheckpoint: a loss that turns NaN at step 13 stops the run
// with a clear error, and the checkpoint of step 10 stays as it was.
func TestNaNKeepsCheckpoint(t *testing.T) {
	data, tok := corpus(t, 20000)
	s := smallSpec(tok.VocabSize(), model.ObjectiveCausal)
	out := filepath.Join(t.TempDir(), "run")
	cfg := smallConfig(s, data, tok, out, 20)
	cfg.Factory = func(p *model.Params) (model.Model, error) {
		m, err := generic.New(p)
		if err != nil {
			return nil, err
		}
		return &nanModel{Trainable: m.(model.Trainable), after: 12 * cfg.Train.GradAccum}, nil
	}
	_, err := Run(context.Background(), cfg)
	if !errors.Is(err, ErrNaN) || !strings.Contains(err.Error(), "step 13") || !strings.Contains(err.Error(), "checkpoint (step 10)") {
		t.Fatalf("error %v, want a NaN stop at step 13 keeping step 10", err)
	}
	st, err := LoadState(filepath.Join(out, StateFile))
	if err != nil || st.Step != 10 {
		t.Fatalf("state after the NaN: %v, step %d", err, st.Step)
	}
	for _, w := range st.Weights {
		if math.IsNaN(float64(w)) {
			t.Fatal("the kept checkpoint holds NaN weights")
		}
	}
	// It resumes (and fails again the same way with this model, but only
	// after starting from step 10).
	rc, err := ResumeConfig(out, Config{Spec: s, Tokenizer: tok, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	rc.Steps = 12
	res, err := Run(context.Background(), rc)
	if err != nil || res.Step != 12 {
		t.Fatalf("resume after NaN: step %v, %v", res, err)
	}
}

// TestInterruptSavesCheckpoint: cancelling the context saves the current
// step and says how to continue.
func TestInterruptSavesCheckpoint(t *testing.T) {
	data, tok := corpus(t, 20000)
	s := smallSpec(tok.VocabSize(), model.ObjectiveCausal)
	out := filepath.Join(t.TempDir(), "run")
	cfg := smallConfig(s, data, tok, out, 20)
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Factory = func(p *model.Params) (model.Model, error) {
		m, err := generic.New(p)
		if err != nil {
			return nil, err
		}
		return &cancelModel{Trainable: m.(model.Trainable), after: 7 * cfg.Train.GradAccum, cancel: cancel}, nil
	}
	_, err := Run(ctx, cfg)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("interrupted run: %v", err)
	}
	st, err := LoadState(filepath.Join(out, StateFile))
	if err != nil || st.Step != 7 {
		t.Fatalf("state after interrupt: %v, step %v", err, st)
	}
}

type cancelModel struct {
	model.Trainable
	after  int
	cancel func()
}

func (m *cancelModel) NewTrainer(B, T int) (model.Trainer, error) {
	tr, err := m.Trainable.NewTrainer(B, T)
	return &cancelTrainer{Trainer: tr, m: m}, err
}

type cancelTrainer struct {
	model.Trainer
	m *cancelModel
}

func (t *cancelTrainer) Backward() {
	t.Trainer.Backward()
	if t.m.after--; t.m.after == 0 {
		t.m.cancel()
	}
}

func FuzzParseState(f *testing.F) {
	st := &State{StateHeader: StateHeader{Step: 3, Params: 2, RNG: []byte{1, 2}}, Weights: []float32{1, 2}, M: []float32{3, 4}, V: []float32{5, 6}}
	path := filepath.Join(f.TempDir(), "s.bin")
	if err := SaveState(path, st); err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	f.Add(good)
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseState("fuzz", b, nil)
		if err != nil {
			return
		}
		if len(st.Weights) != st.Params || len(st.M) != st.Params || len(st.V) != st.Params {
			t.Fatal("arrays do not match the header")
		}
	})
}

func TestStateRoundTrip(t *testing.T) {
	st := &State{StateHeader: StateHeader{Step: 3, AdamStep: 3, Params: 3, Drawn: 9, Tokens: 99, RNG: []byte{1, 2, 3}, TrainLoss: 1.5},
		Weights: []float32{1, 2.5, -0}, M: []float32{3, 4, 5}, V: []float32{5, float32(math.Inf(1)), 7}}
	path := filepath.Join(t.TempDir(), "s.bin")
	if err := SaveState(path, st); err != nil {
		t.Fatal(err)
	}
	got, err := LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	// A second moment may be +Inf (a huge finite gradient squared): kept.
	if got.Step != 3 || got.Drawn != 9 || got.Weights[1] != st.Weights[1] || got.V[2] != 7 || !math.IsInf(float64(got.V[1]), 1) || string(got.RNG) != "\x01\x02\x03" {
		t.Fatalf("round trip: %+v", got)
	}
	b, _ := os.ReadFile(path)
	b[20] ^= 1
	os.WriteFile(path, b, 0o644)
	if _, err := LoadState(path); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("damaged state: %v", err)
	}
}

// Weights that hold NaN or ±Inf are refused when a run loads them, with the
// file, tensor and element: a state on --resume, a model file on --init.
func TestLoadRefusesNonFiniteWeights(t *testing.T) {
	data, tok := corpus(t, 5000)
	s := smallSpec(tok.VocabSize(), model.ObjectiveCausal)
	out := filepath.Join(t.TempDir(), "run")
	if _, err := Run(context.Background(), smallConfig(s, data, tok, out, 2)); err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(out, StateFile)
	st, err := LoadState(statePath)
	if err != nil {
		t.Fatal(err)
	}
	p, err := model.Bind(s, st.Weights)
	if err != nil {
		t.Fatal(err)
	}
	p.T("blk.1.attn_k.weight")[5] = float32(math.Inf(-1))
	if err := SaveState(statePath, st); err != nil {
		t.Fatal(err)
	}
	tk, _ := p.Lookup("blk.1.attn_k.weight")
	if _, err := LoadState(statePath); err == nil || err.Error() != fmt.Sprintf("training state %s: weight %d is -Inf", statePath, tk.Off+5) {
		t.Errorf("LoadState: %v", err)
	}
	rc, err := ResumeConfig(out, Config{Spec: s, Tokenizer: tok, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	rc.Steps = 4
	want := fmt.Sprintf("resume %s: training state %s: tensor blk.1.attn_k.weight holds -Inf at element 5", out, statePath)
	if _, err := Run(context.Background(), rc); err == nil || err.Error() != want {
		t.Errorf("resume: error %v, want %q", err, want)
	}

	// --init from a model file whose weights hold NaN: refused, and the
	// folder the run made is gone.
	p.T("blk.1.attn_k.weight")[5] = float32(math.NaN())
	bad := filepath.Join(t.TempDir(), "bad.gguf")
	if err := checkpoint.SaveGGUF(bad, p, nil, false); err != nil {
		t.Fatal(err)
	}
	cfg := smallConfig(s, data, tok, filepath.Join(t.TempDir(), "init"), 2)
	cfg.Init = bad
	want = fmt.Sprintf("--init: checkpoint: %s: tensor blk.1.attn_k.weight holds NaN at element 5", bad)
	if _, err := Run(context.Background(), cfg); err == nil || err.Error() != want {
		t.Errorf("--init: error %v, want %q", err, want)
	}
	if _, err := os.Stat(cfg.Out); !os.IsNotExist(err) {
		t.Errorf("the failed run left %s behind (%v)", cfg.Out, err)
	}
}
