package cli

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/screen"
	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

// dataDir finds /work/shared/data: the "shared/data" beside the repo root.
func dataDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(filepath.Dir(dir), "shared", "data")
			if _, err := os.Stat(d); err == nil {
				return d
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("shared/data not found beside the repository root")
		}
		dir = parent
	}
}

func data(t testing.TB, rel string) string { return filepath.Join(dataDir(t), rel) }

// storiesSpec is the shape of stories260K.bin as the checkpoint reader sees
// it: what a binary compiled for that model has.
func storiesSpec(t testing.TB) *spec.Spec {
	t.Helper()
	p, f, err := checkpoint.Load(data(t, "models/stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if f != nil {
		f.Close()
	}
	s := p.Spec
	s.Name = "stories260k"
	return &s
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t testing.TB, s *spec.Spec, factory model.Factory, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), "stories", s, factory, args, &out, &errb)
	return result{code, out.String(), errb.String()}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

var statsRE = regexp.MustCompile(`^prompt: (\d+) tokens, \d+\.\d tok/s; decode: (\d+) tokens, \d+\.\d tok/s$`)

// TestReferenceOutput is the project's acceptance test: greedy generation
// from stories260K through the CLI prints exactly what llama2.c's run.c printed.
func TestReferenceOutput(t *testing.T) {
	want, err := os.ReadFile(data(t, "reference/stories260K_greedy_once_upon_a_time_256.txt"))
	if err != nil {
		t.Fatal(err)
	}
	s := storiesSpec(t)
	for _, extra := range [][]string{nil, {"--generic"}} {
		args := append([]string{"generate", "--model", data(t, "models/stories260K.bin"), "--tokenizer", data(t, "models/tok512.bin"),
			"--temperature", "0", "--steps", "256", "--prompt", "Once upon a time"}, extra...)
		r := run(t, s, generic.New, args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d, stderr %q", extra, r.code, r.stderr)
		}
		if r.stdout != string(want) {
			t.Fatalf("%v: stdout differs from run.c's\n got: %q\nwant: %q", extra, r.stdout, want)
		}
		m := statsRE.FindStringSubmatch(lastLine(r.stderr))
		if m == nil {
			t.Fatalf("%v: last stderr line %q is not the stats line", extra, lastLine(r.stderr))
		}
		p, _ := strconv.Atoi(m[1])
		d, _ := strconv.Atoi(m[2])
		// BOS + "Once upon a time" is a few tokens; prompt and sampled
		// tokens share the 256 positions (the first sample uses the
		// prompt's last logits).
		if p < 2 || p > 17 || d < 1 || p+d-1 > 256 {
			t.Fatalf("%v: implausible stats %q", extra, m[0])
		}
	}
}

// TestGGUFModelCarriesTokenizer saves stories260K with its vocabulary as one
// GGUF file; generate then needs no --tokenizer and prints the same text.
func TestGGUFModelCarriesTokenizer(t *testing.T) {
	want, err := os.ReadFile(data(t, "reference/stories260K_greedy_once_upon_a_time_256.txt"))
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := checkpoint.Load(data(t, "models/stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadLlama2C(data(t, "models/tok512.bin"), 512)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	withTok, bare := filepath.Join(dir, "stories.gguf"), filepath.Join(dir, "bare.gguf")
	if err := checkpoint.SaveGGUF(withTok, p, tok.GGUFMetadata(), false); err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.SaveGGUF(bare, p, nil, false); err != nil {
		t.Fatal(err)
	}
	s := storiesSpec(t)
	r := run(t, s, generic.New, "generate", "-m", withTok, "-t", "0", "-i", "Once upon a time")
	if r.code != 0 || r.stdout != string(want) {
		t.Fatalf("exit %d, stderr %q\n got: %q\nwant: %q", r.code, r.stderr, r.stdout, want)
	}
	r = run(t, s, generic.New, "generate", "-m", bare, "-t", "0", "-i", "Once upon a time")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "stories: "+bare+": ") || !strings.HasSuffix(r.stderr, "(pass --tokenizer FILE)\n") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestUnseededGenerationPrintsItsSeed: without --seed a sampled run prints
// the seed it drew, and that seed gives the same text again.
func TestUnseededGenerationPrintsItsSeed(t *testing.T) {
	s := storiesSpec(t)
	args := []string{"generate", "-m", data(t, "models/stories260K.bin"), "-z", data(t, "models/tok512.bin"),
		"-n", "48", "-i", "Once upon a time", "--temperature", "1"}
	r := run(t, s, generic.New, args...)
	m := regexp.MustCompile(`^seed: (\d+) \(--seed (\d+) repeats this text\)\n`).FindStringSubmatch(r.stderr)
	if r.code != 0 || m == nil || m[1] != m[2] {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	again := run(t, s, generic.New, append(args, "--seed", m[1])...)
	if again.code != 0 || again.stdout != r.stdout {
		t.Fatalf("--seed %s: %q, the unseeded run gave %q", m[1], again.stdout, r.stdout)
	}
	if strings.HasPrefix(again.stderr, "seed: ") {
		t.Errorf("a seeded run prints its seed: %q", again.stderr)
	}
	if g := run(t, s, generic.New, append(args[:len(args)-1], "0")...); strings.Contains(g.stderr, "seed: ") {
		t.Errorf("a greedy run prints a seed: %q", g.stderr)
	}
}

// TestLongPromptWarns: a prompt longer than --steps or the context is cut
// as run.c cuts it, with a warning before the stats line.
func TestLongPromptWarns(t *testing.T) {
	s := storiesSpec(t)
	long := strings.Repeat("Once upon a time there was a cat. ", 60)
	for _, c := range []struct {
		steps, want string
	}{
		{"0", "more than the model's context of 512: its last "},
		{"40", "more than the 40 positions --steps allows: its last "},
	} {
		r := run(t, s, generic.New, "generate", "-m", data(t, "models/stories260K.bin"), "-z", data(t, "models/tok512.bin"),
			"-n", c.steps, "-i", long, "-t", "0")
		lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
		if r.code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "warning: the prompt is ") || !strings.Contains(lines[0], c.want) ||
			!strings.Contains(lines[1], "decode: 0 tokens") {
			t.Errorf("--steps %s: exit %d, stderr %q", c.steps, r.code, r.stderr)
		}
	}
	r := run(t, s, generic.New, "generate", "-m", data(t, "models/stories260K.bin"), "-z", data(t, "models/tok512.bin"),
		"-n", "64", "-i", "Once upon a time", "-t", "0")
	if strings.Contains(r.stderr, "warning") {
		t.Errorf("a short prompt warns: %q", r.stderr)
	}
}

func TestSampledGenerationIsSeeded(t *testing.T) {
	s := storiesSpec(t)
	gen := func(seed string) string {
		r := run(t, s, generic.New, "generate", "-m", data(t, "models/stories260K.bin"), "-z", data(t, "models/tok512.bin"),
			"-n", "64", "-i", "Once upon a time", "--temperature", "1", "--top-p", "0.9", "--seed", seed)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		return r.stdout
	}
	a, b, c := gen("42"), gen("42"), gen("43")
	if a != b {
		t.Fatalf("same seed, different text:\n%q\n%q", a, b)
	}
	if a == c {
		t.Fatalf("seeds 42 and 43 gave the same text %q", a)
	}
	if !strings.HasPrefix(a, "Once upon a time") || !strings.HasSuffix(a, "\n") {
		t.Fatalf("text %q does not continue the prompt", a)
	}
}

func TestGenerateErrors(t *testing.T) {
	s := storiesSpec(t)
	bin := data(t, "models/stories260K.bin")
	tok := data(t, "models/tok512.bin")
	wrongDim := *s
	wrongDim.Dim = 72
	// stories260K with its first weight (token_embd's) NaN.
	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	copy(raw[spec.Llama2CHeaderBytes:], []byte{0x00, 0x00, 0xc0, 0x7f})
	nanBin := filepath.Join(t.TempDir(), "nan.bin")
	if err := os.WriteFile(nanBin, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		s    *spec.Spec
		args []string
		want string
	}{
		{"shape", &wrongDim, []string{"generate", "-m", bin, "-z", tok}, bin + ": model file has dim 64, this binary was compiled for dim 72"},
		{"no model", s, []string{"generate", "-z", tok}, "--model FILE is required"},
		{"prompt as an argument", s, []string{"generate", "-m", bin, "-z", tok, "Once upon"}, `unexpected argument "Once upon": the prompt goes in --prompt (-i)`},
		{"NaN weight", s, []string{"generate", "-m", nanBin, "-z", tok}, nanBin + ": tensor token_embd.weight holds NaN at element 0"},
		{"missing model file", s, []string{"generate", "-m", filepath.Join(t.TempDir(), "nope.bin"), "-z", tok}, "nope.bin"},
		{"no tokenizer", s, []string{"generate", "-m", bin}, "no tokenizer: " + bin + " carries none, pass --tokenizer FILE"},
		{"temperature", s, []string{"generate", "-m", bin, "-z", tok, "-t", "-1"}, "temperature: must be a finite number ≥ 0, got -1"},
		{"top-p", s, []string{"generate", "-m", bin, "-z", tok, "--top-p", "1.5"}, "top-p: must be in (0, 1], got 1.5"},
		{"top-k", s, []string{"generate", "-m", bin, "-z", tok, "--top-k", "-2"}, "top-k: must be ≥ 0 (0 = off), got -2"},
		{"steps", s, []string{"generate", "-m", bin, "-z", tok, "-n", "-5"}, "--steps: must be ≥ 0"},
		{"threads", s, []string{"generate", "-m", bin, "-z", tok, "--threads", "0"}, "--threads: must be between 1 and 1024, got 0"},
		{"vocab mismatch", s, []string{"generate", "-m", bin, "-z", data(t, "tokenizer/ggml-vocab-llama-spm.gguf")}, "512"},
		{"unknown flag", s, []string{"generate", "--frobnicate"}, "unknown flag: --frobnicate"},
		{"unknown command", s, []string{"frobnicate"}, `unknown command "frobnicate"`},
	}
	for _, c := range cases {
		r := run(t, c.s, generic.New, c.args...)
		if r.code != 1 {
			t.Errorf("%s: exit %d, want 1 (stderr %q)", c.name, r.code, r.stderr)
			continue
		}
		if r.stdout != "" {
			t.Errorf("%s: stdout %q, want nothing", c.name, r.stdout)
		}
		if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "stories: ") || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: stderr %q, want one line \"stories: …%s…\"", c.name, r.stderr, c.want)
		}
	}
}

func TestGenericRunsAnyShape(t *testing.T) {
	s := storiesSpec(t)
	wrong := *s
	wrong.Layers = 3
	r := run(t, &wrong, generic.New, "generate", "-m", data(t, "models/stories260K.bin"), "-z", data(t, "models/tok512.bin"),
		"-t", "0", "-n", "20", "-i", "Once upon a time", "--generic")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Once upon a time") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// Every command of a binary refuses a --threads above the bound before it
// starts a pool or loads anything, and never calls the threads hook with it.
func TestThreadsBounded(t *testing.T) {
	s := storiesSpec(t)
	bin := data(t, "models/stories260K.bin")
	tok := data(t, "models/tok512.bin")
	for _, args := range [][]string{
		{"generate", "-m", bin, "-z", tok},
		{"bench", "--random"},
		{"train", "--data", tok, "--steps", "1", "--out", filepath.Join(t.TempDir(), "run")},
		{"eval", "--model", bin, "--data", tok},
		{"serve", "--model", bin, "--addr", "127.0.0.1:0"},
		{"embed", "--model", bin, "hello"},
		{"sft", "--init", bin, "--steps", "1", "--data", tok, "--out", filepath.Join(t.TempDir(), "sft")},
	} {
		called := false
		var out, errb bytes.Buffer
		code := Run(context.Background(), "stories", s, generic.New, append(args, "--threads", "5000"),
			&out, &errb, WithThreads(func(int) { called = true }))
		if want := "stories: --threads: must be between 1 and 1024, got 5000\n"; code != 1 || errb.String() != want || called {
			t.Errorf("%s: exit %d, stderr %q, hook called %v; want exit 1, %q", args[0], code, errb.String(), called, want)
		}
	}
}

func TestThreadsHook(t *testing.T) {
	s := storiesSpec(t)
	got := 0
	var out, errb bytes.Buffer
	code := Run(context.Background(), "stories", s, generic.New,
		[]string{"generate", "-m", data(t, "models/stories260K.bin"), "-z", data(t, "models/tok512.bin"), "-t", "0", "-n", "8", "--threads", "3"},
		&out, &errb, WithThreads(func(n int) { got = n }))
	if code != 0 || got != 3 {
		t.Fatalf("exit %d, threads hook got %d, want 3 (stderr %q)", code, got, errb.String())
	}
}

func TestInfo(t *testing.T) {
	s := storiesSpec(t)
	var out, errb bytes.Buffer
	code := Run(context.Background(), "stories", s, generic.New, []string{"info", "--model", data(t, "models/stories260K.bin")},
		&out, &errb, WithKernelPath(func() string { return "purego (test)" }))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	greedy := "greedy: every logit is made (the classifier screen needs AVX2, AVX-512 VNNI or NEON with SDOT)"
	if screen.Available() {
		greedy = "greedy: the classifier is screened (" + screen.Path() + ":"
	}
	for _, want := range []string{"compiled for:\nstories260k: causal", "dim", "64", "kernels: purego (test)", greedy, "cpu: ", "fits this binary"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("info output lacks %q:\n%s", want, out.String())
		}
	}
	wrong := *s
	wrong.FFNDim = 100
	r := run(t, &wrong, generic.New, "info", "--model", data(t, "models/stories260K.bin"))
	if r.code != 0 || !strings.Contains(r.stdout, "does not fit: model file has ffn_dim 172, this binary was compiled for ffn_dim 100") {
		t.Fatalf("exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestBench(t *testing.T) {
	s := storiesSpec(t)
	r := run(t, s, generic.New, "bench", "--random", "--steps", "16", "--compare")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	re := regexp.MustCompile(`(?m)^compiled +decode: 16 tokens, [0-9.]+ tok/s .*\n^generic +decode: 16 tokens, [0-9.]+ tok/s .*\n^compiled/generic: decode [0-9.]+x, prefill [0-9.]+x\n$`)
	if !re.MatchString(r.stdout) {
		t.Fatalf("bench output:\n%s", r.stdout)
	}
	r = run(t, s, generic.New, "bench", "--model", data(t, "models/stories260K.bin"), "--steps", "2000")
	if r.code != 0 || !strings.Contains(r.stdout, "decode: 512 tokens") { // clamped to max_seq
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{{"bench"}, {"bench", "--random", "--model", "x.bin"}, {"bench", "--random", "--steps", "0"}} {
		if r := run(t, s, generic.New, args...); r.code != 1 || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}

func TestHelp(t *testing.T) {
	s := storiesSpec(t)
	for _, args := range [][]string{{"--help"}, {"generate", "--help"}, {"bench", "--help"}, {"info", "--help"}} {
		r := run(t, s, generic.New, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Example") || !strings.Contains(r.stdout, "stories ") {
			t.Errorf("%v: exit %d, help:\n%s", args, r.code, r.stdout)
		}
	}
}

func TestPanicBecomesOneLine(t *testing.T) {
	s := storiesSpec(t)
	boom := func(*model.Params) (model.Model, error) { panic("boom") }
	r := run(t, s, boom, "bench", "--random", "--steps", "2")
	if r.code != 1 || r.stderr != "stories: internal error: boom\n" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestRandomParams(t *testing.T) {
	s := &spec.Spec{Vocab: 50, Dim: 32, Layers: 2, Heads: 4, KVHeads: 2, FFNDim: 48, MaxSeq: 16, TieEmbeddings: true}
	a, b, c := RandomParams(s, 7), RandomParams(s, 7), RandomParams(s, 8)
	if !equal(a.Data, b.Data) {
		t.Fatal("same seed, different weights")
	}
	if equal(a.Data, c.Data) {
		t.Fatal("different seeds, same weights")
	}
	var n int
	var sum, sq float64
	for _, tn := range a.Tensors {
		d := a.Data[tn.Off : tn.Off+tn.Len()]
		if strings.Contains(tn.Name, "norm") {
			for _, v := range d {
				if v != 1 {
					t.Fatalf("%s holds %v, want 1", tn.Name, v)
				}
			}
			continue
		}
		for _, v := range d {
			n++
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
	}
	mean := sum / float64(n)
	std := math.Sqrt(sq/float64(n) - mean*mean)
	if math.Abs(mean) > 0.001 || math.Abs(std-0.02) > 0.001 {
		t.Fatalf("weights have mean %g and std %g over %d values, want 0 and 0.02", mean, std, n)
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// failWriter fails every write, as a full disk does.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// TestOutputErrors: a command whose output could not be written fails with
// the write's error instead of exiting 0.
func TestOutputErrors(t *testing.T) {
	s := storiesSpec(t)
	for _, args := range [][]string{{"info"}, {"bench", "--random", "--steps", "2", "--rounds", "1"}} {
		var errb bytes.Buffer
		code := Run(context.Background(), "stories", s, generic.New, args, failWriter{}, &errb)
		if code != 1 || errb.String() != "stories: no space left on device\n" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
}
