package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/gen"
	"github.com/modelc/modelc/spec"
)

func genCmd() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "gen SPEC.yaml...",
		Short: "Compile specs into specialised Go packages beside them",
		Long: `gen compiles each spec into the directory that holds it: model_gen.go (the
specialised model), the kernels, gen.go (the go:generate line) and
cmd/NAME/main.go (the binary). The directory must lie inside a Go module that
can import modelc, and is the spec's own: gen refuses one that holds another
spec's package, Go files of another package, or a file it did not write that
it would replace, and removes the files it generated there before that the
spec no longer makes (a dropped target, a renamed spec's command).`,
		Example: "  modelc gen generated/stories260k/model.yaml",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, path := range args {
				written, removed, err := gen.Generate(path)
				if err != nil {
					return err
				}
				if !quiet {
					for _, f := range written {
						fmt.Fprintln(cmd.ErrOrStderr(), "wrote", f)
					}
					for _, f := range removed {
						fmt.Fprintln(cmd.ErrOrStderr(), "removed", f)
					}
					if len(written)+len(removed) == 0 {
						fmt.Fprintln(cmd.ErrOrStderr(), path+": up to date")
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not list the files written")
	return cmd
}

func buildCmd() *cobra.Command {
	var out string
	var tags string
	cmd := &cobra.Command{
		Use:   "build SPEC.yaml [-o BINARY]",
		Short: "Compile a spec and build its binary",
		Example: `  modelc build generated/stories260k/model.yaml -o bin/stories260k
  modelc build generated/stories260k/model.yaml -o bin/stories260k-purego --tags purego`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bin, err := buildSpec(args[0], out, tags)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "built", bin)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "binary to write (default bin/NAME)")
	cmd.Flags().StringVar(&tags, "tags", "", "Go build tags, e.g. purego")
	return cmd
}

// buildSpec generates the package for specPath and builds its command.
func buildSpec(specPath, out, tags string) (string, error) {
	s, err := spec.Load(specPath)
	if err != nil {
		return "", err
	}
	if _, _, err := gen.Generate(specPath); err != nil {
		return "", err
	}
	if out == "" {
		out = filepath.Join("bin", s.Name)
	}
	out, err = filepath.Abs(out)
	if err != nil {
		return "", err
	}
	args := []string{"build", "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	args = append(args, "./cmd/"+s.Name)
	c := exec.Command("go", args...)
	c.Dir = filepath.Dir(specPath)
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w", specPath, err)
	}
	return out, nil
}
