package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func data(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above", file)
		}
		dir = parent
	}
	d := filepath.Join(dir, "..", "shared", "data")
	if _, err := os.Stat(d); err != nil {
		t.Fatalf("shared data not found at %s: %v", d, err)
	}
	return d
}

// The recorded ids are generate's: with the prompt of the reference, the
// text is run.c's story, and every id after the prompt is one sampled token
// (the story has no EOS within 256 positions, so 256 - 5 prompt tokens + 1).
func TestGreedyStory(t *testing.T) {
	d := data(t)
	want, err := os.ReadFile(filepath.Join(d, "reference", "stories260K_greedy_once_upon_a_time_256.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := greedy(filepath.Join(d, "models", "stories260K.bin"), filepath.Join(d, "models", "tok512.bin"), "Once upon a time", 256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if out.Model != "stories260k" {
		t.Errorf("model %q, want stories260k", out.Model)
	}
	if strings.TrimRight(out.Text, "\n") != strings.TrimRight(string(want), "\n") {
		t.Errorf("text differs from run.c's:\n%s\nwant:\n%s", out.Text, want)
	}
	if len(out.IDs) != len(out.Margins) || len(out.IDs) < 200 {
		t.Fatalf("%d ids, %d margins", len(out.IDs), len(out.Margins))
	}
	for i, m := range out.Margins {
		if !(m >= 0) {
			t.Fatalf("margin %d = %g, want ≥ 0", i, m)
		}
	}
	// From BOS, the same model: 16 positions give 16 sampled ids.
	bos, err := greedy(filepath.Join(d, "models", "stories260K.bin"), filepath.Join(d, "models", "tok512.bin"), "", 16, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(bos.IDs) != 16 {
		t.Errorf("from BOS, 16 steps: %d ids", len(bos.IDs))
	}
}

func TestGreedyErrors(t *testing.T) {
	d := data(t)
	if _, err := greedy(filepath.Join(d, "models", "stories260K.bin"), "", "", 16, 1); err == nil {
		t.Error("a llama2.c file without --tokenizer was accepted")
	}
	if _, err := greedy(filepath.Join(d, "models", "stories260K.bin"), filepath.Join(d, "models", "tok512.bin"), "", 0, 1); err == nil {
		t.Error("0 steps were accepted")
	}
	if _, err := greedy(filepath.Join(t.TempDir(), "none.gguf"), "", "", 16, 1); err == nil {
		t.Error("a missing file was accepted")
	}
}
