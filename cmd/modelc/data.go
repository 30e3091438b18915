package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/internal/atomicfile"
	"github.com/modelc/modelc/runtime/train"
	"github.com/modelc/modelc/tokenizer"
)

func dataCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "data", Short: "Prepare training data"}
	var tok, out string
	var vocab int
	prep := &cobra.Command{
		Use:   "prepare CORPUS... --tokenizer TOK -o corpus.tok",
		Short: "Tokenize text files once into a memory-mapped token file for train --data",
		Long: `prepare tokenizes the corpus files (each starting with BOS) into a token file
of uint16 ids (uint32 when the vocabulary is larger than 65,536) that
'train --data corpus.tok' memory-maps, so big corpora are tokenized once.`,
		Example: "  modelc data prepare ../shared/data/text/tinyshakespeare.txt --tokenizer tok512.bin -o shakespeare.tok",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("-o FILE is required")
			}
			if err := atomicfile.NotInput("-o", out, append(args, tok)...); err != nil {
				return err
			}
			if vocab < 0 {
				return fmt.Errorf("--vocab: must be ≥ 0 (0: read to the end), got %d", vocab)
			}
			t, err := tokenizer.Load(tok, vocab)
			if err != nil {
				return err
			}
			n, err := train.PrepareData(args, t, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d tokens to %s\n", n, out)
			return nil
		},
	}
	prep.Flags().StringVar(&tok, "tokenizer", "", "vocabulary file (any format tokenizer.Load detects)")
	prep.Flags().IntVar(&vocab, "vocab", 0, "vocabulary size, for llama2.c tokenizer.bin files (0: read to the end)")
	prep.Flags().StringVarP(&out, "output", "o", "", "token file to write")
	prep.MarkFlagRequired("tokenizer")
	cmd.AddCommand(prep)
	return cmd
}
