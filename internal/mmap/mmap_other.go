//go:build !unix

package mmap

// Map reads path into memory where this system has no mmap.
func Map(path string) ([]byte, func() error, error) { return readWhole(path) }

// Release does nothing where files are read, not mapped.
func Release([]byte) {}
