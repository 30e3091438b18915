package cli

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelc/modelc/runtime/generic"
)

// TestMainSIGTERM runs Main in a child process training from scratch and
// sends it SIGTERM part-way: the run stops as Ctrl-C stops it, saving a
// checkpoint that --resume takes, and the status is 143, not a kill.
func TestMainSIGTERM(t *testing.T) {
	if out := os.Getenv("CLI_TEST_MAIN_OUT"); out != "" {
		os.Args = []string{"stories", "train", "--data", data(t, "text/tinyshakespeare.txt"), "--tokenizer", data(t, "models/tok512.bin"),
			"--steps", "1000000", "--batch", "2", "--seq", "32", "--eval-every", "1000000", "--checkpoint-every", "1000000", "--out", out}
		Main("stories", storiesSpec(t), generic.New)
	}
	out := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainSIGTERM$")
	cmd.Env = append(os.Environ(), "CLI_TEST_MAIN_OUT="+out)
	var log strings.Builder
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// A line in metrics.jsonl says training runs (progress goes to terminals only).
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if b, _ := os.ReadFile(filepath.Join(out, "metrics.jsonl")); len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no step after a minute: %v %s", <-done, log.String())
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	var werr error
	select {
	case werr = <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatal("still running a minute after SIGTERM")
	}
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.ExitCode() != 143 {
		t.Errorf("exit %v, want status 143; stderr: %s", werr, log.String())
	}
	if !strings.Contains(log.String(), "checkpoint saved, continue with --resume") {
		t.Errorf("stderr does not say the checkpoint was saved: %s", log.String())
	}
	es, _ := os.ReadDir(out)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	for _, want := range []string{"model.gguf", "state.bin", "run.json"} {
		if _, err := os.Stat(filepath.Join(out, want)); err != nil {
			t.Errorf("no %s in the run folder: %v", want, names)
		}
	}
	for _, n := range names {
		if strings.HasPrefix(n, ".") {
			t.Errorf("temporary file %s left in the run folder", n)
		}
	}
}
