package kernels

import "math"

// SwiGLU computes gate[i] = silu(gate[i]) · up[i] in place in gate.
func SwiGLU(gate, up []float32) {
	for i, g := range gate {
		gate[i] = g / (1 + float32(math.Exp(float64(-g)))) * up[i]
	}
}
