//go:build amd64 && !purego

package backtest

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/asm/internal/backtest/shapes"
	"github.com/modelc/modelc/runtime/cpu"
)

// TestTrainKernels compares the softmax and attention-backward kernels of
// every ISA this machine runs with float64 references.
func TestTrainKernels(t *testing.T) {
	ran := 0
	for _, c := range []struct {
		isa asm.ISA
		l   cpu.Level
	}{{asm.AVX2, cpu.AVX2}, {asm.AVX512, cpu.AVX512}} {
		if !cpu.Supports(c.l) {
			t.Logf("%s: not supported here", c.isa)
			continue
		}
		for _, k := range shapes.TKernels(c.isa) {
			if !k.Supported() {
				continue
			}
			if k.Op == asm.TSwiGLUBack {
				fb := amd64SwiGLUBack[k.Name()]
				if fb == nil {
					t.Fatalf("%s: not generated", k.Name())
				}
				testSwiGLUBack(t, k, fb)
			} else if k.Op == asm.TMatMulP {
				fn := amd64MMPack[k.Name()]
				if fn == nil {
					t.Fatalf("%s: not generated", k.Name())
				}
				testMMPack(t, k, fn)
			} else if k.Op == asm.TSoftmax {
				fn := amd64Softmax[k.Name()]
				if fn == nil {
					t.Fatalf("%s: not generated", k.Name())
				}
				testSoftmax(t, k, fn)
			} else {
				fn := amd64AttBwd[k.Name()]
				if fn == nil {
					t.Fatalf("%s: not generated", k.Name())
				}
				testAttBwd(t, k, fn)
			}
			ran++
		}
	}
	if ran == 0 && cpu.Supports(cpu.AVX2) {
		t.Fatal("no kernel ran")
	}
	t.Logf("ran %d kernels", ran)
}

func testSoftmax(t *testing.T, k asm.TKernel, fn softmaxfunc) {
	V := k.Vocab
	r := rand.New(rand.NewPCG(uint64(V), 7))
	for _, scale := range []float64{0.1, 3, 40} {
		row := make([]float32, V+2)
		for i := range row[:V] {
			row[i] = float32(r.NormFloat64() * scale)
		}
		row[r.IntN(V)] += 5 // a clear maximum somewhere
		row[V], row[V+1] = canary, canary
		in := append([]float32(nil), row...)
		m := in[0]
		for _, x := range in[:V] {
			m = max(m, x)
		}
		var z float64
		for _, x := range in[:V] {
			z += math.Exp(float64(x - m))
		}
		gz, gm := fn(&row[0])
		if gm != m {
			t.Fatalf("%s: max %g, want %g", k.Name(), gm, m)
		}
		if math.Abs(gz-z) > 1e-6*z {
			t.Fatalf("%s (scale %g): z %g, want %g", k.Name(), scale, gz, z)
		}
		for i := range in[:V] {
			want := math.Exp(float64(in[i]-m)) / z
			if d := math.Abs(float64(row[i]) - want); d > 1e-6*want+1e-30 || math.IsNaN(float64(row[i])) {
				t.Fatalf("%s (scale %g): p[%d] = %g, want %g", k.Name(), scale, i, row[i], want)
			}
		}
		if row[V] != canary || row[V+1] != canary {
			t.Fatalf("%s: wrote past the row", k.Name())
		}
	}
}

func testAttBwd(t *testing.T, k asm.TKernel, fn attbwdfunc) {
	hd, S := k.HeadDim, k.Stride
	r := rand.New(rand.NewPCG(uint64(hd), uint64(S)))
	for _, n := range []int{1, 2, 3, 4, 5, 7, 8, 9, 33} {
		q, kk, v := randSlice(r, n*S), randSlice(r, n*S), randSlice(r, n*S)
		dq, dk, dv := randSlice(r, n*S), randSlice(r, n*S), randSlice(r, n*S)
		g := randSlice(r, hd)
		p := make([]float32, n)
		var ps float64
		for i := range p {
			p[i] = float32(r.Float64())
			ps += float64(p[i])
		}
		for i := range p {
			p[i] = float32(float64(p[i]) / ps)
		}
		dp := make([]float32, n+1)
		dp[n] = canary
		// float64 reference on the query row t = 0 of q and dq.
		wdq, wdk, wdv := f64(dq), f64(dk), f64(dv)
		adq, adk, adv := make([]float64, n*S), make([]float64, n*S), make([]float64, n*S)
		dps := make([]float64, n)
		var sigma float64
		for u := 0; u < n; u++ {
			for j := 0; j < hd; j++ {
				dps[u] += float64(g[j]) * float64(v[u*S+j])
				wdv[u*S+j] += float64(p[u]) * float64(g[j])
				adv[u*S+j] += math.Abs(float64(p[u]) * float64(g[j]))
			}
			sigma += float64(p[u]) * dps[u]
		}
		sc := 1 / math.Sqrt(float64(hd))
		for u := 0; u < n; u++ {
			ds := float64(p[u]) * (dps[u] - sigma) * sc
			for j := 0; j < hd; j++ {
				wdq[j] += ds * float64(kk[u*S+j])
				adq[j] += math.Abs(ds*float64(kk[u*S+j])) + 1e-3 // ds's own rounding
				wdk[u*S+j] += ds * float64(q[j])
				adk[u*S+j] += math.Abs(ds*float64(q[j])) + 1e-3
			}
		}
		fn(&dq[0], &dk[0], &dv[0], &g[0], &p[0], &q[0], &kk[0], &v[0], &dp[0], n)
		if dp[n] != canary {
			t.Fatalf("%s n=%d: wrote past dp", k.Name(), n)
		}
		for u := 0; u < n; u++ {
			if d := math.Abs(float64(dp[u]) - dps[u]); d > 1e-5*float64(hd) {
				t.Fatalf("%s n=%d: dp[%d] = %g, want %g", k.Name(), n, u, dp[u], dps[u])
			}
		}
		for i := 0; i < n*S; i++ {
			want := func(name string, got float32, w, a float64) {
				if d := math.Abs(float64(got) - w); d > 1e-5*a+1e-5 || math.IsNaN(float64(got)) {
					t.Fatalf("%s n=%d: %s[%d] = %g, want %g", k.Name(), n, name, i, got, w)
				}
			}
			want("dq", dq[i], wdq[i], adq[i]+math.Abs(wdq[i]))
			want("dk", dk[i], wdk[i], adk[i]+math.Abs(wdk[i]))
			want("dv", dv[i], wdv[i], adv[i]+math.Abs(wdv[i]))
		}
	}
}

func f64(s []float32) []float64 {
	d := make([]float64, len(s))
	for i, v := range s {
		d[i] = float64(v)
	}
	return d
}

func testMMPack(t *testing.T, k asm.TKernel, fn mmpackfunc) {
	R, C, W := k.Rows, k.Cols, asm.PackWidth(k.ISA)
	r := rand.New(rand.NewPCG(uint64(R), uint64(C)+2))
	w := randSlice(r, R*C)
	nb := (R + W - 1) / W
	wp := make([]float32, nb*C*W)
	for i := range wp {
		wp[i] = canary // every element is written by the packing below
	}
	for b := 0; b < nb; b++ {
		for c := 0; c < C; c++ {
			for j := 0; j < W; j++ {
				v := float32(0)
				if b*W+j < R {
					v = w[(b*W+j)*C+c]
				}
				wp[(b*C+c)*W+j] = v
			}
		}
	}
	for _, n := range counts {
		x := randSlice(r, max(n, 1)*C)
		out := aligned64(n*R + 3)
		copy(out, randSlice(r, n*R))
		out[n*R], out[n*R+1], out[n*R+2] = canary, canary, canary
		want, abs := make([]float64, n*R), make([]float64, n*R)
		for tt := 0; tt < n; tt++ {
			for o := 0; o < R; o++ {
				var s, a float64
				for cc := 0; cc < C; cc++ {
					v := float64(x[tt*C+cc]) * float64(w[o*C+cc])
					s += v
					a += math.Abs(v)
				}
				want[tt*R+o], abs[tt*R+o] = s, a
			}
		}
		fn(&out[0], &wp[0], &x[0], n)
		check(t, k.Name(), out, want, abs)
	}
}

func testSwiGLUBack(t *testing.T, k asm.TKernel, fb swiglubfunc) {
	F := k.FFN
	r := rand.New(rand.NewPCG(uint64(F), 3))
	for _, n := range []int{0, 1, 3} {
		gu := randSlice(r, max(n, 1)*2*F)
		for i := range gu {
			gu[i] *= 4 // gates well into both tails of σ
		}
		if n > 0 {
			gu[0], gu[1] = -100, 100
		}
		sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
		dout := randSlice(r, max(n, 1)*F)
		dgu := append(randSlice(r, n*2*F), canary)
		want, abs := make([]float64, n*2*F), make([]float64, n*2*F)
		for tt := 0; tt < n; tt++ {
			for i := 0; i < F; i++ {
				g, u, d := float64(gu[tt*2*F+i]), float64(gu[tt*2*F+F+i]), float64(dout[tt*F+i])
				s := sig(g)
				a := d * u * s * (1 + g*(1-s))
				b := d * g * s
				want[tt*2*F+i] = float64(dgu[tt*2*F+i]) + a
				want[tt*2*F+F+i] = float64(dgu[tt*2*F+F+i]) + b
				abs[tt*2*F+i] = math.Abs(float64(dgu[tt*2*F+i])) + 10*math.Abs(d*u*s)*(1+math.Abs(g))
				abs[tt*2*F+F+i] = math.Abs(float64(dgu[tt*2*F+F+i])) + 10*math.Abs(b)
			}
		}
		fb(&dgu[0], &dout[0], &gu[0], n)
		check(t, k.Name(), dgu, want, abs)
	}
}

// aligned64 is a slice of n floats starting on a 64-byte boundary (the
// non-temporal stores of asm.TKernel.NonTemporal need it).
func aligned64(n int) []float32 {
	b := make([]float32, n+16)
	off := 0
	for uintptr(unsafe.Pointer(&b[off]))%64 != 0 {
		off++
	}
	return b[off : off+n]
}
