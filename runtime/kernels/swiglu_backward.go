package kernels

import "math"

// SwiGLURows computes, for N rows of gateUp = [gate (F) | up (F)] as the fused
// gate and up projections produce them, out[n*F+f] = silu(gate)·up with
// SwiGLU's arithmetic. gateUp is kept intact for the backward pass.
func SwiGLURows(out, gateUp []float32, N, F int) {
	for n := 0; n < N; n++ {
		g := gateUp[2*n*F : 2*n*F+F]
		u := gateUp[2*n*F+F : 2*n*F+2*F]
		o := out[n*F : n*F+F]
		for i, gv := range g {
			o[i] = gv / (1 + float32(math.Exp(float64(-gv)))) * u[i]
		}
	}
}

// SwiGLURowsBackward accumulates into dGateUp ([N, 2F]) the gradients of
// SwiGLURows given dOut ([N, F]): with σ the logistic function,
// d gate = dOut·up·σ(g)·(1+g·(1−σ(g))) and d up = dOut·g·σ(g).
func SwiGLURowsBackward(dGateUp, dOut, gateUp []float32, N, F int) {
	for n := 0; n < N; n++ {
		g := gateUp[2*n*F : 2*n*F+F]
		u := gateUp[2*n*F+F : 2*n*F+2*F]
		dg := dGateUp[2*n*F : 2*n*F+F]
		du := dGateUp[2*n*F+F : 2*n*F+2*F]
		d := dOut[n*F : n*F+F]
		for i, gv := range g {
			sig := 1 / (1 + float32(math.Exp(float64(-gv))))
			dg[i] += d[i] * u[i] * sig * (1 + gv*(1-sig))
			du[i] += d[i] * gv * sig
		}
	}
}
