package testkernels

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"unsafe"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/runtime/cpu"
)

var levelOf = map[asm.ISA]cpu.Level{asm.Generic: cpu.Generic, asm.AVX2: cpu.AVX2, asm.AVX512: cpu.AVX512, asm.NEON: cpu.NEON}

// The harness compares one generated kernel with the Go reference in package
// asm over many run-time sizes. Every output buffer has guard cells around
// the part the kernel may write, so that a write past a tail is caught.

type (
	matvecFn = func(out, w, x *float32, n int)
	normFn   = func(out, w, x, nw *float32, n int, eps float32)
	attnFn   = func(out, q, k, v, att *float32, t int)
	matmulFn = func(out, w, x *float32, n, b int)
	siluFn   = func(out, h *float32, n int)
)

const guard = 8

var sentinel = float32(math.Float32frombits(0x7fc00bad)) // a NaN with a recognisable payload

func rnd(r *rand.Rand, n int, scale float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = (r.Float32()*2 - 1) * scale
	}
	return s
}

// guarded returns a buffer of n cells with guard cells before and after,
// all set to the sentinel, and the view of the n cells.
func guarded(n int) (all, view []float32) {
	all = make([]float32, n+2*guard)
	for i := range all {
		all[i] = sentinel
	}
	return all, all[guard : guard+n]
}

func isSentinel(v float32) bool { return math.Float32bits(v) == math.Float32bits(sentinel) }

// checkGuards fails if any cell outside the written ones lost the sentinel.
func checkGuards(t *testing.T, what string, all []float32, written func(i int) bool) {
	t.Helper()
	for i, v := range all {
		if i >= guard && i < len(all)-guard && written(i-guard) {
			continue
		}
		if !isSentinel(v) {
			t.Fatalf("%s: cell %d outside the output was written (%v)", what, i-guard, v)
		}
	}
}

func ptr(s []float32) *float32 {
	if len(s) == 0 {
		return nil
	}
	return unsafe.SliceData(s)
}

// close reports whether got is within tol of want.
func near(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol && !math.IsNaN(got)
}

// dotBound is Σ|a||b|, the scale of the rounding error of a float32 dot product.
func dotBound(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += math.Abs(float64(a[i]) * float64(b[i]))
	}
	return s
}

// rel·C·Σ|a||b| bounds the rounding error of a C-term float32 dot product in
// any summation order (4 units of round-off per term), yet stays well below
// the size of one missing or doubled term.
const rel = 2.4e-7

func checkKernel(t *testing.T, k asm.Kernel, fn any) {
	r := rand.New(rand.NewPCG(uint64(k.Cols*131+k.Rows*7+k.HeadDim), 42))
	switch k.Op {
	case asm.OpMatVec, asm.OpMatVecAdd, asm.OpRMSNormMatVec:
		checkMatVec(t, r, k, fn)
	case asm.OpSwiGLU, asm.OpRMSNormSwiGLU:
		checkSwiGLU(t, r, k, fn)
	case asm.OpAttention:
		checkAttention(t, r, k, fn.(attnFn))
	case asm.OpGroupAttention:
		checkGroupAttention(t, r, k, fn.(attnFn))
	case asm.OpGroupAttentionT:
		checkGroupAttentionT(t, r, k, fn.(attnFn))
	case asm.OpMatMul:
		checkMatMul(t, r, k, fn.(matmulFn))
	case asm.OpSiLUMul:
		checkSiLUMul(t, r, k, fn.(siluFn))
	case asm.OpRoPE:
		checkRoPE(t, r, k, fn.(ropeFn))
	default:
		t.Fatalf("no check for %s", k.Op)
	}
}

func checkMatVec(t *testing.T, r *rand.Rand, k asm.Kernel, fn any) {
	C := k.Cols
	const eps = 1e-5
	norm := k.Op == asm.OpRMSNormMatVec
	for _, rows := range []int{0, 1, 2, 3, 4, 5, 8, 13, 19} {
		w := rnd(r, rows*C, 1)
		x := rnd(r, C, 3)
		nw := rnd(r, C, 1.5)
		xn := x
		if norm {
			xn = make([]float32, C)
			asm.RMSNorm(xn, x, nw, eps)
		}
		want := make([]float32, rows)
		// MatVecAdd adds into what out holds, and gives exactly the same
		// path's MatVec plus one add: the step's numbers do not change. (Not
		// for pure Go on arm64, where the compiler fuses multiply-adds, and
		// which pair it fuses depends on the rest of the function.)
		add := k.Op == asm.OpMatVecAdd
		exact := add && !(runtime.GOARCH == "arm64" && k.ISA == asm.Generic)
		prior, plain := rnd(r, rows, 2), make([]float32, rows)
		if add {
			copy(want, prior)
			asm.MatVecAdd(want, w, xn)
		} else {
			asm.MatVec(want, w, xn)
		}
		// The whole range, then a sub-range as a pool worker would get it.
		for _, lohi := range [][2]int{{0, rows}, {rows / 3, rows - rows/4}} {
			lo, hi := lohi[0], lohi[1]
			all, out := guarded(rows)
			if add { // the same rows as this call, so the same blocks and tails
				kernelFor(asm.Kernel{Op: asm.OpMatVec, ISA: k.ISA, Cols: C}).(matvecFn)(ptr(plain[lo:]), ptr(w[lo*C:]), ptr(x), hi-lo)
				copy(out[lo:hi], prior[lo:hi])
			}
			if norm {
				fn.(normFn)(ptr(out[lo:]), ptr(w[lo*C:]), ptr(x), ptr(nw), hi-lo, eps)
			} else {
				fn.(matvecFn)(ptr(out[lo:]), ptr(w[lo*C:]), ptr(x), hi-lo)
			}
			checkGuards(t, "matvec", all, func(i int) bool { return i >= lo && i < hi })
			for i := lo; i < hi; i++ {
				if exact && out[i] != prior[i]+plain[i] {
					t.Fatalf("rows %d [%d,%d): out[%d] = %v, want the path's matvec %v + %v = %v", rows, lo, hi, i, out[i], plain[i], prior[i], prior[i]+plain[i])
				}
				tol := rel*float64(C)*dotBound(w[i*C:i*C+C], xn) + 1e-6
				if norm {
					tol *= 4 // the kernel folds the norm scale in after the sum
				}
				if !near(float64(out[i]), float64(want[i]), tol) {
					t.Fatalf("rows %d [%d,%d): out[%d] = %v, want %v (tol %g)", rows, lo, hi, i, out[i], want[i], tol)
				}
			}
		}
	}
}

func checkSwiGLU(t *testing.T, r *rand.Rand, k asm.Kernel, fn any) {
	F, C := k.Rows, k.Cols
	const eps = 1e-5
	norm := k.Op == asm.OpRMSNormSwiGLU
	w := rnd(r, 2*F*C, 1)
	x := rnd(r, C, 2)
	nw := rnd(r, C, 1.5)
	xn := x
	if norm {
		xn = make([]float32, C)
		asm.RMSNorm(xn, x, nw, eps)
	}
	want := make([]float32, F)
	asm.SwiGLU(want, w, xn)
	for _, lohi := range [][2]int{{0, F}, {F / 3, F - F/4}, {F - 1, F}, {0, 0}} {
		lo, hi := lohi[0], lohi[1]
		all, out := guarded(F)
		if norm {
			fn.(normFn)(ptr(out[lo:]), ptr(w[lo*C:]), ptr(x), ptr(nw), hi-lo, eps)
		} else {
			fn.(matvecFn)(ptr(out[lo:]), ptr(w[lo*C:]), ptr(x), hi-lo)
		}
		checkGuards(t, "swiglu", all, func(i int) bool { return i >= lo && i < hi })
		for i := lo; i < hi; i++ {
			gate, up := w[i*C:i*C+C], w[(F+i)*C:(F+i)*C+C]
			g, u := float64(asm.Dot(gate, xn)), float64(asm.Dot(up, xn))
			eg := (rel*float64(C)*dotBound(gate, xn) + 1e-6) * 4
			eu := (rel*float64(C)*dotBound(up, xn) + 1e-6) * 4
			s := g / (1 + math.Exp(-g))
			tol := 1.2*eg*math.Abs(u) + (math.Abs(s)+eg)*eu + 1e-6*math.Abs(s*u) + 1e-6
			if !near(float64(out[i]), float64(want[i]), tol) {
				t.Fatalf("[%d,%d): out[%d] = %v, want %v (tol %g)", lo, hi, i, out[i], want[i], tol)
			}
		}
	}
}

func checkAttention(t *testing.T, r *rand.Rand, k asm.Kernel, fn attnFn) {
	hd, S := k.HeadDim, k.KVStride
	for _, T := range []int{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 100} {
		for _, scale := range []float32{1, 8} { // 8: large scores, the max subtraction matters
			q := rnd(r, hd, scale)
			keys := rnd(r, T*S, scale)
			vals := rnd(r, T*S, 1)
			// Offset into the row like a head other than the first would be.
			off := (S - hd) / 2
			want := make([]float32, hd)
			prob := make([]float32, T)
			asm.AttentionHead(want, q, keys[off:], vals[off:], prob, T, S)
			allOut, out := guarded(hd)
			allAtt, att := guarded(T)
			fn(ptr(out), ptr(q), ptr(keys[off:]), ptr(vals[off:]), ptr(att), T)
			checkGuards(t, "attention out", allOut, func(int) bool { return true })
			checkGuards(t, "attention att", allAtt, func(int) bool { return true })
			for i := range want {
				if !near(float64(out[i]), float64(want[i]), 2e-5) {
					t.Fatalf("t %d scale %v: out[%d] = %v, want %v", T, scale, i, out[i], want[i])
				}
			}
			// att holds the unnormalised weights e^(s-max): normalised, the probabilities.
			var sum float64
			for _, a := range att {
				sum += float64(a)
			}
			for j := range prob {
				if !near(float64(att[j])/sum, float64(prob[j]), 2e-6+2e-5*float64(prob[j])) {
					t.Fatalf("t %d scale %v: p[%d] = %v, want %v", T, scale, j, float64(att[j])/sum, prob[j])
				}
			}
		}
	}
}

func checkGroupAttention(t *testing.T, r *rand.Rand, k asm.Kernel, fn attnFn) {
	hd, S, NH, G := k.HeadDim, k.KVStride, k.Heads, k.Group
	for _, T := range []int{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 100} {
		for _, scale := range []float32{1, 8} {
			q := rnd(r, NH*G*hd, scale)
			keys := rnd(r, T*S, scale)
			vals := rnd(r, T*S, 1)
			// The KV heads need not start a row (as in a Q|K|V row).
			off := (S - NH*hd) / 2
			want := make([]float32, NH*G*hd)
			asm.GroupAttention(want, q, keys[off:], vals[off:], make([]float32, T), T, S, hd, NH, G)
			allOut, out := guarded(NH * G * hd)
			allAtt, att := guarded(G * T)
			fn(ptr(out), ptr(q), ptr(keys[off:]), ptr(vals[off:]), ptr(att), T)
			checkGuards(t, "attention out", allOut, func(int) bool { return true })
			checkGuards(t, "attention att", allAtt, func(int) bool { return true })
			for i := range want {
				if !near(float64(out[i]), float64(want[i]), 2e-5) {
					t.Fatalf("t %d scale %v: out[%d] (head %d) = %v, want %v", T, scale, i, i/hd, out[i], want[i])
				}
			}
		}
	}
}

func checkGroupAttentionT(t *testing.T, r *rand.Rand, k asm.Kernel, fn attnFn) {
	hd, S, NH, G := k.HeadDim, k.KVStride, k.Heads, k.Group
	for _, T := range []int{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 100, 511, 512} {
		if T > S {
			continue
		}
		// The AVX kernels take a fast path (no maximum) while their sums of
		// 2^s stay in range: scales 1 and 3, and 8 for some t. shift adds
		// 40, -40 or 100 (2^144 overflows) to every score of a scale-1 case
		// (through dim 0 of each query and key), beyond that range: the path
		// with the maxima.
		type inputs struct{ scale, shift float32 }
		for _, in := range []inputs{{1, 0}, {3, 0}, {8, 0}, {1, 40}, {1, -40}, {1, 100}} {
			scale := in.scale
			q := rnd(r, NH*G*hd, scale)
			// Positions from t on hold NaN: they must not count, even as 0·v.
			keys := rnd(r, NH*hd*S, scale)
			if in.shift != 0 {
				c := float32(math.Sqrt(math.Abs(float64(in.shift)) * math.Sqrt(float64(hd))))
				for h := range NH * G {
					q[h*hd] = c
				}
				for g := range NH {
					for j := range T {
						keys[asm.TIndex(g, 0, j, hd, S)] = c * float32(math.Copysign(1, float64(in.shift)))
					}
				}
			}
			vals := rnd(r, NH*hd*S, 1)
			for g := range NH {
				for d := range hd {
					for j := T; j < S; j++ {
						i := asm.TIndex(g, d, j, hd, S)
						keys[i], vals[i] = float32(math.NaN()), float32(math.NaN())
					}
				}
			}
			want := make([]float32, NH*G*hd)
			asm.GroupAttentionT(want, q, keys, vals, make([]float32, T), T, S, hd, NH, G)
			allOut, out := guarded(NH * G * hd)
			allAtt, att := guarded(G * S)
			fn(ptr(out), ptr(q), ptr(keys), ptr(vals), ptr(att), T)
			checkGuards(t, "attention out", allOut, func(int) bool { return true })
			checkGuards(t, "attention att", allAtt, func(int) bool { return true })
			for i := range want {
				if !near(float64(out[i]), float64(want[i]), 2e-5) {
					t.Fatalf("t %d scale %v shift %v: out[%d] (head %d) = %v, want %v", T, scale, in.shift, i, i/hd, out[i], want[i])
				}
			}
			if in.shift != 0 {
				// The path with the maxima ran: the last head's weights e^(s-max) peak at 1.
				if m := slices.Max(att[:T]); m != 1 {
					t.Fatalf("t %d shift %v: largest weight %v, want 1 (the path with the maxima)", T, in.shift, m)
				}
			}
		}
	}
}

func checkMatMul(t *testing.T, r *rand.Rand, k asm.Kernel, fn matmulFn) {
	R, C := k.Rows, k.Cols
	w := rnd(r, R*C, 1)
	for _, b := range []int{1, 2, 3, 4, 5, 6, 7, 10, 11, 13, 16} {
		x := rnd(r, b*C, 2)
		want := make([]float32, b*R)
		asm.MatMul(want, w, x, R, C, b)
		// A token's outputs are the same bits whatever tile of the batch
		// it falls in: batched decoding must not depend on the batch.
		one, all := make([]float32, R), make([]float32, b*R)
		fn(ptr(all), ptr(w), ptr(x), R, b)
		for tok := 0; tok < b; tok++ {
			fn(ptr(one), ptr(w), ptr(x[tok*C:]), R, 1)
			for i := range R {
				if math.Float32bits(all[tok*R+i]) != math.Float32bits(one[i]) {
					t.Fatalf("b %d: token %d row %d = %v in the batch, %v alone", b, tok, i, all[tok*R+i], one[i])
				}
			}
		}
		for _, lohi := range [][2]int{{0, R}, {R / 3, R - R/4}} {
			lo, hi := lohi[0], lohi[1]
			all, out := guarded(b * R)
			fn(ptr(out[lo:]), ptr(w[lo*C:]), ptr(x), hi-lo, b)
			checkGuards(t, "matmul", all, func(i int) bool { return i%R >= lo && i%R < hi })
			for tok := 0; tok < b; tok++ {
				for i := lo; i < hi; i++ {
					tol := rel*float64(C)*dotBound(w[i*C:i*C+C], x[tok*C:tok*C+C]) + 1e-6
					if got := out[tok*R+i]; !near(float64(got), float64(want[tok*R+i]), tol) {
						t.Fatalf("b %d rows [%d,%d): out[%d][%d] = %v, want %v", b, lo, hi, tok, i, got, want[tok*R+i])
					}
				}
			}
		}
	}
}

func checkSiLUMul(t *testing.T, r *rand.Rand, k asm.Kernel, fn siluFn) {
	F := k.Cols
	for _, n := range []int{0, 1, 2, 3, 5} {
		for _, scale := range []float32{4, 120} { // 120: beyond the exponential's clamps
			h := rnd(r, n*2*F, scale)
			want := make([]float32, n*F)
			asm.SiLUMul(want, h, F)
			all, out := guarded(n * F)
			fn(ptr(out), ptr(h), n)
			checkGuards(t, "silumul", all, func(int) bool { return true })
			for i := range want {
				g, u := float64(h[i/F*2*F+i%F]), float64(h[i/F*2*F+F+i%F])
				exact := g / (1 + math.Exp(-g)) * u
				if !near(float64(out[i]), exact, 2e-6*math.Abs(exact)+1e-30) {
					t.Fatalf("n %d scale %v: out[%d] = %v, want %v (reference %v; gate %v up %v)", n, scale, i, out[i], exact, want[i], g, u)
				}
			}
		}
	}
}

type ropeFn = func(x, cs *float32)

// checkRoPE requires the reference's bits: every path rounds each product
// before the sum. Positions far out (large angles) and small ones.
func checkRoPE(t *testing.T, r *rand.Rand, k asm.Kernel, fn ropeFn) {
	n, hd := k.Heads*k.HeadDim, k.HeadDim
	p := asm.RoPEPeriod(hd)
	for _, pos := range []int{0, 1, 7, 500, 4095} {
		cos, sin := make([]float32, hd/2), make([]float32, hd/2)
		for i := range cos {
			a := float64(pos) * math.Pow(10000, -2*float64(i)/float64(hd))
			cos[i], sin[i] = float32(math.Cos(a)), float32(math.Sin(a))
		}
		allCS, cs := guarded(2 * p)
		asm.RoPETable(cs, cos, sin)
		x := rnd(r, n, 4)
		want := slices.Clone(x)
		asm.RoPE(want, cs, k.Heads, hd)
		all, got := guarded(n)
		copy(got, x)
		fn(ptr(got), ptr(cs))
		checkGuards(t, "rope", all, func(int) bool { return true })
		checkGuards(t, "rope table", allCS, func(int) bool { return true })
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("pos %d: x[%d] = %v, want %v (the reference's bits)", pos, i, got[i], want[i])
			}
		}
	}
}
