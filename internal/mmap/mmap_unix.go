//go:build unix

package mmap

import (
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// live holds the mappings made by Map and not yet unmapped, so that Release
// can tell mapped bytes from any other memory.
var live struct {
	sync.Mutex
	m map[uintptr]uintptr // start → end
}

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
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	live.Lock()
	if live.m == nil {
		live.m = map[uintptr]uintptr{}
	}
	live.m[start] = start + uintptr(len(b))
	live.Unlock()
	return b, func() error {
		live.Lock()
		delete(live.m, start)
		live.Unlock()
		return syscall.Munmap(b)
	}, nil
}

// Release tells the kernel that the whole pages inside b will not be needed
// soon, when b lies in a live mapping made by Map (other memory is left
// alone): they leave the resident set and, being a read-only file mapping,
// are read back from the page cache if touched again. For data copied out
// at load (e.g. weights rearranged for a kernel).
func Release(b []byte) {
	if len(b) == 0 {
		return
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	hi := lo + uintptr(len(b))
	live.Lock()
	defer live.Unlock()
	for s, e := range live.m {
		if lo < s || hi > e {
			continue
		}
		page := uintptr(os.Getpagesize())
		a, z := (lo+page-1)&^(page-1), hi&^(page-1)
		if a < z {
			syscall.Madvise(b[a-lo:z-lo], syscall.MADV_DONTNEED)
		}
		return
	}
}
