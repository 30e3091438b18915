// Command posttrain runs the post-training commands with the generic model
// for a shape read from a file, as a generated binary would run them for
// its compiled shape: what the benchmarks in runtime/posttrain/RESULTS.md
// use.
//
//	posttrain SHAPE COMMAND [flags]
//
// SHAPE is a model.yaml spec or a llama2.c .bin / GGUF model whose header
// gives the shape.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/posttrain"
	"github.com/modelc/modelc/spec"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: posttrain SHAPE(model.yaml | model file) COMMAND [flags]")
		os.Exit(2)
	}
	s, err := shape(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "posttrain:", err)
		os.Exit(1)
	}
	root := &cobra.Command{Use: "posttrain " + os.Args[1], SilenceErrors: true, SilenceUsage: true}
	root.AddCommand(posttrain.Commands("posttrain "+os.Args[1], s, nil)...)
	root.SetArgs(os.Args[2:])
	// SIGTERM too: kill and job schedulers send it, and a run stopped by it
	// should save its checkpoint as one stopped by Ctrl-C does.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "posttrain:", err)
		if ctx.Err() != nil {
			os.Exit(130) // stopped by a signal, as the shell reports Ctrl-C
		}
		os.Exit(1)
	}
}

func shape(path string) (*spec.Spec, error) {
	if strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml") {
		return spec.Load(path)
	}
	p, f, err := checkpoint.Load(path)
	if err != nil {
		return nil, err
	}
	if f != nil {
		f.Close()
	}
	s := p.Spec
	return &s, nil
}
