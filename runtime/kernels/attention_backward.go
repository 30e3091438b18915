package kernels

import "math"

// AttentionSeq runs one attention head over one sequence of T positions, all
// queries at once. Row t of the head's queries, keys and values starts at
// q[t*stride], k[t*stride] and v[t*stride] (pass slices already offset to the
// head; several query heads may share one key/value head). Row t of the
// output starts at out[t*outStride]. att ([T, T]) receives the attention
// probabilities, which the backward pass needs. Causal attention lets
// position t see positions 0..t (the entries above the diagonal are left
// zero); otherwise every position sees the whole sequence. The arithmetic of
// a causal row is Attention's.
func AttentionSeq(out, att, q, k, v []float32, T, hd, stride, outStride int, causal bool) {
	scale := float32(1 / math.Sqrt(float64(hd)))
	for t := 0; t < T; t++ {
		L := T
		if causal {
			L = t + 1
		}
		row := att[t*T : t*T+T]
		qt := q[t*stride : t*stride+hd]
		for t2 := 0; t2 < L; t2++ {
			kt := k[t2*stride : t2*stride+hd]
			var s float32
			for i, qv := range qt {
				s += qv * kt[i]
			}
			row[t2] = s * scale
		}
		clear(row[L:])
		Softmax(row[:L])
		o := out[t*outStride : t*outStride+hd]
		clear(o)
		for t2, a := range row[:L] {
			vt := v[t2*stride : t2*stride+hd]
			for i := range o {
				o[i] += a * vt[i]
			}
		}
	}
}

// AttentionSeqBackward accumulates into dq, dk and dv (laid out like q, k and
// v) the gradients of AttentionSeq given dOut (laid out like out) and the
// probabilities att it saved. With p the probabilities, s the scaled scores
// and c the scale: dv_u += Σ_t p_tu·dout_t, dp_tu = dout_t·v_u,
// ds_tu = p_tu·(dp_tu − Σ_u' p_tu'·dp_tu'), dq_t += c·Σ_u ds_tu·k_u,
// dk_u += c·Σ_t ds_tu·q_t. dp is scratch of T floats.
func AttentionSeqBackward(dq, dk, dv, dOut, att, q, k, v, dp []float32, T, hd, stride, outStride int, causal bool) {
	scale := float32(1 / math.Sqrt(float64(hd)))
	dp = dp[:T]
	for t := 0; t < T; t++ {
		L := T
		if causal {
			L = t + 1
		}
		p := att[t*T : t*T+L]
		g := dOut[t*outStride : t*outStride+hd]
		var sum float32
		for u, pu := range p {
			vu := v[u*stride : u*stride+hd]
			dvu := dv[u*stride : u*stride+hd]
			var d float32
			for i, gv := range g {
				d += gv * vu[i]
				dvu[i] += pu * gv
			}
			dp[u] = d
			sum += pu * d
		}
		qt := q[t*stride : t*stride+hd]
		dqt := dq[t*stride : t*stride+hd]
		for u, pu := range p {
			ds := pu * (dp[u] - sum) * scale
			ku := k[u*stride : u*stride+hd]
			dku := dk[u*stride : u*stride+hd]
			for i := range dqt {
				dqt[i] += ds * ku[i]
				dku[i] += ds * qt[i]
			}
		}
	}
}
