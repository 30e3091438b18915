// Command greedyids prints the greedy token ids the generic model produces
// from BOS on any GGUF (quantised weights are dequantised on load), or with
// --int the quantised reference (runtime/quant/qmodel: integer dot products
// over 8-bit activations, as llama.cpp computes), for comparison with
// llama.cpp's ids on the same file (bench/llamacpp/run.mjs), whatever the
// model's shape.
//
// With --prompt, the text is encoded with the GGUF's tokenizer (BOS first)
// and fed before generation; its ids are printed (prompt) for run.mjs's
// --prompt-ids, and ids then holds steps+1 tokens: the one sampled after the
// prompt and steps more, as run.mjs reports them.
//
// Output, one JSON line: {"prompt": [...], "ids": [...], "margins": [...]};
// margins[i] is the gap between the best and second-best logit at step i (a
// small one is a near-tie that rounding may flip between engines).
//
// With --logits 1,2,3 it generates nothing: it feeds those ids one at a
// time and prints every position's logits (one JSON array of arrays), for
// logitdiff.py to compare with llama.cpp's (bench/llamacpp/logits.mjs).
//
// Usage: greedyids --model X.gguf [--steps 64] [--prompt TEXT] [--int] [--logits IDS]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/quant/qmodel"
	"github.com/modelc/modelc/tokenizer"
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
	intPath := flag.Bool("int", false, "run the quantised weights with integer dot products (runtime/quant/qmodel)")
	text := flag.String("prompt", "", "text to continue (encoded with the GGUF's tokenizer, BOS first)")
	force := flag.String("logits", "", "instead of generating, feed these comma-separated ids one at a time and print each position's logits")
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
	prompt := []int{p.Spec.Tokenizer.BOS}
	n := *steps
	if *text != "" {
		if f == nil {
			return fmt.Errorf("%s carries no tokenizer", *path)
		}
		tk, err := tokenizer.FromGGUF(f)
		if err != nil {
			return err
		}
		if prompt, err = tk.Encode(*text, true, false); err != nil {
			return err
		}
		n++
	}
	if len(prompt)+n-1 > p.Spec.MaxSeq {
		return fmt.Errorf("prompt %d + steps %d exceed the context of %d", len(prompt), *steps, p.Spec.MaxSeq)
	}
	var m model.Model
	if *intPath {
		if f == nil {
			return fmt.Errorf("--int needs a GGUF file")
		}
		m, err = qmodel.New(f)
	} else {
		m, err = generic.New(p)
	}
	if err != nil {
		return err
	}
	s := m.NewSession()
	if *force != "" {
		return printLogits(s, *force, p.Spec.Vocab, p.Spec.MaxSeq)
	}
	for pos, t := range prompt[:len(prompt)-1] {
		s.Forward(t, pos)
	}
	tok := prompt[len(prompt)-1]
	var ids []int
	var margins []float64
	for pos := len(prompt) - 1; len(ids) < n; pos++ {
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
		Prompt  []int     `json:"prompt"`
		IDs     []int     `json:"ids"`
		Margins []float64 `json:"margins"`
	}{prompt, ids, margins})
}

// printLogits feeds ids one at a time and prints one JSON line: each
// position's logits, for comparing with llama.cpp's (bench/llamacpp/logits.mjs).
func printLogits(s model.Session, list string, vocab, maxSeq int) error {
	fields := strings.Split(list, ",")
	if len(fields) > maxSeq {
		return fmt.Errorf("--logits: %d ids exceed the context of %d", len(fields), maxSeq)
	}
	var out [][]float32
	for pos, f := range fields {
		t, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || t < 0 || t >= vocab {
			return fmt.Errorf("--logits: id %d (%q) is not a token id below %d", pos, f, vocab)
		}
		out = append(out, slices.Clone(s.Forward(t, pos)))
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
