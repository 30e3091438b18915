package posttrain

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/train"
	"github.com/modelc/modelc/tokenizer"
)

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "tiny", SilenceErrors: true, SilenceUsage: true}
	root.AddCommand(Commands("tiny", tinySpec(), nil)...)
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// TestCommands runs every stage from the command line on generated data:
// short runs, resume, scoring and evaluation, and bad input.
func TestCommands(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if out, err := runCmd(t, "tasks", "gen", "--dir", data, "--n", "40", "--n-val", "8", "--kinds", "add"); err != nil || !strings.Contains(out, "40 train problems") {
		t.Fatalf("tasks gen: %q %v", out, err)
	}
	// A base model file carrying the tokenizer.
	tok := tok512(t).(*tokenizer.SentencePiece)
	base := filepath.Join(dir, "base.gguf")
	if err := checkpoint.SaveGGUF(base, train.InitParams(tinySpec(), 1), tok.GGUFMetadata(), false); err != nil {
		t.Fatal(err)
	}
	f := func(name string) string { return filepath.Join(data, name) }
	sft := filepath.Join(dir, "sft")
	common := []string{"--batch", "2", "--seq", "128", "-q"}
	if _, err := runCmd(t, append([]string{"sft", "--init", base, "--data", f("sft_train.jsonl"), "--val", f("sft_val.jsonl"), "--steps", "4", "--stop-after", "2", "--out", sft}, common...)...); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "sft", "--resume", sft, "-q")
	if err != nil || !strings.Contains(out, "sft: 4 steps") || !strings.Contains(out, "val_loss") {
		t.Fatalf("sft resume: %q %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(sft, train.PlotFile)); err != nil {
		t.Errorf("the SFT run has no loss curve: %v", err)
	}
	// val_loss is pretraining's field of a metrics line, not again in extra.
	ml, _ := os.ReadFile(filepath.Join(sft, train.MetricsFile))
	if !bytes.Contains(ml, []byte(`"val_loss"`)) {
		t.Error("no val_loss in the SFT metrics")
	}
	for _, line := range strings.Split(string(ml), "\n") {
		if strings.Count(line, `"val_loss"`) > 1 {
			t.Errorf("val_loss twice in %s", line)
		}
	}
	sftModel := filepath.Join(sft, "model.gguf")
	rm := filepath.Join(dir, "rm")
	if out, err := runCmd(t, append([]string{"reward", "train", "--init", sftModel, "--data", f("rankings_train.jsonl"), "--val", f("prefs_val.jsonl"), "--steps", "3", "--out", rm}, common...)...); err != nil || !strings.Contains(out, "val_acc") {
		t.Fatalf("reward train: %q %v", out, err)
	}
	if out, err := runCmd(t, "reward", "score", "--model", rm, "--data", f("prefs_val.jsonl")); err != nil || !strings.Contains(out, "accuracy") {
		t.Fatalf("reward score: %q %v", out, err)
	}
	if out, err := runCmd(t, append([]string{"dpo", "--init", sftModel, "--data", f("prefs_train.jsonl"), "--steps", "2", "--out", filepath.Join(dir, "dpo")}, common...)...); err != nil || !strings.Contains(out, "dpo: 2 steps") {
		t.Fatalf("dpo: %q %v", out, err)
	}
	if out, err := runCmd(t, append([]string{"grpo", "--init", sftModel, "--problems", f("problems_train.jsonl"), "--val", f("problems_val.jsonl"), "--g", "2", "--max-new", "8", "--steps", "1", "--out", filepath.Join(dir, "grpo")}, common...)...); err != nil || !strings.Contains(out, "val_acc") {
		t.Fatalf("grpo: %q %v", out, err)
	}
	// GRPO scored by a reward model keeps it on resume (it fell back to
	// the verifiable reward): run.json names the folder.
	grpoRM := filepath.Join(dir, "grpo-rm")
	if out, err := runCmd(t, append([]string{"grpo", "--init", sftModel, "--problems", f("problems_train.jsonl"), "--reward-model", rm, "--g", "2", "--max-new", "8", "--steps", "2", "--stop-after", "1", "--checkpoint-every", "1", "--out", grpoRM}, common...)...); err != nil {
		t.Fatalf("grpo --reward-model: %q %v", out, err)
	}
	var saved struct {
		RewardModel string `json:"reward_model"`
		Hyper       struct {
			Steps int     `json:"steps"`
			MinLR float64 `json:"min_lr"`
		} `json:"hyper"`
	}
	readRun := func(dir string) {
		t.Helper()
		saved.RewardModel, saved.Hyper.Steps, saved.Hyper.MinLR = "", 0, 0
		b, err := os.ReadFile(filepath.Join(dir, RunFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &saved); err != nil {
			t.Fatal(err)
		}
	}
	if readRun(grpoRM); saved.RewardModel != rm {
		t.Errorf("grpo run.json reward_model %q, want %q", saved.RewardModel, rm)
	}
	if out, err := runCmd(t, "grpo", "--resume", grpoRM, "-q"); err != nil || !strings.Contains(out, "grpo: 2 steps") {
		t.Fatalf("grpo --reward-model resume: %q %v", out, err)
	}
	// Another stage's folder is refused, not trained as this stage's.
	if _, err := runCmd(t, "dpo", "--resume", sft, "-q"); err == nil || !strings.Contains(err.Error(), "holds a sft run, not a dpo run") {
		t.Errorf("dpo --resume of an SFT run: %v", err)
	}
	// A new --steps is saved for later resumes; fewer than done is refused.
	if _, err := runCmd(t, "sft", "--resume", sft, "--steps", "5", "-q"); err != nil {
		t.Fatal(err)
	}
	if readRun(sft); saved.Hyper.Steps != 5 {
		t.Errorf("run.json steps %d after a resume to 5", saved.Hyper.Steps)
	}
	if _, err := runCmd(t, "sft", "--resume", sft, "--steps", "3", "-q"); err == nil || !strings.Contains(err.Error(), "--steps 3: the run in "+sft+" has done 5 steps already") {
		t.Errorf("resume with fewer steps than done: %v", err)
	}
	// A folder whose run stopped before its first checkpoint says so, to
	// a resume and to a new run.
	early := filepath.Join(dir, "early")
	os.MkdirAll(early, 0o755)
	b, _ := os.ReadFile(filepath.Join(sft, RunFile))
	os.WriteFile(filepath.Join(early, RunFile), b, 0o644)
	if _, err := runCmd(t, "sft", "--resume", early, "-q"); err == nil || !strings.Contains(err.Error(), "no checkpoint in it") {
		t.Errorf("resume before the first checkpoint: %v", err)
	}
	if _, err := runCmd(t, append([]string{"sft", "--init", base, "--data", f("sft_train.jsonl"), "--steps", "1", "--out", early}, common...)...); err == nil || !strings.Contains(err.Error(), "stopped before its first checkpoint") {
		t.Errorf("new run into a folder stopped before its first checkpoint: %v", err)
	}
	// The default final rate follows a typed peak rate (it was fixed at
	// the built-in peak's tenth, above a low --lr).
	lowLR := filepath.Join(dir, "lowlr")
	if out, err := runCmd(t, append([]string{"dpo", "--init", sftModel, "--data", f("prefs_train.jsonl"), "--lr", "1e-6", "--steps", "1", "--out", lowLR}, common...)...); err != nil {
		t.Fatalf("dpo --lr 1e-6: %q %v", out, err)
	}
	if readRun(lowLR); math.Abs(saved.Hyper.MinLR-1e-7) > 1e-12 {
		t.Errorf("min_lr %g after --lr 1e-6, want 1e-7", saved.Hyper.MinLR)
	}
	// A problem without an answer is refused, not read as 0.
	noAns := filepath.Join(dir, "noans.jsonl")
	os.WriteFile(noAns, []byte(`{"kind":"add","prompt":"What is 1+1?"}`+"\n"), 0o644)
	if _, err := runCmd(t, "tasks", "pairs", "--model", sftModel, "--problems", noAns, "--out", filepath.Join(dir, "x.jsonl")); err == nil || !strings.Contains(err.Error(), `noans.jsonl:1: "answer" is missing`) {
		t.Errorf("a problem without an answer: %v", err)
	}
	// An --out that cannot be written fails before the sampling.
	if _, err := runCmd(t, "tasks", "pairs", "--model", sftModel, "--problems", f("problems_val.jsonl"), "--out", filepath.Join(dir, "no", "p.jsonl")); err == nil || !strings.HasPrefix(err.Error(), "--out: create ") {
		t.Errorf("tasks pairs into a missing folder: %v", err)
	}
	// A distillation that fails before its first step leaves no folder.
	if _, err := runCmd(t, "distill", "--teacher", sftModel, "--fresh", "--data", filepath.Join(dir, "nope.txt"), "--steps", "1", "--out", filepath.Join(dir, "dnope")); err == nil {
		t.Error("distill of a missing corpus succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "dnope")); err == nil {
		t.Error("a failed distillation left its folder")
	}
	if out, err := runCmd(t, "tasks", "eval", "--model", sftModel, "--problems", f("problems_val.jsonl"), "--max-new", "8", "--vs", base, "--reward-model", rm); err != nil || !strings.Contains(out, "exact match") || !strings.Contains(out, "win rate") {
		t.Fatalf("tasks eval: %q %v", out, err)
	}
	if out, err := runCmd(t, append([]string{"distill", "--teacher", filepath.Join(dataDir(t), "models", "stories260K.bin"), "--fresh", "--tokenizer", filepath.Join(dataDir(t), "models", "tok512.bin"),
		"--data", corpus(t, dir, 10000), "--steps", "2", "--out", filepath.Join(dir, "distill")}, common...)...); err != nil || !strings.Contains(out, "distill: 2 steps") {
		t.Fatalf("distill: %q %v", out, err)
	}
	// A fresh student without --tokenizer takes the GGUF teacher's vocabulary.
	if out, err := runCmd(t, append([]string{"distill", "--teacher", sftModel, "--fresh",
		"--data", corpus(t, dir, 10000), "--steps", "1", "--out", filepath.Join(dir, "distill2")}, common...)...); err != nil || !strings.Contains(out, "distill: 1 steps") {
		t.Fatalf("distill --fresh with the teacher's vocabulary: %q %v", out, err)
	}

	// Bad input: the line number of a malformed line; nothing written.
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(`{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}`+"\n"+`{"messages": [}`+"\n"), 0o644)
	_, err = runCmd(t, "sft", "--init", base, "--data", bad, "--steps", "1", "--out", filepath.Join(dir, "bad"))
	if err == nil || !strings.Contains(err.Error(), "bad.jsonl:2: malformed JSON") {
		t.Fatalf("malformed line: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad", "state.bin")); err == nil {
		t.Fatal("a failed run left a checkpoint")
	}
	// NaN and infinite hyperparameters are named, and no folder is left.
	for _, c := range [][]string{
		{"sft", "--init", base, "--data", f("sft_train.jsonl"), "--weight-decay", "NaN"},
		{"sft", "--init", base, "--data", f("sft_train.jsonl"), "--grad-clip", "Inf"},
		{"dpo", "--init", sftModel, "--data", f("prefs_train.jsonl"), "--beta", "NaN"},
		{"grpo", "--init", sftModel, "--problems", f("problems_train.jsonl"), "--clip-eps", "NaN"},
		{"grpo", "--init", sftModel, "--problems", f("problems_train.jsonl"), "--temperature", "Inf"},
		{"distill", "--teacher", sftModel, "--fresh", "--data", corpus(t, dir, 1000), "--alpha", "NaN"},
		// Conversations whose assistant turns all start beyond --seq.
		{"sft", "--init", base, "--data", f("sft_train.jsonl"), "--batch", "2", "--seq", "4"},
	} {
		out := filepath.Join(dir, "nan")
		flag := c[len(c)-2]
		if _, err := runCmd(t, append(c, "--steps", "1", "--out", out)...); err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("%v: %v", c, err)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v left %s", c, out)
		}
	}
	for _, c := range [][]string{
		{"reward", "score", "--model", rm, "--data", f("prefs_val.jsonl"), "--seq", "0"},
		{"tasks", "eval", "--model", sftModel, "--problems", f("problems_val.jsonl"), "--max-new", "0"},
		{"tasks", "eval", "--model", sftModel, "--problems", f("problems_val.jsonl"), "--vs", base},
		{"tasks", "pairs", "--model", sftModel, "--problems", f("problems_val.jsonl"), "--out", filepath.Join(dir, "p.jsonl"), "--max-new", "-1"},
	} {
		want := c[len(c)-2]
		if want == "--vs" {
			want = "--reward-model"
		}
		if _, err := runCmd(t, c...); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v", c, err)
		}
	}
	if _, err := runCmd(t, "sft", "--data", bad, "--steps", "1"); err == nil || !strings.Contains(err.Error(), "--init") {
		t.Fatalf("no --init: %v", err)
	}
	if _, err := runCmd(t, "sft", "--resume", filepath.Join(dir, "nothing")); err == nil || !strings.Contains(err.Error(), "not a post-training run folder") {
		t.Fatalf("bad --resume: %v", err)
	}
}

// TestResumeNamesRunFile: a resumed stage's bad run.json value is named by
// file and field, not by a flag the user never typed; a flag given is named
// as the flag and can repair the value; a failed resume changes nothing in
// the run folder.
func TestResumeNamesRunFile(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if _, err := runCmd(t, "tasks", "gen", "--dir", data, "--n", "8", "--n-val", "2", "--kinds", "add"); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "base.gguf")
	if err := checkpoint.SaveGGUF(base, train.InitParams(tinySpec(), 1), tok512(t).(*tokenizer.SentencePiece).GGUFMetadata(), false); err != nil {
		t.Fatal(err)
	}
	f := func(name string) string { return filepath.Join(data, name) }
	stages := map[string][]string{
		"grpo":    {"grpo", "--problems", f("problems_train.jsonl"), "--g", "2", "--max-new", "4"},
		"dpo":     {"dpo", "--data", f("prefs_train.jsonl")},
		"distill": {"distill", "--teacher", base, "--data", corpus(t, dir, 2000)},
	}
	good := map[string][]byte{}
	for stage, args := range stages {
		out := filepath.Join(dir, stage)
		if _, err := runCmd(t, append(args, "--init", base, "--batch", "2", "--seq", "64", "--lr", "0.002", "--min-lr", "0.0002",
			"--steps", "1", "--out", out, "-q")...); err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		b, err := os.ReadFile(filepath.Join(out, RunFile))
		if err != nil {
			t.Fatal(err)
		}
		good[stage] = b
	}
	// folder reads every file of a run folder.
	folder := func(out string) map[string]string {
		files := map[string]string{}
		es, _ := os.ReadDir(out)
		for _, e := range es {
			b, _ := os.ReadFile(filepath.Join(out, e.Name()))
			files[e.Name()] = string(b)
		}
		return files
	}
	for _, c := range []struct {
		stage, field string // field: a dotted path into run.json
		v            any
		flags        []string
		want         string // after "STAGE/run.json: "; "" = resumes
	}{
		{"grpo", "hyper.lr", -0.001, nil, `field "hyper.lr": must be > 0, got -0.001`},
		// Only --steps and --tokenizer replace a resumed run's settings; any
		// other setting typed is refused rather than dropped.
		{"grpo", "hyper.lr", 0.002, []string{"--lr", "0.003"}, "--lr: a resumed run keeps the settings in " + filepath.Join(dir, "grpo", RunFile) + " (only --steps and --tokenizer may change); edit that file or start a new run"},
		{"grpo", "hyper.min_lr", 0.5, nil, `field "hyper.min_lr": must be between 0 and hyper.lr 0.002, got 0.5`},
		{"grpo", "batch", 0, nil, `field "batch": must be ≥ 1, got 0`},
		{"grpo", "seq", 129, nil, `field "seq": must be between 2 and the model's max_seq 128, got 129`},
		{"grpo", "clip_eps", 1, nil, `field "clip_eps": must be in (0, 1), got 1`},
		{"grpo", "g", 1, nil, `field "g": a group needs at least 2 completions, got 1`},
		{"dpo", "beta", -1, nil, `field "beta": must be > 0, got -1`},
		{"distill", "alpha", 2, nil, `field "alpha": must be in [0, 1], got 2`},
		{"distill", "temperature", 0, nil, `field "temperature": must be > 0, got 0`},
		{"dpo", "hyper.steps", 0, nil, `field "hyper.steps": must be ≥ 1, got 0`},
		{"dpo", "hyper.steps", 0, []string{"--steps", "-1"}, "--steps: must be ≥ 1, got -1"},
		{"dpo", "hyper.steps", 0, []string{"--steps", "1"}, ""},
	} {
		out := filepath.Join(dir, c.stage)
		runFile := filepath.Join(out, RunFile)
		var m map[string]any
		if err := json.Unmarshal(good[c.stage], &m); err != nil {
			t.Fatal(err)
		}
		path := strings.Split(c.field, ".")
		obj := m
		for _, k := range path[:len(path)-1] {
			obj = obj[k].(map[string]any)
		}
		obj[path[len(path)-1]] = c.v
		b, _ := json.Marshal(m)
		if err := os.WriteFile(runFile, b, 0o644); err != nil {
			t.Fatal(err)
		}
		before := folder(out)
		_, err := runCmd(t, append([]string{c.stage, "--resume", out, "-q"}, c.flags...)...)
		want := c.want
		if want != "" && !strings.HasPrefix(want, "--") {
			want = runFile + ": " + want
		}
		switch {
		case want == "" && err != nil:
			t.Errorf("%s %s %v with %v: %v", c.stage, c.field, c.v, c.flags, err)
		case want != "" && (err == nil || err.Error() != want):
			t.Errorf("%s %s %v with %v: error %v, want %q", c.stage, c.field, c.v, c.flags, err, want)
		case want != "" && !reflect.DeepEqual(folder(out), before):
			t.Errorf("%s %s %v with %v: the run folder changed", c.stage, c.field, c.v, c.flags)
		}
	}
}

// Every run.json field runFields names is one a stage saves.
func TestRunFields(t *testing.T) {
	var saved []map[string]any
	for _, cfg := range []any{SFTConfig{}, RewardConfig{}, DPOConfig{}, GRPOConfig{}, DistillConfig{}} {
		var m map[string]any
		b, _ := json.Marshal(cfg)
		json.Unmarshal(b, &m)
		saved = append(saved, m)
	}
outer:
	for flag, field := range runFields {
		for _, m := range saved {
			path := strings.Split(field, ".")
			for _, k := range path[:len(path)-1] {
				m, _ = m[k].(map[string]any)
			}
			if _, ok := m[path[len(path)-1]]; ok {
				continue outer
			}
		}
		t.Errorf("--%s: no stage saves %q", flag, field)
	}
}

// TestPairsOutIsInput: tasks pairs --out naming its own --problems file is
// refused before sampling, and the problems survive.
func TestPairsOutIsInput(t *testing.T) {
	dir := t.TempDir()
	tok := tok512(t).(*tokenizer.SentencePiece)
	base := filepath.Join(dir, "base.gguf")
	if err := checkpoint.SaveGGUF(base, train.InitParams(tinySpec(), 1), tok.GGUFMetadata(), false); err != nil {
		t.Fatal(err)
	}
	probs := filepath.Join(dir, "problems.jsonl")
	text := `{"kind":"add","prompt":"What is 4 + 5?","answer":9}` + "\n"
	os.WriteFile(probs, []byte(text), 0o644)
	_, err := runCmd(t, "tasks", "pairs", "--model", base, "--problems", probs, "--out", probs, "--n", "1", "--max-new", "1")
	if err == nil || !strings.Contains(err.Error(), "--out "+probs+" is also an input") {
		t.Errorf("--out equal to --problems: %v", err)
	}
	if b, _ := os.ReadFile(probs); string(b) != text {
		t.Errorf("the problems file was overwritten: %q", b)
	}
}

// TestGenBadFlagsMakeNoFolder: tasks gen refused for a bad flag leaves no
// new, empty --dir behind.
func TestGenBadFlagsMakeNoFolder(t *testing.T) {
	for _, args := range [][]string{{"--rejected", "bogus"}, {"--kinds", "bogus"}} {
		dir := filepath.Join(t.TempDir(), "data")
		if _, err := runCmd(t, append([]string{"tasks", "gen", "--dir", dir, "--n", "4", "--n-val", "2"}, args...)...); err == nil || !strings.Contains(err.Error(), "bogus") {
			t.Errorf("%v: %v", args, err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%v: the refused run left %s (%v)", args, dir, err)
		}
	}
}

// TestGenFailsWhole: tasks gen that cannot make its held-out split names
// the flag and leaves the folder's old data whole (it used to replace the
// training files first).
func TestGenFailsWhole(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := runCmd(t, "tasks", "gen", "--dir", dir, "--n", "10", "--n-val", "2", "--kinds", "add"); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(filepath.Join(dir, "problems_train.jsonl"))
	_, err := runCmd(t, "tasks", "gen", "--dir", dir, "--digits", "1", "--kinds", "add", "--n", "5", "--n-val", "100")
	if err == nil || !strings.HasPrefix(err.Error(), "--n-val 100: ") {
		t.Errorf("too many held-out problems: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "problems_train.jsonl")); !bytes.Equal(b, old) {
		t.Error("the failed run replaced problems_train.jsonl")
	}
}

// TestFlagsNotIgnored: flag combinations that one of the flags would have
// been silently dropped from are refused, naming the flags.
func TestFlagsNotIgnored(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"distill", "--teacher", "t.gguf", "--fresh", "--init", "s.gguf", "--data", "c.txt", "--steps", "1"}, "--fresh starts from random weights, --init from a model"},
		{[]string{"tasks", "eval", "--model", "m.gguf", "--problems", "p.jsonl", "--reward-model", "rm"}, "--reward-model judges replies against --vs MODEL's"},
		{[]string{"reward", "score", "--model", "rm", "--data", "p.jsonl", "--prompt", "hi"}, "--data scores a file's pairs; --prompt and --reply score one reply"},
		{[]string{"reward", "score", "--model", "rm", "--prompt", "hi"}, "--prompt and --reply, or --data FILE, are required"},
		{[]string{"tasks", "gen", "--dir", filepath.Join(dir, "d"), "--digits", "0"}, "--digits: must be between 1 and 9, got 0"},
	} {
		if _, err := runCmd(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}
