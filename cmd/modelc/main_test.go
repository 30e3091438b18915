package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/modelc/modelc/generated/stories260k"
	"github.com/modelc/modelc/runtime/cli"
	"github.com/modelc/modelc/spec"
)

func repo(t *testing.T) (root, data string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root = filepath.Join(filepath.Dir(file), "..", "..")
	data = filepath.Join(root, "..", "shared", "data")
	if _, err := os.Stat(data); err != nil {
		t.Fatalf("shared data not found at %s: %v", data, err)
	}
	return root, data
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := newRoot()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// spec import of stories260K.bin gives the shape of the bundled spec; -o
// makes the new model's folder.
func TestSpecImportMatchesBundled(t *testing.T) {
	root, data := repo(t)
	out := filepath.Join(t.TempDir(), "stories260k", "model.yaml")
	if _, err := run(t, "spec", "import", filepath.Join(data, "models", "stories260K.bin"), "-o", out); err != nil {
		t.Fatal(err)
	}
	got, err := spec.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := spec.Load(filepath.Join(root, "generated", "stories260k", "model.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "stories260k" || got.Dim != want.Dim || got.Layers != want.Layers || got.Heads != want.Heads ||
		got.KVHeads != want.KVHeads || got.FFNDim != want.FFNDim || got.Vocab != want.Vocab ||
		got.MaxSeq != want.MaxSeq || got.TieEmbeddings != want.TieEmbeddings {
		t.Fatalf("imported spec %+v differs in shape from the bundled %+v", got, want)
	}
}

func TestSpecShow(t *testing.T) {
	root, _ := repo(t)
	out, err := run(t, "spec", "show", filepath.Join(root, "generated", "stories260k", "model.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"260,032", "KV"} {
		if !strings.Contains(out, want) {
			t.Errorf("spec show output lacks %q:\n%s", want, out)
		}
	}
}

func TestSpecErrorsNameTheField(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("name: x\nvocab: 10\ndim: 8\nlayers: 0\nheads: 2\nffn_dim: 4\nmax_seq: 4\n"), 0o644)
	_, err := run(t, "spec", "show", bad)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:4: layers: must be ≥ 1, got 0") {
		t.Fatalf("err = %v", err)
	}
}

// convert writes a GGUF carrying the vocabulary; the compiled model tells the
// same story from it without --tokenizer.
func TestConvertThenGenerate(t *testing.T) {
	_, data := repo(t)
	gg := filepath.Join(t.TempDir(), "stories260K.gguf")
	if _, err := run(t, "convert", filepath.Join(data, "models", "stories260K.bin"),
		"--tokenizer", filepath.Join(data, "models", "tok512.bin"), gg); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(data, "reference", "stories260K_greedy_once_upon_a_time_256.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := cli.Run(context.Background(), "stories260k", stories260k.Spec(), stories260k.New,
		[]string{"generate", "--model", gg, "--prompt", "Once upon a time", "--steps", "256", "--temperature", "0"}, &stdout, &stderr)
	if code != 0 || stdout.String() != string(want) {
		t.Fatalf("exit %d, stderr %s\nstdout %q\nwant %q", code, stderr.String(), stdout.String(), want)
	}
}

func TestConvertBadInput(t *testing.T) {
	_, data := repo(t)
	dir := t.TempDir()
	trunc := filepath.Join(dir, "trunc.bin")
	b, _ := os.ReadFile(filepath.Join(data, "models", "stories260K.bin"))
	os.WriteFile(trunc, b[:len(b)/2], 0o644)
	out := filepath.Join(dir, "out.gguf")
	_, err := run(t, "convert", trunc, "--tokenizer", filepath.Join(data, "models", "tok512.bin"), out)
	if err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("truncated checkpoint: err = %v", err)
	}
	if _, statErr := os.Stat(out); statErr == nil {
		t.Fatal("a failed convert left an output file")
	}
	_, err = run(t, "convert", filepath.Join(data, "models", "stories260K.bin"),
		"--tokenizer", filepath.Join(data, "models", "llama2c_tokenizer32000.bin"), out)
	if err == nil {
		t.Fatal("a 32000-token vocabulary for a 512-token model was accepted")
	}
}

// gen refuses a spec with a feature whose kernels do not exist yet.
func TestGenRefusesUnsupported(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/x\n"), 0o644)
	p := filepath.Join(dir, "model.yaml")
	os.WriteFile(p, []byte("name: m\nvocab: 10\ndim: 8\nlayers: 1\nheads: 2\nffn_dim: 4\nmax_seq: 4\nquant: q4_0\n"), 0o644)
	_, err := run(t, "gen", p)
	if err == nil || !strings.Contains(err.Error(), "quant: q4_0 needs rows of whole 32-weight blocks") {
		t.Fatalf("err = %v", err)
	}
}

func TestDataPrepare(t *testing.T) {
	_, data := repo(t)
	out := filepath.Join(t.TempDir(), "shakespeare.tok")
	if _, err := run(t, "data", "prepare", filepath.Join(data, "text", "tinyshakespeare.txt"),
		"--tokenizer", filepath.Join(data, "models", "tok512.bin"), "-o", out); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	// uint16 ids; tok512 compresses English text well below one token per byte.
	if n := fi.Size(); n < 2*100_000 || n > 2*1_115_394 {
		t.Fatalf("token file of %d bytes for a 1.1 MB corpus", n)
	}
	if _, err := run(t, "data", "prepare", filepath.Join(data, "text", "missing.txt"),
		"--tokenizer", filepath.Join(data, "models", "tok512.bin"), "-o", out+"2"); err == nil {
		t.Fatal("a missing corpus file was accepted")
	}
}

// An output that is one of the inputs is refused, and the input survives.
func TestOutputIsInput(t *testing.T) {
	_, data := repo(t)
	dir := t.TempDir()
	corpus := filepath.Join(dir, "c.txt")
	text := strings.Repeat("the cat sat on the mat. ", 200)
	os.WriteFile(corpus, []byte(text), 0o644)
	model := filepath.Join(dir, "m.bin")
	raw, err := os.ReadFile(filepath.Join(data, "models", "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(model, raw, 0o644)
	tok := filepath.Join(data, "models", "tok512.bin")
	ggufModel := filepath.Join(dir, "m.gguf")
	if msg, err := run(t, "convert", model, "--tokenizer", tok, ggufModel); err != nil {
		t.Fatal(err, msg)
	}
	ggufRaw, _ := os.ReadFile(ggufModel)
	for _, args := range [][]string{
		{"convert", model, "--tokenizer", tok, model},
		{"convert", ggufModel, ggufModel},
		{"quantize", ggufModel, ggufModel, "--type", "q4_0"},
		{"data", "prepare", corpus, "--tokenizer", filepath.Join(data, "models", "tok512.bin"), "-o", corpus},
		{"tokenizer", "train", "--vocab", "300", corpus, "-o", corpus},
		{"spec", "import", model, "-o", model},
	} {
		if _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), "is also an input") {
			t.Errorf("%v: %v", args, err)
		}
	}
	if _, err := run(t, "convert", model, ""); err == nil || !strings.Contains(err.Error(), "output file name is empty") {
		t.Errorf("convert to an empty name: %v", err)
	}
	if b, _ := os.ReadFile(corpus); string(b) != text {
		t.Error("the corpus was overwritten")
	}
	if b, _ := os.ReadFile(model); !bytes.Equal(b, raw) {
		t.Error("the model was overwritten")
	}
	if b, _ := os.ReadFile(ggufModel); !bytes.Equal(b, ggufRaw) {
		t.Error("the GGUF model was overwritten")
	}
}

// TestBenchFlags: modelc bench checks its flags before building anything.
func TestBenchFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--steps", "0"}, "--steps: must be ≥ 1, got 0"},
		{[]string{"--threads", "-2"}, "--threads: must be between 0 (all cores) and"},
	} {
		if _, err := run(t, append([]string{"bench", "nope.yaml"}, c.args...)...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}

// TestNamesCheckedFirst: a bad --name is refused before convert's work, and
// spec import of an empty file says it is too short to be a model.
func TestNamesCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	_, data := repo(t)
	bin := filepath.Join(data, "models", "stories260K.bin")
	tok := filepath.Join(data, "models", "tok512.bin")
	if _, err := run(t, "convert", bin, "--tokenizer", tok, "--name", "my model", filepath.Join(dir, "o.gguf")); err == nil || !strings.HasPrefix(err.Error(), "--name: must match") {
		t.Errorf("convert --name with a space: %v", err)
	}
	if _, err := run(t, "spec", "import", bin, "--name", "main"); err == nil || !strings.HasPrefix(err.Error(), "--name: must not be main or init") {
		t.Errorf("spec import --name main: %v", err)
	}
	empty := filepath.Join(dir, "empty.bin")
	os.WriteFile(empty, nil, 0o644)
	if _, err := run(t, "spec", "import", empty); err == nil || err.Error() != empty+": too short to be a model file" {
		t.Errorf("spec import of an empty file: %v", err)
	}
}

// failWriter fails every write, as a full disk does.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// TestOutputErrors: a command whose output could not be written fails.
func TestOutputErrors(t *testing.T) {
	root, _ := repo(t)
	cmd := newRoot()
	cmd.SetArgs([]string{"spec", "show", filepath.Join(root, "generated", "stories260k", "model.yaml")})
	if err := execute(cmd, failWriter{}); err == nil || err.Error() != "no space left on device" {
		t.Errorf("spec show into a full disk: %v", err)
	}
}
