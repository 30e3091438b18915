// Package asm generates the shape-specialised kernels a compiled model runs:
// AVX2+FMA and AVX-512 assembly for amd64 (through avo), NEON assembly for
// arm64 (a text emitter), and pure Go for every other case. ref.go holds the
// Go reference of each operation, the oracle of the tests.
//
// # What the compiler asks for
//
// A Kernel names an operation (Op), the shape constants baked into it and an
// ISA. The compiler lists one Kernel per (shape, ISA) in a model's plan and
// calls GenerateAMD64, GenerateARM64 and GenerateGo once each; repeated
// kernels are dropped and the output is sorted by name, so it is
// reproducible byte for byte. The files written are:
//
//	kernels_amd64.s, kernels_amd64.go   //go:build !purego (AVX2 and AVX512 kernels, stubs)
//	kernels_arm64.s, kernels_arm64.go   //go:build !purego (NEON kernels, stubs)
//	kernels_go.go                       no constraint (Generic kernels)
//
// Code that refers to an assembly kernel must itself be built only for that
// GOARCH and !purego; the Generic kernels exist everywhere.
//
// # Naming
//
// Kernel.Name is op_shape_isa, where shape lists only what is baked in:
//
//	matvec_288_avx2        MatVec, 288 columns
//	matvecadd_288_neon     MatVecAdd, 288 columns
//	rmsmatvec_288_avx512   RMSNormMatVec, 288 columns
//	swiglu_768x288_neon    SwiGLU, F = 768 gate (then up) rows, 288 columns
//	rmsswiglu_768x288_go   RMSNormSwiGLU
//	matmul_288x288_avx2    MatMul, R = 288 rows (the output stride), 288 columns
//	silumul_768_avx512     SiLUMul, F = 768
//	attention_48_288_avx2  Attention, head size 48, 288 floats between positions
//	rope_12x48_avx512      RoPE, 12 heads of 48
//
// # Layout and calling convention
//
// Weights are row-major [rows, cols] float32, as in runtime/model.Params.
// Every kernel takes pointers to first elements and run-time counts, so a
// worker pool can give each worker a row range [lo, hi): it passes
// &out[lo], &w[lo*cols] and n = hi-lo. All sizes may be odd; tails are
// handled under masks and no kernel reads or writes past the elements the
// contract names. Inputs and outputs must not overlap (RoPE rotates x in
// place, and MatVecAdd reads each out[r] before it writes it).
//
// MatVec: func(out, w, x *float32, n int)
//
//	out[r] = Σ_c w[r*C+c]·x[c]  for r < n.
//
// MatVecAdd: func(out, w, x *float32, n int)
//
//	out[r] += Σ_c w[r*C+c]·x[c]  for r < n: MatVec's sum, then one add.
//
// The attention output and down projections of a decode step add into the
// residual stream in place, so the step needs no separate add loop.
//
// RMSNormMatVec: func(out, w, x, nw *float32, n int, eps float32)
//
//	out[r] = w[r]·(nw⊙x)·inv,  inv = 1/sqrt(Σx²/C + eps)
//
// The norm is computed inside the kernel (by every worker: C flops against
// n·C), so the normalised vector is never stored. It is the attention input
// projection (Q, K and V are adjacent rows of Params: one call over
// dim+2·kv_dim rows) and the classifier (the final norm fused in).
//
// SwiGLU: func(out, w, x *float32, n int) with F baked in
//
//	out[r] = silu(w[r]·x) · (w[F+r]·x)  for r < n
//
// w points at gate row r0 of the worker; the up rows sit F rows further, as
// ffn_gate and ffn_up are adjacent in Params. Gate and up are computed in
// one pass over x and combined in registers. RMSNormSwiGLU
// (func(out, w, x, nw *float32, n int, eps float32)) is the same on the
// RMS-normalised x: the whole FFN input side in one call.
//
// Attention: func(out, q, k, v, att *float32, t int), t ≥ 1
//
//	s_j = q·k_j/sqrt(HD), p = softmax(s), out = Σ_j p_j·v_j  for j < t
//
// where k_j = k[j*S : j*S+HD] (the same for v): the caller offsets k and v to
// the head's KV head, which makes the kernel agnostic of grouped-query
// attention. att is scratch of t floats; on return it holds the unnormalised
// weights e^(s_j - max s) (the output is divided by their sum).
//
// GroupAttention: func(out, q, k, v, att *float32, t int), t ≥ 1, with
// HD, S, Heads (KV heads) and Group (query heads per KV head) baked in
//
//	out[h*HD:] = Attention(q[h*HD:], k[g*HD:], v[g*HD:])  for h = g·Group+i
//
// every query head of a layer in one call; the Group heads of one KV head
// are scored and summed in one pass over its cached rows, so each K and V
// row is loaded once for all of them. att is scratch of Group·t floats.
//
// GroupAttentionT: the same over a position-minor cache of capacity S (a
// multiple of 16, t ≤ S): per KV head, tiles of 16 positions, each HD rows
// of 16 floats, so dim d of KV head g at position j is
// k[g*HD*S + (j/16)*HD*16 + d*16 + j%16] (the same for v; asm.TIndex). Heads shorter than a vector use it
// (stories260K's 8 floats): the vectors run along positions, so a score is
// HD fused multiply-adds of a broadcast query element, with no horizontal
// sums, and the weighted sum of the values is the same along positions. att
// is scratch of Group·S floats. The AVX kernels skip the softmax's maximum:
// e^(s-max)/Σ e^(s-max) = 2^s'/Σ 2^s' for s' = s·log2(e), so they take the
// powers of two as they score (no pass waits on the maxima) and redo a KV
// head with the maxima only when its sum leaves [2^-40, 2^40], where a
// weight could overflow or the largest could be near underflow.
//
// RoPE: func(x, cs *float32) with Heads (n) and HeadDim (HD) baked in
//
//	x[2i], x[2i+1] = x[2i]·C[j] + x[2i+1]·S[j], x[2i+1]·C[j+1] + x[2i]·S[j+1]
//
// for the n·HD floats of x, j = 2i mod P, P = RoPEPeriod(HD): cs holds C
// then S, P floats each (RoPETable: cos of each pair twice, then -sin, sin),
// one position's rotation repeated so that vectors of any width start
// inside it. Each product is rounded before the sum, so every path gives
// the same bits (and those of the step's former Go loop). The decode step
// rotates its query and key heads, adjacent in the Q|K|V output, in one call.
//
// MatMul: func(out, w, x *float32, n, b int) with R baked in
//
//	out[t*R+r] = w[r]·x[t*C : t*C+C]  for r < n, t < b
//
// x is token-major [b, C] and out is [b, R]; the pool splits rows as for
// MatVec. Each tile of 4 rows × several tokens streams w once per row block.
//
// SiLUMul: func(out, h *float32, n int) with F baked in (Kernel.Cols)
//
//	out[t*F+i] = silu(h[t*2F+i]) · h[t*2F+F+i]  for i < F, t < n
//
// the SwiGLU epilogue of a batched pass: h is the [n, 2F] output of a MatMul
// over the adjacent gate and up rows, out is [n, F]. Vectorised with the
// kernels' exponential; callers split rows, not columns.
//
// # Register planning
//
// avo never spills, so every unroll is planned to fit: a matvec keeps 4 rows
// × u column vectors of accumulators (u = 2 on AVX2's 16 YMM, 4 on
// AVX-512's 32 ZMM; SwiGLU holds 8 rows (4 gate, 4 up; 16 on AVX-512 when x
// fits in registers, as stories260K's 64 floats do), and so do matvecs whose
// rows have 512 floats or more (weights streaming from DRAM) or fewer than 256
// (stories260K's, from L3 every token): more reads in flight),
// loads x once per column step and takes w as the FMA's memory operand;
// each four row sums are folded with unpack/add into one XMM and stored
// together (on AVX-512 a block of eight rows, and the SwiGLU's eight gate
// and eight up rows, fold in one transpose, reduceRows, to the same bits). The weights of the next block are prefetched non-temporally
// (they are not read again before the whole model has streamed past).
// Column loops are fully unrolled up to 16 vectors, else looped with the
// remainder straight-line.
// GroupAttentionT on AVX-512 holds a KV head's broadcast query elements
// (Group·HD ZMM) while it scores, and the exponential's constants while it
// weighs, rather than loading them in every tile.
// AVX-512 code uses only instructions with EVEX forms, since the allocator
// may place values in registers 16-31.
package asm
