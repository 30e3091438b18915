package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fmt"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

func runCmd(t *testing.T, s *spec.Spec, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := &cobra.Command{Use: "tiny", SilenceErrors: true, SilenceUsage: true}
	root.AddCommand(Commands("tiny", s, nil)...)
	var o, e bytes.Buffer
	root.SetOut(&o)
	root.SetErr(&e)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return o.String(), e.String(), err
}

// TestTrainEvalCommands: train from text with the 512-token vocabulary,
// continue with --resume, then eval the model file, which carries the
// tokenizer.
func TestTrainEvalCommands(t *testing.T) {
	d := sharedData(t)
	tokPath := filepath.Join(d, "models", "tok512.bin")
	text := filepath.Join(t.TempDir(), "corpus.txt")
	os.WriteFile(text, []byte(shakespeare(t)[:30000]), 0o644)
	s := &spec.Spec{Name: "tiny", Vocab: 512, Dim: 16, Layers: 1, Heads: 2, KVHeads: 1, FFNDim: 32, MaxSeq: 32}
	s.SetDefaults()
	out := filepath.Join(t.TempDir(), "run")
	stdout, stderr, err := runCmd(t, s, "train", "--data", text, "--tokenizer", tokPath, "--steps", "6", "--out", out,
		"--batch", "2", "--seq", "32", "--eval-every", "3", "--checkpoint-every", "3", "--threads", "1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "trained 6 steps") || !strings.Contains(stderr, "step 6/6") {
		t.Fatalf("stdout %q stderr %q", stdout, stderr)
	}
	// The spec's 100 warm-up steps would outlast the run: a tenth of it.
	if !strings.Contains(stderr, "warming up for 0") {
		t.Errorf("no note of the shortened warm-up in %q", stderr)
	}
	for _, f := range []string{ModelFile, StateFile, MetricsFile, PlotFile, RunFile, DataFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("run folder lacks %s", f)
		}
	}
	stdout, _, err = runCmd(t, s, "train", "--resume", out, "--steps", "8", "--quiet")
	if err != nil || !strings.Contains(stdout, "trained 8 steps") {
		t.Fatalf("resume: %q %v", stdout, err)
	}
	// run.json holds the settings now in force (8 steps), so that a later
	// resume keeps them.
	ri, _ := ReadRunInfo(out)
	if ri.Train.BatchSize != 2 || ri.Steps != 8 || ri.Train.WarmupSteps != 0 {
		t.Fatalf("run.json: %+v", ri)
	}
	if _, _, err := runCmd(t, s, "train", "--resume", out, "--steps", "5", "--quiet"); err == nil || !strings.Contains(err.Error(), "--steps 5: the run in "+out+" has done 8 steps already") {
		t.Errorf("resume with fewer steps than done: %v", err)
	}
	stdout, _, err = runCmd(t, s, "eval", "--model", filepath.Join(out, ModelFile), "--data", text, "--max-batches", "3")
	if err != nil || !strings.Contains(stdout, "perplexity") {
		t.Fatalf("eval: %q %v", stdout, err)
	}
	// From the token file with no --tokenizer: a GGUF --init lends its
	// vocabulary to the new model file; without one, a note says the model
	// file will carry none.
	tokFile := filepath.Join(out, DataFile)
	out2 := filepath.Join(t.TempDir(), "run2")
	if _, _, err = runCmd(t, s, "train", "--data", tokFile, "--init", filepath.Join(out, ModelFile), "--steps", "1", "--out", out2,
		"--batch", "2", "--seq", "32", "--quiet"); err != nil {
		t.Fatal(err)
	}
	if stdout, _, err = runCmd(t, s, "eval", "--model", filepath.Join(out2, ModelFile), "--data", text, "--max-batches", "1"); err != nil {
		t.Fatalf("eval of a model trained from a token file with a GGUF --init: %v", err)
	}
	_, stderr, err = runCmd(t, s, "train", "--data", tokFile, "--steps", "1", "--out", filepath.Join(t.TempDir(), "run3"),
		"--batch", "2", "--seq", "32")
	if err != nil || !strings.Contains(stderr, "will carry none") {
		t.Fatalf("train from a token file without a tokenizer: %v, stderr %q", err, stderr)
	}
	// The masked objective with tok512 needs --mask-id: it has no mask token.
	ms := *s
	ms.Objective = model.ObjectiveMasked
	_, _, err = runCmd(t, &ms, "train", "--data", text, "--tokenizer", tokPath, "--steps", "2", "--out", filepath.Join(t.TempDir(), "m"), "--quiet")
	if err == nil || !strings.Contains(err.Error(), "--mask-id") {
		t.Fatalf("masked without mask id: %v", err)
	}
	mrun := filepath.Join(t.TempDir(), "m")
	_, _, err = runCmd(t, &ms, "train", "--data", text, "--tokenizer", tokPath, "--steps", "2", "--out", mrun,
		"--quiet", "--mask-id", "3", "--batch", "2", "--seq", "16")
	if err != nil {
		t.Fatalf("masked run: %v", err)
	}
	// The model file keeps its mask token: eval needs no --mask-id, gives
	// the loss it gives with the right one, and refuses another.
	mfile := filepath.Join(mrun, ModelFile)
	evalOut := func(extra ...string) (string, error) {
		out, _, err := runCmd(t, &ms, append([]string{"eval", "--model", mfile, "--data", text, "--max-batches", "2", "--seq", "16"}, extra...)...)
		return out, err
	}
	plain, err := evalOut()
	if err != nil {
		t.Fatalf("eval of the masked model without --mask-id: %v", err)
	}
	if same, err := evalOut("--mask-id", "3"); err != nil || same != plain {
		t.Errorf("eval --mask-id 3: %q %v, without: %q", same, err, plain)
	}
	if _, err := evalOut("--mask-id", "4"); err == nil || !strings.Contains(err.Error(), "was trained with mask token 3") {
		t.Errorf("eval with another mask id: %v", err)
	}
}

func TestCommandErrors(t *testing.T) {
	s := &spec.Spec{Name: "tiny", Vocab: 512, Dim: 16, Layers: 1, Heads: 2, KVHeads: 1, FFNDim: 32, MaxSeq: 32}
	s.SetDefaults()
	d := sharedData(t)
	big := &spec.Spec{Name: "big", Vocab: 1000, Dim: 16, Layers: 1, Heads: 2, KVHeads: 1, FFNDim: 32, MaxSeq: 32}
	big.SetDefaults()
	text := filepath.Join(d, "text", "tinyshakespeare.txt")
	tok := filepath.Join(d, "models", "tok512.bin")
	for _, c := range []struct {
		spec *spec.Spec
		args []string
		want string
	}{
		{s, []string{"train", "--data", text, "--out", t.TempDir()}, "--steps N is required"},
		{s, []string{"train", "--steps", "3", "--out", t.TempDir()}, "--data FILE is required"},
		{big, []string{"train", "--data", text, "--tokenizer", tok, "--steps", "3", "--out", t.TempDir()}, "holds 512 tokens but the model's vocab size is 1000"},
		{s, []string{"train", "--resume", t.TempDir()}, "not a run folder"},
		{s, []string{"train", "--data", text, "--steps", "3", "--threads", "0"}, "--threads"},
		{s, []string{"train", "--data", text, "--tokenizer", tok, "--steps", "3", "--weight-decay", "NaN", "--out", filepath.Join(t.TempDir(), "n")}, "--weight-decay: must be a number"},
		{s, []string{"train", "--data", text, "--tokenizer", tok, "--steps", "3", "--grad-clip", "Inf", "--out", filepath.Join(t.TempDir(), "n")}, "--grad-clip: must be a number"},
		{s, []string{"train", "--data", text, "--tokenizer", tok, "--steps", "3", "--beta1", "NaN", "--out", filepath.Join(t.TempDir(), "n")}, "--beta1"},
		{s, []string{"train", "--data", text, "--tokenizer", tok, "--steps", "3", "--min-lr", "NaN", "--out", filepath.Join(t.TempDir(), "n")}, "--min-lr"},
		{s, []string{"train", "--data", text, "--tokenizer", tok, "--steps", "3", "--batch", "100000", "--out", filepath.Join(t.TempDir(), "n")}, "--batch: must be between 1 and 65536"},
		{s, []string{"train", "--data", text, "--tokenizer", tok, "--steps", "3", "--eval-every", "-1", "--out", filepath.Join(t.TempDir(), "n")}, "--eval-every"},
		{s, []string{"eval", "--data", text}, "--model FILE is required"},
		{s, []string{"eval", "--model", filepath.Join(d, "models", "stories260K.bin"), "--data", text}, "dim"},
		{s, []string{"eval", "--model", filepath.Join(d, "models", "stories260K.bin"), "--data", text, "--generic"}, "no tokenizer"},
	} {
		_, _, err := runCmd(t, c.spec, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one containing %q", c.args, err, c.want)
		}
	}
}

// TestEvalStories: the stories260K checkpoint on a TinyStories-like text:
// eval's loss equals the mean −log p of each next token computed one token
// at a time through an inference session.
func TestEvalStories(t *testing.T) {
	d := sharedData(t)
	s := &spec.Spec{Name: "stories", Vocab: 512, Dim: 64, Layers: 5, Heads: 8, KVHeads: 4, FFNDim: 172, MaxSeq: 512, TieEmbeddings: true}
	s.SetDefaults()
	const story = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends."
	text := filepath.Join(t.TempDir(), "t.txt")
	os.WriteFile(text, []byte(story), 0o644)
	modelPath, tokPath := filepath.Join(d, "models", "stories260K.bin"), filepath.Join(d, "models", "tok512.bin")
	stdout, _, err := runCmd(t, s, "eval", "--model", modelPath, "--tokenizer", tokPath, "--data", text)
	if err != nil {
		t.Fatal(err)
	}
	var loss, ppl float64
	if _, err := sscanf(stdout, &loss, &ppl); err != nil {
		t.Fatalf("eval output %q: %v", stdout, err)
	}

	p, _, err := checkpoint.Load(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	m, err := generic.New(p)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(tokPath, 512)
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := tok.Encode(story, true, false)
	ss := m.NewSession()
	var want float64
	for i := 0; i+1 < len(ids); i++ {
		logits := ss.Forward(ids[i], i)
		mx := logits[0]
		for _, v := range logits {
			mx = max(mx, v)
		}
		var z float64
		for _, v := range logits {
			z += math.Exp(float64(v - mx))
		}
		want += math.Log(z) - float64(logits[ids[i+1]]-mx)
	}
	want /= float64(len(ids) - 1)
	if math.Abs(loss-want) > 1e-4 || math.Abs(ppl-math.Exp(want)) > 1e-3*ppl {
		t.Fatalf("eval loss %v perplexity %v, session loss %v", loss, ppl, want)
	}
}

func sscanf(s string, loss, ppl *float64) (int, error) {
	return fmt.Sscanf(s, "loss %f nats/token  perplexity %f", loss, ppl)
}

// TestOutFolder: a new run refuses a folder that holds other files (and
// writes nothing there), and a run that fails early leaves no folder.
func TestOutFolder(t *testing.T) {
	d := sharedData(t)
	tokPath := filepath.Join(d, "models", "tok512.bin")
	dir := t.TempDir()
	text := filepath.Join(dir, "corpus.txt")
	os.WriteFile(text, []byte(shakespeare(t)[:30000]), 0o644)
	s := &spec.Spec{Name: "tiny", Vocab: 512, Dim: 16, Layers: 1, Heads: 2, KVHeads: 1, FFNDim: 32, MaxSeq: 32}
	s.SetDefaults()
	args := func(out string) []string {
		return []string{"train", "--data", text, "--tokenizer", tokPath, "--steps", "1", "--out", out, "--batch", "2", "--seq", "32", "--quiet"}
	}
	full := filepath.Join(dir, "full")
	os.Mkdir(full, 0o755)
	os.WriteFile(filepath.Join(full, ModelFile), []byte("a base model"), 0o644)
	if _, _, err := runCmd(t, s, args(full)...); err == nil || !strings.Contains(err.Error(), "not empty and holds no run") {
		t.Fatalf("a folder with other files: %v", err)
	}
	if es, _ := os.ReadDir(full); len(es) != 1 {
		t.Errorf("the refused folder holds %d entries", len(es))
	}
	if b, _ := os.ReadFile(filepath.Join(full, ModelFile)); string(b) != "a base model" {
		t.Error("the file in the refused folder was written over")
	}
	// Fails after tokenizing (a corpus too short for one window): no folder.
	short := filepath.Join(dir, "short.txt")
	os.WriteFile(short, []byte("a few words"), 0o644)
	gone := filepath.Join(dir, "gone")
	a := args(gone)
	a[2] = short
	if _, _, err := runCmd(t, s, a...); err == nil {
		t.Fatal("a corpus too short was accepted")
	}
	if _, err := os.Stat(gone); err == nil {
		t.Errorf("a failed run left %s", gone)
	}
}

// On --resume, a bad value read from run.json is reported under its file
// and field, not under a flag the user never typed; a flag given on the
// command line is still named as the flag (and may repair the file's value).
func TestResumeNamesRunFile(t *testing.T) {
	d := sharedData(t)
	tokPath := filepath.Join(d, "models", "tok512.bin")
	text := filepath.Join(t.TempDir(), "corpus.txt")
	os.WriteFile(text, []byte(shakespeare(t)[:20000]), 0o644)
	s := &spec.Spec{Name: "tiny", Vocab: 512, Dim: 16, Layers: 1, Heads: 2, KVHeads: 1, FFNDim: 32, MaxSeq: 32}
	s.SetDefaults()
	out := filepath.Join(t.TempDir(), "run")
	if _, _, err := runCmd(t, s, "train", "--data", text, "--tokenizer", tokPath, "--steps", "2", "--out", out,
		"--batch", "2", "--seq", "32", "--lr", "0.002", "--min-lr", "0.0002", "--threads", "1", "--quiet"); err != nil {
		t.Fatal(err)
	}
	runFile := filepath.Join(out, RunFile)
	good, err := os.ReadFile(runFile)
	if err != nil {
		t.Fatal(err)
	}
	state, _ := os.ReadFile(filepath.Join(out, StateFile))
	// edit writes run.json with one field of its train block (or, for
	// "steps", the top level) replaced.
	edit := func(field string, v any) {
		var ri map[string]any
		if err := json.Unmarshal(good, &ri); err != nil {
			t.Fatal(err)
		}
		if field == "steps" {
			ri[field] = v
		} else {
			ri["train"].(map[string]any)[field] = v
		}
		b, _ := json.Marshal(ri)
		if err := os.WriteFile(runFile, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		field string
		v     any
		flags []string
		want  string // "" = resumes
	}{
		{"lr", -0.001, nil, runFile + `: field "train.lr": must be > 0, got -0.001`},
		{"lr", -0.001, []string{"--lr", "-5"}, "--lr: must be > 0, got -5"},
		{"lr", -0.001, []string{"--lr", "0.003"}, ""},
		{"min_lr", 0.5, nil, runFile + `: field "train.min_lr": must be between 0 and train.lr 0.002, got 0.5`},
		{"min_lr", 0.5, []string{"--lr", "0.001"}, runFile + `: field "train.min_lr": must be between 0 and --lr 0.001, got 0.5`},
		{"batch_size", 0, nil, runFile + `: field "train.batch_size": must be between 1 and 65536, got 0`},
		{"seq_len", 33, nil, runFile + `: field "train.seq_len": must be between 1 and the model's max_seq 32, got 33`},
		{"beta2", 1, nil, runFile + `: field "train.beta2": must be in [0, 1), got 1`},
		{"steps", 0, nil, runFile + `: field "steps": must be ≥ 1, got 0`},
		{"steps", 0, []string{"--steps", "2"}, ""},
	} {
		edit(c.field, c.v)
		_, _, err := runCmd(t, s, append([]string{"train", "--resume", out, "--quiet"}, c.flags...)...)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s %v with %v: %v", c.field, c.v, c.flags, err)
		case c.want != "" && (err == nil || err.Error() != c.want):
			t.Errorf("%s %v with %v: error %v, want %q", c.field, c.v, c.flags, err, c.want)
		}
		if b, _ := os.ReadFile(filepath.Join(out, StateFile)); !bytes.Equal(b, state) {
			t.Fatalf("%s %v with %v: the state changed", c.field, c.v, c.flags)
		}
	}
}

// A masked run's mask token is checked against the vocabulary the same way.
func TestCheckMaskID(t *testing.T) {
	s := smallSpec(40, model.ObjectiveMasked)
	cfg := smallConfig(s, "corpus.txt", nil, "out", 4)
	cfg.MaskID = 40
	if err := cfg.check(); err == nil || err.Error() != "--mask-id: must be below the vocabulary size 40, got 40" {
		t.Errorf("flag: %v", err)
	}
	cfg.saved, cfg.runFile = &RunInfo{Train: cfg.Train, Steps: cfg.Steps, MaskID: 40}, filepath.Join("out", RunFile)
	if err := cfg.check(); err == nil || err.Error() != `out/run.json: field "mask_id": must be below the vocabulary size 40, got 40` {
		t.Errorf("run.json: %v", err)
	}
}

// TestEvalInterrupted: eval under a cancelled context (Ctrl-C) stops before
// its first window with an error saying so, instead of running on.
func TestEvalInterrupted(t *testing.T) {
	d := sharedData(t)
	s := &spec.Spec{Name: "stories", Vocab: 512, Dim: 64, Layers: 5, Heads: 8, KVHeads: 4, FFNDim: 172, MaxSeq: 512, TieEmbeddings: true}
	s.SetDefaults()
	root := &cobra.Command{Use: "stories", SilenceErrors: true, SilenceUsage: true}
	root.AddCommand(Commands("stories", s, nil)...)
	var o bytes.Buffer
	root.SetOut(&o)
	root.SetErr(&o)
	root.SetArgs([]string{"eval", "--model", filepath.Join(d, "models", "stories260K.bin"),
		"--tokenizer", filepath.Join(d, "models", "tok512.bin"), "--data", filepath.Join(d, "text", "tinyshakespeare.txt")})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := root.ExecuteContext(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "evaluation interrupted after 0 of") {
		t.Errorf("eval after Ctrl-C: %v (output %q)", err, o.String())
	}
}

// TestMaskIDCausal: --mask-id on a next-token model is refused, not ignored.
func TestMaskIDCausal(t *testing.T) {
	s := &spec.Spec{Name: "tiny", Vocab: 512, Dim: 16, Layers: 1, Heads: 2, KVHeads: 1, FFNDim: 32, MaxSeq: 32}
	s.SetDefaults()
	for _, args := range [][]string{
		{"train", "--data", "x.txt", "--steps", "1", "--mask-id", "3"},
		{"eval", "--model", "m.gguf", "--data", "x.txt", "--mask-id", "3"},
	} {
		if _, _, err := runCmd(t, s, args...); err == nil || !strings.HasPrefix(err.Error(), "--mask-id: this model predicts the next token") {
			t.Errorf("%v: %v", args, err)
		}
	}
}
