package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/modelc/modelc/generated/stories260k"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/cli"
	"github.com/modelc/modelc/runtime/cpu"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/screen"
)

// The compiled and the generic model both tell llama2.c's story byte for byte.
func TestStoryMatchesLlama2C(t *testing.T) {
	data := sharedData(t)
	want, err := os.ReadFile(filepath.Join(data, "reference", "stories260K_greedy_once_upon_a_time_256.txt"))
	if err != nil {
		t.Fatal(err)
	}
	type run struct {
		name  string
		level cpu.Level
		extra []string
	}
	runs := []run{{"generic", cpu.Generic, []string{"--generic"}}}
	for _, l := range cpu.Levels() {
		runs = append(runs, run{"generated/" + l.String(), l, nil})
	}
	defer stories260k.UseKernels(cpu.Best())
	defer screen.Use(cpu.Best())
	for _, tc := range runs {
		t.Run(tc.name, func(t *testing.T) {
			if err := stories260k.UseKernels(tc.level); err != nil {
				t.Fatal(err)
			}
			screen.Use(tc.level) // greedy decoding screens with this level's kernel
			var stdout, stderr bytes.Buffer
			args := append([]string{"generate",
				"--model", filepath.Join(data, "models", "stories260K.bin"),
				"--tokenizer", filepath.Join(data, "models", "tok512.bin"),
				"--prompt", "Once upon a time", "--steps", "256", "--temperature", "0"}, tc.extra...)
			code := cli.Run(context.Background(), "stories260k", stories260k.Spec(), stories260k.New, args, &stdout, &stderr)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if stdout.String() != string(want) {
				t.Fatalf("stdout differs from llama2.c's\n got: %q\nwant: %q", stdout.String(), want)
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			last := lines[len(lines)-1]
			if !regexp.MustCompile(`^prompt: \d+ tokens, [0-9.]+ tok/s; decode: \d+ tokens, [0-9.]+ tok/s$`).MatchString(last) {
				t.Fatalf("last stderr line %q is not the timing line", last)
			}
		})
	}
}

// The compiled model's logits equal the generic model's at every position of
// a full-context run.
func TestGeneratedLogitsMatchGeneric(t *testing.T) {
	data := sharedData(t)
	p, _, err := checkpoint.Load(filepath.Join(data, "models", "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	gm, err := stories260k.New(p)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := generic.New(p)
	if err != nil {
		t.Fatal(err)
	}
	defer stories260k.UseKernels(cpu.Best())
	for _, l := range cpu.Levels() {
		t.Run(l.String(), func(t *testing.T) {
			if err := stories260k.UseKernels(l); err != nil {
				t.Fatal(err)
			}
			compareRun(t, gm, rm, p.Spec.MaxSeq, 1e-4)
			comparePrefill(t, gm, rm, 300, 1e-4)
		})
	}
}

// compareRun feeds both models the same greedy sequence (chosen by the
// reference) and checks the logits at every position.
func compareRun(t *testing.T, got, want model.Model, n int, tol float64) {
	t.Helper()
	gs, ws := got.NewSession(), want.NewSession()
	tok := 1
	worst := 0.0
	for pos := 0; pos < n; pos++ {
		gl, wl := gs.Forward(tok, pos), ws.Forward(tok, pos)
		best := 0
		for i := range wl {
			d := math.Abs(float64(gl[i] - wl[i]))
			if d > worst {
				worst = d
			}
			if d > tol || math.IsNaN(float64(gl[i])) {
				t.Fatalf("pos %d logit %d: generated %g, generic %g", pos, i, gl[i], wl[i])
			}
			if wl[i] > wl[best] {
				best = i
			}
		}
		// Keep the run going past the story's end so every position is used.
		tok = best
		if tok < 3 {
			tok = 3 + pos%100
		}
	}
	t.Logf("max |Δlogit| over %d positions: %.3g", n, worst)
}

// comparePrefill checks the batched prefill of n tokens (several batches) and
// the decoding that continues from its KV cache.
func comparePrefill(t *testing.T, got, want model.Model, n int, tol float64) {
	t.Helper()
	toks := make([]int, n)
	for i := range toks {
		toks[i] = 3 + (i*37)%500
	}
	gs, ws := got.NewSession(), want.NewSession()
	check := func(what string, gl, wl []float32) {
		for i := range wl {
			if d := math.Abs(float64(gl[i] - wl[i])); d > tol || math.IsNaN(float64(gl[i])) {
				t.Fatalf("%s: logit %d: generated %g, generic %g", what, i, gl[i], wl[i])
			}
		}
	}
	check("prefill", gs.Prefill(toks, 0), ws.Prefill(toks, 0))
	for pos := n; pos < n+10; pos++ {
		check(fmt.Sprintf("decode at %d after prefill", pos), gs.Forward(7, pos), ws.Forward(7, pos))
	}
}
