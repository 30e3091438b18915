package asm

import (
	"fmt"
	"math"
	"math/bits"
	"path/filepath"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// GenerateAMD64 writes the AVX2 and AVX-512 kernels ks into dir as
// kernels_amd64.s and kernels_amd64.go (the //go:noescape stubs), both
// constrained to !purego, for the Go package named pkg.
func GenerateAMD64(ks []Kernel, pkg, dir string) error {
	s, stubs, err := AMD64(ks, pkg)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "kernels_amd64.s"), s); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "kernels_amd64.go"), stubs)
}

// AMD64 returns the assembly and the Go stub file for ks without writing them.
func AMD64(ks []Kernel, pkg string) (asmText, stubs []byte, err error) {
	ks, err = dedup(ks, AVX2, AVX512)
	if err != nil {
		return nil, nil, err
	}
	c := build.NewContext()
	c.ConstraintExpr("!purego")
	g := &amd{c: c, consts: map[string]operand.Mem{}}
	for _, k := range ks {
		g.kernel(k)
	}
	return printAVO(c, pkg, "amd64 kernels")
}

// Thresholds from BenchmarkKernels (asm/RESULTS.md): matrix-vector rows of
// 64 floats and more run on ZMM (4 rows × 4 vectors of a 64-float row beat
// 4 × 8 YMM on this Zen 5, whose 512-bit units are full width), batched
// matmul rows from 128.
var wideMatVecCols, wideCols, wideAttention = 64, 128, 32

// amd emits the kernels of one file. One instance serves every kernel so
// that constants are shared.
type amd struct {
	c      *build.Context
	isa    ISA
	lanes  int // float32 lanes of a full vector
	nreg   int // vector registers
	consts map[string]operand.Mem
	// Per function: tail masks, set up in the prologue so that every block
	// that uses one is dominated by its definition.
	kmask map[int]reg.Register
	vmask map[int]reg.Register
	label int
}

func (g *amd) kernel(k Kernel) {
	c := g.c
	g.isa = k.ISA
	g.lanes, g.nreg = 8, 16
	if k.ISA == AVX512 {
		g.nreg = 32
		// ZMM only when rows are long enough: for short ones the wider
		// horizontal sums and masked tails cost more than they save, and
		// the AVX-512 kernel keeps YMM with 32 registers and opmasks.
		att := k.Op == OpAttention || k.Op == OpGroupAttention
		wide := wideCols
		if k.Op != OpMatMul {
			wide = wideMatVecCols
		}
		if n := k.Cols; att && k.HeadDim >= wideAttention || !att && n >= wide {
			g.lanes = 16
		}
	}
	g.kmask, g.vmask = map[int]reg.Register{}, map[int]reg.Register{}
	leaf(c, k.Name(), k.Signature(), k.doc())
	switch k.Op {
	case OpMatVec, OpMatVecAdd, OpRMSNormMatVec, OpSwiGLU, OpRMSNormSwiGLU:
		g.matvec(k)
	case OpAttention:
		g.attention(k)
	case OpGroupAttention:
		g.groupAttention(k)
	case OpGroupAttentionT:
		if k.ISA == AVX512 {
			g.lanes = 16
		}
		g.groupAttentionT(k)
	case OpMatMul:
		g.matmul(k)
	case OpSiLUMul:
		g.siluMulRows(k)
	case OpRoPE:
		if k.ISA == AVX512 {
			g.lanes = 16
		}
		g.rope(k)
	}
	c.VZEROUPPER()
	c.RET()
}

func (k Kernel) doc() string {
	switch k.Op {
	case OpMatVec:
		return fmt.Sprintf("%s: out[r] = w[r]·x for r < n, %d columns.", k.Name(), k.Cols)
	case OpMatVecAdd:
		return fmt.Sprintf("%s: out[r] += w[r]·x for r < n, %d columns.", k.Name(), k.Cols)
	case OpRMSNormMatVec:
		return fmt.Sprintf("%s: out[r] = w[r]·(g⊙x)/rms(x) for r < n, %d columns.", k.Name(), k.Cols)
	case OpSwiGLU:
		return fmt.Sprintf("%s: out[r] = silu(w[r]·x)·(w[%d+r]·x) for r < n, %d columns.", k.Name(), k.Rows, k.Cols)
	case OpRMSNormSwiGLU:
		return fmt.Sprintf("%s: SwiGLU over x normalised by RMSNorm with weight g; up rows start %d rows after the gate rows, %d columns.", k.Name(), k.Rows, k.Cols)
	case OpAttention:
		return fmt.Sprintf("%s: one head of size %d over t ≥ 1 positions %d floats apart.", k.Name(), k.HeadDim, k.KVStride)
	case OpGroupAttention:
		return fmt.Sprintf("%s: %d KV heads of %d query heads each, head size %d, over t ≥ 1 positions %d floats apart.", k.Name(), k.Heads, k.Group, k.HeadDim, k.KVStride)
	case OpGroupAttentionT:
		return fmt.Sprintf("%s: %d KV heads of %d query heads each, head size %d, over t ≥ 1 positions of a position-minor cache of %d.", k.Name(), k.Heads, k.Group, k.HeadDim, k.KVStride)
	case OpMatMul:
		return fmt.Sprintf("%s: out[b*%d+r] = w[r]·x[b] for r < n and b tokens, %d columns.", k.Name(), k.Rows, k.Cols)
	case OpSiLUMul:
		return fmt.Sprintf("%s: out[t*%d+i] = silu(h[t*%d+i])·h[t*%d+%d+i] for i < %d, t < n.", k.Name(), k.Cols, 2*k.Cols, 2*k.Cols, k.Cols, k.Cols)
	case OpRoPE:
		return fmt.Sprintf("%s: rotary embedding of %d heads of %d in x, in place, from the table cs (asm.RoPETable).", k.Name(), k.Heads, k.HeadDim)
	}
	return k.Name()
}

// ---- small helpers ----

func mem(base reg.Register, disp int) operand.Mem { return operand.Mem{Base: base, Disp: disp} }

func (g *amd) vec() reg.VecVirtual {
	if g.lanes == 16 {
		return g.c.ZMM()
	}
	return g.c.YMM()
}

func (g *amd) zero(v reg.Register) {
	if g.isa == AVX512 {
		// A load, not VPXORD v,v,v: avo treats the EVEX xor as reading v, which
		// makes v live from the function's entry and exhausts the registers.
		g.c.VMOVUPS(g.constant("zero", 0), v)
	} else {
		g.c.VXORPS(v, v, v)
	}
}

func (g *amd) newLabel(what string) string {
	g.label++
	return fmt.Sprintf("%s%d", what, g.label)
}

func (g *amd) param(name string) operand.Mem { return paramAddr(g.c, name) }

func (g *amd) loadPtr(name string) reg.GPVirtual {
	r := g.c.GP64()
	g.c.MOVQ(g.param(name), r)
	return r
}

// constant returns a 64-byte read-only vector of 16 copies of v, usable as a
// memory operand of any width (and as a scalar).
func (g *amd) constant(name string, v uint32) operand.Mem {
	if m, ok := g.consts[name]; ok {
		return m
	}
	m := g.c.StaticGlobal(name)
	g.c.DataAttributes(attr.RODATA | attr.NOPTR)
	for i := 0; i < 16; i++ {
		g.c.AppendDatum(operand.U32(v))
	}
	g.consts[name] = m
	return m
}

func (g *amd) f32(name string, v float32) operand.Mem {
	return g.constant(name, math.Float32bits(v))
}

// maskTable is 16 all-ones words followed by 16 zero words: the 8 (or 16)
// words starting at index lanes-t select the first t lanes.
func (g *amd) maskTable() operand.Mem {
	const name = "masktab"
	if m, ok := g.consts[name]; ok {
		return m
	}
	m := g.c.StaticGlobal(name)
	g.c.DataAttributes(attr.RODATA | attr.NOPTR)
	for i := 0; i < 32; i++ {
		v := uint32(0)
		if i < 16 {
			v = 0xffffffff
		}
		g.c.AppendDatum(operand.U32(v))
	}
	g.consts[name] = m
	return m
}

// kmaskTable holds the 16-bit opmasks (1<<i)-1 for i = 0..16.
func (g *amd) kmaskTable() operand.Mem {
	const name = "kmasktab"
	if m, ok := g.consts[name]; ok {
		return m
	}
	m := g.c.StaticGlobal(name)
	g.c.DataAttributes(attr.RODATA | attr.NOPTR)
	for i := 0; i <= 16; i++ {
		g.c.AppendDatum(operand.U16(uint16((1 << i) - 1)))
	}
	g.consts[name] = m
	return m
}

// prepMask sets up the mask for a tail of t < lanes elements.
func (g *amd) prepMask(t int) {
	if t == 0 {
		return
	}
	c := g.c
	if g.isa == AVX512 {
		if _, ok := g.kmask[t]; ok {
			return
		}
		tmp, k := c.GP32(), c.K()
		c.MOVL(operand.U32(uint32(1)<<t-1), tmp)
		c.KMOVW(tmp, k)
		g.kmask[t] = k
		return
	}
	if _, ok := g.vmask[t]; ok {
		return
	}
	m := c.YMM()
	c.VMOVDQU(g.maskTable().Offset(4*(16-t)), m)
	g.vmask[t] = m
}

// loadTail loads the first t lanes at m into dst and zeroes the others,
// without touching memory past them.
func (g *amd) loadTail(m operand.Mem, dst reg.Register, t int) {
	if g.isa == AVX512 {
		g.c.VMOVUPS_Z(m, g.kmask[t], dst)
	} else {
		g.c.VMASKMOVPS(m, g.vmask[t], dst)
	}
}

// mulTail multiplies the first t lanes of v by those at m; the others become
// zero (AVX2) or keep their value (AVX-512), which callers keep at zero.
func (g *amd) mulTail(m operand.Mem, v reg.Register, t int) {
	if g.isa == AVX512 {
		g.c.VMULPS(m, v, g.kmask[t], v)
		return
	}
	tmp := g.c.YMM()
	g.c.VMASKMOVPS(m, g.vmask[t], tmp)
	g.c.VMULPS(tmp, v, v)
}

// fmaTail adds the first t lanes of m·x to acc.
func (g *amd) fmaTail(m operand.Mem, x, acc reg.Register, t int) {
	if g.isa == AVX512 {
		g.c.VFMADD231PS(m, x, g.kmask[t], acc)
		return
	}
	tmp := g.c.YMM()
	g.c.VMASKMOVPS(m, g.vmask[t], tmp)
	g.c.VFMADD231PS(tmp, x, acc)
}

func (g *amd) storeTail(v reg.Register, m operand.Mem, t int) {
	if g.isa == AVX512 {
		g.c.VMOVUPS(v, g.kmask[t], m)
	} else {
		g.c.VMASKMOVPS(v, g.vmask[t], m)
	}
}

func (g *amd) extract128(src, dst reg.Register) {
	if g.isa == AVX512 {
		g.c.VEXTRACTF32X4(operand.U8(1), src, dst)
	} else {
		g.c.VEXTRACTF128(operand.U8(1), src, dst)
	}
}

// toY folds a full vector to 256 bits (a no-op for AVX2).
func (g *amd) toY(v reg.VecVirtual) reg.Register {
	if g.lanes != 16 {
		return v
	}
	t := g.c.YMM()
	g.c.VEXTRACTF64X4(operand.U8(1), v, t)
	g.c.VADDPS(t, v.AsY(), v.AsY())
	return v.AsY()
}

// reduce4 sums each of four 256-bit vectors and returns the four sums as the
// lanes of an XMM register, in order. Only instructions with EVEX forms are
// used, so that AVX-512 code may have them in registers 16-31.
func (g *amd) reduce4(a [4]reg.Register) reg.Register {
	c := g.c
	u0, u1, u2, u3 := c.YMM(), c.YMM(), c.YMM(), c.YMM()
	c.VUNPCKLPS(a[1], a[0], u0) // a0_0 a1_0 a0_1 a1_1 (per 128-bit lane)
	c.VUNPCKHPS(a[1], a[0], u1) // a0_2 a1_2 a0_3 a1_3
	c.VADDPS(u1, u0, u0)
	c.VUNPCKLPS(a[3], a[2], u2)
	c.VUNPCKHPS(a[3], a[2], u3)
	c.VADDPS(u3, u2, u2)
	lo, hi := c.YMM(), c.YMM()
	c.VUNPCKLPD(u2, u0, lo) // a0 a1 a2 a3, even halves
	c.VUNPCKHPD(u2, u0, hi) // odd halves
	c.VADDPS(hi, lo, lo)
	x := c.XMM()
	g.extract128(lo, x)
	c.VADDPS(x, lo.AsX(), x)
	return x
}

// reduceRows sums each of 8 or 16 ZMM accumulators and returns the sums as
// the lanes of one register, in order: a YMM for 8, a ZMM for 16. Each sum
// adds its lanes as toY and reduce4 do (the 256-bit halves, then lanes two
// apart, then neighbours, then the two 128-bit lanes), so the results are
// the same bits, but the rows share the transposes' shuffles: 24
// instructions for 8 rows (45 for 16) where toY and reduce4 take 38 (76),
// which counts for rows as short as stories260K's 64 floats.
// Level by level, the pairs are the rows four apart, then neighbours, then
// two apart, then eight apart, which leaves row r in lane r.
func (g *amd) reduceRows(a []reg.VecVirtual) reg.Register {
	c := g.c
	type op func(x, y, dst reg.Register)
	// comb returns lo(x, y) + hi(x, y).
	comb := func(x, y reg.Register, lo, hi op) reg.VecVirtual {
		l, h := c.ZMM(), c.ZMM()
		lo(x, y, l)
		hi(x, y, h)
		c.VADDPS(h, l, l)
		return l
	}
	shuf := func(imm uint8) op { // x's two selected 128-bit lanes, then y's
		return func(x, y, dst reg.Register) { c.VSHUFF32X4(operand.U8(imm), y, x, dst) }
	}
	unpack := func(f func(...operand.Op)) op {
		return func(x, y, dst reg.Register) { f(y, x, dst) }
	}
	var v, p, q []reg.VecVirtual
	for b := 0; b < len(a); b += 8 { // the 256-bit halves of rows r and r+4
		for r := b; r < b+4; r++ {
			v = append(v, comb(a[r], a[r+4], shuf(0x44), shuf(0xee)))
		}
	}
	for i := 0; i < len(v); i += 2 { // lanes two apart; rows r, r+1
		p = append(p, comb(v[i], v[i+1], unpack(c.VUNPCKLPS), unpack(c.VUNPCKHPS)))
	}
	for i := 0; i < len(p); i += 2 { // neighbouring lanes; rows r, r+2
		q = append(q, comb(p[i], p[i+1], unpack(c.VUNPCKLPD), unpack(c.VUNPCKHPD)))
	}
	// The 128-bit lanes; rows r and r+8 (eight rows: the low half is theirs).
	if len(q) == 1 { // only the low half is wanted: a YMM add
		l, h := c.ZMM(), c.ZMM()
		shuf(0x88)(q[0], q[0], l)
		shuf(0xdd)(q[0], q[0], h)
		c.VADDPS(h.AsY(), l.AsY(), l.AsY())
		return l.AsY()
	}
	return comb(q[0], q[1], shuf(0x88), shuf(0xdd))
}

// reduce1 returns an XMM register whose every lane is the sum of v's lanes.
func (g *amd) reduce1(v reg.VecVirtual) reg.Register {
	c := g.c
	y := g.toY(v)
	x, t := c.XMM(), c.XMM()
	g.extract128(y, x)
	c.VADDPS(x, asX(y), x)
	c.VPERMILPS(operand.U8(0x4e), x, t)
	c.VADDPS(t, x, x)
	c.VPERMILPS(operand.U8(0xb1), x, t)
	c.VADDPS(t, x, x)
	return x
}

func asX(r reg.Register) reg.Register {
	return r.(reg.Vec).AsX()
}

// hmax makes every lane of the XMM register x the maximum of its lanes.
func (g *amd) hmax(x reg.Register) {
	c := g.c
	t := c.XMM()
	c.VPERMILPS(operand.U8(0x4e), x, t)
	c.VMAXPS(t, x, x)
	c.VPERMILPS(operand.U8(0xb1), x, t)
	c.VMAXPS(t, x, x)
}

// exp replaces every lane of v by e^v (Cephes expf: range reduction by ln 2,
// degree-5 polynomial, 2^n through the exponent bits; relative error ~2e-7).
// mk makes temporaries of v's width.
func (g *amd) exp(v reg.Register, mk func() reg.VecVirtual) { g.expf(v, mk, true) }

// expNonPos is exp for arguments ≤ 0 (scores minus their maximum), where
// the upper clamp never acts: the same bits, one instruction less.
func (g *amd) expNonPos(v reg.Register, mk func() reg.VecVirtual) { g.expf(v, mk, false) }

func (g *amd) expf(v reg.Register, mk func() reg.VecVirtual, upper bool) {
	g.expfWith(v, mk, upper, g.expMem)
}

// expConst holds exp's constants by the names of their memory copies.
var expConst = map[string]float32{
	"exp_hi": 88, "exp_lo": -87.33654, "log2e": math.Log2E,
	"ln2hi": 0.693359375, "ln2lo": -2.12194440e-4,
	"exp_p0": 1.9875691500e-4, "exp_p1": 1.3981999507e-3, "exp_p2": 8.3334519073e-3,
	"exp_p3": 4.1665795894e-2, "exp_p4": 1.6666665459e-1, "exp_p5": 5.0000001201e-1,
	"one":     1,
	"exp2_p0": 1.535336188319500e-4, "exp2_p1": 1.339887440266574e-3, "exp2_p2": 9.618437357674640e-3,
	"exp2_p3": 5.550332471162809e-2, "exp2_p4": 2.402264791363012e-1, "exp2_p5": 6.931472028550421e-1,
}

// expNonPosConsts names the constants expNonPos reads.
var expNonPosConsts = []string{"exp_lo", "log2e", "ln2hi", "ln2lo", "exp_p0", "exp_p1", "exp_p2", "exp_p3", "exp_p4", "exp_p5", "one"}

// expMem reads exp's constant name from memory.
func (g *amd) expMem(name string) operand.Op { return g.f32(name, expConst[name]) }

// expRegs loads expNonPos's constants into registers once, for a loop that
// takes many exponentials: the same bits, eleven fewer loads each.
func (g *amd) expRegs() func(string) operand.Op { return g.constRegs(expNonPosConsts) }

// constRegs loads the named constants of expConst into registers; the
// others stay in memory.
func (g *amd) constRegs(names []string) func(string) operand.Op {
	regs := map[string]reg.VecVirtual{}
	for _, name := range names {
		regs[name] = g.vec()
		g.c.VMOVUPS(g.expMem(name), regs[name])
	}
	return func(name string) operand.Op {
		if r, ok := regs[name]; ok {
			return r
		}
		return g.expMem(name)
	}
}

// exp2Consts names the constants exp2 reads from k (the polynomial's first
// coefficient is loaded, not copied, so it stays in memory).
var exp2Consts = []string{"exp2_p1", "exp2_p2", "exp2_p3", "exp2_p4", "exp2_p5", "one"}

// exp2 replaces every lane of v by 2^v (Cephes exp2f: n = round(v), 2^f
// for f = v-n in [-1/2, 1/2] as 1 + f·P(f) of degree 5, times 2^n; relative
// error under 1e-7). AVX-512 scales by 2^n exactly for any n (VSCALEFPS:
// overflow gives +Inf, underflow 0); AVX2 builds 2^n in the exponent bits,
// so v is first clamped to [-126, 126]. mk makes temporaries of v's width.
func (g *amd) exp2(v reg.Register, mk func() reg.VecVirtual, k func(string) operand.Op) {
	c := g.c
	n := mk()
	if g.isa == AVX512 {
		c.VRNDSCALEPS(operand.U8(0), v, n)
	} else {
		c.VMAXPS(g.f32("exp2_lo", -126), v, v)
		c.VMINPS(g.f32("exp2_hi", 126), v, v)
		c.VROUNDPS(operand.U8(0), v, n)
	}
	c.VSUBPS(n, v, v)
	p := mk()
	c.VMOVUPS(g.expMem("exp2_p0"), p)
	for i := 1; i <= 5; i++ {
		c.VFMADD213PS(k(fmt.Sprintf("exp2_p%d", i)), v, p)
	}
	c.VFMADD213PS(k("one"), v, p)
	g.times2n(p, n, v)
}

// times2n leaves p·2^n in v for integral n (clobbered): VSCALEFPS on
// AVX-512, exact for any n; on AVX2 2^n built in the exponent bits, for n
// in [-126, 127].
func (g *amd) times2n(p, n, v reg.Register) {
	c := g.c
	if g.isa == AVX512 {
		c.VSCALEFPS(n, p, v)
		return
	}
	c.VCVTPS2DQ(n, n)
	c.VPADDD(g.constant("i127", 127), n, n)
	c.VPSLLD(operand.U8(23), n, n)
	c.VMULPS(n, p, v)
}

// expfWith is expf with its constants from k (memory or registers).
func (g *amd) expfWith(v reg.Register, mk func() reg.VecVirtual, upper bool, k func(string) operand.Op) {
	c := g.c
	if upper {
		c.VMINPS(k("exp_hi"), v, v)
	}
	c.VMAXPS(k("exp_lo"), v, v)
	fx := mk()
	c.VMULPS(k("log2e"), v, fx)
	if g.isa == AVX512 {
		c.VRNDSCALEPS(operand.U8(0), fx, fx)
	} else {
		c.VROUNDPS(operand.U8(0), fx, fx)
	}
	c.VFNMADD231PS(k("ln2hi"), fx, v)
	c.VFNMADD231PS(k("ln2lo"), fx, v)
	p := mk()
	c.VMOVUPS(k("exp_p0"), p)
	for i := 1; i <= 5; i++ {
		c.VFMADD213PS(k(fmt.Sprintf("exp_p%d", i)), v, p)
	}
	r2 := mk()
	c.VMULPS(v, v, r2)
	c.VFMADD213PS(v, r2, p)
	c.VADDPS(k("one"), p, p)
	// n is an integer in [-126, 127] after the clamps: the same product
	// on either path.
	g.times2n(p, fx, v)
}

// ---- dot products: the inner engine of every matrix kernel ----

// col is a column position: a byte offset, optionally plus an index register.
type col struct {
	idx  reg.Register
	disp int
}

func (p col) at(base reg.Register, disp int) operand.Mem {
	m := operand.Mem{Base: base, Disp: p.disp + disp}
	if p.idx != nil {
		m.Index, m.Scale = p.idx, 1
	}
	return m
}

// dotJob is a block of dot products over cols columns: every row w+wrows[i]
// against every vector x+xtoks[t] (times g elementwise when g is set).
type dotJob struct {
	w     reg.Register
	wrows []int
	x     reg.Register
	xtoks []int
	g     reg.Register
	cols  int
	u     int  // column unroll: independent accumulators per dot
	pf    int  // when > 0, prefetch each row's line this many bytes ahead
	nta   bool // prefetch non-temporally (PREFETCHNTA, not PREFETCHT0)
	// xr, when set, holds the single vector's column steps in registers
	// (already times g): straight-line blocks without a tail only.
	xr []reg.VecVirtual
}

// dots emits the block and returns acc[i][t], full vectors whose lanes sum to
// the dot product of row i with vector t. Columns are walked in steps of u
// vectors, in a loop when there are many, straight-line otherwise, and a
// tail of cols%lanes under a mask.
func (g *amd) dots(j dotJob) [][]reg.VecVirtual {
	c := g.c
	nr, nt, L := len(j.wrows), len(j.xtoks), g.lanes
	nvec, tail := j.cols/L, j.cols%L
	iters := nvec / j.u
	looped := nvec > 16 && iters >= 2 && j.xr == nil // x in registers: straight-line
	// Straight-line code starts each accumulator with a multiply instead of
	// zeroing it; a loop body cannot, so looped accumulators are zeroed.
	acc := make([][][]reg.VecVirtual, j.u)
	fresh := make([][][]bool, j.u)
	for u := range acc {
		acc[u] = make([][]reg.VecVirtual, nr)
		fresh[u] = make([][]bool, nr)
		for i := range acc[u] {
			acc[u][i] = make([]reg.VecVirtual, nt)
			fresh[u][i] = make([]bool, nt)
			for t := range acc[u][i] {
				acc[u][i][t] = g.vec()
				fresh[u][i][t] = !looped
				if looped {
					g.zero(acc[u][i][t])
				}
			}
		}
	}
	fma := func(src operand.Op, x reg.Register, u, i, t int) {
		if fresh[u][i][t] {
			c.VMULPS(src, x, acc[u][i][t])
			fresh[u][i][t] = false
		} else {
			c.VFMADD231PS(src, x, acc[u][i][t])
		}
	}
	loadX := func(p col, t int) reg.VecVirtual {
		if j.xr != nil {
			return j.xr[p.disp/(L*4)]
		}
		xv := g.vec()
		c.VMOVUPS(p.at(j.x, j.xtoks[t]), xv)
		if j.g != nil {
			c.VMULPS(p.at(j.g, 0), xv, xv)
		}
		return xv
	}
	step := func(p col, u int) {
		xs := make([]reg.VecVirtual, nt)
		for t := range xs {
			xs[t] = loadX(p, t)
		}
		for i := 0; i < nr; i++ {
			if j.pf > 0 && p.disp%64 == 0 {
				if j.nta {
					c.PREFETCHNTA(p.at(j.w, j.wrows[i]+j.pf))
				} else {
					c.PREFETCHT0(p.at(j.w, j.wrows[i]+j.pf))
				}
			}
			if nt == 1 {
				fma(p.at(j.w, j.wrows[i]), xs[0], u, i, 0)
				continue
			}
			wv := g.vec() // one load of the row serves every vector
			c.VMOVUPS(p.at(j.w, j.wrows[i]), wv)
			for t := 0; t < nt; t++ {
				fma(xs[t], wv, u, i, t)
			}
		}
	}
	start := 0
	if looped {
		off := c.GP64()
		c.XORQ(off, off)
		lbl := g.newLabel("cols")
		c.Label(lbl)
		for u := 0; u < j.u; u++ {
			step(col{idx: off, disp: u * L * 4}, u)
		}
		c.ADDQ(operand.U32(j.u*L*4), off)
		c.CMPQ(off, operand.U32(iters*j.u*L*4))
		c.JNE(operand.LabelRef(lbl))
		start = iters * j.u
	}
	for v := start; v < nvec; v++ {
		step(col{disp: v * L * 4}, (v-start)%j.u)
	}
	if tail > 0 {
		p := col{disp: nvec * L * 4}
		u := (nvec - start) % j.u
		xs := make([]reg.VecVirtual, nt)
		for t := range xs {
			xs[t] = g.vec()
			g.loadTail(p.at(j.x, j.xtoks[t]), xs[t], tail)
			if j.g != nil {
				g.mulTail(p.at(j.g, 0), xs[t], tail)
			}
		}
		for i := 0; i < nr; i++ {
			if g.isa == AVX512 {
				// Masked memory operands: no fault past the end of w.
				for t := 0; t < nt; t++ {
					m, a := p.at(j.w, j.wrows[i]), acc[u][i][t]
					if fresh[u][i][t] {
						c.VMULPS_Z(m, xs[t], g.kmask[tail], a)
						fresh[u][i][t] = false
					} else {
						c.VFMADD231PS(m, xs[t], g.kmask[tail], a)
					}
				}
				continue
			}
			wv := c.YMM()
			g.loadTail(p.at(j.w, j.wrows[i]), wv, tail)
			for t := 0; t < nt; t++ {
				fma(xs[t], wv, u, i, t)
			}
		}
	}
	for u := 1; u < j.u; u++ {
		for i := range acc[0] {
			for t := range acc[0][i] {
				if !fresh[u][i][t] {
					c.VADDPS(acc[u][i][t], acc[0][i][t], acc[0][i][t])
				}
			}
		}
	}
	return acc[0]
}

// unroll picks the column unroll so that rows·toks·u accumulators plus the
// loaded vectors and extras fit the register file (avo does not spill).
func (g *amd) unroll(rows, toks, extras, cols int) int {
	// Two column steps already give 4 rows × 2 = 8 independent FMA chains,
	// enough to cover the FMA latency; more only lengthens the reductions.
	u := (g.nreg - extras) / (rows*toks + toks)
	u = min(max(u, 1), 2)
	if rows*toks >= 8 {
		u = 1 // eight chains in one step already
	}
	if rows*toks < 4 {
		u = min(max((g.nreg-extras)/(rows*toks+toks), 1), 4)
	}
	if nvec := cols / g.lanes; nvec < u {
		u = max(nvec, 1)
	}
	return u
}

// ---- matvec family ----

// invRMS emits 1/sqrt(mean(x²)+eps) broadcast to a full vector.
func (g *amd) invRMS(x reg.Register, cols int) reg.VecVirtual {
	c := g.c
	acc := g.dots(dotJob{w: x, wrows: []int{0}, x: x, xtoks: []int{0}, cols: cols, u: g.unroll(1, 1, 4, cols)})
	s := g.reduce1(acc[0][0])
	c.VMULSS(g.f32(fmt.Sprintf("inv%d", cols), 1/float32(cols)), s, s)
	eps := c.XMM()
	c.VMOVSS(g.param("eps"), eps)
	c.VADDSS(eps, s, s)
	c.VSQRTSS(s, s, s)
	one := c.XMM()
	c.VMOVSS(g.f32("one", 1), one)
	c.VDIVSS(s, one, one)
	inv := g.vec()
	c.VBROADCASTSS(one, inv)
	return inv
}

// silu replaces the lanes of gate (an XMM or a YMM) by silu(gate)·up.
func (g *amd) siluMul(gate, up reg.Register) {
	c := g.c
	mk := c.XMM
	if gate.Size() == 32 {
		mk = c.YMM
	}
	e := mk()
	c.VMULPS(g.f32("minus1", -1), gate, e)
	g.exp(e, mk)
	c.VADDPS(g.f32("one", 1), e, e)
	c.VDIVPS(e, gate, gate)
	c.VMULPS(up, gate, gate)
}

func (g *amd) matvec(k Kernel) {
	c := g.c
	C := k.Cols
	norm := k.Op == OpRMSNormMatVec || k.Op == OpRMSNormSwiGLU
	swi := k.Op == OpSwiGLU || k.Op == OpRMSNormSwiGLU
	out, w, x := g.loadPtr("out"), g.loadPtr("w"), g.loadPtr("x")
	n := g.c.GP64()
	c.MOVQ(g.param("n"), n)
	var gp reg.Register
	var inv reg.VecVirtual
	g.prepMask(C % g.lanes)
	if norm {
		gp = g.loadPtr("nw")
		inv = g.invRMS(x, C)
	}
	rows := func(rb int) []int {
		var d []int
		for r := 0; r < rb; r++ {
			d = append(d, r*C*4)
		}
		if swi {
			for r := 0; r < rb; r++ {
				d = append(d, (k.Rows+r)*C*4)
			}
		}
		return d
	}
	// Headroom beyond the accumulators: the tail loads (and mask on AVX2).
	extras := 2
	if g.isa == AVX2 {
		extras = 3
	}
	if norm {
		extras++
	}
	// A short x (times g) stays in registers across all the row blocks: up
	// to 8 vectors on AVX2 (16 registers), 20 on AVX-512 (32), where the 15M
	// shape's 288 columns (18 vectors) then need no x load nor norm multiply
	// per step; such blocks run straight-line (a loop cannot index registers).
	xmax := 8
	if g.isa == AVX512 {
		xmax = 20
	}
	// On AVX2 the x vectors must also leave room for a block's eight
	// accumulators (8 rows, or 4 gate and 4 up rows) and the extras within
	// the 16 registers: stories260K's 64 columns do not.
	var xr []reg.VecVirtual
	if nv := C / g.lanes; C%g.lanes == 0 && nv <= xmax && (g.isa == AVX512 || nv+8+extras <= avx2Vectors) {
		for v := 0; v < nv; v++ {
			xv := g.vec()
			c.VMOVUPS(mem(x, v*g.lanes*4), xv)
			if norm {
				c.VMULPS(mem(gp, v*g.lanes*4), xv, xv)
			}
			xr = append(xr, xv)
		}
		extras += nv
	}
	block := func(rb int) {
		wr := rows(rb)
		pf := 0
		if rb >= 4 {
			pf = matvecPF(rb, C)
		}
		j := dotJob{w: w, wrows: wr, x: x, xtoks: []int{0}, g: gp, cols: C, u: g.unroll(len(wr), 1, extras, C), pf: pf, nta: true}
		if xr != nil {
			j.g, j.xr = nil, xr
		}
		acc := g.dots(j)
		// scale applies the norm to the row sums s (and the up rows' u) and,
		// for SwiGLU, leaves SiLU(s)·u in s; put adds s to out (MatVecAdd)
		// and stores it at byte offset off.
		scale := func(s, u reg.Register) {
			if norm {
				nv := reg.Register(inv.AsX())
				if s.Size() == 32 {
					nv = inv.AsY()
				}
				c.VMULPS(nv, s, s)
				if swi {
					c.VMULPS(nv, u, u)
				}
			}
			if swi {
				g.siluMul(s, u)
			}
		}
		put := func(s reg.Register, off int) {
			if k.Op == OpMatVecAdd {
				c.VADDPS(mem(out, off), s, s)
			}
			c.VMOVUPS(s, mem(out, off))
		}
		if g.isa == AVX512 && rb == 8 && acc[0][0].Size() == 64 { // 8 rows (and 8 up rows) into one register
			a := make([]reg.VecVirtual, len(acc))
			for i := range acc {
				a[i] = acc[i][0]
			}
			z := g.reduceRows(a)
			s, u := z, reg.Register(nil)
			if swi { // the gate rows' sums in the low half, the up rows' in the high
				s, u = z.(reg.Vec).AsY(), c.YMM()
				c.VEXTRACTF64X4(operand.U8(1), z, u)
			}
			scale(s, u)
			put(s, 0)
			return
		}
		quad := func(i int) [4]reg.Register {
			return [4]reg.Register{g.toY(acc[i][0]), g.toY(acc[i+1][0]), g.toY(acc[i+2][0]), g.toY(acc[i+3][0])}
		}
		if rb >= 4 { // groups of 4 rows (and their up rows), each reduced into one XMM
			for h := range rb / 4 {
				s := g.reduce4(quad(4 * h))
				var u reg.Register
				if swi {
					u = g.reduce4(quad(rb + 4*h))
				}
				scale(s, u)
				put(s, 16*h)
			}
			return
		}
		s := g.reduce1(acc[0][0])
		var u reg.Register
		if swi {
			u = g.reduce1(acc[1][0])
		}
		scale(s, u)
		if k.Op == OpMatVecAdd {
			c.VADDSS(mem(out, 0), s, s)
		}
		c.VMOVSS(s, mem(out, 0))
	}
	l4, t1, l1, done := g.newLabel("rows4_"), g.newLabel("tail"), g.newLabel("rows1_"), g.newLabel("done")
	// Eight-row blocks keep more reads in flight than four. Rows of 2 KiB
	// and more come from DRAM in the big shapes (110M decode 5–9 % faster
	// at one thread); rows shorter than 1 KiB, stories260K's, come from L3
	// every token (its 1.1 MB token overflows the 1 MB L2; token ≈ 1–3 %
	// faster); the rows between (the 15M shape's 288 floats) lost. A SwiGLU
	// block of eight holds sixteen accumulators: on AVX-512 with x in
	// registers and room for the SiLU's temporaries.
	swi8 := swi && g.isa == AVX512 && xr != nil && 2*8+len(xr)+8 <= g.nreg
	if (!swi && (C >= 512 || C < 256)) || swi8 {
		l8, t4 := g.newLabel("rows8_"), g.newLabel("tail4_")
		c.CMPQ(n, operand.U8(8))
		c.JL(operand.LabelRef(t4))
		c.Label(l8)
		block(8)
		c.ADDQ(operand.U32(8*C*4), w)
		c.ADDQ(operand.U8(32), out)
		c.SUBQ(operand.U8(8), n)
		c.CMPQ(n, operand.U8(8))
		c.JGE(operand.LabelRef(l8))
		c.Label(t4)
	}
	c.CMPQ(n, operand.U8(4))
	c.JL(operand.LabelRef(t1))
	c.Label(l4)
	block(4)
	c.ADDQ(operand.U32(4*C*4), w)
	c.ADDQ(operand.U8(16), out)
	c.SUBQ(operand.U8(4), n)
	c.CMPQ(n, operand.U8(4))
	c.JGE(operand.LabelRef(l4))
	c.Label(t1)
	c.TESTQ(n, n)
	c.JE(operand.LabelRef(done))
	c.Label(l1)
	block(1)
	c.ADDQ(operand.U32(C*4), w)
	c.ADDQ(operand.U8(4), out)
	c.DECQ(n)
	c.JNE(operand.LabelRef(l1))
	c.Label(done)
}

// matvecPF is the prefetch distance of a matrix-vector kernel's blocks of
// rb rows in bytes: about 4 KiB, rounded up to whole blocks. Decode streams
// every weight once per token, from L2 at best (stories260K's 1 MB of
// weights and its KV cache do not fit), and the prefetch one line per row
// and step ahead hides the latency the hardware prefetcher leaves at the
// start of each small matrix (stories260K decode 7 % faster than without,
// 16 KiB ahead slower than none). The prefetch is non-temporal: a weight is
// not read again before the whole model has streamed past, so keeping it
// out of the outer caches' recently-used ways leaves them to what is (the
// KV cache, the activations); the 110M shape decodes ≈ 5 % and the 15M
// ≈ 3 % faster than with PREFETCHT0 (paired medians, asm/RESULTS.md).
func matvecPF(rb, C int) int {
	const d = 4096
	if C > 1024 {
		return 0 // rows of over 1024 floats: the hardware prefetcher keeps up
	}
	blk := rb * C * 4
	return (d + blk - 1) / blk * blk
}

// ---- batched matmul ----

func (g *amd) matmul(k Kernel) {
	c := g.c
	R, C := k.Rows, k.Cols
	out, w := g.loadPtr("out"), g.loadPtr("w")
	n := c.GP64()
	c.MOVQ(g.param("n"), n)
	g.prepMask(C % g.lanes)
	tb := 2 // tokens per tile: 4·tb accumulators + tb inputs + row + mask/tmp ≤ 16
	if g.isa == AVX512 {
		tb = 6 // 24 accumulators + 6 inputs + 1 ≤ 32
	}
	tokens := func(nt int) []int {
		d := make([]int, nt)
		for t := range d {
			d[t] = t * C * 4
		}
		return d
	}
	// rowBlock emits the loops over all tokens for rb rows at w, out.
	rowBlock := func(rb int) {
		wr := make([]int, rb)
		for r := range wr {
			wr[r] = r * C * 4
		}
		xq, oq, cnt := c.GP64(), c.GP64(), c.GP64()
		c.MOVQ(g.param("x"), xq)
		c.MOVQ(out, oq)
		c.MOVQ(g.param("b"), cnt)
		tile := func(nt int) {
			// Streamed weights come from memory while
			// the tokens' outputs are written in as many streams as there
			// are tokens, more than the hardware prefetcher follows: the
			// rows two blocks ahead are prefetched by hand.
			acc := g.dots(dotJob{w: w, wrows: wr, x: xq, xtoks: tokens(nt), cols: C, u: 1, pf: g.matmulPF(R, C, rb)})
			for t := 0; t < nt; t++ {
				if rb == 4 {
					s := g.reduce4([4]reg.Register{g.toY(acc[0][t]), g.toY(acc[1][t]), g.toY(acc[2][t]), g.toY(acc[3][t])})
					c.VMOVUPS(s, mem(oq, t*R*4))
				} else {
					c.VMOVSS(g.reduce1(acc[0][t]), mem(oq, t*R*4))
				}
			}
		}
		lt, t1 := g.newLabel("tok"), g.newLabel("toktail")
		c.CMPQ(cnt, operand.U8(tb))
		c.JL(operand.LabelRef(t1))
		c.Label(lt)
		tile(tb)
		c.ADDQ(operand.U32(tb*C*4), xq)
		c.ADDQ(operand.U32(tb*R*4), oq)
		c.SUBQ(operand.U8(tb), cnt)
		c.CMPQ(cnt, operand.U8(tb))
		c.JGE(operand.LabelRef(lt))
		c.Label(t1)
		// The < tb tokens left go in tiles of descending powers of two, each
		// at most once (left < 2·size at every step): a batch of 16 on
		// AVX-512 is 6+6+4, not 6+6+1+1+1+1, whose single-token tiles load
		// the weights once per FMA. Each token's sums are the same whatever
		// its tile (the same products added in the same order).
		for size := 1 << bits.Len(uint(tb-1)) >> 1; size >= 1; size >>= 1 {
			skip := g.newLabel(fmt.Sprintf("tok%d_", size))
			c.CMPQ(cnt, operand.U8(size))
			c.JL(operand.LabelRef(skip))
			tile(size)
			c.ADDQ(operand.U32(size*C*4), xq)
			c.ADDQ(operand.U32(size*R*4), oq)
			c.SUBQ(operand.U8(size), cnt)
			c.Label(skip)
		}
	}
	l4, t1, l1, done := g.newLabel("rows4_"), g.newLabel("tail"), g.newLabel("rows1_"), g.newLabel("done")
	c.CMPQ(n, operand.U8(4))
	c.JL(operand.LabelRef(t1))
	c.Label(l4)
	rowBlock(4)
	c.ADDQ(operand.U32(4*C*4), w)
	c.ADDQ(operand.U8(16), out)
	c.SUBQ(operand.U8(4), n)
	c.CMPQ(n, operand.U8(4))
	c.JGE(operand.LabelRef(l4))
	c.Label(t1)
	c.TESTQ(n, n)
	c.JE(operand.LabelRef(done))
	c.Label(l1)
	rowBlock(1)
	c.ADDQ(operand.U32(C*4), w)
	c.ADDQ(operand.U8(4), out)
	c.DECQ(n)
	c.JNE(operand.LabelRef(l1))
	c.Label(done)
}

// matmulPF is matmul's prefetch distance in bytes: two row blocks ahead, for
// every matrix. Small ones (a layer's Q/K/V, output and down projections of
// the 15M shape are 0.3–1 MB) fit the L2 cache in a loop over one matrix,
// but in a forward pass the whole model streams through between two uses of
// a layer: in a 16-row decode step of the 15M shape the layer products cost
// ≈ 30 % less CPU with the prefetch (the classifier had it already).
func (g *amd) matmulPF(R, C, rb int) int {
	return 2 * rb * C * 4
}

// ---- SiLU·mul over rows ----

// siluMulRows emits the SwiGLU epilogue of a batched pass: each of n rows of
// h holds F gate values then F up values; out gets F values per row. One
// vector at a time in a loop over the row, the tail of F%lanes under a mask.
// rope rotates the pairs of every head: x·C plus x with its pairs swapped
// times S (the table's two halves), the products rounded before the sum as
// in the reference. Whole chunks (ropeChunk) go round a loop, so the code
// stays short whatever the head count; the rest is straight-line.
func (g *amd) rope(k Kernel) {
	c := g.c
	x, cs := g.loadPtr("x"), g.loadPtr("cs")
	n, L, P := k.Heads*k.HeadDim, g.lanes, RoPEPeriod(k.HeadDim)
	g.prepMask(n % L)
	span := func(n int) { // n floats from x on, the table from its start
		for o := 0; o < n; o += L {
			j := o % P
			t := min(L, n-o)
			v, sw := g.vec(), g.vec()
			if t == L {
				c.VMOVUPS(mem(x, o*4), v)
			} else {
				g.loadTail(mem(x, o*4), v, t)
			}
			c.VPERMILPS(operand.U8(0xb1), v, sw)
			c.VMULPS(mem(cs, j*4), v, v)
			c.VMULPS(mem(cs, (P+j)*4), sw, sw)
			c.VADDPS(sw, v, v)
			if t == L {
				c.VMOVUPS(v, mem(x, o*4))
			} else {
				g.storeTail(v, mem(x, o*4), t)
			}
		}
	}
	C := ropeChunk(P)
	if chunks := n / C; chunks > 0 {
		cnt := c.GP64()
		c.MOVQ(operand.U32(chunks), cnt)
		l := g.newLabel("ropechunk")
		c.Label(l)
		span(C)
		c.ADDQ(operand.U32(C*4), x)
		c.DECQ(cnt)
		c.JNZ(operand.LabelRef(l))
	}
	span(n % C)
}

// ropeChunk is the floats one round of a RoPE kernel's loop rotates: whole
// periods of the table, at least 256 floats (16 ZMM), so that small heads
// (stories260K's 96 floats) run straight-line and big ones loop.
func ropeChunk(P int) int { return P * max(1, 256/P) }

func (g *amd) siluMulRows(k Kernel) {
	c := g.c
	F, L := k.Cols, g.lanes
	out, h := g.loadPtr("out"), g.loadPtr("h")
	n := c.GP64()
	c.MOVQ(g.param("n"), n)
	nvec, tail := F/L, F%L
	g.prepMask(tail)
	one := func(p col, t int) {
		gv, e := g.vec(), g.vec()
		if t == 0 {
			c.VMOVUPS(p.at(h, 0), gv)
		} else {
			g.loadTail(p.at(h, 0), gv, t)
		}
		c.VMULPS(g.f32("minus1", -1), gv, e)
		g.exp(e, g.vec)
		c.VADDPS(g.f32("one", 1), e, e)
		c.VDIVPS(e, gv, gv)
		if t == 0 {
			c.VMULPS(p.at(h, F*4), gv, gv)
			c.VMOVUPS(gv, p.at(out, 0))
		} else {
			g.mulTail(p.at(h, F*4), gv, t)
			g.storeTail(gv, p.at(out, 0), t)
		}
	}
	lrow, done := g.newLabel("silurow"), g.newLabel("siludone")
	c.CMPQ(n, operand.U8(0))
	c.JLE(operand.LabelRef(done))
	c.Label(lrow)
	if nvec > 0 {
		off := c.GP64()
		c.XORQ(off, off)
		lcol := g.newLabel("silucol")
		c.Label(lcol)
		one(col{idx: off}, 0)
		c.ADDQ(operand.U32(L*4), off)
		c.CMPQ(off, operand.U32(nvec*L*4))
		c.JNE(operand.LabelRef(lcol))
	}
	if tail > 0 {
		one(col{disp: nvec * L * 4}, tail)
	}
	c.ADDQ(operand.U32(2*F*4), h)
	c.ADDQ(operand.U32(F*4), out)
	c.DECQ(n)
	c.JNE(operand.LabelRef(lrow))
	c.Label(done)
}

// ---- attention ----

func (g *amd) attention(k Kernel) {
	c := g.c
	hd, S, L := k.HeadDim, k.KVStride, g.lanes
	out, q, kp, vp, att := g.loadPtr("out"), g.loadPtr("q"), g.loadPtr("k"), g.loadPtr("v"), g.loadPtr("att")
	nch, tail := (hd+L-1)/L, hd%L
	g.prepMask(tail)
	full := func(j int) bool { return j < hd/L }
	scale := g.f32(fmt.Sprintf("rsqrt%d", hd), float32(1/math.Sqrt(float64(hd))))

	// Pass 1: scores att[j] = q·k_j·scale, four positions at a time, and their maximum.
	qmax := 8
	if g.isa == AVX512 {
		qmax = 16
	}
	qv := make([]reg.Register, nch)
	loadQ := func(j int) reg.Register {
		if qv[j] != nil {
			return qv[j]
		}
		v := g.vec()
		if full(j) {
			c.VMOVUPS(mem(q, j*L*4), v)
		} else {
			g.loadTail(mem(q, j*L*4), v, tail)
		}
		return v
	}
	if nch <= qmax {
		for j := range qv {
			qv[j] = loadQ(j)
		}
	}
	score := func(base reg.Register, disp int) reg.VecVirtual {
		acc := g.vec()
		g.zero(acc)
		for j := 0; j < nch; j++ {
			qj := loadQ(j)
			if full(j) {
				c.VFMADD231PS(mem(base, disp+j*L*4), qj, acc)
			} else {
				g.fmaTail(mem(base, disp+j*L*4), qj, acc, tail)
			}
		}
		return acc
	}
	m := c.XMM()
	c.VMOVUPS(g.constant("neginf", 0xff800000), m)
	kq, aq, cnt := c.GP64(), c.GP64(), c.GP64()
	c.MOVQ(kp, kq)
	c.MOVQ(att, aq)
	c.MOVQ(g.param("t"), cnt)
	s4, s1, s1l, sdone := g.newLabel("score4_"), g.newLabel("score1_"), g.newLabel("score1l"), g.newLabel("scoredone")
	c.CMPQ(cnt, operand.U8(4))
	c.JL(operand.LabelRef(s1))
	c.Label(s4)
	{
		var a [4]reg.Register
		for s := range a {
			a[s] = g.toY(score(kq, s*S*4))
		}
		x := g.reduce4(a)
		c.VMULPS(scale, x, x)
		c.VMOVUPS(x, mem(aq, 0))
		c.VMAXPS(x, m, m)
	}
	c.ADDQ(operand.U32(4*S*4), kq)
	c.ADDQ(operand.U8(16), aq)
	c.SUBQ(operand.U8(4), cnt)
	c.CMPQ(cnt, operand.U8(4))
	c.JGE(operand.LabelRef(s4))
	c.Label(s1)
	c.TESTQ(cnt, cnt)
	c.JE(operand.LabelRef(sdone))
	c.Label(s1l)
	{
		x := g.reduce1(score(kq, 0))
		c.VMULSS(scale, x, x)
		c.VMOVSS(x, mem(aq, 0))
		c.VMAXSS(x, m, m)
	}
	c.ADDQ(operand.U32(S*4), kq)
	c.ADDQ(operand.U8(4), aq)
	c.DECQ(cnt)
	c.JNE(operand.LabelRef(s1l))
	c.Label(sdone)
	g.hmax(m)
	mv := g.vec()
	c.VBROADCASTSS(m, mv)

	// Pass 2: att[j] = e^(att[j]-max) and their sum; the tail under a mask
	// built from the run-time count.
	sum := g.vec()
	g.zero(sum)
	c.MOVQ(att, aq)
	c.MOVQ(g.param("t"), cnt)
	e1, el, edone := g.newLabel("exptail"), g.newLabel("exp"), g.newLabel("expdone")
	c.CMPQ(cnt, operand.U8(L))
	c.JL(operand.LabelRef(e1))
	c.Label(el)
	{
		e := g.vec()
		c.VMOVUPS(mem(aq, 0), e)
		c.VSUBPS(mv, e, e)
		g.exp(e, g.vec)
		c.VMOVUPS(e, mem(aq, 0))
		c.VADDPS(e, sum, sum)
	}
	c.ADDQ(operand.U8(L*4), aq)
	c.SUBQ(operand.U8(L), cnt)
	c.CMPQ(cnt, operand.U8(L))
	c.JGE(operand.LabelRef(el))
	c.Label(e1)
	c.TESTQ(cnt, cnt)
	c.JE(operand.LabelRef(edone))
	{
		tbl := c.GP64()
		e := g.vec()
		if g.isa == AVX512 {
			c.LEAQ(g.kmaskTable(), tbl)
			km := c.K()
			c.KMOVW(operand.Mem{Base: tbl, Index: cnt, Scale: 2}, km)
			c.VMOVUPS_Z(mem(aq, 0), km, e)
			c.VSUBPS(mv, e, e)
			g.exp(e, g.vec)
			c.VMOVUPS(e, km, mem(aq, 0))
			c.VADDPS(e, sum, km, sum)
		} else {
			c.LEAQ(g.maskTable(), tbl)
			i := c.GP64()
			c.MOVQ(operand.U32(16), i)
			c.SUBQ(cnt, i)
			mk := c.YMM()
			c.VMOVDQU(operand.Mem{Base: tbl, Index: i, Scale: 4}, mk)
			c.VMASKMOVPS(mem(aq, 0), mk, e)
			c.VSUBPS(mv, e, e)
			g.exp(e, g.vec)
			c.VANDPS(mk, e, e)
			c.VMASKMOVPS(e, mk, mem(aq, 0))
			c.VADDPS(e, sum, sum)
		}
	}
	c.Label(edone)
	s := g.reduce1(sum)
	one := c.XMM()
	c.VMOVSS(g.f32("one", 1), one)
	c.VDIVSS(s, one, one)
	iv := g.vec()
	c.VBROADCASTSS(one, iv)

	// Pass 3: out = Σ p_j·v_j / sum, accumulated in registers over groups of
	// chunks of the head, several positions per step to hide FMA latency.
	grp := min(nch, g.nreg-6)
	for j0 := 0; j0 < nch; j0 += grp {
		j1 := min(j0+grp, nch)
		ng := j1 - j0
		slack := 4
		if g.isa == AVX512 {
			slack = 4
		}
		sets := min(4, max(1, (g.nreg-slack)/(ng+1)))
		acc := make([][]reg.VecVirtual, sets)
		for s := range acc {
			acc[s] = make([]reg.VecVirtual, ng)
			for j := range acc[s] {
				acc[s][j] = g.vec()
				g.zero(acc[s][j])
			}
		}
		vq := c.GP64()
		c.MOVQ(att, aq)
		c.MOVQ(vp, vq)
		c.MOVQ(g.param("t"), cnt)
		stepv := func(s int) {
			p := g.vec()
			c.VBROADCASTSS(mem(aq, s*4), p)
			for j := j0; j < j1; j++ {
				if full(j) {
					c.VFMADD231PS(mem(vq, s*S*4+j*L*4), p, acc[s][j-j0])
				} else {
					g.fmaTail(mem(vq, s*S*4+j*L*4), p, acc[s][j-j0], tail)
				}
			}
		}
		wl, w1, w1l, wdone := g.newLabel("wsum"), g.newLabel("wsum1_"), g.newLabel("wsum1l"), g.newLabel("wsumdone")
		if sets > 1 {
			c.CMPQ(cnt, operand.U8(sets))
			c.JL(operand.LabelRef(w1))
			c.Label(wl)
			for s := 0; s < sets; s++ {
				stepv(s)
			}
			c.ADDQ(operand.U8(sets*4), aq)
			c.ADDQ(operand.U32(sets*S*4), vq)
			c.SUBQ(operand.U8(sets), cnt)
			c.CMPQ(cnt, operand.U8(sets))
			c.JGE(operand.LabelRef(wl))
			c.Label(w1)
			c.TESTQ(cnt, cnt)
			c.JE(operand.LabelRef(wdone))
		}
		c.Label(w1l)
		stepv(0)
		c.ADDQ(operand.U8(4), aq)
		c.ADDQ(operand.U32(S*4), vq)
		c.DECQ(cnt)
		c.JNE(operand.LabelRef(w1l))
		c.Label(wdone)
		for j := j0; j < j1; j++ {
			a := acc[0][j-j0]
			for s := 1; s < sets; s++ {
				c.VADDPS(acc[s][j-j0], a, a)
			}
			c.VMULPS(iv, a, a)
			if full(j) {
				c.VMOVUPS(a, mem(out, j*L*4))
			} else {
				g.storeTail(a, mem(out, j*L*4), tail)
			}
		}
	}
}

// ---- grouped-query attention: every head of a layer in one call ----

// groupAttention runs, for each of k.Heads KV heads, the attention of its
// k.Group query heads in one pass over the cached rows: the scores of all
// of them four positions at a time (each key row is fetched from memory
// once and then hits L1 for the other heads), one exponential pass per
// head, and the weighted sums of all of them in one pass over the values.
// The arithmetic of each head is that of attention (same order, same
// accumulator sets), so a head's output does not depend on its group.
func (g *amd) groupAttention(k Kernel) {
	c := g.c
	hd, S, L, G := k.HeadDim, k.KVStride, g.lanes, k.Group
	out, q, kp, vp, att := g.loadPtr("out"), g.loadPtr("q"), g.loadPtr("k"), g.loadPtr("v"), g.loadPtr("att")
	nch, tail := (hd+L-1)/L, hd%L
	g.prepMask(tail)
	full := func(j int) bool { return j < hd/L }
	scale := g.f32(fmt.Sprintf("rsqrt%d", hd), float32(1/math.Sqrt(float64(hd))))

	// Head h's scores live at att + h·t floats: st is t in bytes.
	st := c.GP64()
	c.MOVQ(g.param("t"), st)
	c.SHLQ(operand.U8(2), st)
	var st3 reg.GPVirtual
	if G > 3 {
		st3 = c.GP64()
		c.LEAQ(operand.Mem{Base: st, Index: st, Scale: 2}, st3)
	}
	attAt := func(base reg.Register, h, disp int) operand.Mem {
		switch h {
		case 0:
			return operand.Mem{Base: base, Disp: disp}
		case 3:
			return operand.Mem{Base: base, Index: st3, Scale: 1, Disp: disp}
		}
		return operand.Mem{Base: base, Index: st, Scale: uint8(h), Disp: disp}
	}

	heads := c.GP64()
	c.MOVQ(operand.U32(k.Heads), heads)
	kvl := g.newLabel("kvhead")
	c.Label(kvl)

	// Pass 1: scores of every head of the group, four positions at a time.
	qmax := 8
	if g.isa == AVX512 {
		qmax = 16
	}
	// The query stays in registers when it fits beside the heads' running
	// maxima, AVX2's tail mask and the step's four scores with their
	// reduction (AVX2 with four heads of 16 floats takes 8 + 4 of its 16
	// and does not fit).
	masks := 0
	if tail > 0 && g.isa == AVX2 {
		masks = 1
	}
	qInRegs := G*nch <= qmax && G*(nch+1)+masks <= g.nreg-5
	qv := make([][]reg.Register, G)
	for h := range qv {
		qv[h] = make([]reg.Register, nch)
		for j := 0; j < nch && qInRegs; j++ {
			v := g.vec()
			if full(j) {
				c.VMOVUPS(mem(q, (h*hd+j*L)*4), v)
			} else {
				g.loadTail(mem(q, (h*hd+j*L)*4), v, tail)
			}
			qv[h][j] = v
		}
	}
	// score returns head h's partial dot products with the key at base+disp.
	score := func(base reg.Register, disp, h int) reg.VecVirtual {
		acc := g.vec()
		g.zero(acc)
		for j := 0; j < nch; j++ {
			var qj reg.Register
			if qInRegs {
				qj = qv[h][j]
			} else {
				qj = g.vec()
				if full(j) {
					c.VMOVUPS(mem(q, (h*hd+j*L)*4), qj)
				} else {
					g.loadTail(mem(q, (h*hd+j*L)*4), qj, tail)
				}
			}
			if full(j) {
				c.VFMADD231PS(mem(base, disp+j*L*4), qj, acc)
			} else {
				g.fmaTail(mem(base, disp+j*L*4), qj, acc, tail)
			}
		}
		return acc
	}
	ms := make([]reg.VecVirtual, G)
	for h := range ms {
		ms[h] = c.XMM()
		c.VMOVUPS(g.constant("neginf", 0xff800000), ms[h])
	}
	kq, aq, cnt := c.GP64(), c.GP64(), c.GP64()
	c.MOVQ(kp, kq)
	c.MOVQ(att, aq)
	c.MOVQ(g.param("t"), cnt)
	if hd == 8 && g.isa == AVX512 {
		g.scores8x8(q, kq, aq, cnt, S, G, scale, ms, attAt)
	}
	s4, s1, s1l, sdone := g.newLabel("gscore4_"), g.newLabel("gscore1_"), g.newLabel("gscore1l"), g.newLabel("gscoredone")
	c.CMPQ(cnt, operand.U8(4))
	c.JL(operand.LabelRef(s1))
	c.Label(s4)
	for h := 0; h < G; h++ {
		var a [4]reg.Register
		for s := range a {
			a[s] = g.toY(score(kq, s*S*4, h))
		}
		x := g.reduce4(a)
		c.VMULPS(scale, x, x)
		c.VMOVUPS(x, attAt(aq, h, 0))
		c.VMAXPS(x, ms[h], ms[h])
	}
	c.ADDQ(operand.U32(4*S*4), kq)
	c.ADDQ(operand.U8(16), aq)
	c.SUBQ(operand.U8(4), cnt)
	c.CMPQ(cnt, operand.U8(4))
	c.JGE(operand.LabelRef(s4))
	c.Label(s1)
	c.TESTQ(cnt, cnt)
	c.JE(operand.LabelRef(sdone))
	c.Label(s1l)
	for h := 0; h < G; h++ {
		x := g.reduce1(score(kq, 0, h))
		c.VMULSS(scale, x, x)
		c.VMOVSS(x, attAt(aq, h, 0))
		c.VMAXSS(x, ms[h], ms[h])
	}
	c.ADDQ(operand.U32(S*4), kq)
	c.ADDQ(operand.U8(4), aq)
	c.DECQ(cnt)
	c.JNE(operand.LabelRef(s1l))
	c.Label(sdone)

	// Pass 2, per head: att[j] = e^(att[j]-max) and their sum; ivs[h] = 1/sum.
	// The scores are a row of their own: AVX-512 takes 16 at a time even
	// when the head itself runs on YMM.
	ivs := make([]reg.VecVirtual, G)
	headLanes := g.lanes
	for h := 0; h < G; h++ {
		if g.isa == AVX512 {
			g.lanes = 16
		}
		L := g.lanes
		g.hmax(ms[h])
		mv := g.vec()
		c.VBROADCASTSS(ms[h], mv)
		sum := g.vec()
		g.zero(sum)
		c.MOVQ(att, aq)
		if h > 0 {
			c.LEAQ(attAt(aq, h, 0), aq)
		}
		c.MOVQ(g.param("t"), cnt)
		e1, el, edone := g.newLabel("gexptail"), g.newLabel("gexp"), g.newLabel("gexpdone")
		c.CMPQ(cnt, operand.U8(L))
		c.JL(operand.LabelRef(e1))
		c.Label(el)
		{
			e := g.vec()
			c.VMOVUPS(mem(aq, 0), e)
			c.VSUBPS(mv, e, e)
			g.exp(e, g.vec)
			c.VMOVUPS(e, mem(aq, 0))
			c.VADDPS(e, sum, sum)
		}
		c.ADDQ(operand.U8(L*4), aq)
		c.SUBQ(operand.U8(L), cnt)
		c.CMPQ(cnt, operand.U8(L))
		c.JGE(operand.LabelRef(el))
		c.Label(e1)
		c.TESTQ(cnt, cnt)
		c.JE(operand.LabelRef(edone))
		{
			tbl := c.GP64()
			e := g.vec()
			if g.isa == AVX512 {
				c.LEAQ(g.kmaskTable(), tbl)
				km := c.K()
				c.KMOVW(operand.Mem{Base: tbl, Index: cnt, Scale: 2}, km)
				c.VMOVUPS_Z(mem(aq, 0), km, e)
				c.VSUBPS(mv, e, e)
				g.exp(e, g.vec)
				c.VMOVUPS(e, km, mem(aq, 0))
				c.VADDPS(e, sum, km, sum)
			} else {
				c.LEAQ(g.maskTable(), tbl)
				i := c.GP64()
				c.MOVQ(operand.U32(16), i)
				c.SUBQ(cnt, i)
				mk := c.YMM()
				c.VMOVDQU(operand.Mem{Base: tbl, Index: i, Scale: 4}, mk)
				c.VMASKMOVPS(mem(aq, 0), mk, e)
				c.VSUBPS(mv, e, e)
				g.exp(e, g.vec)
				c.VANDPS(mk, e, e)
				c.VMASKMOVPS(e, mk, mem(aq, 0))
				c.VADDPS(e, sum, sum)
			}
		}
		c.Label(edone)
		s := g.reduce1(sum)
		g.lanes = headLanes
		one := c.XMM()
		c.VMOVSS(g.f32("one", 1), one)
		c.VDIVSS(s, one, one)
		ivs[h] = g.vec()
		c.VBROADCASTSS(one, ivs[h])
	}

	// Pass 3: out_h = Σ p_hj·v_j / sum_h for every head in one pass over the
	// values, in groups of chunks of the head, with the accumulator sets of
	// attention (several positions per step to hide FMA latency).
	grp := min(nch, max(1, (g.nreg-6-G)/G))
	for j0 := 0; j0 < nch; j0 += grp {
		j1 := min(j0+grp, nch)
		ng := j1 - j0
		sets := min(4, max(1, (g.nreg-4)/(ng+1)))
		sets = min(sets, max(1, (g.nreg-5-G)/(G*ng)))
		acc := make([][][]reg.VecVirtual, sets)
		for s := range acc {
			acc[s] = make([][]reg.VecVirtual, G)
			for h := range acc[s] {
				acc[s][h] = make([]reg.VecVirtual, ng)
				for j := range acc[s][h] {
					acc[s][h][j] = g.vec()
					g.zero(acc[s][h][j])
				}
			}
		}
		vq := c.GP64()
		c.MOVQ(att, aq)
		c.MOVQ(vp, vq)
		c.MOVQ(g.param("t"), cnt)
		stepv := func(s int) {
			for h := 0; h < G; h++ {
				p := g.vec()
				c.VBROADCASTSS(attAt(aq, h, s*4), p)
				for j := j0; j < j1; j++ {
					if full(j) {
						c.VFMADD231PS(mem(vq, s*S*4+j*L*4), p, acc[s][h][j-j0])
					} else {
						g.fmaTail(mem(vq, s*S*4+j*L*4), p, acc[s][h][j-j0], tail)
					}
				}
			}
		}
		wl, w1, w1l, wdone := g.newLabel("gwsum"), g.newLabel("gwsum1_"), g.newLabel("gwsum1l"), g.newLabel("gwsumdone")
		if sets > 1 {
			c.CMPQ(cnt, operand.U8(sets))
			c.JL(operand.LabelRef(w1))
			c.Label(wl)
			for s := 0; s < sets; s++ {
				stepv(s)
			}
			c.ADDQ(operand.U8(sets*4), aq)
			c.ADDQ(operand.U32(sets*S*4), vq)
			c.SUBQ(operand.U8(sets), cnt)
			c.CMPQ(cnt, operand.U8(sets))
			c.JGE(operand.LabelRef(wl))
			c.Label(w1)
			c.TESTQ(cnt, cnt)
			c.JE(operand.LabelRef(wdone))
		}
		c.Label(w1l)
		stepv(0)
		c.ADDQ(operand.U8(4), aq)
		c.ADDQ(operand.U32(S*4), vq)
		c.DECQ(cnt)
		c.JNE(operand.LabelRef(w1l))
		c.Label(wdone)
		for h := 0; h < G; h++ {
			for j := j0; j < j1; j++ {
				a := acc[0][h][j-j0]
				for s := 1; s < sets; s++ {
					c.VADDPS(acc[s][h][j-j0], a, a)
				}
				c.VMULPS(ivs[h], a, a)
				if full(j) {
					c.VMOVUPS(a, mem(out, (h*hd+j*L)*4))
				} else {
					g.storeTail(a, mem(out, (h*hd+j*L)*4), tail)
				}
			}
		}
	}

	c.ADDQ(operand.U32(hd*4), kp)
	c.ADDQ(operand.U32(hd*4), vp)
	c.ADDQ(operand.U32(G*hd*4), q)
	c.ADDQ(operand.U32(G*hd*4), out)
	c.DECQ(heads)
	c.JNE(operand.LabelRef(kvl))
}

// groupAttentionT is GroupAttention over a position-minor cache (doc.go,
// GroupAttentionT): the vectors run along positions, a tile of 16 at a time
// (one ZMM, or two YMM halves). A tile's scores are HD multiply-adds of a
// key row by a broadcast query element per head; the weighted sum of the
// values keeps one accumulator per (head, dim) along positions and sums
// each across its lanes once at the end. The last tile (t mod 16
// positions) loads under a mask, so the positions from t on never enter,
// and its weights beyond t are stored as zeros. The softmax skips its
// maximum where it can (fastScore): one KV head at a time, the scores'
// powers of two go straight into att, and only a head whose sum leaves
// [fastSumMin, fastSumMax] is redone with the maxima (score, expSums).
func (g *amd) groupAttentionT(k Kernel) {
	c := g.c
	hd, S, L, G := k.HeadDim, k.KVStride, g.lanes, k.Group
	out, q, kp, vp, att := g.loadPtr("out"), g.loadPtr("q"), g.loadPtr("k"), g.loadPtr("v"), g.loadPtr("att")
	scale := g.f32(fmt.Sprintf("rsqrt%d", hd), float32(1/math.Sqrt(float64(hd))))
	avx512 := g.isa == AVX512
	subs := 16 / L // vectors per tile

	// nfull whole tiles, then rem (< 16) positions under the masks.
	nfull, rem := c.GP64(), c.GP64()
	c.MOVQ(g.param("t"), nfull)
	c.MOVQ(nfull, rem)
	c.SHRQ(operand.U8(4), nfull)
	c.ANDQ(operand.U8(15), rem)
	var km reg.Register
	var ym [2]reg.VecVirtual // AVX2: the first min(rem, 8), then max(rem-8, 0) lanes
	{
		tbl := c.GP64()
		if avx512 {
			c.LEAQ(g.kmaskTable(), tbl)
			km = c.K()
			c.KMOVW(operand.Mem{Base: tbl, Index: rem, Scale: 2}, km)
		} else {
			c.LEAQ(g.maskTable(), tbl)
			// The mask of the first n lanes: the table's words from 16-n.
			mask := func(n reg.GPVirtual) reg.VecVirtual {
				i, m := c.GP64(), c.YMM()
				c.MOVQ(operand.U32(16), i)
				c.SUBQ(n, i)
				c.VMOVDQU(operand.Mem{Base: tbl, Index: i, Scale: 4}, m)
				return m
			}
			eight, zero, n := c.GP64(), c.GP64(), c.GP64()
			c.MOVQ(operand.U32(8), eight)
			c.XORQ(zero, zero)
			c.MOVQ(rem, n)
			c.CMPQ(n, eight)
			c.CMOVQGT(eight, n)
			ym[0] = mask(n)
			c.MOVQ(rem, n)
			c.SUBQ(eight, n)
			c.CMPQ(n, zero)
			c.CMOVQLT(zero, n)
			ym[1] = mask(n)
		}
	}
	load := func(m operand.Mem, dst reg.VecVirtual, sub int, masked bool) {
		switch {
		case !masked:
			c.VMOVUPS(m, dst)
		case avx512:
			c.VMOVUPS_Z(m, km, dst)
		default:
			c.VMASKMOVPS(m, ym[sub], dst)
		}
	}
	// tb is the tile's offset in the KV head's cache, ab its first
	// position's in a head's scores, both in bytes; the loop over KV heads
	// advances the pointers.
	tb, ab := c.GP64(), c.GP64()
	kvAt := func(base reg.Register, d, sub int) operand.Mem {
		return operand.Mem{Base: base, Index: tb, Scale: 1, Disp: d*64 + sub*32}
	}
	attAt := func(h, sub int) operand.Mem {
		return operand.Mem{Base: att, Index: ab, Scale: 1, Disp: h*S*4 + sub*32}
	}
	tiles := func(body func(sub int, masked bool)) {
		c.XORQ(tb, tb)
		c.XORQ(ab, ab)
		cnt := c.GP64()
		c.MOVQ(nfull, cnt)
		l, full, done := g.newLabel("ttile"), g.newLabel("tfull"), g.newLabel("tdone")
		c.TESTQ(cnt, cnt)
		c.JZ(operand.LabelRef(full))
		c.Label(l)
		for sub := range subs {
			body(sub, false)
		}
		c.ADDQ(operand.U32(hd*64), tb)
		c.ADDQ(operand.U8(64), ab)
		c.DECQ(cnt)
		c.JNZ(operand.LabelRef(l))
		c.Label(full)
		c.TESTQ(rem, rem)
		c.JZ(operand.LabelRef(done))
		for sub := range subs {
			body(sub, true)
		}
		c.Label(done)
	}

	// The scores of the KV head's query heads for one tile: G accumulators of
	// hd multiply-adds of a key row by a query element, broadcast from qb
	// when set, else from memory.
	dots := func(sub int, masked bool, qb [][]reg.VecVirtual) []reg.VecVirtual {
		qAt := func(h, d int) operand.Mem { return mem(q, (h*hd+d)*4) }
		s := make([]reg.VecVirtual, G)
		for d := 0; d < hd; d++ {
			kd := g.vec()
			load(kvAt(kp, d, sub), kd, sub, masked)
			for h := range s {
				qm := qAt(h, d)
				if d == 0 {
					s[h] = g.vec()
				}
				switch {
				case qb != nil && d == 0:
					c.VMULPS(qb[h][d], kd, s[h])
				case qb != nil:
					c.VFMADD231PS(qb[h][d], kd, s[h])
				case avx512 && d == 0:
					c.VMULPS_BCST(qm, kd, s[h])
				case avx512:
					c.VFMADD231PS_BCST(qm, kd, s[h])
				default:
					b := g.vec()
					c.VBROADCASTSS(qm, b)
					if d == 0 {
						c.VMULPS(b, kd, s[h])
					} else {
						c.VFMADD231PS(b, kd, s[h])
					}
				}
			}
		}
		return s
	}

	// Pass 1 (the fallback's): the scores of the KV head's query heads
	// (into att) and their maxima, folded into ms.
	score := func(ms []reg.VecVirtual) {
		for h := range ms {
			c.VMOVUPS(g.constant("neginf", 0xff800000), ms[h])
		}
		tiles(func(sub int, masked bool) {
			s := dots(sub, masked, nil)
			for h := range s {
				c.VMULPS(scale, s[h], s[h])
				c.VMOVUPS(s[h], attAt(h, sub))
				switch {
				case !masked:
					c.VMAXPS(s[h], ms[h], ms[h])
				case avx512:
					c.VMAXPS(s[h], ms[h], km, ms[h])
				default:
					ninf := g.vec()
					c.VMOVUPS(g.constant("neginf", 0xff800000), ninf)
					c.VBLENDVPS(ym[sub], s[h], ninf, s[h])
					c.VMAXPS(s[h], ms[h], ms[h])
				}
			}
		})
		for h := range ms {
			g.hmaxAll(ms[h])
		}
	}

	// zeroTail zeroes e's lanes from t on in the last tile.
	zeroTail := func(e reg.VecVirtual, sub int) {
		if avx512 {
			c.VMOVAPS_Z(e, km, e)
		} else {
			c.VANDPS(ym[sub], e, e)
		}
	}

	// recip returns an XMM of 1/s for an XMM s (a sum from reduce1).
	recip := func(s reg.Register) reg.Register {
		inv := c.XMM()
		c.VMOVUPS(g.f32("one", 1), inv)
		c.VDIVPS(s, inv, inv)
		return inv
	}

	// Pass 2 (the fallback's), the maxima in ms and the scores in att: the
	// weights e^(s-max), and 1/their sums.
	expSums := func(ms []reg.VecVirtual) []reg.Register {
		sums := make([]reg.VecVirtual, G)
		for h := range sums {
			sums[h] = g.vec()
			g.zero(sums[h])
		}
		kexp := g.expMem
		if avx512 && len(expNonPosConsts)+6*G <= g.nreg {
			kexp = g.expRegs()
		}
		tiles(func(sub int, masked bool) {
			for h := range ms {
				e := g.vec()
				load(attAt(h, sub), e, sub, masked)
				c.VSUBPS(ms[h], e, e)
				g.expfWith(e, g.vec, false, kexp)
				if masked {
					zeroTail(e, sub)
				}
				c.VMOVUPS(e, attAt(h, sub))
				c.VADDPS(e, sums[h], sums[h])
			}
		})
		inv := make([]reg.Register, G)
		for h := range sums {
			inv[h] = recip(g.reduce1(sums[h]))
		}
		return inv
	}

	// Pass 3, the weights in att and 1/their sums in inv: out[h][d] = Σ_j w_hj·v_dj · inv_h, dims in blocks that
	// fit the registers with the masks and the reduction's temporaries (4
	// dims reduce at once).
	weighted := func(inv []reg.Register) {
		masks := 0 // AVX2 holds its tail masks in two vector registers
		if !avx512 {
			masks = 2
		}
		db := max(1, (g.nreg-masks-G-7)/G)
		if db >= 4 {
			db &^= 3
		}
		db = min(db, hd)
		for d0 := 0; d0 < hd; d0 += db {
			d1 := min(d0+db, hd)
			acc := make([][]reg.VecVirtual, G)
			for h := range acc {
				acc[h] = make([]reg.VecVirtual, d1-d0)
				for i := range acc[h] {
					acc[h][i] = g.vec()
					g.zero(acc[h][i])
				}
			}
			tiles(func(sub int, masked bool) {
				p := make([]reg.VecVirtual, G)
				for h := range p {
					p[h] = g.vec()
					c.VMOVUPS(attAt(h, sub), p[h])
				}
				for d := d0; d < d1; d++ {
					vd := g.vec()
					load(kvAt(vp, d, sub), vd, sub, masked)
					for h := range p {
						c.VFMADD231PS(vd, p[h], acc[h][d-d0])
					}
				}
			})
			if n := G * hd; g.lanes == 16 && d1-d0 == hd && G <= 2 && (n == 8 || n == 16) {
				// Every head's sums in one transpose (reduceRows), head h's
				// dims in lanes h·hd on: the out rows of the group, in order.
				var rows []reg.VecVirtual
				for h := range acc {
					rows = append(rows, acc[h]...)
				}
				x := g.reduceRows(rows)
				iv := c.ZMM()
				c.VBROADCASTSS(inv[0], iv)
				switch {
				case G == 2 && hd == 8: // inv[1] in the upper 256 bits
					hi := c.YMM()
					c.VBROADCASTSS(inv[1], hi)
					c.VINSERTF64X4(operand.U8(1), hi, iv, iv)
				case G == 2: // hd 4: inv[1] in the upper 128 bits of the YMM
					c.VINSERTF128(operand.U8(1), inv[1], iv.AsY(), iv.AsY())
				}
				if n == 8 {
					c.VMULPS(iv.AsY(), x, x)
				} else {
					c.VMULPS(iv, x, x)
				}
				c.VMOVUPS(x, mem(out, 0))
				continue
			}
			for h := range acc {
				o := h * hd
				d := d0
				for ; d+4 <= d1; d += 4 {
					var a4 [4]reg.Register
					for i := range a4 {
						a4[i] = g.toY(acc[h][d-d0+i])
					}
					x := g.reduce4(a4)
					c.VMULPS(inv[h], x, x)
					c.VMOVUPS(x, mem(out, (o+d)*4))
				}
				for ; d < d1; d++ {
					x := g.reduce1(acc[h][d-d0])
					c.VMULSS(inv[h], x, x)
					c.VMOVSS(x, mem(out, (o+d)*4))
				}
			}
		}
	}

	// Pass 1 without the maximum: the scores in base 2 (the query times
	// log2(e)/sqrt(hd)), their powers of two straight into att and their
	// sums, whose range decides (fast) whether they stand in for the
	// softmax's e^(s-max): the same weights once pass 3 divides by the sums,
	// with one pass and the wait for the maxima gone. The exponential's
	// constants and the query are held in registers where they fit beside
	// the sums and scores, the key row, a broadcast, the exponential's two
	// temporaries and AVX2's two tail masks.
	scale2 := g.f32(fmt.Sprintf("rsqrt%dlog2e", hd), float32(math.Log2E/math.Sqrt(float64(hd))))
	fastScore := func() []reg.VecVirtual {
		base := 2*G + 4
		if !avx512 {
			base += 2
		}
		k2 := g.expMem
		if base+len(exp2Consts) <= g.nreg {
			k2 = g.constRegs(exp2Consts)
			base += len(exp2Consts)
		}
		var qb [][]reg.VecVirtual
		if avx512 && base+G*hd <= g.nreg {
			qb = make([][]reg.VecVirtual, G)
			for h := range qb {
				qb[h] = make([]reg.VecVirtual, hd)
				for d := range qb[h] {
					qb[h][d] = g.vec()
					c.VBROADCASTSS(mem(q, (h*hd+d)*4), qb[h][d])
					c.VMULPS(scale2, qb[h][d], qb[h][d])
				}
			}
		}
		sums := make([]reg.VecVirtual, G)
		for h := range sums {
			sums[h] = g.vec()
			g.zero(sums[h])
		}
		tiles(func(sub int, masked bool) {
			s := dots(sub, masked, qb)
			for h := range s {
				if qb == nil {
					c.VMULPS(scale2, s[h], s[h])
				}
				g.exp2(s[h], g.vec, k2)
				if masked {
					zeroTail(s[h], sub)
				}
				c.VMOVUPS(s[h], attAt(h, sub))
				c.VADDPS(s[h], sums[h], sums[h])
			}
		})
		return sums
	}

	// One KV head per iteration, the pointers advancing: the fast pass 1
	// and its check, then pass 3; where a sum falls outside
	// [fastSumMin, fastSumMax], the head is redone with the maxima.
	heads := c.GP64()
	c.MOVQ(operand.U32(k.Heads), heads)
	kvl, next, slow, done := g.newLabel("tkvhead"), g.newLabel("tnext"), g.newLabel("tslow"), g.newLabel("tdone")
	c.Label(kvl)
	sums := fastScore()
	inv := make([]reg.Register, G)
	for h := range sums {
		s := g.reduce1(sums[h])
		c.VUCOMISS(g.f32("fastsummin", fastSumMin), s)
		c.JCS(operand.LabelRef(slow)) // below, or NaN
		c.VUCOMISS(g.f32("fastsummax", fastSumMax), s)
		c.JHI(operand.LabelRef(slow))
		inv[h] = recip(s)
	}
	weighted(inv)
	c.Label(next)
	c.ADDQ(operand.U32(hd*S*4), kp)
	c.ADDQ(operand.U32(hd*S*4), vp)
	c.ADDQ(operand.U32(G*hd*4), q)
	c.ADDQ(operand.U32(G*hd*4), out)
	c.DECQ(heads)
	c.JNE(operand.LabelRef(kvl))
	c.JMP(operand.LabelRef(done))

	c.Label(slow)
	ms := make([]reg.VecVirtual, G)
	for h := range ms {
		ms[h] = g.vec()
	}
	score(ms)
	weighted(expSums(ms))
	c.JMP(operand.LabelRef(next))
	c.Label(done)
}

// The range of a fast pass's sum of 2^s (attention without the maximum)
// that stands in for the softmax: no weight above 2^40, so no product with
// a value overflows where e^(s-max) would not, and the largest at least
// 2^-40/t, so the weights that underflow are far below the sum's last bit.
// Real models' scores stay well inside; the rest take the exact path.
const fastSumMin, fastSumMax = 0x1p-40, 0x1p40

// hmaxAll makes every lane of the full vector v the maximum of its lanes.
func (g *amd) hmaxAll(v reg.VecVirtual) {
	c := g.c
	t := g.vec()
	if g.lanes == 16 {
		c.VSHUFF32X4(operand.U8(0x4e), v, v, t)
		c.VMAXPS(t, v, v)
		c.VSHUFF32X4(operand.U8(0xb1), v, v, t)
		c.VMAXPS(t, v, v)
	} else {
		c.VPERM2F128(operand.U8(0x01), v, v, t)
		c.VMAXPS(t, v, v)
	}
	c.VPERMILPS(operand.U8(0x4e), v, t)
	c.VMAXPS(t, v, v)
	c.VPERMILPS(operand.U8(0xb1), v, t)
	c.VMAXPS(t, v, v)
}

// scores8x8 scores heads of 8 floats eight positions at a time with ZMM:
// keys j+i and j+4+i share a register, every query head of the group is
// duplicated into both halves of one, and the products of four such
// registers reduce in one reduce4-like tree (per 128-bit lane the same adds
// in the same order as attention's, so the scores are the same bits). It
// leaves fewer than 8 positions for the caller's loops and folds its
// maxima into ms.
func (g *amd) scores8x8(q, kq, aq, cnt reg.GPVirtual, S, G int, scale operand.Mem, ms []reg.VecVirtual, attAt func(reg.Register, int, int) operand.Mem) {
	c := g.c
	qq := make([]reg.VecVirtual, G)
	my := make([]reg.VecVirtual, G)
	for h := range qq {
		qq[h] = c.ZMM()
		c.VBROADCASTF32X8(mem(q, h*8*4), qq[h])
		my[h] = c.YMM()
		c.VMOVUPS(g.constant("neginf", 0xff800000), my[h])
	}
	l8, fold := g.newLabel("gscore8_"), g.newLabel("gscore8done")
	c.CMPQ(cnt, operand.U8(8))
	c.JL(operand.LabelRef(fold))
	c.Label(l8)
	var z [4]reg.VecVirtual
	for i := range z {
		z[i] = c.ZMM()
		c.VMOVUPS(mem(kq, i*S*4), z[i].AsY())
		c.VINSERTF32X8(operand.U8(1), mem(kq, (4+i)*S*4), z[i], z[i])
	}
	for h := 0; h < G; h++ {
		var p [4]reg.VecVirtual
		for i := range p {
			p[i] = c.ZMM()
			c.VMULPS(qq[h], z[i], p[i])
		}
		u0, u1, u2, u3 := c.ZMM(), c.ZMM(), c.ZMM(), c.ZMM()
		c.VUNPCKLPS(p[1], p[0], u0)
		c.VUNPCKHPS(p[1], p[0], u1)
		c.VADDPS(u1, u0, u0)
		c.VUNPCKLPS(p[3], p[2], u2)
		c.VUNPCKHPS(p[3], p[2], u3)
		c.VADDPS(u3, u2, u2)
		lo, hi := c.ZMM(), c.ZMM()
		c.VUNPCKLPD(u2, u0, lo)
		c.VUNPCKHPD(u2, u0, hi)
		c.VADDPS(hi, lo, lo)
		// Lanes 0+1 are positions j..j+3, lanes 2+3 positions j+4..j+7.
		sw := c.ZMM()
		c.VSHUFF32X4(operand.U8(0xb1), lo, lo, sw)
		c.VADDPS(sw, lo, lo)
		x := c.ZMM()
		c.VSHUFF32X4(operand.U8(0x08), lo, lo, x)
		c.VMULPS(scale, x.AsY(), x.AsY())
		c.VMOVUPS(x.AsY(), attAt(aq, h, 0))
		c.VMAXPS(x.AsY(), my[h], my[h])
	}
	c.ADDQ(operand.U32(8*S*4), kq)
	c.ADDQ(operand.U8(32), aq)
	c.SUBQ(operand.U8(8), cnt)
	c.CMPQ(cnt, operand.U8(8))
	c.JGE(operand.LabelRef(l8))
	c.Label(fold)
	for h := 0; h < G; h++ {
		t := c.XMM()
		c.VEXTRACTF32X4(operand.U8(1), my[h], t)
		c.VMAXPS(t, ms[h], ms[h])
		c.VMAXPS(my[h].AsX(), ms[h], ms[h])
	}
}
