package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/tokenizer"
)

func convertCmd() *cobra.Command {
	var tok, name string
	var f16 bool
	cmd := &cobra.Command{
		Use:   "convert IN OUT.gguf",
		Short: "Convert a llama2.c checkpoint (or a GGUF) into a GGUF that llama.cpp reads",
		Long: `convert writes the model's weights with llama.cpp's tensor names and llama.*
metadata, and the vocabulary in tokenizer.ggml.* metadata, so that one file
carries model and tokenizer.`,
		Example: "  modelc convert ../shared/data/models/stories260K.bin --tokenizer ../shared/data/models/tok512.bin stories260K.gguf",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, src, err := checkpoint.Load(args[0])
			if err != nil {
				return err
			}
			if src != nil {
				defer src.Close()
			}
			var t tokenizer.Tokenizer
			switch {
			case tok != "":
				t, err = tokenizer.Load(tok, p.Spec.Vocab)
			case src != nil:
				t, err = tokenizer.FromGGUF(src)
			default:
				err = fmt.Errorf("%s carries no vocabulary: give --tokenizer", args[0])
			}
			if err != nil {
				return err
			}
			if t.VocabSize() != p.Spec.Vocab {
				return fmt.Errorf("tokenizer has %d tokens, model vocab is %d", t.VocabSize(), p.Spec.Vocab)
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
	cmd.Flags().StringVar(&name, "name", "", "general.name to record (default: the spec's name)")
	cmd.Flags().BoolVar(&f16, "f16", false, "store matrices as F16 (norms stay F32)")
	return cmd
}
