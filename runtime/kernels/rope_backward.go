package kernels

import "math"

// RoPETable returns the cosines and sines RoPE uses at positions 0..T-1, row
// pos holding one value per pair: cos[pos*len(freqs)+i] = cos(pos·freqs[i]).
// The values are computed exactly as RoPE computes them.
func RoPETable(T int, freqs []float32) (cos, sin []float32) {
	h := len(freqs)
	cos = make([]float32, T*h)
	sin = make([]float32, T*h)
	for pos := 0; pos < T; pos++ {
		for i, f := range freqs {
			val := float64(float32(pos) * f)
			cos[pos*h+i] = float32(math.Cos(val))
			sin[pos*h+i] = float32(math.Sin(val))
		}
	}
	return cos, sin
}

// RoPERows rotates, in each of N rows of x (row n at x[n*stride:]), the first
// width floats (whole heads of 2·len(table row) floats) as RoPE does at
// position (first+n) mod T: the rows are rows first.. of B sequences of T
// tokens starting at position 0, so a thread given a slice that starts
// inside a sequence passes the slice's first row.
func RoPERows(x []float32, first, N, T, stride, width int, cos, sin []float32) {
	h := len(cos) / T
	hd := 2 * h
	for n := 0; n < N; n++ {
		pos := (first + n) % T
		c, s := cos[pos*h:pos*h+h], sin[pos*h:pos*h+h]
		row := x[n*stride : n*stride+width]
		for k := 0; k+hd <= width; k += hd {
			v := row[k : k+hd]
			for i := range c {
				a, b := v[2*i], v[2*i+1]
				v[2*i] = a*c[i] - b*s[i]
				v[2*i+1] = a*s[i] + b*c[i]
			}
		}
	}
}

// RoPERowsBackward turns, in place, the gradient with respect to RoPERows'
// output into the gradient with respect to its input: the rotation is
// orthogonal, so its transpose rotates by the opposite angle.
func RoPERowsBackward(dx []float32, first, N, T, stride, width int, cos, sin []float32) {
	h := len(cos) / T
	hd := 2 * h
	for n := 0; n < N; n++ {
		pos := (first + n) % T
		c, s := cos[pos*h:pos*h+h], sin[pos*h:pos*h+h]
		row := dx[n*stride : n*stride+width]
		for k := 0; k+hd <= width; k += hd {
			v := row[k : k+hd]
			for i := range c {
				a, b := v[2*i], v[2*i+1]
				v[2*i] = a*c[i] + b*s[i]
				v[2*i+1] = b*c[i] - a*s[i]
			}
		}
	}
}
