// Package limitgen writes package limits' assembly kernels (from asm's
// LimitsAMD64); the regeneration test and go generate share it.
package limitgen

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/modelc/modelc/asm"
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
func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
