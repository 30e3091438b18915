//go:build !purego

package sample

import "github.com/modelc/modelc/runtime/cpu"

//go:generate go run ./internal/argmaxgen

// argmaxAVX2 is whether Argmax runs argmax_avx2 (GODEBUG=cpu.avx2=off forces
// the Go loop).
var argmaxAVX2 = cpu.Supports(cpu.AVX2)

// argmaxAsm is Argmax of a non-empty x in assembly, or -1 when it cannot
// answer (no AVX2, or a NaN in x).
func argmaxAsm(x []float32) int {
	if !argmaxAVX2 {
		return -1
	}
	return argmax_avx2(&x[0], len(x))
}

// argmaxAsmUsed reports whether Argmax runs the assembly.
func argmaxAsmUsed() bool { return argmaxAVX2 }
