// Command modelc compiles model specs into specialised Go packages and binaries,
// and converts, inspects and benchmarks models.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/runtime/cli"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "modelc: %v\n", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "modelc",
		Short: "modelc compiles small language models into specialised Go binaries",
		Long: `modelc compiles a declarative model spec (model.yaml) into Go code and
assembly specialised to exactly its shapes, and builds one binary per model.

  modelc gen generated/stories260k/model.yaml        # write the specialised package
  modelc build generated/stories260k/model.yaml -o bin/stories260k
  modelc spec show generated/stories260k/model.yaml  # parameters, FLOPs, bytes per token
  modelc convert stories260K.bin --tokenizer tok512.bin stories260K.gguf`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(genCmd(), buildCmd(), specCmd(), convertCmd(), benchCmd(), dataCmd(), quantizeCmd(), tokenizerCmd(), limitsCmd())
	cli.StrictGroups(root)
	return root
}
