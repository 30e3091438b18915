//go:build !purego

package quant

import (
	"github.com/modelc/modelc/runtime/cpu"
	"github.com/modelc/modelc/runtime/kernels"
)

//go:generate go run ./internal/actgen

// actAVX2 is whether QuantizeAct runs quantizeAct_avx2 (bit-identical to the
// Go loop; GODEBUG=cpu.avx2=off forces the Go loop).
var actAVX2 = cpu.Supports(cpu.AVX2)

func quantizeActAsm(xq []int8, xs []float32, x []float32, nb int) bool {
	if !actAVX2 {
		return false
	}
	quantizeAct_avx2(&xq[0], &xs[0], &x[0], nb)
	return true
}

// SwiGLU sets gate[i] = gate[i]/(1+e^-gate[i])·up[i]: with AVX2, 8 at a time
// with the float kernels' exp (a few ulps from runtime/kernels.SwiGLU, which
// does the rest and runs elsewhere).
func SwiGLU(gate, up []float32) {
	n := len(gate) / 8
	if actAVX2 && n > 0 {
		_ = up[n*8-1]
		swiglu_avx2(&gate[0], &up[0], n)
	}
	kernels.SwiGLU(gate[n*8:], up[n*8:len(gate)])
}
