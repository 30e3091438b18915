package cpu

import (
	"testing"
	"unsafe"
)

// TestFaultIn checks that FaultIn leaves a zero buffer zero and writes
// nothing outside it, for lengths around page boundaries and unaligned starts.
func TestFaultIn(t *testing.T) {
	const guard = 0x5a
	for _, off := range []int{0, 1, 4095} {
		for _, n := range []int{0, 1, 4095, 4096, 4097, 3*4096 + 5} {
			buf := make([]byte, off+n+2)
			buf[off], buf[off+n+1] = guard, guard // the bytes just outside [off+1, off+1+n)
			if n > 0 {
				FaultIn(unsafe.Pointer(&buf[off+1]), uintptr(n))
			}
			if buf[off] != guard || buf[off+n+1] != guard {
				t.Fatalf("off %d n %d: FaultIn wrote outside its buffer", off, n)
			}
			for i := off + 1; i < off+1+n; i++ {
				if buf[i] != 0 {
					t.Fatalf("off %d n %d: byte %d = %#x, want 0", off, n, i-off-1, buf[i])
				}
			}
		}
	}
}
