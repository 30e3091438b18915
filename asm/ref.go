package asm

import "math"

// The Go reference of every kernel operation: plain loops over run-time sizes,
// written for clarity. They are the oracle the generated kernels are tested
// against; they are not fast.

// Dot is Σ a[i]·b[i] over len(a), summed in order in float32.
func Dot(a, b []float32) float32 {
	var s float32
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// MatVec computes out[r] = w[r]·x for r < len(out); w is row-major
// [len(out), len(x)].
func MatVec(out, w, x []float32) {
	c := len(x)
	for r := range out {
		out[r] = Dot(w[r*c:r*c+c], x)
	}
}

// MatVecAdd adds the product into out: out[r] += w[r]·x, MatVec's sum then
// one add.
func MatVecAdd(out, w, x []float32) {
	c := len(x)
	for r := range out {
		out[r] += Dot(w[r*c:r*c+c], x)
	}
}

// InvRMS is 1/sqrt(mean(x²)+eps), the RMSNorm scale.
func InvRMS(x []float32, eps float32) float32 {
	var ss float32
	for _, v := range x {
		ss += v * v
	}
	return float32(1 / math.Sqrt(float64(ss/float32(len(x))+eps)))
}

// RMSNorm writes out[i] = g[i]·x[i]/rms(x).
func RMSNorm(out, x, g []float32, eps float32) {
	inv := InvRMS(x, eps)
	for i, v := range x {
		out[i] = g[i] * (inv * v)
	}
}

// RMSNormMatVec is MatVec applied to RMSNorm(x, g): the fused pre-norm
// projection (Q/K/V as one matrix, or the classifier).
func RMSNormMatVec(out, w, x, g []float32, eps float32) {
	xn := make([]float32, len(x))
	RMSNorm(xn, x, g, eps)
	MatVec(out, w, xn)
}

// Silu is x·sigmoid(x).
func Silu(x float32) float32 {
	return x / (1 + float32(math.Exp(float64(-x))))
}

// SwiGLU computes out[r] = silu(gate[r]·x)·(up[r]·x) for r < len(out), where w
// holds the gate rows [F, C] followed by the up rows [F, C] with F = len(out).
func SwiGLU(out, w, x []float32) {
	c, f := len(x), len(out)
	for r := range out {
		g := Dot(w[r*c:r*c+c], x)
		u := Dot(w[(f+r)*c:(f+r)*c+c], x)
		out[r] = Silu(g) * u
	}
}

// SiLUMul computes the SwiGLU epilogue of a batched pass: each row of h holds
// F gate values then F up values (F = len(out)/rows), and
// out[t*F+i] = silu(h[t*2F+i])·h[t*2F+F+i].
func SiLUMul(out, h []float32, F int) {
	for t := 0; t < len(out)/F; t++ {
		for i := range F {
			out[t*F+i] = Silu(h[t*2*F+i]) * h[t*2*F+F+i]
		}
	}
}

// RMSNormSwiGLU is SwiGLU applied to RMSNorm(x, g).
func RMSNormSwiGLU(out, w, x, g []float32, eps float32) {
	xn := make([]float32, len(x))
	RMSNorm(xn, x, g, eps)
	SwiGLU(out, w, xn)
}

// Softmax normalises x in place.
func Softmax(x []float32) {
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	var s float32
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		x[i] = e
		s += e
	}
	for i := range x {
		x[i] /= s
	}
}

// AttentionHead computes one head's attention output for the query q over t
// cached positions: scores q·k_j/sqrt(hd), softmax, Σ p_j·v_j. Key j of this
// head is k[j*stride : j*stride+hd] (and the same for v): the caller offsets k
// and v to the head, which is how grouped-query heads share a KV head. att
// (at least t floats) receives the probabilities.
func AttentionHead(out, q, k, v, att []float32, t, stride int) {
	hd := len(q)
	scale := float32(1 / math.Sqrt(float64(hd)))
	att = att[:t]
	for j := range att {
		att[j] = Dot(q, k[j*stride:j*stride+hd]) * scale
	}
	Softmax(att)
	o := out[:hd]
	clear(o)
	for j, p := range att {
		vj := v[j*stride : j*stride+hd]
		for i := range o {
			o[i] += p * vj[i]
		}
	}
}

// GroupAttention runs AttentionHead for every query head of a layer:
// heads KV heads of group query heads each, query head h = g·group+i at
// q[h*hd:] (and out[h*hd:]) against KV head g at k[g*hd:] and v[g*hd:],
// positions stride floats apart. att (at least t floats) is scratch.
func GroupAttention(out, q, k, v, att []float32, t, stride, hd, heads, group int) {
	for h := range heads * group {
		g := h / group
		AttentionHead(out[h*hd:h*hd+hd], q[h*hd:h*hd+hd], k[g*hd:], v[g*hd:], att, t, stride)
	}
}

// GroupAttentionT is GroupAttention over a position-minor cache: dim d of
// KV head g at position j is k[TIndex(g, d, j, hd, capacity)] (and the same
// for v). Each score sums its products in order of d; att (at least t
// floats) is scratch.
func GroupAttentionT(out, q, k, v, att []float32, t, capacity, hd, heads, group int) {
	scale := float32(1 / math.Sqrt(float64(hd)))
	att = att[:t]
	for h := range heads * group {
		g := h / group
		kh, vh := k[g*hd*capacity:], v[g*hd*capacity:]
		qh := q[h*hd : h*hd+hd]
		for j := range att {
			var s float32
			for d, qd := range qh {
				s += qd * kh[TIndex(0, d, j, hd, capacity)]
			}
			att[j] = s * scale
		}
		Softmax(att)
		for d := range hd {
			var o float32
			for j, p := range att {
				o += p * vh[TIndex(0, d, j, hd, capacity)]
			}
			out[h*hd+d] = o
		}
	}
}

// TIndex is where a position-minor cache of the given capacity keeps dim d
// of KV head g at position j: per KV head, tiles of 16 positions, each the
// head's hd rows of 16 floats ([capacity/16][hd][16]), so that a tile is one
// contiguous run and a vector of 16 positions one aligned load.
func TIndex(g, d, j, hd, capacity int) int {
	return g*hd*capacity + (j/16)*hd*16 + d*16 + j%16
}

// MatMul computes out[b*rows+r] = w[r]·x[b] for b tokens: x is [b, cols]
// token-major, w is [rows, cols], out is [b, rows].
func MatMul(out, w, x []float32, rows, cols, b int) {
	for t := 0; t < b; t++ {
		MatVec(out[t*rows:t*rows+rows], w[:rows*cols], x[t*cols:t*cols+cols])
	}
}

// RoPETable fills cs (2·RoPEPeriod(len(cos)·2) floats) for one position from
// the rotation's cos and sin per pair of a head: the first half holds
// cos_i at both 2i and 2i+1, the second -sin_i at 2i and sin_i at 2i+1,
// repeated over the period.
func RoPETable(cs, cos, sin []float32) {
	hd := 2 * len(cos)
	p := RoPEPeriod(hd)
	for j := 0; j < p; j += 2 {
		i := (j % hd) / 2
		cs[j], cs[j+1] = cos[i], cos[i]
		cs[p+j], cs[p+j+1] = -sin[i], sin[i]
	}
}

// RoPE rotates the pairs of n heads of hd floats in place with the table of
// RoPETable: x[2i], x[2i+1] = x[2i]·c - x[2i+1]·s, x[2i+1]·c + x[2i]·s, each
// product rounded before the sum.
func RoPE(x, cs []float32, n, hd int) {
	p := RoPEPeriod(hd)
	for i := 0; i < n*hd; i += 2 {
		j := i % p
		a, b := x[i], x[i+1]
		x[i] = float32(a*cs[j]) + float32(b*cs[p+j])
		x[i+1] = float32(b*cs[j+1]) + float32(a*cs[p+j+1])
	}
}
