package quanttest

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/asm/internal/quanttest/shapes"
	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/quant"
)

// Row counts: below, at and past the 4-row unroll, with tails of 1-3.
var rowCounts = []int{0, 1, 3, 4, 5, 11}

// mvRowCounts are the QMatVec row counts: also whole passes of 8 rows (the
// AVX-512 kernels) and panels of 16 (the panel kernels), with and without
// leftovers.
var mvRowCounts = []int{0, 1, 3, 4, 5, 8, 11, 13, 16, 21, 32, 47}

func ggmlType(f asm.QFormat) gguf.GGMLType {
	if f == asm.Q4_0 {
		return gguf.TypeQ4_0
	}
	return gguf.TypeQ8_0
}

type problem struct {
	w      []byte    // rows in blocks
	wf     []float32 // the rows dequantised
	x      []float32
	xq     []int8
	xs     []float32
	ref    []float32 // runtime/quant's integer dot per row
	deqRef []float64 // dequantised weights · dequantised activations, in float64
	absRef []float64 // Σ|terms| per row, for relative tolerances
}

func newProblem(k asm.QKernel, rows int, seed uint64) *problem {
	r := rand.New(rand.NewPCG(seed, uint64(k.Cols)))
	C := k.Cols
	wf := make([]float32, rows*C)
	for i := range wf {
		// Per-block magnitudes differ, some blocks are zero.
		s := float32(math.Pow(2, float64(i/32%7)-4))
		if i/32%11 == 10 {
			s = 0
		}
		wf[i] = float32(r.NormFloat64()) * s
	}
	p := &problem{x: make([]float32, C), xq: make([]int8, C), xs: make([]float32, C/32)}
	for i := range p.x {
		p.x[i] = float32(r.NormFloat64()) * float32(1+i%5)
	}
	t := ggmlType(k.Format)
	p.w, _ = quant.Quantize(t, wf)
	p.wf = make([]float32, len(wf))
	quant.Dequantize(t, p.wf, p.w)
	quant.QuantizeAct(p.xq, p.xs, p.x)
	p.ref = make([]float32, rows)
	p.deqRef = make([]float64, rows)
	p.absRef = make([]float64, rows)
	rb := k.RowBytes()
	for i := 0; i < rows; i++ {
		row := p.w[i*rb : (i+1)*rb]
		if k.Format == asm.Q4_0 {
			p.ref[i] = quant.DotQ4_0(row, p.xq, p.xs)
		} else {
			p.ref[i] = quant.DotQ8_0(row, p.xq, p.xs)
		}
		for j := 0; j < C; j++ {
			term := float64(p.wf[i*C+j]) * float64(p.xq[j]) * float64(p.xs[j/32])
			p.deqRef[i] += term
			p.absRef[i] += math.Abs(term)
		}
	}
	return p
}

// run calls fn over rows and checks it wrote out[0..rows) and nothing past.
// A panel kernel gets the blocks in the panel layout.
func run(t *testing.T, k asm.QKernel, fn qfunc, p *problem, rows int) []float32 {
	t.Helper()
	out := make([]float32, rows+1)
	const canary = float32(-12345.5)
	out[rows] = canary
	wb := p.w
	if k.Panel {
		var err error
		if wb, err = quant.Panels(k.Format.String(), p.w, rows, k.Cols); err != nil {
			t.Fatal(err)
		}
	}
	var w *byte
	if len(wb) > 0 {
		w = &wb[0]
	} else {
		w = new(byte)
	}
	fn(&out[0], w, &p.xq[0], &p.xs[0], rows)
	if out[rows] != canary {
		t.Fatalf("kernel wrote past row %d", rows)
	}
	return out[:rows]
}

// checkKernel runs k over every row count. exact: the result must equal
// runtime/quant's reference bit for bit (same order of float operations);
// otherwise within float32 rounding of the sum of |terms|. Always within
// that tolerance of dequantise-then-multiply in float64.
func checkKernel(t *testing.T, k asm.QKernel, fn qfunc, exact bool) {
	for _, rows := range mvRowCounts {
		p := newProblem(k, rows, uint64(rows)+1)
		got := run(t, k, fn, p, rows)
		for i := range got {
			tol := 1e-5*p.absRef[i] + 1e-30
			if exact && got[i] != p.ref[i] {
				t.Fatalf("%s rows=%d: row %d = %g, reference %g (must be equal)", k.Name(), rows, i, got[i], p.ref[i])
			}
			if d := math.Abs(float64(got[i]) - float64(p.ref[i])); d > tol {
				t.Fatalf("%s rows=%d: row %d = %g, reference %g (|diff| %g > %g)", k.Name(), rows, i, got[i], p.ref[i], d, tol)
			}
			if d := math.Abs(float64(got[i]) - p.deqRef[i]); d > tol {
				t.Fatalf("%s rows=%d: row %d = %g, dequantised %g (|diff| %g > %g)", k.Name(), rows, i, got[i], p.deqRef[i], d, tol)
			}
		}
	}
}

// checkMatMul runs a QMatMul kernel over row and token counts: every
// out[t*R+r] must be the matvec of token t (bit for bit when exact, else
// within float rounding of Σ|terms|), and no other element of out changes.
func checkMatMul(t *testing.T, k asm.QKernel, fn qmmfunc, exact bool) {
	for _, rows := range rowCounts {
		for _, b := range []int{0, 1, 3} {
			p := newProblem(k, rows, uint64(7*rows+b))
			// b token vectors, each quantised separately.
			xq := make([]int8, max(1, b)*k.Cols)
			xs := make([]float32, max(1, b)*k.Cols/32)
			xf := make([][]float32, b)
			r := rand.New(rand.NewPCG(uint64(b), 3))
			for tk := 0; tk < b; tk++ {
				xf[tk] = make([]float32, k.Cols)
				for i := range xf[tk] {
					xf[tk][i] = float32(r.NormFloat64())
				}
				quant.QuantizeAct(xq[tk*k.Cols:(tk+1)*k.Cols], xs[tk*k.Cols/32:(tk+1)*k.Cols/32], xf[tk])
			}
			const canary = float32(-777.25)
			out := make([]float32, max(1, b)*k.Rows+1)
			for i := range out {
				out[i] = canary
			}
			w := new(byte)
			if len(p.w) > 0 {
				w = &p.w[0]
			}
			fn(&out[0], w, &xq[0], &xs[0], rows, b)
			rb := k.RowBytes()
			for tk := 0; tk < max(1, b); tk++ {
				for i := 0; i < k.Rows; i++ {
					got := out[tk*k.Rows+i]
					if tk >= b || i >= rows {
						if got != canary {
							t.Fatalf("%s rows=%d b=%d: out[%d] written", k.Name(), rows, b, tk*k.Rows+i)
						}
						continue
					}
					row := p.w[i*rb : (i+1)*rb]
					q, s := xq[tk*k.Cols:(tk+1)*k.Cols], xs[tk*k.Cols/32:(tk+1)*k.Cols/32]
					var want float32
					if k.Format == asm.Q4_0 {
						want = quant.DotQ4_0(row, q, s)
					} else {
						want = quant.DotQ8_0(row, q, s)
					}
					var abs float64
					for j := 0; j < k.Cols; j++ {
						abs += math.Abs(float64(p.wf[i*k.Cols+j]) * float64(q[j]) * float64(s[j/32]))
					}
					if exact && got != want || math.Abs(float64(got-want)) > 1e-5*abs+1e-30 {
						t.Fatalf("%s rows=%d b=%d: token %d row %d = %g, reference %g", k.Name(), rows, b, tk, i, got, want)
					}
				}
			}
			if out[len(out)-1] != canary {
				t.Fatalf("%s: wrote past the output", k.Name())
			}
		}
	}
}

// runAll checks every kernel of isa found in the tables.
func runAll(t *testing.T, isa asm.ISA, mv map[string]qfunc, mm map[string]qmmfunc, pmm map[string]qpmmfunc, exact bool, skip func(asm.QKernel) bool) int {
	mvTable := mv
	ran := 0
	for _, k := range shapes.Kernels(isa) {
		if skip != nil && skip(k) {
			continue
		}
		if k.Rows > 0 && k.Panel {
			fn, ok := pmm[k.Name()]
			if !ok {
				t.Fatalf("%s missing from the table", k.Name())
			}
			mv := asm.QKernel{Format: k.Format, ISA: k.ISA, Cols: k.Cols, Panel: true}
			checkPanelMatMul(t, k, fn, mvTable[mv.Name()])
		} else if k.Rows > 0 {
			fn, ok := mm[k.Name()]
			if !ok {
				t.Fatalf("%s missing from the table", k.Name())
			}
			checkMatMul(t, k, fn, exact)
		} else {
			fn, ok := mv[k.Name()]
			if !ok {
				t.Fatalf("%s missing from the table", k.Name())
			}
			checkKernel(t, k, fn, exact)
		}
		ran++
	}
	return ran
}

// checkPanelMatMul runs a panel QMatMul kernel over row and token counts on
// panelled weights: every out[t*R+r] must equal the panel matvec mv on
// token t bit for bit (a batched pass gives what decoding gives), and no
// other element of out changes.
func checkPanelMatMul(t *testing.T, k asm.QKernel, fn qpmmfunc, mv qfunc) {
	if mv == nil {
		t.Fatalf("%s: no panel matvec of %d columns", k.Name(), k.Cols)
	}
	nb := k.Cols / 32
	for _, rows := range append(mvRowCounts, 128, 300) {
		if rows > k.Rows {
			continue
		}
		for _, b := range []int{0, 1, 3, 4, 5, 9} {
			p := newProblem(k, rows, uint64(7*rows+b))
			pw, err := quant.Panels(k.Format.String(), p.w, rows, k.Cols)
			if err != nil {
				t.Fatal(err)
			}
			w := new(byte)
			if len(pw) > 0 {
				w = &pw[0]
			}
			T := max(1, b)
			xq, xs, sums := make([]int8, T*k.Cols), make([]float32, T*nb), make([]int32, T*nb)
			r := rand.New(rand.NewPCG(uint64(b), 5))
			for tk := 0; tk < b; tk++ {
				x := make([]float32, k.Cols)
				for i := range x {
					x[i] = float32(r.NormFloat64()) * float32(1+i%3)
				}
				quant.QuantizeAct(xq[tk*k.Cols:(tk+1)*k.Cols], xs[tk*nb:(tk+1)*nb], x)
				quant.ActSums(sums[tk*nb:(tk+1)*nb], xq[tk*k.Cols:(tk+1)*k.Cols], quant.PanelOffset(k.Format.String()))
			}
			const canary = float32(-777.25)
			out := make([]float32, T*k.Rows+1)
			for i := range out {
				out[i] = canary
			}
			fn(&out[0], w, &xq[0], &xs[0], &sums[0], rows, b)
			want := make([]float32, rows+1)
			for tk := 0; tk < T; tk++ {
				if tk < b && rows > 0 {
					mv(&want[0], w, &xq[tk*k.Cols], &xs[tk*nb], rows)
				}
				for i := 0; i < k.Rows; i++ {
					got := out[tk*k.Rows+i]
					if tk >= b || i >= rows {
						if got != canary {
							t.Fatalf("%s rows=%d b=%d: out[%d] written", k.Name(), rows, b, tk*k.Rows+i)
						}
						continue
					}
					if got != want[i] {
						t.Fatalf("%s rows=%d b=%d: token %d row %d = %g, the panel matvec gives %g", k.Name(), rows, b, tk, i, got, want[i])
					}
				}
			}
			if out[len(out)-1] != canary {
				t.Fatalf("%s: wrote past the output", k.Name())
			}
		}
	}
}
