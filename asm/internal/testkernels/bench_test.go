package testkernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/asm/internal/testshapes"
	"github.com/modelc/modelc/runtime/cpu"
)

// kernelFor finds the generated kernel k in the tables (nil when this build
// or machine cannot run it).
func kernelFor(k asm.Kernel) any {
	if k.ISA == asm.Generic {
		return goKernels[k.Name()]
	}
	return archKernel(k)
}

// BenchmarkKernels times each decode-time kernel of the bundled models on
// every path: ref (the plain Go reference in package asm), go (the generated
// pure-Go kernel), avx2, avx512. One op is one call over the whole matrix,
// single-threaded.
func BenchmarkKernels(b *testing.B) {
	isas := []asm.ISA{asm.Generic, asm.AVX2, asm.AVX512, asm.NEON}
	for _, m := range testshapes.Models {
		r := rand.New(rand.NewPCG(1, 2))
		const eps = 1e-5
		const T = 256 // cached positions for attention
		maxRows := max(m.Vocab, 2*m.FFN, m.Dim+2*m.KVDim)
		w := rnd(r, maxRows*max(m.Dim, m.FFN), 0.1)
		x := rnd(r, max(m.FFN, 16*m.Dim), 1)
		nw := rnd(r, m.Dim, 1)
		out := make([]float32, max(maxRows, 16*m.Dim))
		xn := make([]float32, m.Dim)
		kv := rnd(r, T*m.KVDim, 1)
		att := make([]float32, T)
		cs := make([]float32, 2*asm.RoPEPeriod(m.Head))
		cos, sin := rnd(r, m.Head/2, 1), rnd(r, m.Head/2, 1)
		asm.RoPETable(cs, cos, sin)

		type op struct {
			name string
			k    asm.Kernel
			rows int
			ref  func()
			run  func(fn any)
		}
		ops := []op{
			{"qkv", asm.Kernel{Op: asm.OpRMSNormMatVec, Cols: m.Dim}, m.Dim + 2*m.KVDim,
				func() { asm.RMSNorm(xn, x[:m.Dim], nw, eps); asm.MatVec(out[:m.Dim+2*m.KVDim], w, xn) },
				func(fn any) { fn.(normFn)(&out[0], &w[0], &x[0], &nw[0], m.Dim+2*m.KVDim, eps) }},
			{"rope", asm.Kernel{Op: asm.OpRoPE, Heads: (m.Dim + m.KVDim) / m.Head, HeadDim: m.Head}, 0,
				func() { asm.RoPE(out, cs, (m.Dim+m.KVDim)/m.Head, m.Head) },
				func(fn any) { fn.(ropeFn)(&out[0], &cs[0]) }},
			{"wo", asm.Kernel{Op: asm.OpMatVecAdd, Cols: m.Dim}, m.Dim,
				func() { asm.MatVecAdd(out[:m.Dim], w, x[:m.Dim]) },
				func(fn any) { fn.(matvecFn)(&out[0], &w[0], &x[0], m.Dim) }},
			{"ffn_up", asm.Kernel{Op: asm.OpRMSNormSwiGLU, Rows: m.FFN, Cols: m.Dim}, 2 * m.FFN,
				func() { asm.RMSNorm(xn, x[:m.Dim], nw, eps); asm.SwiGLU(out[:m.FFN], w, xn) },
				func(fn any) { fn.(normFn)(&out[0], &w[0], &x[0], &nw[0], m.FFN, eps) }},
			{"ffn_down", asm.Kernel{Op: asm.OpMatVecAdd, Cols: m.FFN}, m.Dim,
				func() { asm.MatVecAdd(out[:m.Dim], w, x[:m.FFN]) },
				func(fn any) { fn.(matvecFn)(&out[0], &w[0], &x[0], m.Dim) }},
			{"classifier", asm.Kernel{Op: asm.OpRMSNormMatVec, Cols: m.Dim}, m.Vocab,
				func() { asm.RMSNorm(xn, x[:m.Dim], nw, eps); asm.MatVec(out[:m.Vocab], w, xn) },
				func(fn any) { fn.(normFn)(&out[0], &w[0], &x[0], &nw[0], m.Vocab, eps) }},
			{"attention", asm.Kernel{Op: asm.OpAttention, HeadDim: m.Head, KVStride: m.KVDim}, 0,
				func() { asm.AttentionHead(out, x[:m.Head], kv, kv, att, T, m.KVDim) },
				func(fn any) { fn.(attnFn)(&out[0], &x[0], &kv[0], &kv[0], &att[0], T) }},
			{"prefill16", asm.Kernel{Op: asm.OpMatMul, Rows: m.Dim, Cols: m.Dim}, m.Dim,
				func() { asm.MatMul(out, w, x, m.Dim, m.Dim, 16) },
				func(fn any) { fn.(matmulFn)(&out[0], &w[0], &x[0], m.Dim, 16) }},
		}
		for _, o := range ops {
			bytes := int64(o.rows * o.k.Cols * 4)
			if o.k.Op == asm.OpAttention {
				bytes = int64(2 * T * m.Head * 4)
			}
			b.Run(fmt.Sprintf("%s/%s/ref", m.Name, o.name), func(b *testing.B) {
				b.SetBytes(bytes)
				for i := 0; i < b.N; i++ {
					o.ref()
				}
			})
			for _, isa := range isas {
				k := o.k
				k.ISA = isa
				fn := kernelFor(k)
				if fn == nil || (isa != asm.Generic && !cpu.Supports(levelOf[isa])) {
					continue
				}
				b.Run(fmt.Sprintf("%s/%s/%s", m.Name, o.name, isa), func(b *testing.B) {
					b.SetBytes(bytes)
					for i := 0; i < b.N; i++ {
						o.run(fn)
					}
				})
			}
		}
	}
}

// BenchmarkGroupAttention times stories260K's attention over all heads of a
// layer (4 KV heads of 2 query heads, heads of 8) at t cached positions: the
// row-major cache (gattention) against the position-minor one (gattentiont)
// on every path. One op is one call.
func BenchmarkGroupAttention(b *testing.B) {
	isas := []asm.ISA{asm.Generic, asm.AVX2, asm.AVX512, asm.NEON}
	const hd, nh, g, capacity = 8, 4, 2, 512
	r := rand.New(rand.NewPCG(5, 6))
	q := rnd(r, nh*g*hd, 1)
	keys, vals := rnd(r, nh*hd*capacity, 1), rnd(r, nh*hd*capacity, 1)
	out, att := make([]float32, nh*g*hd), make([]float32, g*capacity)
	for _, t := range []int{16, 64, 128, 256} {
		for _, k := range []asm.Kernel{
			{Op: asm.OpGroupAttention, HeadDim: hd, KVStride: nh * hd, Heads: nh, Group: g},
			{Op: asm.OpGroupAttentionT, HeadDim: hd, KVStride: capacity, Heads: nh, Group: g},
		} {
			for _, isa := range isas {
				k.ISA = isa
				fn, _ := kernelFor(k).(attnFn)
				if fn == nil || (isa != asm.Generic && !cpu.Supports(levelOf[isa])) {
					continue
				}
				b.Run(fmt.Sprintf("t%d/%s/%s", t, k.Op, isa), func(b *testing.B) {
					for b.Loop() {
						fn(&out[0], &q[0], &keys[0], &vals[0], &att[0], t)
					}
				})
			}
		}
	}
}
