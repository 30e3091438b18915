package cpu

import "unsafe"

// FaultIn writes a zero byte into every 4 KiB page of the n bytes at p, which
// must be zero already (a new allocation): the pages fault in here, once,
// rather than inside the first timed loop that touches them. A fault costs
// ≈ 12 µs on this project's virtual machines (BENCHMARKS.md), as much as a
// stories260K token.
func FaultIn(p unsafe.Pointer, n uintptr) {
	const page = 4096
	b := unsafe.Slice((*byte)(p), n)
	for i := 0; i < len(b); i += page {
		b[i] = 0
	}
	if n > 0 {
		b[n-1] = 0
	}
}
