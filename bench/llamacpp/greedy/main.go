// Command greedy prints the greedy token ids modelc's compiled code produces
// on a GGUF, for comparison with llama.cpp's (bench/llamacpp/run.mjs).
//
// It runs exactly what `<model> generate --temperature 0` runs — the same
// runtime/generate loop over the compiled package the GGUF's shape selects,
// with the sampler of the CLI at temperature 0 — and records the id of every
// sampled token on the way. The text the loop writes is printed as well, so
// that a caller can check it against the binary's stdout byte for byte: the
// binary's contract (text on stdout) stays as it is, and ids come from the
// same code rather than from re-tokenizing text, which is ambiguous (a text
// has many tokenizations, and generate drops unprintable byte pieces).
//
// Output, one JSON line: {"model", "kernels", "ids", "margins", "text"}.
// margins[i] is the gap between the best and the second-best logit when
// ids[i] was chosen: a small one marks a near-tie that rounding differences
// between engines may legitimately flip.
//
// Usage: greedy --model X.gguf [--steps 128] [--threads 1] [--prompt TEXT]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"

	"github.com/modelc/modelc/generated/dense2048"
	"github.com/modelc/modelc/generated/dense512"
	"github.com/modelc/modelc/generated/llama110m"
	"github.com/modelc/modelc/generated/llama110m_q4_0"
	"github.com/modelc/modelc/generated/llama110m_q8_0"
	"github.com/modelc/modelc/generated/llama15m"
	"github.com/modelc/modelc/generated/llama15m_q4_0"
	"github.com/modelc/modelc/generated/llama15m_q8_0"
	"github.com/modelc/modelc/generated/moe8x256"
	"github.com/modelc/modelc/generated/moe8x256_q8_0"
	"github.com/modelc/modelc/generated/shakespeare_q4_0"
	"github.com/modelc/modelc/generated/shakespeare_q8_0"
	"github.com/modelc/modelc/generated/stories260k"
	"github.com/modelc/modelc/generated/stories260k_q4_0"
	"github.com/modelc/modelc/generated/stories260k_q8_0"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generate"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/sample"
	"github.com/modelc/modelc/tokenizer"
)

// compiled is one bundled model package.
type compiled struct {
	name       string
	spec       *model.Spec
	factory    model.Factory
	setThreads func(int)
	kernels    func() string
}

var bundled = []compiled{
	{"stories260k", stories260k.Spec(), stories260k.New, stories260k.SetThreads, stories260k.KernelPath},
	{"llama15m", llama15m.Spec(), llama15m.New, llama15m.SetThreads, llama15m.KernelPath},
	{"llama110m", llama110m.Spec(), llama110m.New, llama110m.SetThreads, llama110m.KernelPath},
	{"moe8x256", moe8x256.Spec(), moe8x256.New, moe8x256.SetThreads, moe8x256.KernelPath},
	{"dense512", dense512.Spec(), dense512.New, dense512.SetThreads, dense512.KernelPath},
	{"dense2048", dense2048.Spec(), dense2048.New, dense2048.SetThreads, dense2048.KernelPath},
	// Quantised files run the package compiled for their block format.
	{"llama15m_q8_0", llama15m_q8_0.Spec(), llama15m_q8_0.New, llama15m_q8_0.SetThreads, llama15m_q8_0.KernelPath},
	{"llama15m_q4_0", llama15m_q4_0.Spec(), llama15m_q4_0.New, llama15m_q4_0.SetThreads, llama15m_q4_0.KernelPath},
	{"llama110m_q8_0", llama110m_q8_0.Spec(), llama110m_q8_0.New, llama110m_q8_0.SetThreads, llama110m_q8_0.KernelPath},
	{"llama110m_q4_0", llama110m_q4_0.Spec(), llama110m_q4_0.New, llama110m_q4_0.SetThreads, llama110m_q4_0.KernelPath},
	{"stories260k_q8_0", stories260k_q8_0.Spec(), stories260k_q8_0.New, stories260k_q8_0.SetThreads, stories260k_q8_0.KernelPath},
	{"stories260k_q4_0", stories260k_q4_0.Spec(), stories260k_q4_0.New, stories260k_q4_0.SetThreads, stories260k_q4_0.KernelPath},
	{"moe8x256_q8_0", moe8x256_q8_0.Spec(), moe8x256_q8_0.New, moe8x256_q8_0.SetThreads, moe8x256_q8_0.KernelPath},
	// The shape of the model trained on tinyshakespeare, quantised.
	{"shakespeare_q8_0", shakespeare_q8_0.Spec(), shakespeare_q8_0.New, shakespeare_q8_0.SetThreads, shakespeare_q8_0.KernelPath},
	{"shakespeare_q4_0", shakespeare_q4_0.Spec(), shakespeare_q4_0.New, shakespeare_q4_0.SetThreads, shakespeare_q4_0.KernelPath},
}

// recorder is the CLI's sampler with a memory.
type recorder struct {
	s       generate.Sampler
	ids     []int
	margins []float64
}

func (r *recorder) Sample(logits []float32) int {
	id := r.s.Sample(logits)
	second := float32(math.Inf(-1))
	for i, v := range logits {
		if i != id && v > second {
			second = v
		}
	}
	r.ids = append(r.ids, id)
	r.margins = append(r.margins, float64(logits[id]-second))
	return id
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "greedy:", err)
		os.Exit(1)
	}
}

// hasQuant reports whether some bundled package is compiled for format q
// (a file in another format runs dequantised in the f32 package).
func hasQuant(q string) bool {
	for _, c := range bundled {
		if c.spec.Quant == q && q != "f32" {
			return true
		}
	}
	return false
}

// output is what greedy prints.
type output struct {
	Model   string    `json:"model"`
	Kernels string    `json:"kernels"`
	IDs     []int     `json:"ids"`
	Margins []float64 `json:"margins"`
	Text    string    `json:"text"`
}

func run() error {
	path := flag.String("model", "", "GGUF (or llama2.c) model file; its shape picks the compiled package")
	steps := flag.Int("steps", 128, "positions to run, prompt included (as generate --steps)")
	threads := flag.Int("threads", 1, "worker threads")
	prompt := flag.String("prompt", "", "text to continue (empty: from BOS)")
	tokPath := flag.String("tokenizer", "", "tokenizer file (default: the GGUF's own)")
	flag.Parse()
	if *path == "" || flag.NArg() != 0 {
		return fmt.Errorf("usage: greedy --model X.gguf [--steps N] [--threads N] [--prompt TEXT]")
	}
	out, err := greedy(*path, *tokPath, *prompt, *steps, *threads)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// greedy runs generate's loop at temperature 0 on the compiled package
// whose shape the model file has, recording every sampled id.
func greedy(path, tokPath, prompt string, steps, threads int) (output, error) {
	var none output
	if steps < 1 || threads < 1 {
		return none, fmt.Errorf("--steps and --threads must be ≥ 1, got %d and %d", steps, threads)
	}
	p, f, err := checkpoint.Load(path)
	if err != nil {
		return none, err
	}
	if f != nil {
		defer f.Close()
	}
	var c *compiled
	for i := range bundled {
		if model.CheckShape(&p.Spec, bundled[i].spec) == nil && (p.Spec.Quant == bundled[i].spec.Quant || bundled[i].spec.Quant == "f32" && !hasQuant(p.Spec.Quant)) {
			c = &bundled[i]
			break
		}
	}
	if c == nil {
		return none, fmt.Errorf("%s: no bundled model has its shape (dim %d, %d layers, vocab %d)", path, p.Spec.Dim, p.Spec.Layers, p.Spec.Vocab)
	}
	var tok tokenizer.Tokenizer
	switch {
	case tokPath != "":
		tok, err = tokenizer.Load(tokPath, p.Spec.Vocab)
	case f != nil:
		tok, err = tokenizer.FromGGUF(f)
	default:
		err = fmt.Errorf("%s carries no vocabulary: give --tokenizer", path)
	}
	if err != nil {
		return none, err
	}
	c.setThreads(threads)
	m, err := c.factory(p)
	if err != nil {
		return none, err
	}
	sp := sample.Defaults()
	sp.Temperature = 0
	s, err := sample.New(sp)
	if err != nil {
		return none, err
	}
	rec := &recorder{s: s}
	var text bytes.Buffer
	if _, err := generate.Generate(context.Background(), m.NewSession(), tok, rec,
		generate.Options{Prompt: prompt, Steps: steps, MaxSeq: m.Spec().MaxSeq}, &text); err != nil {
		return none, err
	}
	return output{c.name, c.kernels(), rec.ids, rec.margins, text.String()}, nil
}
