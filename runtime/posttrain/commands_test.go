package posttrain

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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
