package kernels

import "math"

// Attention computes one head's output for the query q at position pos:
// scores against keys 0..pos, softmax, weighted sum of values. keys and values
// hold one row of kvStride floats per position; the head's slice starts at
// kvOff. att is scratch of at least pos+1 floats.
func Attention(out, q, keys, values, att []float32, pos, kvStride, kvOff int) {
	hd := len(q)
	scale := float32(1 / math.Sqrt(float64(hd)))
	att = att[:pos+1]
	for t := range att {
		k := keys[t*kvStride+kvOff : t*kvStride+kvOff+hd]
		var s float32
		for i, qv := range q {
			s += qv * k[i]
		}
		att[t] = s * scale
	}
	Softmax(att)
	clear(out[:hd])
	for t, a := range att {
		v := values[t*kvStride+kvOff : t*kvStride+kvOff+hd]
		for i := range out[:hd] {
			out[i] += a * v[i]
		}
	}
}
