package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/runtime/cpu"
)

func benchCmd() *cobra.Command {
	var model string
	var steps, threads int
	cmd := &cobra.Command{
		Use:   "bench SPEC.yaml",
		Short: "Build a spec's binary and measure generated against generic decode tokens/s",
		Long: `bench compiles the spec, builds its binary and runs its bench command with
--compare: the generated and the generic model decode side by side in one run
and the ratio is printed. Without --model the weights are random (seeded).`,
		Example: `  modelc bench generated/stories260k/model.yaml --model ../shared/data/models/stories260K.bin
  modelc bench generated/llama15m/model.yaml --steps 128`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if threads < 0 || threads > cpu.MaxThreads {
				return fmt.Errorf("--threads: must be between 0 (all cores) and %d, got %d", cpu.MaxThreads, threads)
			}
			if steps < 1 {
				return fmt.Errorf("--steps: must be ≥ 1, got %d", steps)
			}
			dir, err := os.MkdirTemp("", "modelc-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			bin, err := buildSpec(args[0], filepath.Join(dir, "model"), "")
			if err != nil {
				return err
			}
			a := []string{"bench", "--compare", "--steps", strconv.Itoa(steps)}
			if model != "" {
				a = append(a, "--model", model)
			} else {
				a = append(a, "--random")
			}
			if threads > 0 {
				a = append(a, "--threads", strconv.Itoa(threads))
			}
			c := exec.Command(bin, a...)
			c.Stdout, c.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			// The binary has said what went wrong: exit as it did, saying
			// nothing more.
			err = c.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return exitStatus(ee.ExitCode())
			}
			return err
		},
	}
	cmd.Flags().StringVar(&model, "model", "", "checkpoint to load (default: random weights)")
	cmd.Flags().IntVar(&steps, "steps", 256, "tokens to decode (at most the spec's max_seq)")
	cmd.Flags().IntVar(&threads, "threads", 0, "worker threads (default: all cores)")
	return cmd
}

// exitStatus ends modelc with a status and no message of its own.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
