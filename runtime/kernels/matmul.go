package kernels

// Batched matrix multiplication, the hot path of training: a linear layer
// applied to N rows at once. Weights are row-major [O, I] as everywhere in
// modelc (Shape[0] is the output dimension), so out = in · Wᵀ reads both
// operands along contiguous rows.
//
// Every output element is computed by exactly one loop nest in a fixed order,
// whatever rows or columns a caller splits the work into, so results do not
// depend on how many threads share the work (a resumed run must continue bit
// for bit).

// MatMul computes out[n*O+o] = Σ_i in[n*I+i]·w[o*I+i] for n < N, o < O.
// To split the work, pass a sub-range of rows of in and out.
func MatMul(out, in, w []float32, N, I, O int) {
	out = out[:N*O]
	in = in[:N*I]
	w = w[:O*I]
	// Two input rows against four weight rows per step: eight independent
	// sums reuse every loaded value, and a block of 32 input rows stays in
	// cache while the weights stream past.
	const nb = 32
	for n0 := 0; n0 < N; n0 += nb {
		n1 := min(n0+nb, N)
		o := 0
		for ; o+4 <= O; o += 4 {
			w0 := w[o*I : o*I+I]
			w1 := w[(o+1)*I : (o+1)*I+I]
			w2 := w[(o+2)*I : (o+2)*I+I]
			w3 := w[(o+3)*I : (o+3)*I+I]
			n := n0
			for ; n+2 <= n1; n += 2 {
				x0 := in[n*I : n*I+I]
				x1 := in[(n+1)*I : (n+1)*I+I]
				var s00, s01, s02, s03, s10, s11, s12, s13 float32
				for i := range x0 {
					a, b := x0[i], x1[i]
					c0, c1, c2, c3 := w0[i], w1[i], w2[i], w3[i]
					s00 += a * c0
					s01 += a * c1
					s02 += a * c2
					s03 += a * c3
					s10 += b * c0
					s11 += b * c1
					s12 += b * c2
					s13 += b * c3
				}
				r0 := out[n*O+o : n*O+o+4]
				r0[0], r0[1], r0[2], r0[3] = s00, s01, s02, s03
				r1 := out[(n+1)*O+o : (n+1)*O+o+4]
				r1[0], r1[1], r1[2], r1[3] = s10, s11, s12, s13
			}
			for ; n < n1; n++ {
				x0 := in[n*I : n*I+I]
				var s00, s01, s02, s03 float32
				for i, a := range x0 {
					s00 += a * w0[i]
					s01 += a * w1[i]
					s02 += a * w2[i]
					s03 += a * w3[i]
				}
				r0 := out[n*O+o : n*O+o+4]
				r0[0], r0[1], r0[2], r0[3] = s00, s01, s02, s03
			}
		}
		for ; o < O; o++ {
			w0 := w[o*I : o*I+I]
			for n := n0; n < n1; n++ {
				x0 := in[n*I : n*I+I]
				var s float32
				for i, a := range x0 {
					s += a * w0[i]
				}
				out[n*O+o] = s
			}
		}
	}
}

// MatMulBackwardInput accumulates the gradient of the input of MatMul:
// dIn[n*I+i] += Σ_o dOut[n*O+o]·w[o*I+i]. Split the work by rows of dIn and dOut.
func MatMulBackwardInput(dIn, dOut, w []float32, N, I, O int) {
	dIn = dIn[:N*I]
	dOut = dOut[:N*O]
	w = w[:O*I]
	n := 0
	// Two rows share every weight load; each row's sum is the same
	// expression as in the one-row tail, so the split does not matter.
	for ; n+2 <= N; n += 2 {
		d0 := dIn[n*I : n*I+I]
		d1 := dIn[(n+1)*I : (n+1)*I+I]
		g0 := dOut[n*O : n*O+O]
		g1 := dOut[(n+1)*O : (n+1)*O+O]
		o := 0
		for ; o+4 <= O; o += 4 {
			a0, a1, a2, a3 := g0[o], g0[o+1], g0[o+2], g0[o+3]
			b0, b1, b2, b3 := g1[o], g1[o+1], g1[o+2], g1[o+3]
			w0 := w[o*I : o*I+I]
			w1 := w[(o+1)*I : (o+1)*I+I]
			w2 := w[(o+2)*I : (o+2)*I+I]
			w3 := w[(o+3)*I : (o+3)*I+I]
			for i := range d0 {
				c0, c1, c2, c3 := w0[i], w1[i], w2[i], w3[i]
				d0[i] += (a0*c0 + a1*c1) + (a2*c2 + a3*c3)
				d1[i] += (b0*c0 + b1*c1) + (b2*c2 + b3*c3)
			}
		}
		for ; o < O; o++ {
			a, b := g0[o], g1[o]
			w0 := w[o*I : o*I+I]
			for i := range d0 {
				d0[i] += a * w0[i]
				d1[i] += b * w0[i]
			}
		}
	}
	for ; n < N; n++ {
		d0 := dIn[n*I : n*I+I]
		g0 := dOut[n*O : n*O+O]
		o := 0
		for ; o+4 <= O; o += 4 {
			a0, a1, a2, a3 := g0[o], g0[o+1], g0[o+2], g0[o+3]
			w0 := w[o*I : o*I+I]
			w1 := w[(o+1)*I : (o+1)*I+I]
			w2 := w[(o+2)*I : (o+2)*I+I]
			w3 := w[(o+3)*I : (o+3)*I+I]
			for i := range d0 {
				d0[i] += (a0*w0[i] + a1*w1[i]) + (a2*w2[i] + a3*w3[i])
			}
		}
		for ; o < O; o++ {
			a := g0[o]
			w0 := w[o*I : o*I+I]
			for i := range d0 {
				d0[i] += a * w0[i]
			}
		}
	}
}

// MatMulBackwardWeight accumulates the gradient of the weights of MatMul for
// output rows oLo ≤ o < oHi: dW[o*I+i] += Σ_n dOut[n*O+o]·in[n*I+i]. Split the
// work by ranges of output rows.
func MatMulBackwardWeight(dW, dOut, in []float32, N, I, O, oLo, oHi int) {
	dW = dW[:O*I]
	dOut = dOut[:N*O]
	in = in[:N*I]
	// A block of input rows stays in cache while every output row of the
	// range takes its share; the block size is a multiple of four, so each
	// dW element sums over n in the same groups whatever the range.
	const nb = 64
	for n0 := 0; n0 < N; n0 += nb {
		n1 := min(n0+nb, N)
		o := oLo
		for ; o+2 <= oHi; o += 2 {
			d0 := dW[o*I : o*I+I]
			d1 := dW[(o+1)*I : (o+1)*I+I]
			n := n0
			for ; n+4 <= n1; n += 4 {
				a0, a1, a2, a3 := dOut[n*O+o], dOut[(n+1)*O+o], dOut[(n+2)*O+o], dOut[(n+3)*O+o]
				b0, b1, b2, b3 := dOut[n*O+o+1], dOut[(n+1)*O+o+1], dOut[(n+2)*O+o+1], dOut[(n+3)*O+o+1]
				x0 := in[n*I : n*I+I]
				x1 := in[(n+1)*I : (n+1)*I+I]
				x2 := in[(n+2)*I : (n+2)*I+I]
				x3 := in[(n+3)*I : (n+3)*I+I]
				for i := range d0 {
					c0, c1, c2, c3 := x0[i], x1[i], x2[i], x3[i]
					d0[i] += (a0*c0 + a1*c1) + (a2*c2 + a3*c3)
					d1[i] += (b0*c0 + b1*c1) + (b2*c2 + b3*c3)
				}
			}
			for ; n < n1; n++ {
				a, b := dOut[n*O+o], dOut[n*O+o+1]
				x0 := in[n*I : n*I+I]
				for i := range d0 {
					d0[i] += a * x0[i]
					d1[i] += b * x0[i]
				}
			}
		}
		for ; o < oHi; o++ {
			d0 := dW[o*I : o*I+I]
			n := n0
			for ; n+4 <= n1; n += 4 {
				a0, a1, a2, a3 := dOut[n*O+o], dOut[(n+1)*O+o], dOut[(n+2)*O+o], dOut[(n+3)*O+o]
				x0 := in[n*I : n*I+I]
				x1 := in[(n+1)*I : (n+1)*I+I]
				x2 := in[(n+2)*I : (n+2)*I+I]
				x3 := in[(n+3)*I : (n+3)*I+I]
				for i := range d0 {
					d0[i] += (a0*x0[i] + a1*x1[i]) + (a2*x2[i] + a3*x3[i])
				}
			}
			for ; n < n1; n++ {
				a := dOut[n*O+o]
				x0 := in[n*I : n*I+I]
				for i := range d0 {
					d0[i] += a * x0[i]
				}
			}
		}
	}
}
