//go:build unix

package train

import (
	"os"
	"syscall"
)

// mapFile maps path read-only; files the kernel will not map are read.
func mapFile(path string) ([]byte, func() error, error) {
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
