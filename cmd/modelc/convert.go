package main

import (
	"fmt"
	"math"
	"strings"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/internal/atomicfile"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/cli"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

func convertCmd() *cobra.Command {
	var tok, name string
	var f16, random bool
	var seed uint64
	var std float64
	cmd := &cobra.Command{
		Use:   "convert IN OUT.gguf",
		Short: "Convert a llama2.c checkpoint (or a GGUF) into a GGUF that llama.cpp reads",
		Long: `convert writes the model's weights with llama.cpp's tensor names and llama.*
metadata, and the vocabulary in tokenizer.ggml.* metadata, so that one file
carries model and tokenizer.

With --random, IN is a spec (model.yaml) and the weights are drawn from --seed
as a model binary's "bench --random" draws them, scaled to standard deviation --std: shapes
with no checkpoint (llama15m, llama110m) become GGUFs other engines can run.`,
		Example: `  modelc convert ../shared/data/models/stories260K.bin --tokenizer ../shared/data/models/tok512.bin stories260K.gguf
  modelc convert --random generated/llama15m/model.yaml --std 0.2 --tokenizer ../shared/data/models/llama2c_tokenizer32000.bin llama15m.gguf`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[1] == "" {
				return fmt.Errorf("the output file name is empty")
			}
			if err := atomicfile.NotInput("output", args[1], args[0], tok); err != nil {
				return err
			}
			if name != "" {
				if err := spec.CheckName(name); err != nil {
					return fmt.Errorf("--%w", err)
				}
			}
			var (
				p   *model.Params
				src *gguf.File
				err error
			)
			if random {
				p, err = randomParams(args[0], seed, std)
			} else {
				if cmd.Flags().Changed("seed") || cmd.Flags().Changed("std") {
					return fmt.Errorf("--seed and --std apply only with --random")
				}
				p, src, err = checkpoint.Load(args[0])
			}
			if err != nil {
				return err
			}
			if src != nil {
				defer src.Close()
			}
			var t tokenizer.Tokenizer
			tsrc := tok
			switch {
			case tok != "":
				t, err = tokenizer.Load(tok, p.Spec.Vocab)
			case src != nil:
				tsrc = args[0]
				if t, err = tokenizer.FromGGUF(src); err != nil {
					err = fmt.Errorf("%s: %w (give --tokenizer FILE)", args[0], err)
				}
			default:
				err = fmt.Errorf("%s carries no vocabulary: give --tokenizer", args[0])
			}
			if err != nil {
				return err
			}
			if err := tokenizer.CheckVocab(tsrc, t, p.Spec.Vocab); err != nil {
				return err
			}
			meta, ok := t.(interface{ GGUFMetadata() []gguf.KV })
			if !ok {
				return fmt.Errorf("tokenizer %T cannot be written to GGUF", t)
			}
			if name != "" {
				p.Spec.Name = name
			}
			return checkpoint.SaveGGUF(args[1], p, meta.GGUFMetadata(), f16)
		},
	}
	cmd.Flags().StringVar(&tok, "tokenizer", "", "vocabulary file (llama2.c tokenizer.bin, GGUF, GPT-2 encoder.json)")
	cmd.Flags().StringVar(&name, "name", "", "model name to record as general.name, a spec name ([a-z][a-z0-9_]*; default: the spec's)")
	cmd.Flags().BoolVar(&f16, "f16", false, "store matrices as F16 (norms stay F32)")
	cmd.Flags().BoolVar(&random, "random", false, "IN is a spec: draw random weights of its shape")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "seed of the random weights (with --random)")
	cmd.Flags().Float64Var(&std, "std", randomStd, "standard deviation of the random weights (with --random); norms are 1")
	return cmd
}

// randomStd is the deviation cli.RandomParams draws with.
const randomStd = 0.02

// randomParams draws cli.RandomParams for the spec at path and scales every
// weight but the norms to deviation std. Scaling the same draws keeps a seed's
// weights one family: std only sharpens the logits, which separates greedy
// choices enough for two engines' argmax to agree (at 0.02 random models
// decode near-uniform distributions whose near-ties rounding can flip).
func randomParams(path string, seed uint64, std float64) (*model.Params, error) {
	if !(std > 0) || math.IsInf(std, 0) {
		return nil, fmt.Errorf("--std: must be a positive finite number, got %g", std)
	}
	s, err := spec.Load(path)
	if err != nil {
		return nil, err
	}
	if s.Quant != "" && s.Quant != "f32" {
		return nil, fmt.Errorf("%s: quant %s: --random writes f32 weights; quantize the result with modelc quantize", path, s.Quant)
	}
	p := cli.RandomParams(s, seed)
	if std != randomStd {
		k := float32(std / randomStd)
		for _, t := range p.Tensors {
			if strings.Contains(t.Name, "_norm.") {
				continue
			}
			d := p.Data[t.Off : t.Off+t.Len()]
			for i := range d {
				d[i] *= k
			}
		}
	}
	return p, nil
}
