package quanttest

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/quant"
)

// kernel returns the generated kernel k, or nil when this build or machine
// cannot run it.
func kernel(k asm.QKernel) qfunc {
	if k.ISA == asm.Generic {
		return goKernels[k.Name()]
	}
	return archKernel(k)
}

// BenchmarkQuant times the decode-time matvecs of the 15M and 110M shapes
// (rows × cols as in asm/internal/testkernels' BenchmarkKernels: wo and
// ffn_down are plain matvecs, qkv is 3·dim rows, ffn_up the 2·ffn gate+up
// rows, classifier the vocab rows) over Q8_0 and Q4_0 weights on every
// path, one thread; bytes are the quantised weights read. act is the
// quantisation of one activation vector, paid once per input.
func BenchmarkQuant(b *testing.B) {
	models := []struct {
		name                  string
		dim, ffn, vocab, qkvR int
	}{{"15M", 288, 768, 32000, 3 * 288}, {"110M", 768, 2048, 32000, 3 * 768}}
	for _, m := range models {
		ops := []struct {
			name       string
			rows, cols int
		}{{"qkv", m.qkvR, m.dim}, {"wo", m.dim, m.dim}, {"ffn_up", 2 * m.ffn, m.dim}, {"ffn_down", m.dim, m.ffn}, {"classifier", m.vocab, m.dim}}
		r := rand.New(rand.NewPCG(1, 2))
		for _, o := range ops {
			x := make([]float32, o.cols)
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			xq, xs := make([]int8, o.cols), make([]float32, o.cols/32)
			quant.QuantizeAct(xq, xs, x)
			wf := make([]float32, o.rows*o.cols)
			for i := range wf {
				wf[i] = float32(r.NormFloat64()) * 0.05
			}
			out := make([]float32, o.rows)
			for _, f := range []asm.QFormat{asm.Q8_0, asm.Q4_0} {
				t := gguf.TypeQ8_0
				if f == asm.Q4_0 {
					t = gguf.TypeQ4_0
				}
				w, _ := quant.Quantize(t, wf)
				pw, err := quant.Panels(f.String(), w, o.rows, o.cols)
				if err != nil {
					b.Fatal(err)
				}
				for _, k := range []asm.QKernel{
					{Format: f, ISA: asm.Generic, Cols: o.cols}, {Format: f, ISA: asm.AVX2, Cols: o.cols},
					{Format: f, ISA: asm.AVX512, Cols: o.cols}, {Format: f, ISA: asm.AVX512, Cols: o.cols, Panel: true},
					{Format: f, ISA: asm.NEON, Cols: o.cols},
				} {
					fn, wk := kernel(k), w
					if fn == nil {
						continue
					}
					name := k.ISA.String()
					if k.Panel {
						name, wk = "avx512panel", pw
					}
					b.Run(fmt.Sprintf("%s/%s/%s/%s", m.name, o.name, f, name), func(b *testing.B) {
						b.SetBytes(int64(len(w)))
						for i := 0; i < b.N; i++ {
							fn(&out[0], &wk[0], &xq[0], &xs[0], o.rows)
						}
					})
				}
			}
		}
		b.Run(fmt.Sprintf("%s/act/%d", m.name, m.ffn), func(b *testing.B) {
			x := make([]float32, m.ffn)
			xq, xs := make([]int8, m.ffn), make([]float32, m.ffn/32)
			for i := 0; i < b.N; i++ {
				quant.QuantizeAct(xq, xs, x)
			}
		})
	}
}
