//go:build !purego

package quant

import "github.com/modelc/modelc/runtime/cpu"

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
