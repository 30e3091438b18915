package kernels

import "math"

// RoPEFreqs returns, for one head, the rotation frequency of each pair of
// dimensions: theta^(-2i/headDim).
func RoPEFreqs(headDim int, theta float64) []float32 {
	f := make([]float32, headDim/2)
	for i := range f {
		f[i] = float32(1 / math.Pow(theta, float64(2*i)/float64(headDim)))
	}
	return f
}

// RoPE rotates each adjacent pair (v[2i], v[2i+1]) of every head in v by the
// angle pos·freq[i], as llama2.c and llama.cpp's `llama` architecture do.
func RoPE(v []float32, pos int, freqs []float32) {
	hd := 2 * len(freqs)
	for h := 0; h < len(v); h += hd {
		for i, f := range freqs {
			val := float64(float32(pos) * f)
			c, s := float32(math.Cos(val)), float32(math.Sin(val))
			a, b := v[h+2*i], v[h+2*i+1]
			v[h+2*i] = a*c - b*s
			v[h+2*i+1] = a*s + b*c
		}
	}
}
