package cpu

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestFaultInResident checks FaultIn's purpose: every page of a fresh
// anonymous mapping is resident afterwards (none was before).
func TestFaultInResident(t *testing.T) {
	const pages = 5
	mem, err := unix.Mmap(-1, 0, pages*4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	resident := func() int {
		vec := make([]byte, pages)
		if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
			t.Fatal(e)
		}
		n := 0
		for _, v := range vec {
			n += int(v & 1)
		}
		return n
	}
	if r := resident(); r != 0 {
		t.Fatalf("%d of %d pages resident before FaultIn, want 0", r, pages)
	}
	// From the middle of the first page to the middle of the last.
	FaultIn(unsafe.Pointer(&mem[100]), pages*4096-200)
	if r := resident(); r != pages {
		t.Fatalf("%d of %d pages resident after FaultIn, want %d", r, pages, pages)
	}
}
