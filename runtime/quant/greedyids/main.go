// Command greedyids prints the greedy token ids the generic model produces
// from BOS on any GGUF (quantised weights are dequantised on load), for
// comparison with llama.cpp's ids on the same file (bench/llamacpp/run.mjs),
// whatever the model's shape.
//
// Output, one JSON line: {"ids": [...], "margins": [...]}; margins[i] is
// the gap between the best and second-best logit at step i (a small one is a
// near-tie that rounding may flip between engines).
//
// Usage: greedyids --model X.gguf [--steps 64]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"

	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "greedyids:", err)
		os.Exit(1)
	}
}

func run() error {
	path := flag.String("model", "", "GGUF model file")
	steps := flag.Int("steps", 64, "tokens to generate after BOS")
	flag.Parse()
	if *path == "" || *steps < 1 {
		return fmt.Errorf("usage: greedyids --model X.gguf [--steps N ≥ 1]")
	}
	p, f, err := checkpoint.Load(*path)
	if err != nil {
		return err
	}
	if f != nil {
		defer f.Close()
	}
	if *steps > p.Spec.MaxSeq {
		return fmt.Errorf("--steps %d exceeds the context of %d", *steps, p.Spec.MaxSeq)
	}
	m, err := generic.New(p)
	if err != nil {
		return err
	}
	s := m.NewSession()
	tok := p.Spec.Tokenizer.BOS
	var ids []int
	var margins []float64
	for pos := 0; pos < *steps; pos++ {
		logits := s.Forward(tok, pos)
		best, second := 0, math.Inf(-1)
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		for i, v := range logits {
			if i != best && float64(v) > second {
				second = float64(v)
			}
		}
		ids = append(ids, best)
		margins = append(margins, float64(logits[best])-second)
		tok = best
	}
	return json.NewEncoder(os.Stdout).Encode(struct {
		IDs     []int     `json:"ids"`
		Margins []float64 `json:"margins"`
	}{ids, margins})
}
