//go:build !purego

package screen

import "github.com/modelc/modelc/runtime/cpu"

// The screen's kernel on arm64 cores with SDOT (asm.ScreenARM64).
var neonK = &kernels{name: "neon", levels: 127, run: screen_neon}

// forLevel returns the kernel this machine runs beside the model kernels
// of level l, nil if none.
func forLevel(l cpu.Level) *kernels {
	if l >= cpu.NEON && cpu.Supports(cpu.NEON) && cpu.Detect().ASIMDDP {
		return neonK
	}
	return nil
}
