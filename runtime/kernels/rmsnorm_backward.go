package kernels

import "math"

// RMSNormRows normalises N rows of D floats as RMSNorm does and keeps, per
// row, the reciprocal root mean square in rstd for the backward pass. The
// arithmetic is RMSNorm's, so a batched forward equals the one-token path.
func RMSNormRows(out, rstd, x, weight []float32, N, D int, eps float32) {
	weight = weight[:D]
	for n := 0; n < N; n++ {
		xr := x[n*D : n*D+D]
		or := out[n*D : n*D+D]
		var ss float32
		for _, v := range xr {
			ss += v * v
		}
		ss = ss/float32(D) + eps
		inv := float32(1 / math.Sqrt(float64(ss)))
		rstd[n] = inv
		for i, v := range xr {
			or[i] = weight[i] * (inv * v)
		}
	}
}

// RMSNormRowsBackward accumulates the gradients of RMSNormRows into dx
// ([N, D]) and dWeight ([D]) given dOut, the input x and the saved rstd.
// With y = w·x·r and r = (mean(x²)+eps)^-½:
// dx_i = r·w_i·dy_i − x_i·r³/D·Σ_j w_j·dy_j·x_j and dw_i = Σ_n dy_i·x_i·r.
func RMSNormRowsBackward(dx, dWeight, dOut, x, weight, rstd []float32, N, D int) {
	weight = weight[:D]
	dWeight = dWeight[:D]
	for n := 0; n < N; n++ {
		xr := x[n*D : n*D+D]
		gr := dOut[n*D : n*D+D]
		dr := dx[n*D : n*D+D]
		r := rstd[n]
		var dot float32
		for i, g := range gr {
			dot += g * weight[i] * xr[i]
		}
		c := dot * r * r * r / float32(D)
		for i, g := range gr {
			dr[i] += r*weight[i]*g - c*xr[i]
			dWeight[i] += g * xr[i] * r
		}
	}
}
