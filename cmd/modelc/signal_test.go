package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelc/modelc/internal/atomicfile"
)

// TestSignalRemovesTemp: Ctrl-C while an output is being written (here a
// child process that has its temporary file open) exits 130 and leaves the
// old output and nothing beside it.
func TestSignalRemovesTemp(t *testing.T) {
	if out := os.Getenv("MODELC_TEST_SIGNAL_OUT"); out != "" {
		stopOnSignal()
		f, err := atomicfile.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("half")
		os.Stdout.WriteString("writing\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out.gguf")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSignalRemovesTemp$")
	cmd.Env = append(os.Environ(), "MODELC_TEST_SIGNAL_OUT="+out)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "writing\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q, %v: %s", line, err, stderr.String())
	}
	cmd.Process.Signal(os.Interrupt)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 128+int(syscall.SIGINT) {
		t.Errorf("exit %v, want status 130", err)
	}
	if !strings.Contains(stderr.String(), "modelc: stopped (interrupt)") {
		t.Errorf("stderr %q", stderr.String())
	}
	if b, _ := os.ReadFile(out); string(b) != "old" {
		t.Errorf("the old output holds %q", b)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		t.Errorf("files beside the output: %v", names)
	}
}
