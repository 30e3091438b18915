package backtest

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/asm/internal/backtest/shapes"
)

// Row (token) counts: below, at and past the 6- and 8-row tiles.
var counts = []int{0, 1, 5, 6, 7, 8, 9, 17}

// Token counts of the weight gradient.
var batches = []int{0, 1, 3, 10}

const canary = float32(-12345.5)

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// check compares got with the float64 reference want (start values plus
// the sum of terms) within a tolerance relative to Σ|terms|.
func check(t *testing.T, name string, got []float32, want, abs []float64) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); d > 1e-5*abs[i]+1e-6 || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s: element %d = %g, want %g (Σ|terms| %g)", name, i, got[i], want[i], abs[i])
		}
	}
	for i := len(want); i < len(got); i++ {
		if got[i] != canary {
			t.Fatalf("%s: wrote element %d past the %d it owns", name, i, len(want))
		}
	}
}

// testDX runs fn for kernel k over every count.
func testDX(t *testing.T, k asm.BKernel, fn dxfunc) {
	R, C := k.Rows, k.Cols
	r := rand.New(rand.NewPCG(uint64(R), uint64(C)))
	w := randSlice(r, R*C)
	for _, n := range counts {
		dy := randSlice(r, max(n, 1)*R)
		dx := append(randSlice(r, n*C), canary, canary, canary)
		want, abs := make([]float64, n*C), make([]float64, n*C)
		for t := 0; t < n; t++ {
			for c := 0; c < C; c++ {
				s, a := float64(dx[t*C+c]), math.Abs(float64(dx[t*C+c]))
				for rr := 0; rr < R; rr++ {
					v := float64(dy[t*R+rr]) * float64(w[rr*C+c])
					s += v
					a += math.Abs(v)
				}
				want[t*C+c], abs[t*C+c] = s, a
			}
		}
		fn(&dx[0], &dy[0], &w[0], n)
		check(t, k.Name(), dx, want, abs)
	}
}

// testDW runs fn for kernel k over every row count and batch.
func testDW(t *testing.T, k asm.BKernel, fn dwfunc) {
	R, C := k.Rows, k.Cols
	r := rand.New(rand.NewPCG(uint64(R), uint64(C)+1))
	for _, b := range batches {
		x := randSlice(r, max(b, 1)*C)
		dy := randSlice(r, max(b, 1)*R)
		for _, n := range counts {
			if n > R {
				continue
			}
			lo := R - n // the last rows: the worker's offsets into dw and dy
			dw := append(randSlice(r, n*C), canary, canary, canary)
			want, abs := make([]float64, n*C), make([]float64, n*C)
			for i := 0; i < n; i++ {
				for c := 0; c < C; c++ {
					s, a := float64(dw[i*C+c]), math.Abs(float64(dw[i*C+c]))
					for tt := 0; tt < b; tt++ {
						v := float64(dy[tt*R+lo+i]) * float64(x[tt*C+c])
						s += v
						a += math.Abs(v)
					}
					want[i*C+c], abs[i*C+c] = s, a
				}
			}
			dyp := &dy[0]
			if n > 0 {
				dyp = &dy[lo]
			}
			fn(&dw[0], dyp, &x[0], n, b)
			check(t, k.Name(), dw, want, abs)
		}
	}
}

func runAll(t *testing.T, isa asm.ISA, dx map[string]dxfunc, dw map[string]dwfunc) int {
	ran := 0
	for _, k := range shapes.Kernels(isa) {
		if k.DW {
			fn := dw[k.Name()]
			if fn == nil {
				t.Fatalf("%s: not generated", k.Name())
			}
			testDW(t, k, fn)
		} else {
			fn := dx[k.Name()]
			if fn == nil {
				t.Fatalf("%s: not generated", k.Name())
			}
			testDX(t, k, fn)
		}
		ran++
	}
	return ran
}

func TestGo(t *testing.T) {
	t.Logf("ran %d kernels", runAll(t, asm.Generic, goDX, goDW))
}
