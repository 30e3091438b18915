// Package limitgen writes package limits' assembly kernels (from asm's
// LimitsAMD64); the regeneration test and go generate share it.
package limitgen

import (
	"path/filepath"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/internal/atomicfile"
)

// Files are the generated files of package limits.
var Files = []string{"kernels_amd64.s", "kernels_amd64.go"}

// Generate writes the kernels and their stubs into dir.
func Generate(dir string) error {
	s, stubs, err := asm.LimitsAMD64("limits")
	if err != nil {
		return err
	}
	for i, data := range [][]byte{s, stubs} {
		if err := writeFile(filepath.Join(dir, Files[i]), data); err != nil {
			return err
		}
	}
	return nil
}

// writeFile replaces path atomically (temp file, sync, rename).
func writeFile(path string, data []byte) error { return atomicfile.WriteFile(path, data) }
