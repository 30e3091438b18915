package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/internal/atomicfile"
	"github.com/modelc/modelc/runtime/quant"
)

func quantizeCmd() *cobra.Command {
	var typ string
	var quiet, requant bool
	cmd := &cobra.Command{
		Use:   "quantize IN.gguf OUT.gguf --type q8_0|q4_0",
		Short: "Quantise a GGUF model's matrices to Q8_0 or Q4_0 (ggml's block layout)",
		Long: `quantize rewrites a GGUF model with its weight matrices (and a mixture's 3-D
expert stacks) in ggml's Q8_0 or Q4_0 blocks (32 weights and a float16 scale),
byte for byte as llama.cpp's quantize writes them, so the file runs in llama.cpp
too. Matrices whose rows are not a multiple of 32, the norms and a mixture's
router stay F32 (F16 if they were); the tokenizer and other metadata are copied,
general.file_type is set (7 Q8_0, 2 Q4_0). A compiled float model runs such a
file by dequantising it at load.`,
		Example: "  modelc quantize stories15M.gguf stories15M-q8_0.gguf --type q8_0",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := quant.ParseType(typ)
			if err != nil {
				return fmt.Errorf("--type: %w", err)
			}
			if args[1] == "" {
				return fmt.Errorf("the output file name is empty")
			}
			if err := atomicfile.NotInput("output", args[1], args[0]); err != nil {
				return err
			}
			f, err := gguf.Open(args[0])
			if errors.Is(err, gguf.ErrNotGGUF) {
				return fmt.Errorf("%w; a llama2.c .bin goes through modelc convert first", err)
			}
			if err != nil {
				return err
			}
			defer f.Close()
			matrices := 0
			for _, info := range f.Tensors {
				if !quant.Quantizable(info.Name, info.Dims) {
					continue
				}
				matrices++
				// As llama.cpp's quantize: rounding twice loses more than
				// once, and the file would be labelled with the second format.
				if info.Type.BlockSize() > 1 && !requant {
					return fmt.Errorf("%s: tensor %s is %s already: quantise the F32 or F16 model, or pass --allow-requantize", args[0], info.Name, info.Type)
				}
			}
			if matrices == 0 {
				return fmt.Errorf("%s holds no weight matrix to quantise (a vocabulary-only file?)", args[0])
			}
			kvs, ts, changes, err := quant.QuantizeFile(f, t)
			if err != nil {
				return fmt.Errorf("quantize %s: %w", args[0], err)
			}
			if err := gguf.WriteFile(args[1], kvs, ts); err != nil {
				return err
			}
			if !quiet {
				var in, out int
				w := cmd.ErrOrStderr()
				for _, c := range changes {
					in += int(c.From.BlockBytes()) * int(dimsProduct(c.Dims)/c.From.BlockSize())
					out += c.Bytes
					switch {
					case c.To == t || len(c.Dims) < 2:
					case quant.IsRouter(c.Name):
						fmt.Fprintf(w, "kept %-28s %v as %s (the router, as llama.cpp keeps it)\n", c.Name, c.Dims, c.To)
					default:
						fmt.Fprintf(w, "kept %-28s %v as %s (rows not a multiple of %d)\n", c.Name, c.Dims, c.To, quant.BlockSize)
					}
				}
				fmt.Fprintf(w, "%s: %d tensors, %.2f MB → %.2f MB (%s)\n", args[1], len(changes), float64(in)/1e6, float64(out)/1e6, t)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "target format: q8_0 or q4_0 (required)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing on success")
	cmd.Flags().BoolVar(&requant, "allow-requantize", false, "quantise matrices that are quantised already (rounds twice)")
	cmd.MarkFlagRequired("type")
	return cmd
}

func dimsProduct(d []uint64) uint64 {
	n := uint64(1)
	for _, x := range d {
		n *= x
	}
	return n
}
