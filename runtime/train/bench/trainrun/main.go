// Command trainrun is a model binary's train and eval commands over the
// generic model for any spec file: what a generated binary does, without
// generating one. It produced the long training run in RESULTS.md.
//
//	go run ./runtime/train/bench/trainrun --spec model.yaml train --data corpus.txt --tokenizer tok.bin --steps 2000 --out run/
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/modelc/modelc/runtime/train"
	"github.com/modelc/modelc/spec"
)

func main() {
	args := os.Args[1:]
	if len(args) < 2 || args[0] != "--spec" {
		fmt.Fprintln(os.Stderr, "usage: trainrun --spec model.yaml train|eval [flags]")
		os.Exit(2)
	}
	s, err := spec.Load(args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "trainrun:", err)
		os.Exit(1)
	}
	root := train.Commands(s.Name, s, nil)
	var cmdArgs []string
	if len(args) > 2 {
		cmdArgs = args[3:]
	}
	for _, c := range root {
		if len(args) > 2 && c.Name() == args[2] {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			c.SetArgs(cmdArgs)
			c.SilenceErrors, c.SilenceUsage = true, true
			err := c.ExecuteContext(ctx)
			stop()
			if err != nil {
				fmt.Fprintln(os.Stderr, "trainrun:", strings.ReplaceAll(err.Error(), "\n", " ; "))
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintln(os.Stderr, "trainrun: the command is train or eval")
	os.Exit(2)
}
