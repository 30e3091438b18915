// Package mmap maps files read-only into memory, so that model weights and
// token files are used where they lie instead of being copied.
package mmap

import "os"

// readWhole is the fallback where the kernel will not map a file.
func readWhole(path string) ([]byte, func() error, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return b, func() error { return nil }, nil
}
