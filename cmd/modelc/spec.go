package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/internal/atomicfile"
	"github.com/modelc/modelc/spec"
)

func specCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "spec",
		Short: "Inspect and create model specs",
	}
	show := &cobra.Command{
		Use:     "show SPEC.yaml",
		Short:   "Print a spec's shape and derived figures (parameters, FLOPs and bytes per token, KV cache)",
		Example: "  modelc spec show generated/stories260k/model.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := spec.Load(args[0])
			if err != nil {
				return err
			}
			s.Show(cmd.OutOrStdout())
			return nil
		},
	}
	var out, name string
	imp := &cobra.Command{
		Use:   "import MODEL_FILE",
		Short: "Build a spec from a llama2.c checkpoint header or GGUF metadata",
		Example: `  modelc spec import ../shared/data/models/stories260K.bin
  modelc spec import model.gguf -o generated/mymodel/model.yaml --name mymodel`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out != "" {
				if err := atomicfile.NotInput("-o", out, args[0]); err != nil {
					return err
				}
			}
			if name != "" {
				if err := spec.CheckName(name); err != nil {
					return fmt.Errorf("--%w", err)
				}
			}
			s, err := importSpec(args[0])
			if err != nil {
				return err
			}
			if name != "" {
				s.Name = name
			}
			if err := s.Validate(); err != nil {
				return err
			}
			b, err := s.YAML()
			if err != nil {
				return err
			}
			if out == "" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			return writeFileAtomic(out, b)
		},
	}
	imp.Flags().StringVarP(&out, "output", "o", "", "write the spec to this file instead of stdout")
	imp.Flags().StringVar(&name, "name", "", "name of the model, [a-z][a-z0-9_]* (default: a GGUF's general.name, else from the file name)")
	cmd.AddCommand(show, imp)
	return cmd
}

// importSpec reads a spec from a model file of either format.
func importSpec(path string) (spec.Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return spec.Spec{}, err
	}
	magic := make([]byte, 4)
	_, err = io.ReadFull(f, magic)
	f.Close()
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return spec.Spec{}, fmt.Errorf("%s: too short to be a model file", path)
	}
	if err != nil {
		return spec.Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	if string(magic) == gguf.Magic {
		return spec.FromGGUF(path)
	}
	return spec.FromLlama2C(path)
}

// writeFileAtomic writes data to path through a temporary file, making the
// folder first: a spec imported for a new model goes into a folder of its own.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data)
}
