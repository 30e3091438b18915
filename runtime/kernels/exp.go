package kernels

import "math"

// Exp32 is e^x in float32 within 2 ulp of the exactly rounded value, several
// times cheaper than math.Exp: the compiled models use it in softmax and SiLU,
// whose per-token exponentials dominate small models. It uses Cody–Waite range
// reduction (x = n·ln2 + r) and a degree-6 minimax polynomial for e^r.
func Exp32(x float32) float32 {
	switch {
	case x > 88.72283:
		return float32(math.Inf(1))
	case x < -87.33654:
		// e^x is below the smallest normal float32: flush to zero, which is
		// what softmax needs and within 2^-126 of the truth.
		if x != x {
			return x
		}
		return 0
	}
	n := float32(math.Floor(float64(x*1.442695041 + 0.5)))
	r := x - n*0.693359375 + n*2.12194440e-4
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*(r*r) + r + 1
	// Scale by 2^n in two steps so that n = 128 (x near the top) and n < -126
	// cannot overflow the exponent field.
	h := int32(n) / 2
	s1 := math.Float32frombits(uint32(h+127) << 23)
	s2 := math.Float32frombits(uint32(int32(n)-h+127) << 23)
	return p * s1 * s2
}

// SoftmaxFast is Softmax with Exp32.
func SoftmaxFast(x []float32) {
	if len(x) == 0 {
		return
	}
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	var sum float32
	for i, v := range x {
		e := Exp32(v - m)
		x[i] = e
		sum += e
	}
	inv := 1 / sum
	for i := range x {
		x[i] *= inv
	}
}
