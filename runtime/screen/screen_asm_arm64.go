//go:build !purego

package screen

import "github.com/modelc/modelc/runtime/cpu"

// The screen's kernel on arm64 cores with SDOT (asm.ScreenARM64).
var neonK = &kernels{name: "neon", levels: 127, run: screen_neon, prep: prepNEON}

// forLevel returns the kernel this machine runs beside the model kernels
// of level l, nil if none.
func forLevel(l cpu.Level) *kernels {
	if l >= cpu.NEON && cpu.Supports(cpu.NEON) && cpu.Detect().ASIMDDP {
		return neonK
	}
	return nil
}

// prepNEON is prepare's kernel for n a multiple of 4; done is false when it
// does not apply (the Go loop then prepares). It leaves the words of s.x
// past n/4 as NewScratch made them, zero (screen_neon's panels hold q = 0
// in those columns anyway).
func prepNEON(s *Scratch, x, g []float32, eps float32) (ok, done bool) {
	n := len(x)
	if n%4 != 0 {
		return false, false
	}
	return screenprep_neon(&s.x[0], &s.xn[0], &s.tok[0], &x[0], &g[0], n, eps), true
}
