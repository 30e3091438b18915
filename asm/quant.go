package asm

import (
	"fmt"
	"path/filepath"
	"sort"
)

// Quantised matrix-vector kernels.
//
// The weights stay in ggml's blocks in memory, row after row, exactly as a
// GGUF file holds them (zero copy from a mapping): a row of C weights is C/32
// blocks of a float16 scale d followed by the codes — 32 int8 for Q8_0 (34
// bytes), or 16 bytes of nibbles for Q4_0 (18 bytes; byte j holds element j
// low and j+16 high, value nibble-8). The activation x is quantised to 8 bits
// per 32-block first (runtime/quant.QuantizeAct, llama.cpp's CPU activation
// quantiser): xq int8 codes and xs scales (float16 values held in float32). A kernel computes, for r < n,
//
//	out[r] = Σ_b d(w[r], b)·xs[b]·Σ_j q(w[r], b, j)·xq[32b+j]
//
// with the inner sums exact in int32 and one float multiply-add per block.
// Every kernel also prefetches (AVX) or reads rows in order; n may be 0.
// All paths are weight-layout compatible with a GGUF file's tensor data, so
// a compiled model can point w at its memory mapping.
//
// QMatVec: func(out *float32, w *byte, xq *int8, xs *float32, n int), C baked.
//
// QMatMul (QKernel.Rows > 0, batched prefill): func(out *float32, w *byte,
// xq *int8, xs *float32, n, b int) with R = Rows and C baked:
//
//	out[t*R+r] = w[r]·x_t  for r < n, t < b
//
// where token t's codes are xq[t*C:] and its scales xs[t*C/32:]. On amd64
// each group of 4 rows runs over every token while its weights are in L1.
//
// Per ISA:
//
//	AVX2    VPSIGNB makes |w| and sign(w)·x, VPMADDUBSW multiplies u8×s8 into
//	        16-bit pair sums (at most 2·128·127, no saturation since x ≥ -127),
//	        VPMADDWD with ones widens to int32, VCVTDQ2PS and one FMA per block
//	        with the scale d_w·d_x (d_w widened by VCVTPH2PS). Q4_0 feeds the
//	        raw nibbles q+8 to VPMADDUBSW as the unsigned operand and
//	        subtracts 8·Σx, computed once per block pair for all rows; two
//	        blocks share a YMM (low nibbles against x's first halves, high
//	        nibbles against the second halves).
//	AVX512  AVX-512 VNNI: VPDPBUSD does u8×s8 → int32 in one instruction. The
//	        codes are made unsigned by an offset (Q8_0: XOR 0x80 = w+128;
//	        Q4_0: the raw nibble) and each row's sum starts from -offset·Σx,
//	        computed once per block group for all rows. QMatVec takes 8
//	        rows a pass and ZMM groups of blocks (Q8_0 2, Q4_0 4), the
//	        group's weight scales picked from the row bytes by VPERMW and
//	        widened by one VCVTPH2PS (QMatMul: 4 rows). The panel kernels
//	        (QKernel.Panel) read a copy made at load in runtime/quant's
//	        panel layout, 16 rows interleaved by 4 bytes: one linear
//	        stream, one VPDPBUSD per 64 bytes of codes (qpanel.go). Needs AVX-512
//	        F+VL+BW+VNNI: callers must check
//	        runtime/cpu's Features.AVX512BW and AVX512VNNI, not only the
//	        AVX512 level.
//	NEON    SDOT (dot-product extension, as WORD) on two 16-byte halves;
//	        QKernel.NoDot selects SMULL/SMULL2/SADALP for cores without it
//	        (Features.ASIMDDP false). Same float operations as the Go
//	        reference: bit-identical results.
//	Generic pure Go with the blocks' int32 sums, the order of the reference.

// QFormat is a weight block format of the quantised kernels.
type QFormat int

// The block formats (ggml's Q8_0 and Q4_0).
const (
	Q8_0 QFormat = iota + 1
	Q4_0
)

func (f QFormat) String() string {
	switch f {
	case Q8_0:
		return "q8_0"
	case Q4_0:
		return "q4_0"
	}
	return fmt.Sprintf("QFormat(%d)", int(f))
}

// BlockBytes is the size of one block of 32 weights.
func (f QFormat) BlockBytes() int {
	if f == Q4_0 {
		return 18
	}
	return 34
}

// QKernel is one quantised matvec kernel: a format, the row length Cols (a
// multiple of 32) and an ISA. NoDot (NEON only) avoids the dot-product
// extension.
type QKernel struct {
	Format QFormat
	ISA    ISA
	Cols   int
	NoDot  bool
	// Rows > 0 makes a QMatMul whose output rows are Rows apart per token.
	Rows int
	// Panel (AVX-512 QMatVec only) reads the weights in the panel layout
	// of runtime/quant.Panels instead of ggml's (qpanel.go).
	Panel bool
}

// Name is e.g. q8_0matvec_288_avx2, q4_0matvec_768_neon, q8_0matvec_288_neonnodot.
func (k QKernel) Name() string {
	isa := k.ISA.String()
	if k.NoDot && k.ISA == NEON {
		isa += "nodot"
	}
	if k.Panel && k.Rows > 0 {
		return fmt.Sprintf("%spanelmm_%dx%d_%s", k.Format, k.Rows, k.Cols, isa)
	}
	if k.Rows > 0 {
		return fmt.Sprintf("%smatmul_%dx%d_%s", k.Format, k.Rows, k.Cols, isa)
	}
	if k.Panel {
		return fmt.Sprintf("%spanel_%d_%s", k.Format, k.Cols, isa)
	}
	return fmt.Sprintf("%smatvec_%d_%s", k.Format, k.Cols, isa)
}

// QSignature is the Go declaration of every QMatVec kernel's parameters.
const QSignature = "func(out *float32, w *byte, xq *int8, xs *float32, n int)"

// QMatMulSignature is that of the QMatMul kernels.
const QMatMulSignature = "func(out *float32, w *byte, xq *int8, xs *float32, n, b int)"

// QPanelMatMulSignature is that of the panel QMatMul kernels: xsum holds,
// per token and block, -o·Σx (quant.ActSums; o = 128 for Q8_0, 8 for Q4_0).
const QPanelMatMulSignature = "func(out *float32, w *byte, xq *int8, xs *float32, xsum *int32, n, b int)"

// Signature is QSignature, QMatMulSignature or QPanelMatMulSignature.
func (k QKernel) Signature() string {
	switch {
	case k.Rows > 0 && k.Panel:
		return QPanelMatMulSignature
	case k.Rows > 0:
		return QMatMulSignature
	}
	return QSignature
}

// RowBytes is the size of one encoded row.
func (k QKernel) RowBytes() int { return k.Cols / 32 * k.Format.BlockBytes() }

func (k QKernel) doc() string {
	if k.Rows > 0 && k.Panel {
		return fmt.Sprintf("%s: out[t*%d+r] = w[r]·x_t for r < n and b tokens, w in %s blocks in panels of %d rows (runtime/quant.Panels), x quantised to 8 bits per 32-block with its block sums.", k.Name(), k.Rows, k.Format, QPanelRows)
	}
	if k.Rows > 0 {
		return fmt.Sprintf("%s: out[t*%d+r] = w[r]·x_t for r < n and b tokens, w in %s blocks (%d bytes a row), x quantised to 8 bits per 32-block.", k.Name(), k.Rows, k.Format, k.RowBytes())
	}
	if k.Panel {
		return fmt.Sprintf("%s: out[r] = w[r]·x for r < n, w in %s blocks in panels of %d rows (runtime/quant.Panels), x quantised to 8 bits per 32-block.", k.Name(), k.Format, QPanelRows)
	}
	return fmt.Sprintf("%s: out[r] = w[r]·x for r < n, w in %s blocks (%d bytes a row), x quantised to 8 bits per 32-block.", k.Name(), k.Format, k.RowBytes())
}

// Validate reports a kernel that cannot be generated.
func (k QKernel) Validate() error {
	if k.Format != Q8_0 && k.Format != Q4_0 {
		return fmt.Errorf("quant kernel: unknown format %d", int(k.Format))
	}
	if k.ISA < Generic || k.ISA > NEON {
		return fmt.Errorf("quant kernel %s: unknown ISA %d", k.Name(), int(k.ISA))
	}
	if k.NoDot && k.ISA != NEON {
		return fmt.Errorf("quant kernel %s: NoDot is for NEON only", k.Name())
	}
	if k.Cols < 32 || k.Cols%32 != 0 || k.Cols > 1<<22 {
		return fmt.Errorf("quant kernel %s: cols must be a positive multiple of 32 up to 2^22, got %d", k.Name(), k.Cols)
	}
	if k.Panel && k.ISA != AVX512 {
		return fmt.Errorf("quant kernel %s: the panel layout is for AVX-512 only", k.Name())
	}
	if k.Rows < 0 || k.Rows > 1<<22 {
		return fmt.Errorf("quant kernel %s: rows must be in [0, 2^22], got %d", k.Name(), k.Rows)
	}
	return nil
}

func qdedup(ks []QKernel, isa ...ISA) ([]QKernel, error) {
	seen := map[string]bool{}
	var out []QKernel
	for _, k := range ks {
		if err := k.Validate(); err != nil {
			return nil, err
		}
		ok := false
		for _, i := range isa {
			ok = ok || k.ISA == i
		}
		if !ok {
			return nil, fmt.Errorf("quant kernel %s: ISA %s not handled by this generator", k.Name(), k.ISA)
		}
		if !seen[k.Name()] {
			seen[k.Name()] = true
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// GenerateQuantAMD64 writes the AVX2 and AVX-512 VNNI quantised kernels into
// dir as qkernels_amd64.s and qkernels_amd64.go (stubs), both !purego.
func GenerateQuantAMD64(ks []QKernel, pkg, dir string) error {
	s, stubs, err := QuantAMD64(ks, pkg)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "qkernels_amd64.s"), s); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "qkernels_amd64.go"), stubs)
}

// GenerateQuantARM64 writes the NEON quantised kernels into dir as
// qkernels_arm64.s and qkernels_arm64.go, both !purego.
func GenerateQuantARM64(ks []QKernel, pkg, dir string) error {
	s, stubs, err := QuantARM64(ks, pkg)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "qkernels_arm64.s"), s); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "qkernels_arm64.go"), stubs)
}

// GenerateQuantGo writes the pure-Go quantised kernels into dir as
// qkernels_go.go, without build constraints.
func GenerateQuantGo(ks []QKernel, pkg, dir string) error {
	src, err := QuantGo(ks, pkg)
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "qkernels_go.go"), src)
}
