//go:build unix

package mmap

import (
	"os"
	"syscall"
)

// Map maps path read-only and returns its bytes and the function that unmaps
// them (valid until called). Empty files, and files the kernel refuses to map,
// are read into memory instead.
func Map(path string) ([]byte, func() error, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer fd.Close() // a mapping outlives its descriptor
	st, err := fd.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := st.Size()
	if size <= 0 || !st.Mode().IsRegular() || int64(int(size)) != size {
		return readWhole(path)
	}
	b, err := syscall.Mmap(int(fd.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return readWhole(path)
	}
	return b, func() error { return syscall.Munmap(b) }, nil
}
