//go:build !purego

package sample

import (
	"math"

	"github.com/modelc/modelc/runtime/cpu"
)

//go:generate go run ./internal/softmaxgen

// softmaxAVX2 is whether the softmax's scaling and exponentials run in
// assembly (GODEBUG=cpu.avx2=off forces the Go loops).
var softmaxAVX2 = cpu.Supports(cpu.AVX2)

// expAsm sets p[i] = float32(math.Exp(float64(logits[i]/temp - mx))), mx the
// largest logits[i]/temp, the bits of the Go loops (see asm.SoftmaxAMD64),
// and returns their float32 sum added in index order; ok is false when it
// cannot run (the caller then runs the loops).
func expAsm(p, logits []float32, temp float32) (sum float32, ok bool) {
	if !softmaxAVX2 || len(logits) == 0 {
		return 0, false
	}
	mx := scalemax_avx2(&p[0], &logits[0], len(logits), temp)
	m := len(p) &^ 7
	if m > 0 {
		var bad int
		if sum, bad = expshift_avx2(&p[0], m, mx); bad != 0 {
			sum = 0
			for i := range m {
				if p[i] < 0 { // the kernel could not vouch for this one
					p[i] = float32(math.Exp(float64(logits[i]/temp - mx)))
				}
				sum += p[i]
			}
		}
	}
	for i := m; i < len(p); i++ {
		p[i] = float32(math.Exp(float64(p[i] - mx)))
		sum += p[i]
	}
	return sum, true
}

// scaleAsm multiplies p by s, or reports false when it cannot run.
func scaleAsm(p []float32, s float32) bool {
	if !softmaxAVX2 || len(p) == 0 {
		return false
	}
	scale_avx2(&p[0], len(p), s)
	return true
}
