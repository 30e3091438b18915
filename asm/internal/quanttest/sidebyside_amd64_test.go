//go:build amd64 && !purego

package quanttest

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/cpu"
	"github.com/modelc/modelc/runtime/quant"
)

// BenchmarkSideBySide times the float32, Q8_0 and Q4_0 matvecs of one shape
// and path in alternation, each b.N rounds, and reports the fastest call of
// each (ns) and the ratios: on a machine shared with other jobs the minimum
// over interleaved rounds is the fair comparison. act-ns is the 8-bit
// quantisation of the input vector, paid once per input by the quantised
// paths (and shared by Q, K and V, or gate and up).
//
//	go test -run '^$' -bench SideBySide -benchtime 20x ./asm/internal/quanttest
func BenchmarkSideBySide(b *testing.B) {
	models := []struct {
		name            string
		dim, ffn, vocab int
	}{{"15M", 288, 768, 32000}, {"110M", 768, 2048, 32000}}
	for _, m := range models {
		ops := []struct {
			name       string
			rows, cols int
		}{{"qkv", 3 * m.dim, m.dim}, {"wo", m.dim, m.dim}, {"ffn_up", 2 * m.ffn, m.dim}, {"ffn_down", m.dim, m.ffn}, {"classifier", m.vocab, m.dim}}
		for _, o := range ops {
			r := rand.New(rand.NewPCG(1, uint64(o.rows)))
			x := make([]float32, o.cols)
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			wf := make([]float32, o.rows*o.cols)
			for i := range wf {
				wf[i] = float32(r.NormFloat64()) * 0.05
			}
			w8, _ := quant.Quantize(gguf.TypeQ8_0, wf)
			w4, _ := quant.Quantize(gguf.TypeQ4_0, wf)
			xq, xs := make([]int8, o.cols), make([]float32, o.cols/32)
			out := make([]float32, o.rows)
			for _, isa := range []asm.ISA{asm.AVX2, asm.AVX512} {
				if isa == asm.AVX2 && !cpu.Supports(cpu.AVX2) || isa == asm.AVX512 && !VNNI() {
					continue
				}
				f32 := f32Kernels[asm.Kernel{Op: asm.OpMatVec, ISA: isa, Cols: o.cols}.Name()]
				q8 := amd64Kernels[asm.QKernel{Format: asm.Q8_0, ISA: isa, Cols: o.cols}.Name()]
				q4 := amd64Kernels[asm.QKernel{Format: asm.Q4_0, ISA: isa, Cols: o.cols}.Name()]
				calls := max(1, 4e6/(o.rows*o.cols)) // about a millisecond of work per timing
				b.Run(fmt.Sprintf("%s/%s/%s", m.name, o.name, isa), func(b *testing.B) {
					best := [4]time.Duration{1 << 62, 1 << 62, 1 << 62, 1 << 62}
					timeIt := func(i int, f func()) {
						t0 := time.Now()
						for j := 0; j < calls; j++ {
							f()
						}
						best[i] = min(best[i], time.Since(t0)/time.Duration(calls))
					}
					for i := 0; i < b.N; i++ {
						timeIt(0, func() { f32(&out[0], &wf[0], &x[0], o.rows) })
						timeIt(1, func() { q8(&out[0], &w8[0], &xq[0], &xs[0], o.rows) })
						timeIt(2, func() { q4(&out[0], &w4[0], &xq[0], &xs[0], o.rows) })
						timeIt(3, func() { quant.QuantizeAct(xq, xs, x) })
					}
					b.ReportMetric(float64(best[0].Nanoseconds()), "f32-ns")
					b.ReportMetric(float64(best[1].Nanoseconds()), "q8-ns")
					b.ReportMetric(float64(best[2].Nanoseconds()), "q4-ns")
					b.ReportMetric(float64(best[3].Nanoseconds()), "act-ns")
					b.ReportMetric(float64(best[0])/float64(best[1]), "q8-x")
					b.ReportMetric(float64(best[0])/float64(best[2]), "q4-x")
				})
			}
		}
	}
}

// BenchmarkPrefill compares a QMatMul over 16 tokens with 16 QMatVec calls
// (the weights read once against 16 times), on the FFN gate+up matrices of
// the 15M and 110M shapes; fastest of interleaved rounds, ns per token.
//
//	go test -run '^$' -bench Prefill -benchtime 10x ./asm/internal/quanttest
func BenchmarkPrefill(b *testing.B) {
	const T = 16
	for _, sh := range [][2]int{{1536, 288}, {4096, 768}} {
		rows, cols := sh[0], sh[1]
		r := rand.New(rand.NewPCG(5, uint64(rows)))
		wf := make([]float32, rows*cols)
		for i := range wf {
			wf[i] = float32(r.NormFloat64()) * 0.05
		}
		x := make([]float32, T*cols)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		xq, xs := make([]int8, T*cols), make([]float32, T*cols/32)
		quant.QuantizeAct(xq, xs, x)
		out := make([]float32, T*rows)
		for _, f := range []asm.QFormat{asm.Q8_0, asm.Q4_0} {
			t := gguf.TypeQ8_0
			if f == asm.Q4_0 {
				t = gguf.TypeQ4_0
			}
			w, _ := quant.Quantize(t, wf)
			for _, isa := range []asm.ISA{asm.AVX2, asm.AVX512} {
				if isa == asm.AVX2 && !cpu.Supports(cpu.AVX2) || isa == asm.AVX512 && !VNNI() {
					continue
				}
				mm := amd64KernelsMM[asm.QKernel{Format: f, ISA: isa, Rows: rows, Cols: cols}.Name()]
				mv := amd64Kernels[asm.QKernel{Format: f, ISA: isa, Cols: cols}.Name()]
				b.Run(fmt.Sprintf("%dx%d/%s/%s", rows, cols, f, isa), func(b *testing.B) {
					best := [2]time.Duration{1 << 62, 1 << 62}
					for i := 0; i < b.N; i++ {
						t0 := time.Now()
						mm(&out[0], &w[0], &xq[0], &xs[0], rows, T)
						best[0] = min(best[0], time.Since(t0))
						t0 = time.Now()
						for tk := 0; tk < T; tk++ {
							mv(&out[tk*rows], &w[0], &xq[tk*cols], &xs[tk*cols/32], rows)
						}
						best[1] = min(best[1], time.Since(t0))
					}
					b.ReportMetric(float64(best[0].Nanoseconds())/T, "matmul-ns/tok")
					b.ReportMetric(float64(best[1].Nanoseconds())/T, "matvec-ns/tok")
					b.ReportMetric(float64(best[1])/float64(best[0]), "x")
				})
			}
		}
	}
}
