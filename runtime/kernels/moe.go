package kernels

import "math"

// MoERoute routes one token in a mixture of experts: probs = softmax(logits)
// over the E experts, sel = the K = len(sel) most probable experts in
// descending order (a tie goes to the lower index, so routing is
// deterministic), and w[j] = probs[sel[j]] / Σ_k probs[sel[k]], the chosen
// experts' weights renormalised to sum to 1. logits is left intact.
func MoERoute(sel []int32, w, probs, logits []float32) {
	m := logits[0]
	for _, v := range logits[1:] {
		if v > m {
			m = v
		}
	}
	var sum float32
	for i, v := range logits {
		e := float32(math.Exp(float64(v - m)))
		probs[i] = e
		sum += e
	}
	for i := range probs[:len(logits)] {
		probs[i] /= sum
	}
	// Selection by repeated scans: K and E are small.
	K := len(sel)
	var tot float32
	for j := 0; j < K; j++ {
		best := -1
		for e, p := range probs[:len(logits)] {
			if best >= 0 && p <= probs[best] {
				continue
			}
			taken := false
			for _, s := range sel[:j] {
				if int(s) == e {
					taken = true
					break
				}
			}
			if !taken {
				best = e
			}
		}
		sel[j] = int32(best)
		w[j] = probs[best]
		tot += probs[best]
	}
	for j := range w[:K] {
		w[j] /= tot
	}
}

// MoERouteBackward accumulates into dLogits (E) the gradient of the loss
// through MoERoute, given dW (K), the gradient with respect to the
// renormalised weights, and dProbs (E, may be nil), a gradient with respect
// to the full softmax (the load-balancing loss reads it). The selection is
// piecewise constant and passes no gradient. With s = Σ_sel probs,
// d probs[sel[j]] = (dW[j] − Σ_k dW[k]·w[k]) / s, then the softmax backward
// d logits[i] = probs[i]·(d probs[i] − Σ_e probs[e]·d probs[e]).
func MoERouteBackward(dLogits, dW, dProbs, probs []float32, sel []int32, w []float32) {
	E := len(dLogits)
	var s, dot float32
	for j, e := range sel {
		s += probs[e]
		dot += dW[j] * w[j]
	}
	var dp [64]float32
	var dpBuf []float32
	if E <= len(dp) {
		dpBuf = dp[:E]
	} else {
		dpBuf = make([]float32, E)
	}
	if dProbs != nil {
		copy(dpBuf, dProbs[:E])
	}
	for j, e := range sel {
		dpBuf[e] += (dW[j] - dot) / s
	}
	var c float32
	for e := range E {
		c += probs[e] * dpBuf[e]
	}
	for e := range E {
		dLogits[e] += probs[e] * (dpBuf[e] - c)
	}
}

// MoEAuxLoss is the Switch Transformer load-balancing loss of one layer over
// N tokens routed to K experts each among E: E · Σ_e f_e · P_e, where f_e is
// the fraction of the N·K routing slots that went to expert e and P_e the
// mean router probability of e (probs is [N, E], sel [N, K]). It is 1 when
// routing is uniform. counts (E) receives the slots per expert. When dProbs
// ([N, E]) is not nil, the gradient of coef times the loss with respect to
// probs (f held constant, as the selection is) is added to it:
// coef · E · f_e / N for every token.
func MoEAuxLoss(dProbs []float32, counts []int, probs []float32, sel []int32, N, E, K int, coef float32) float64 {
	clear(counts[:E])
	for _, e := range sel[:N*K] {
		counts[e]++
	}
	var loss float64
	for e := range E {
		var P float64
		for n := range N {
			P += float64(probs[n*E+e])
		}
		P /= float64(N)
		f := float64(counts[e]) / float64(N*K)
		loss += f * P
	}
	loss *= float64(E)
	if dProbs != nil {
		for e := range E {
			g := coef * float32(E) * float32(counts[e]) / float32(N*K) / float32(N)
			for n := range N {
				dProbs[n*E+e] += g
			}
		}
	}
	return loss
}
