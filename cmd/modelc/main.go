// Command modelc compiles model specs into specialised Go packages and binaries,
// and converts, inspects and benchmarks models.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/internal/atomicfile"
	"github.com/modelc/modelc/runtime/cli"
)

func main() {
	stopOnSignal()
	if err := execute(newRoot(), os.Stdout); err != nil {
		var st exitStatus
		if errors.As(err, &st) {
			os.Exit(int(st))
		}
		fmt.Fprintf(os.Stderr, "modelc: %v\n", err)
		os.Exit(1)
	}
}

// execute runs root with its output on stdout; output that could not be
// written (a full disk) fails the command as its own errors do.
func execute(root *cobra.Command, stdout io.Writer) error {
	out := cli.NewOutput(stdout)
	root.SetOut(out)
	if err := root.Execute(); err != nil {
		return err
	}
	return out.Err()
}

// stopOnSignal makes Ctrl-C or SIGTERM end a command at once, as without a
// handler, but first remove the temporary file of an output being written
// (quantize, convert, tokenizer train, data prepare), which would otherwise
// be left beside it; the old output stays as it was.
func stopOnSignal() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		atomicfile.RemoveTemps()
		fmt.Fprintf(os.Stderr, "modelc: stopped (%v)\n", s)
		os.Exit(128 + int(s.(syscall.Signal)))
	}()
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
	cli.PlainFlagErrors(root)
	return root
}
