package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Finite-difference checks of every backward kernel. Each forward output is
// reduced to a scalar loss Σ r·out with fixed random r (summed in float64),
// whose gradient with respect to the output is r; the analytic gradients the
// backward kernel accumulates from dOut = r are compared, element by element,
// with central differences of that loss.

func randVec(rng *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = scale * float32(rng.NormFloat64())
	}
	return v
}

func dotLoss(r, out []float32) float64 {
	var s float64
	for i, v := range out {
		s += float64(r[i]) * float64(v)
	}
	return s
}

// checkGrad perturbs every element of x and compares (L(x+h)−L(x−h))/2h with
// analytic[i].
func checkGrad(t *testing.T, name string, x, analytic []float32, loss func() float64) {
	t.Helper()
	const h = 1e-2
	bad := 0
	for i := range x {
		orig := x[i]
		x[i] = orig + h
		up := float64(x[i])
		lp := loss()
		x[i] = orig - h
		dn := float64(x[i])
		lm := loss()
		x[i] = orig
		num := (lp - lm) / (up - dn)
		a := float64(analytic[i])
		if math.Abs(a-num) > 3e-4+2e-3*math.Max(math.Abs(a), math.Abs(num)) {
			if bad < 5 {
				t.Errorf("%s[%d]: analytic %.6g, numeric %.6g", name, i, a, num)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d gradients differ", name, bad, len(x))
	}
}

func TestMatMulForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sh := range [][3]int{{1, 1, 1}, {5, 7, 6}, {3, 9, 4}, {33, 5, 9}, {70, 13, 11}} {
		N, I, O := sh[0], sh[1], sh[2]
		in, w := randVec(rng, N*I, 1), randVec(rng, O*I, 1)
		out := make([]float32, N*O)
		MatMul(out, in, w, N, I, O)
		for n := 0; n < N; n++ {
			for o := 0; o < O; o++ {
				var s float64
				for i := 0; i < I; i++ {
					s += float64(in[n*I+i]) * float64(w[o*I+i])
				}
				if math.Abs(s-float64(out[n*O+o])) > 1e-5*float64(I) {
					t.Fatalf("shape %v: out[%d,%d] = %g, want %g", sh, n, o, out[n*O+o], s)
				}
			}
		}
		// Rows computed in pieces must equal the whole, bit for bit.
		split := make([]float32, N*O)
		for lo := 0; lo < N; lo += 3 {
			hi := min(lo+3, N)
			MatMul(split[lo*O:hi*O], in[lo*I:hi*I], w, hi-lo, I, O)
		}
		for i := range out {
			if split[i] != out[i] {
				t.Fatalf("shape %v: split MatMul differs at %d", sh, i)
			}
		}
	}
}

func TestMatMulBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, sh := range [][3]int{{5, 7, 6}, {9, 3, 5}, {1, 4, 1}, {70, 3, 3}} {
		N, I, O := sh[0], sh[1], sh[2]
		in, w, r := randVec(rng, N*I, 1), randVec(rng, O*I, 1), randVec(rng, N*O, 1)
		out := make([]float32, N*O)
		loss := func() float64 { MatMul(out, in, w, N, I, O); return dotLoss(r, out) }
		dIn, dW := make([]float32, N*I), make([]float32, O*I)
		MatMulBackwardInput(dIn, r, w, N, I, O)
		MatMulBackwardWeight(dW, r, in, N, I, O, 0, O)
		checkGrad(t, "dIn", in, dIn, loss)
		checkGrad(t, "dW", w, dW, loss)

		// Splitting by rows or by output ranges gives identical bits.
		dIn2, dW2 := make([]float32, N*I), make([]float32, O*I)
		for lo := 0; lo < N; lo += 3 {
			hi := min(lo+3, N)
			MatMulBackwardInput(dIn2[lo*I:hi*I], r[lo*O:hi*O], w, hi-lo, I, O)
		}
		for lo := 0; lo < O; lo += 3 {
			MatMulBackwardWeight(dW2, r, in, N, I, O, lo, min(lo+3, O))
		}
		for i := range dIn {
			if dIn[i] != dIn2[i] {
				t.Fatalf("shape %v: split dIn differs at %d", sh, i)
			}
		}
		for i := range dW {
			if dW[i] != dW2[i] {
				t.Fatalf("shape %v: split dW differs at %d", sh, i)
			}
		}
	}
}

func TestEmbeddingBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	V, D := 5, 3
	tokens := []int32{4, 0, 4, 2}
	table, r := randVec(rng, V*D, 1), randVec(rng, len(tokens)*D, 1)
	out := make([]float32, len(tokens)*D)
	Embedding(out, table, tokens, D)
	if out[3] != table[0] || out[8] != table[14] {
		t.Fatalf("Embedding copied the wrong rows")
	}
	loss := func() float64 { Embedding(out, table, tokens, D); return dotLoss(r, out) }
	d := make([]float32, V*D)
	EmbeddingBackward(d, r, tokens, D)
	checkGrad(t, "dTable", table, d, loss)
}

func TestRMSNormRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	N, D := 4, 6
	x, w, r := randVec(rng, N*D, 1), randVec(rng, D, 1), randVec(rng, N*D, 1)
	out, rstd := make([]float32, N*D), make([]float32, N)
	RMSNormRows(out, rstd, x, w, N, D, 1e-5)
	one := make([]float32, D)
	for n := 0; n < N; n++ {
		RMSNorm(one, x[n*D:(n+1)*D], w, 1e-5)
		for i := range one {
			if one[i] != out[n*D+i] {
				t.Fatalf("RMSNormRows row %d differs from RMSNorm", n)
			}
		}
	}
	loss := func() float64 { RMSNormRows(out, rstd, x, w, N, D, 1e-5); return dotLoss(r, out) }
	loss()
	dx, dw := make([]float32, N*D), make([]float32, D)
	RMSNormRowsBackward(dx, dw, r, x, w, rstd, N, D)
	checkGrad(t, "dx", x, dx, loss)
	checkGrad(t, "dWeight", w, dw, loss)
}

func TestRoPERows(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	B, T, hd, stride, width := 2, 5, 4, 14, 12 // three heads, then two floats RoPE leaves alone
	N := B * T
	freqs := RoPEFreqs(hd, 10000)
	cos, sin := RoPETable(T, freqs)
	x, r := randVec(rng, N*stride, 1), randVec(rng, N*stride, 1)
	y := make([]float32, len(x))
	copy(y, x)
	RoPERows(y, 0, N, T, stride, width, cos, sin)
	for n := 0; n < N; n++ {
		one := append([]float32(nil), x[n*stride:n*stride+width]...)
		RoPE(one, n%T, freqs)
		for i := range one {
			if one[i] != y[n*stride+i] {
				t.Fatalf("RoPERows row %d differs from RoPE", n)
			}
		}
		if y[n*stride+width] != x[n*stride+width] {
			t.Fatalf("RoPERows touched a float beyond width")
		}
	}
	// Rows handed out in slices that start inside a sequence (as the
	// trainer's threads get them) rotate as in one call.
	d := append([]float32(nil), r...)
	RoPERowsBackward(d, 0, N, T, stride, width, cos, sin)
	for _, cuts := range [][]int{{0, 3, 7, N}, {0, 1, 2, 9, N}} {
		z, dz := append([]float32(nil), x...), append([]float32(nil), r...)
		for i := 0; i+1 < len(cuts); i++ {
			lo, hi := cuts[i], cuts[i+1]
			RoPERows(z[lo*stride:], lo, hi-lo, T, stride, width, cos, sin)
			RoPERowsBackward(dz[lo*stride:], lo, hi-lo, T, stride, width, cos, sin)
		}
		for i := range z {
			if z[i] != y[i] || dz[i] != d[i] {
				t.Fatalf("rows cut at %v: float %d differs from one call", cuts, i)
			}
		}
	}
	loss := func() float64 { copy(y, x); RoPERows(y, 0, N, T, stride, width, cos, sin); return dotLoss(r, y) }
	checkGrad(t, "dx", x, d, loss)
}

func TestSwiGLURows(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	N, F := 3, 5
	gu, r := randVec(rng, N*2*F, 2), randVec(rng, N*F, 1)
	out := make([]float32, N*F)
	SwiGLURows(out, gu, N, F)
	g := append([]float32(nil), gu[2*F:3*F]...)
	SwiGLU(g, gu[3*F:4*F])
	for i := range g {
		if g[i] != out[F+i] {
			t.Fatalf("SwiGLURows differs from SwiGLU")
		}
	}
	loss := func() float64 { SwiGLURows(out, gu, N, F); return dotLoss(r, out) }
	d := make([]float32, N*2*F)
	SwiGLURowsBackward(d, r, gu, N, F)
	checkGrad(t, "dGateUp", gu, d, loss)
}

func TestAttentionSeq(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	T, hd, stride, outStride := 5, 4, 6, 7
	for _, causal := range []bool{true, false} {
		q, k, v := randVec(rng, T*stride, 1), randVec(rng, T*stride, 1), randVec(rng, T*stride, 1)
		r := randVec(rng, T*outStride, 1)
		out, att := make([]float32, T*outStride), make([]float32, T*T)
		AttentionSeq(out, att, q, k, v, T, hd, stride, outStride, causal)
		// The causal rows equal the one-token kernel over a KV cache.
		if causal {
			one := make([]float32, hd)
			for pos := 0; pos < T; pos++ {
				Attention(one, q[pos*stride:pos*stride+hd], k, v, make([]float32, T), pos, stride, 0)
				for i := range one {
					if math.Abs(float64(one[i]-out[pos*outStride+i])) > 1e-6 {
						t.Fatalf("causal AttentionSeq row %d = %v, Attention = %v", pos, out[pos*outStride:pos*outStride+hd], one)
					}
				}
			}
		}
		loss := func() float64 {
			AttentionSeq(out, att, q, k, v, T, hd, stride, outStride, causal)
			return dotLoss(r, out)
		}
		loss()
		dq, dk, dv := make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))
		AttentionSeqBackward(dq, dk, dv, r, att, q, k, v, make([]float32, T), T, hd, stride, outStride, causal)
		name := map[bool]string{true: "causal ", false: "bidirectional "}[causal]
		checkGrad(t, name+"dq", q, dq, loss)
		checkGrad(t, name+"dk", k, dk, loss)
		checkGrad(t, name+"dv", v, dv, loss)
		// Floats between heads (i ≥ hd) get no gradient.
		for tt := 0; tt < T; tt++ {
			for i := hd; i < stride; i++ {
				if dq[tt*stride+i] != 0 || dk[tt*stride+i] != 0 || dv[tt*stride+i] != 0 {
					t.Fatalf("gradient outside the head at row %d col %d", tt, i)
				}
			}
		}
	}
}

func TestClassifierCrossEntropy(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	N, D, V := 5, 4, 7
	targets := []int32{3, IgnoreTarget, 0, 6, IgnoreTarget}
	x, w := randVec(rng, N*D, 1), randVec(rng, V*D, 1)
	probs := make([]float32, N*V)
	sum, count := ClassifierCrossEntropy(probs, x, w, targets, N, D, V)
	if count != 3 {
		t.Fatalf("count = %d, want 3", count)
	}
	// Reference loss in float64.
	var want float64
	for n, tg := range targets {
		if tg < 0 {
			continue
		}
		var z, lt float64
		for c := 0; c < V; c++ {
			var l float64
			for i := 0; i < D; i++ {
				l += float64(x[n*D+i]) * float64(w[c*D+i])
			}
			z += math.Exp(l)
			if c == int(tg) {
				lt = l
			}
		}
		want += math.Log(z) - lt
	}
	if math.Abs(sum-want) > 1e-5 {
		t.Fatalf("loss = %g, want %g", sum, want)
	}
	loss := func() float64 { s, _ := ClassifierCrossEntropy(probs, x, w, targets, N, D, V); return s }
	loss()
	dx, dw := make([]float32, N*D), make([]float32, V*D)
	ClassifierCrossEntropyBackward(dx, dw, probs, x, w, targets, N, D, V, 1)
	checkGrad(t, "dx", x, dx, loss)
	checkGrad(t, "dW", w, dw, loss)
	for i := D; i < 2*D; i++ {
		if dx[i] != 0 {
			t.Fatalf("a row without a target got a gradient")
		}
	}
	// A logit far below the rest gives a large finite loss, not +Inf.
	l := []float32{0, 200}
	s, _ := SoftmaxCrossEntropy(l, []int32{0}, 1, 2)
	if math.IsInf(s, 0) || math.Abs(s-200) > 1e-3 {
		t.Fatalf("loss of a tiny probability = %g, want 200", s)
	}
}
