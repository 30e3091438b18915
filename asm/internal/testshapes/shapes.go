// Package testshapes lists the kernels of the test package testkernels: the
// shapes of the bundled models plus odd ones that exercise every tail.
package testshapes

import "github.com/modelc/modelc/asm"

// Cols are the row lengths tested: below, at and around the vector widths,
// and the model dims (64, 172, 288, 768).
var Cols = []int{1, 3, 7, 8, 16, 17, 33, 64, 172, 288, 768, 2048}

// HeadDims are the attention head sizes tested, with a KV stride for each
// (up to 256: Llama-7B's 128 and larger, whose register plans block).
var HeadDims = [][2]int{{1, 3}, {3, 5}, {8, 32}, {8, 8}, {12, 40}, {17, 51}, {48, 288}, {64, 64}, {64, 768}, {100, 300}, {128, 256}, {136, 272}, {256, 768}}

// GroupAttentions are (head size, KV stride, KV heads, group) of the
// grouped attention kernels tested: the bundled models' and odd ones.
var GroupAttentions = [][4]int{{8, 32, 4, 2}, {1, 4, 2, 2}, {3, 7, 2, 1}, {8, 8, 1, 4}, {12, 40, 3, 1}, {17, 51, 3, 2}, {16, 64, 4, 4}, {16, 50, 3, 3}, {32, 64, 2, 2}, {48, 288, 6, 1}, {64, 768, 12, 1}, {64, 130, 2, 2}, {100, 300, 3, 1}, {128, 256, 2, 1}, {128, 512, 1, 4}, {256, 512, 2, 2}}

// GroupAttentionsT are (head size, cache capacity, KV heads, group) of the
// position-minor grouped attention kernels tested (heads of 4 in groups of
// 2 and of 16 alone: the AVX-512 kernel's 8 and 16 group sums in one
// transpose, as stories260K's heads of 8 in groups of 2).
var GroupAttentionsT = [][4]int{{8, 512, 4, 2}, {8, 16, 1, 4}, {1, 16, 2, 2}, {3, 32, 2, 1}, {5, 48, 3, 3}, {8, 128, 2, 1}, {4, 32, 3, 2}, {16, 32, 2, 1}, {12, 112, 2, 4}, {16, 64, 1, 2}, {33, 32, 1, 1}}

// RoPEs are (heads, head size) of the rotary-embedding kernels tested:
// stories260K's 8+4 heads of 8, the 15M's 6+6 of 48, the 110M's 12+12 of
// 64, and sizes whose vectors end inside a head or leave a last pair, or
// that loop over chunks of the table and leave a remainder.
var RoPEs = [][2]int{{12, 8}, {12, 48}, {24, 64}, {1, 2}, {3, 2}, {5, 6}, {7, 12}, {3, 34}, {41, 6}, {4, 128}, {3, 256}}

// Pairs are (F, C) for SwiGLU and (R, C) for MatMul.
var Pairs = [][2]int{{1, 1}, {5, 7}, {13, 17}, {9, 33}, {172, 64}, {768, 288}, {2048, 768}, {64, 64}, {288, 288}, {768, 768}}

// Model is the shape of a bundled model, for benchmarks.
type Model struct {
	Name                         string
	Dim, KVDim, FFN, Vocab, Head int
}

// Models are stories260K, stories15M and stories110M.
var Models = []Model{
	{"260K", 64, 32, 172, 512, 8},
	{"15M", 288, 288, 768, 32000, 48},
	{"110M", 768, 768, 2048, 32000, 64},
}

// Kernels returns every kernel of the test package for the given ISAs.
func Kernels(isas ...asm.ISA) []asm.Kernel {
	var ks []asm.Kernel
	for _, isa := range isas {
		for _, c := range Cols {
			ks = append(ks, asm.Kernel{Op: asm.OpMatVec, ISA: isa, Cols: c}, asm.Kernel{Op: asm.OpMatVecAdd, ISA: isa, Cols: c}, asm.Kernel{Op: asm.OpRMSNormMatVec, ISA: isa, Cols: c},
				asm.Kernel{Op: asm.OpSiLUMul, ISA: isa, Cols: c})
		}
		for _, p := range Pairs {
			ks = append(ks,
				asm.Kernel{Op: asm.OpSwiGLU, ISA: isa, Rows: p[0], Cols: p[1]},
				asm.Kernel{Op: asm.OpRMSNormSwiGLU, ISA: isa, Rows: p[0], Cols: p[1]},
				asm.Kernel{Op: asm.OpMatMul, ISA: isa, Rows: p[0], Cols: p[1]})
		}
		for _, h := range HeadDims {
			ks = append(ks, asm.Kernel{Op: asm.OpAttention, ISA: isa, HeadDim: h[0], KVStride: h[1]})
		}
		for _, a := range GroupAttentions {
			ks = append(ks, asm.Kernel{Op: asm.OpGroupAttention, ISA: isa, HeadDim: a[0], KVStride: a[1], Heads: a[2], Group: a[3]})
		}
		for _, a := range GroupAttentionsT {
			ks = append(ks, asm.Kernel{Op: asm.OpGroupAttentionT, ISA: isa, HeadDim: a[0], KVStride: a[1], Heads: a[2], Group: a[3]})
		}
		for _, r := range RoPEs {
			ks = append(ks, asm.Kernel{Op: asm.OpRoPE, ISA: isa, Heads: r[0], HeadDim: r[1]})
		}
	}
	return ks
}
