package asm

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// QuantAMD64 returns the assembly and stubs of the AVX2 and AVX-512 VNNI
// quantised kernels ks without writing them.
func QuantAMD64(ks []QKernel, pkg string) (asmText, stubs []byte, err error) {
	ks, err = qdedup(ks, AVX2, AVX512)
	if err != nil {
		return nil, nil, err
	}
	c := build.NewContext()
	c.ConstraintExpr("!purego")
	g := &qamd{c: c, consts: map[string]operand.Mem{}}
	for _, k := range ks {
		g.kernel(k)
	}
	return printAVO(c, pkg, "amd64 quant kernels")
}

// qamd emits the quantised kernels of one file.
type qamd struct {
	c      *build.Context
	k      QKernel
	consts map[string]operand.Mem
	label  int
	zero   reg.Register   // AVX-512: a register holding zeros (YMM)
	zeroZ  reg.VecVirtual // AVX-512: the same as a ZMM
}

// qRows is the row unroll: four rows share each x block load and scale.
const qRows = 4

// rowsPerPass is the rows of one pass: qRows, or on AVX-512 (QMatVec) eight,
// which share the group's activation loads, -o·Σx and scales.
func (g *qamd) rowsPerPass() int {
	if g.k.ISA == AVX512 && g.k.Rows == 0 {
		return 8
	}
	return qRows
}

// qAhead is how many groups of qRows rows ahead the weights are prefetched,
// non-temporally as in the float matvecs (matvecPF): 110M decode Q4_0 ≈ 5 %,
// Q8_0 2–4 % faster than with PREFETCHT0 (paired medians), 15M unchanged.
const qAhead = 4

func (g *qamd) newLabel(what string) string {
	g.label++
	return fmt.Sprintf("q%s%d", what, g.label)
}

// bytesConst is a 32-byte read-only vector of copies of the 32-bit word v.
func (g *qamd) bytesConst(name string, v uint32) operand.Mem {
	if m, ok := g.consts[name]; ok {
		return m
	}
	m := g.c.StaticGlobal(name)
	g.c.DataAttributes(attr.RODATA | attr.NOPTR)
	for i := 0; i < 8; i++ {
		g.c.AppendDatum(operand.U32(v))
	}
	g.consts[name] = m
	return m
}

func (g *qamd) param(name string) reg.GPVirtual { return loadParam(g.c, name) }

func (g *qamd) kernel(k QKernel) {
	c := g.c
	g.k = k
	c.Function(k.Name())
	if !k.Panel || k.Rows > 0 || k.Cols/32*4 <= 512 {
		// A panel kernel's table of block sums is its frame: nosplit only
		// while that is small.
		c.Attributes(attr.NOSPLIT)
	}
	c.Pragma("noescape")
	c.SignatureExpr(k.Signature())
	c.Doc(k.doc())
	out, w, xq, xs, n := g.param("out"), g.param("w"), g.param("xq"), g.param("xs"), g.param("n")
	var b reg.GPVirtual
	if k.Rows > 0 {
		b = g.param("b")
	}
	if k.ISA == AVX512 {
		g.zeroZ = c.ZMM()
		c.VMOVDQU64(g.zmmConst("qzeroz", rep16(0)), g.zeroZ)
		g.zero = g.zeroZ.AsY()
	}
	if k.Panel {
		if k.Rows > 0 {
			g.panelMatMul(out, w, xq, xs, g.param("xsum"), n, b)
		} else {
			g.panel(out, w, xq, xs, n)
		}
		c.VZEROUPPER()
		c.RET()
		return
	}
	rb := k.RowBytes()
	loop4, tail, loop1, done := g.newLabel("rows4_"), g.newLabel("tail"), g.newLabel("rows1_"), g.newLabel("done")
	if k.Rows > 0 {
		c.TESTQ(b, b)
		c.JZ(operand.LabelRef(done))
	}
	c.Label(loop4)
	R := g.rowsPerPass()
	c.CMPQ(n, operand.U8(R))
	c.JL(operand.LabelRef(tail))
	g.tokens(R, b, out, w, xq, xs)
	c.ADDQ(operand.U32(R*rb), w)
	c.ADDQ(operand.U8(4*R), out)
	c.SUBQ(operand.U8(R), n)
	c.JMP(operand.LabelRef(loop4))
	c.Label(tail)
	c.TESTQ(n, n)
	c.JZ(operand.LabelRef(done))
	c.Label(loop1)
	g.tokens(1, b, out, w, xq, xs)
	c.ADDQ(operand.U32(rb), w)
	c.ADDQ(operand.U8(4), out)
	c.DECQ(n)
	c.JNZ(operand.LabelRef(loop1))
	c.Label(done)
	c.VZEROUPPER()
	c.RET()
}

// tokens runs rows(R) once (QMatVec) or for each of the b tokens (QMatMul),
// the group's weights staying in L1 across the tokens.
func (g *qamd) tokens(R int, b, out, w, xq, xs reg.GPVirtual) {
	k := g.k
	if k.Rows == 0 {
		g.rows(R, out, w, xq, xs)
		return
	}
	c := g.c
	t, op, xp, sp := c.GP64(), c.GP64(), c.GP64(), c.GP64()
	c.MOVQ(b, t)
	c.MOVQ(out, op)
	c.MOVQ(xq, xp)
	c.MOVQ(xs, sp)
	loop := g.newLabel("tok")
	c.Label(loop)
	g.rows(R, op, w, xp, sp)
	c.ADDQ(operand.U32(4*k.Rows), op)
	c.ADDQ(operand.U32(k.Cols), xp)
	c.ADDQ(operand.U32(k.Cols/32*4), sp)
	c.DECQ(t)
	c.JNZ(operand.LabelRef(loop))
}

// rows computes R consecutive rows starting at w into out[0..R).
func (g *qamd) rows(R int, out, w, xq, xs reg.GPVirtual) {
	c, k := g.c, g.k
	if k.ISA == AVX512 {
		g.rowsZ(R, out, w, xq, xs)
		return
	}
	if k.Format == Q4_0 {
		g.rowsQ4Y(R, out, w, xq, xs)
		return
	}
	rb, bb := k.RowBytes(), k.Format.BlockBytes()
	acc := make([]reg.VecVirtual, R)
	for r := range acc {
		acc[r] = c.YMM()
		g.zeroVec(acc[r])
	}
	wp, xp, sp, cnt := c.GP64(), c.GP64(), c.GP64(), c.GP64()
	c.MOVQ(w, wp)
	c.MOVQ(xq, xp)
	c.MOVQ(xs, sp)
	c.MOVQ(operand.U32(k.Cols/32), cnt)
	blk := g.newLabel("blk")
	c.Label(blk)
	if R == qRows {
		// The same block of the next row group: by the time it is needed it
		// is in cache (the hardware prefetcher alone falls behind on big
		// Q8_0 matrices).
		for r := 0; r < R; r++ {
			c.PREFETCHNTA(operand.Mem{Base: wp, Disp: (r + qAhead*R) * rb})
		}
	}
	x := c.YMM()
	c.VMOVUPS(operand.Mem{Base: xp}, x)
	sx := c.YMM()
	c.VBROADCASTSS(operand.Mem{Base: sp}, sx)
	var base reg.VecVirtual
	if k.ISA == AVX512 {
		base = g.offsetSum(x)
	} else if k.Format == Q4_0 {
		base = g.eightSum(x)
	}
	for r := 0; r < R; r++ {
		m := operand.Mem{Base: wp, Disp: r*rb + 2}
		var isum reg.VecVirtual
		switch {
		case k.ISA == AVX512:
			isum = g.dotVNNI(m, x, base)
		case k.Format == Q4_0:
			isum = g.dotNibbles(m, x, base)
		default:
			isum = g.dot(g.weights(m), x)
		}
		f := c.YMM()
		c.VCVTDQ2PS(isum, f)
		h, d := c.XMM(), c.YMM()
		c.VPBROADCASTW(operand.Mem{Base: wp, Disp: r * rb}, h)
		c.VCVTPH2PS(h, d)
		c.VMULPS(sx, d, d)
		c.VFMADD231PS(f, d, acc[r])
	}
	c.ADDQ(operand.U8(32), xp)
	c.ADDQ(operand.U8(4), sp)
	c.ADDQ(operand.U8(bb), wp)
	c.DECQ(cnt)
	c.JNZ(operand.LabelRef(blk))
	for r := 0; r < R; r++ {
		c.VMOVSS(g.hsum(acc[r]), operand.Mem{Base: out, Disp: 4 * r})
	}
}

func (g *qamd) zeroVec(v reg.Register) {
	if g.k.ISA == AVX512 {
		// A copy, not VPXORD v,v,v, which avo takes for a read of v.
		g.c.VMOVAPS(g.zero, v)
	} else {
		g.c.VXORPS(v, v, v)
	}
}

// weights loads one Q8_0 block's 32 codes at m (AVX2).
func (g *qamd) weights(m operand.Mem) reg.VecVirtual {
	y := g.c.YMM()
	g.c.VMOVUPS(m, y)
	return y
}

// nibbles loads one Q4_0 block's 16 bytes at m as 32 unsigned codes q+8:
// low nibbles are elements 0-15, high nibbles 16-31.
func (g *qamd) nibbles(m operand.Mem) reg.VecVirtual {
	c := g.c
	y := c.YMM()
	lo, hi := c.XMM(), c.XMM()
	c.VMOVUPS(m, lo)
	c.VPSRLW(operand.U8(4), lo, hi)
	if g.k.ISA == AVX512 {
		c.VINSERTI32X4(operand.U8(1), hi, lo.AsY(), y)
		c.VPANDD(g.bytesConst("qnib", 0x0f0f0f0f), y, y)
	} else {
		c.VINSERTI128(operand.U8(1), hi, lo.AsY(), y)
		c.VPAND(g.bytesConst("qnib", 0x0f0f0f0f), y, y)
	}
	return y
}

// eightSum returns 8·Σx in eight int32 lane groups (AVX2, Q4_0), once per
// block for all rows: the unsigned nibbles q+8 go straight into VPMADDUBSW
// (pairs at most 2·15·127, no saturation) and each row subtracts this.
func (g *qamd) eightSum(x reg.VecVirtual) reg.VecVirtual {
	c := g.c
	e, p16, p32 := c.YMM(), c.YMM(), c.YMM()
	c.VMOVUPS(g.bytesConst("qeight", 0x08080808), e)
	c.VPMADDUBSW(x, e, p16)
	c.VPMADDWD(g.bytesConst("qones16", 0x00010001), p16, p32)
	return p32
}

// dotNibbles returns the int32 partial sums of Σ q_j·x_j of the Q4_0 block
// at m (AVX2).
func (g *qamd) dotNibbles(m operand.Mem, x, eight reg.VecVirtual) reg.VecVirtual {
	c := g.c
	u := g.nibbles(m)
	p16, p32 := c.YMM(), c.YMM()
	c.VPMADDUBSW(x, u, p16)
	c.VPMADDWD(g.bytesConst("qones16", 0x00010001), p16, p32)
	c.VPSUBD(eight, p32, p32)
	return p32
}

// dot returns the eight int32 partial sums of Σ q_j·x_j over one Q8_0 block
// (AVX2): VPMADDUBSW needs an unsigned operand, hence |q| and sign(q)·x.
func (g *qamd) dot(q, x reg.VecVirtual) reg.VecVirtual {
	c := g.c
	aq, sx := c.YMM(), c.YMM()
	c.VPSIGNB(q, q, aq) // |q|
	c.VPSIGNB(q, x, sx) // sign(q)·x (0 where q is 0, as |q| is)
	p16, p32 := c.YMM(), c.YMM()
	c.VPMADDUBSW(sx, aq, p16)
	c.VPMADDWD(g.bytesConst("qones16", 0x00010001), p16, p32)
	return p32
}

// offsetSum returns -o·Σx per int32 lane group for the block x (AVX-512
// VNNI), o the offset that makes the weight codes unsigned: 128 for Q8_0
// (w XOR 0x80 = w+128), 8 for Q4_0 (the raw nibble is q+8). Each row's
// VPDPBUSD then starts from it: Σ(q+o)·x - o·Σx = Σq·x, with no sign trick
// and no zeroing per row. VPDPBUSD does not saturate.
func (g *qamd) offsetSum(x reg.VecVirtual) reg.VecVirtual {
	c := g.c
	off := uint32(0x80808080)
	if g.k.Format == Q4_0 {
		off = 0x08080808
	}
	s, neg, o := c.YMM(), c.YMM(), c.YMM()
	c.VMOVAPS(g.zero, s)
	c.VMOVUPS(g.bytesConst(fmt.Sprintf("qoff%x", off&0xff), off), o)
	c.VPDPBUSD(x, o, s)
	c.VPSUBD(s, g.zero, neg)
	return neg
}

// dotVNNI returns the eight int32 partial sums of Σ q_j·x_j for the block
// codes at m, starting from base (offsetSum).
func (g *qamd) dotVNNI(m operand.Mem, x, base reg.VecVirtual) reg.VecVirtual {
	c := g.c
	u := c.YMM()
	if g.k.Format == Q8_0 {
		c.VMOVUPS(m, u)
		c.VPXORD(g.bytesConst("qoff80", 0x80808080), u, u)
	} else {
		u = g.nibbles(m)
	}
	acc := c.YMM()
	c.VMOVAPS(base, acc)
	c.VPDPBUSD(x, u, acc)
	return acc
}

// hsum returns an XMM whose lane 0 is the sum of v's eight lanes, with
// instructions that have EVEX forms.
func (g *qamd) hsum(v reg.VecVirtual) reg.Register {
	c := g.c
	x, t := c.XMM(), c.XMM()
	if g.k.ISA == AVX512 {
		c.VEXTRACTF32X4(operand.U8(1), v, x)
	} else {
		c.VEXTRACTF128(operand.U8(1), v, x)
	}
	c.VADDPS(v.AsX(), x, x)
	c.VSHUFPS(operand.U8(0x4e), x, x, t)
	c.VADDPS(t, x, x)
	c.VSHUFPS(operand.U8(0xb1), x, x, t)
	c.VADDPS(t, x, x)
	return x
}

// rep16 is 16 copies of the 32-bit word v.
func rep16(v uint32) []uint32 {
	w := make([]uint32, 16)
	for i := range w {
		w[i] = v
	}
	return w
}

// zmmConst is a 64-byte read-only vector of the 16 words ws.
func (g *qamd) zmmConst(name string, ws []uint32) operand.Mem {
	if m, ok := g.consts[name]; ok {
		return m
	}
	m := g.c.StaticGlobal(name)
	g.c.DataAttributes(attr.RODATA | attr.NOPTR)
	for _, v := range ws {
		g.c.AppendDatum(operand.U32(v))
	}
	g.consts[name] = m
	return m
}

// words16 packs 32 16-bit words into 16 32-bit words (little endian).
func words16(ws [32]uint16) []uint32 {
	out := make([]uint32, 16)
	for i := range out {
		out[i] = uint32(ws[2*i]) | uint32(ws[2*i+1])<<16
	}
	return out
}

// qGroup is how many blocks the AVX-512 kernels take per ZMM step: Q8_0
// two blocks (64 codes), Q4_0 four blocks (64 bytes of nibbles).
func qGroup(f QFormat) int {
	if f == Q4_0 {
		return 4
	}
	return 2
}

// rowsZ is rows on AVX-512 VNNI with ZMM registers: each step takes a group
// of blocks (qGroup) of R rows, sharing the activation loads, the -o·Σx
// start and the activation scales across the rows, and converts the group's
// float16 weight scales with one VPERMW + VCVTPH2PS per row (the scale words
// picked out of the row's bytes in place). Blocks left over after the
// groups run one at a time as in the YMM kernel.
//
// Lane layout of one group and row: Q8_0 lanes 0-7 hold block b's partial
// sums, 8-15 block b+1's. Q4_0: the four blocks' 16 nibble bytes fill the
// four 128-bit chunks; the low nibbles (elements 0-15 of each block) meet
// x's first halves and the high ones (16-31) x's second halves, so 128-bit
// chunk k, lanes 4k..4k+3, belong to block b+k.
func (g *qamd) rowsZ(R int, out, w, xq, xs reg.GPVirtual) {
	c, k := g.c, g.k
	rb, bb := k.RowBytes(), k.Format.BlockBytes()
	G := qGroup(k.Format)
	nb := k.Cols / 32
	groups, rest := nb/G, nb%G
	acc := make([]reg.VecVirtual, R)
	for r := range acc {
		acc[r] = c.ZMM()
		c.VMOVDQA32(g.zeroZ, acc[r])
	}
	wp, xp, sp := c.GP64(), c.GP64(), c.GP64()
	c.MOVQ(w, wp)
	c.MOVQ(xq, xp)
	c.MOVQ(xs, sp)
	if groups > 0 {
		cnt := c.GP64()
		c.MOVQ(operand.U32(groups), cnt)
		// Scale words: VPERMW picks word i of the row's group bytes; the
		// float16 scale of block j is word j·bb/2.
		var wi [32]uint16
		var pi []uint32
		for i := 0; i < 16; i++ {
			j := i * G / 16
			wi[i] = uint16(j * bb / 2)
			pi = append(pi, uint32(j))
		}
		idxW, idxP := c.ZMM(), c.ZMM()
		c.VMOVDQU64(g.zmmConst(fmt.Sprintf("qsw%s", k.Format), words16(wi)), idxW)
		c.VMOVDQU64(g.zmmConst(fmt.Sprintf("qsp%d", G), pi), idxP)
		off, nib := c.ZMM(), c.ZMM()
		if k.Format == Q8_0 {
			c.VMOVDQU64(g.zmmConst("qoffz80", rep16(0x80808080)), off)
		} else {
			c.VMOVDQU64(g.zmmConst("qoffz08", rep16(0x08080808)), off)
			c.VMOVDQU64(g.zmmConst("qnibz", rep16(0x0f0f0f0f)), nib)
		}
		loop := g.newLabel("grp")
		c.Label(loop)
		if R > 1 {
			for r := 0; r < R; r++ {
				c.PREFETCHNTA(operand.Mem{Base: wp, Disp: (r + qAhead*qRows) * rb})
			}
		}
		// Shared by the rows: the activation codes (in the lane layout), the
		// -o·Σx start, the activation scales widened to their lanes.
		var xa, xb reg.VecVirtual
		s := c.ZMM()
		c.VMOVDQA32(g.zeroZ, s)
		dx := c.ZMM()
		if k.Format == Q8_0 {
			xa = c.ZMM()
			c.VMOVDQU64(operand.Mem{Base: xp}, xa)
			c.VPDPBUSD(xa, off, s)
			c.VBROADCASTSD(operand.Mem{Base: sp}, dx)
		} else {
			x0, x1 := c.ZMM(), c.ZMM()
			c.VMOVDQU64(operand.Mem{Base: xp}, x0)
			c.VMOVDQU64(operand.Mem{Base: xp, Disp: 64}, x1)
			xa, xb = c.ZMM(), c.ZMM()
			c.VSHUFI64X2(operand.U8(0x88), x1, x0, xa) // first halves of x's 4 blocks
			c.VSHUFI64X2(operand.U8(0xdd), x1, x0, xb) // second halves
			c.VPDPBUSD(xa, off, s)
			c.VPDPBUSD(xb, off, s)
			c.VBROADCASTF32X4(operand.Mem{Base: sp}, dx)
		}
		c.VPERMPS(dx, idxP, dx)
		base := c.ZMM()
		c.VPSUBD(s, g.zeroZ, base)
		for r := 0; r < R; r++ {
			ro := r * rb
			isum := c.ZMM()
			c.VMOVDQA32(base, isum)
			if k.Format == Q8_0 {
				u := c.ZMM()
				c.VMOVDQU32(operand.Mem{Base: wp, Disp: ro + 2}, u.AsY())
				c.VINSERTI64X4(operand.U8(1), operand.Mem{Base: wp, Disp: ro + bb + 2}, u, u)
				c.VPXORD(off, u, u)
				c.VPDPBUSD(xa, u, isum)
			} else {
				raw := c.ZMM()
				c.VMOVDQU32(operand.Mem{Base: wp, Disp: ro + 2}, raw.AsX())
				for j := 1; j < 4; j++ {
					c.VINSERTI32X4(operand.U8(j), operand.Mem{Base: wp, Disp: ro + j*bb + 2}, raw, raw)
				}
				lo, hi := c.ZMM(), c.ZMM()
				c.VPANDD(nib, raw, lo)
				c.VPSRLW(operand.U8(4), raw, hi)
				c.VPANDD(nib, hi, hi)
				c.VPDPBUSD(xa, lo, isum)
				c.VPDPBUSD(xb, hi, isum)
			}
			f := c.ZMM()
			c.VCVTDQ2PS(isum, f)
			sw, d := c.ZMM(), c.ZMM()
			c.VPERMW(operand.Mem{Base: wp, Disp: ro}, idxW, sw)
			c.VCVTPH2PS(sw.AsY(), d)
			c.VMULPS(dx, d, d)
			c.VFMADD231PS(f, d, acc[r])
		}
		c.ADDQ(operand.U8(32*G), xp)
		c.ADDQ(operand.U8(4*G), sp)
		c.ADDQ(operand.U8(G*bb), wp)
		c.DECQ(cnt)
		c.JNZ(operand.LabelRef(loop))
	}
	// Leftover blocks, one at a time in YMM (their sums go to the low half
	// of each row's accumulator).
	if rest > 0 {
		tacc := make([]reg.VecVirtual, R)
		for r := range tacc {
			tacc[r] = c.ZMM()
			c.VMOVDQA32(g.zeroZ, tacc[r])
		}
		for i := 0; i < rest; i++ {
			x := c.YMM()
			c.VMOVDQU32(operand.Mem{Base: xp, Disp: 32 * i}, x)
			sx := c.YMM()
			c.VBROADCASTSS(operand.Mem{Base: sp, Disp: 4 * i}, sx)
			base := g.offsetSum(x)
			for r := 0; r < R; r++ {
				m := operand.Mem{Base: wp, Disp: r*rb + i*bb + 2}
				isum := g.dotVNNI(m, x, base)
				f := c.YMM()
				c.VCVTDQ2PS(isum, f)
				h, d := c.XMM(), c.YMM()
				c.VPBROADCASTW(operand.Mem{Base: wp, Disp: r*rb + i*bb}, h)
				c.VCVTPH2PS(h, d)
				c.VMULPS(sx, d, d)
				c.VFMADD231PS(f, d, tacc[r].AsY())
			}
		}
		for r := 0; r < R; r++ {
			c.VADDPS(tacc[r], acc[r], acc[r])
		}
	}
	for r := 0; r < R; r++ {
		y := c.YMM()
		c.VEXTRACTF64X4(operand.U8(1), acc[r], y)
		c.VADDPS(acc[r].AsY(), y, y)
		c.VMOVSS(g.hsum(y), operand.Mem{Base: out, Disp: 4 * r})
	}
}

// rowsQ4Y is rows for Q4_0 on AVX2: each step takes two blocks of R rows.
// The two blocks' 16 nibble bytes fill the two 128-bit halves of a YMM; the
// low nibbles (elements 0-15) meet x's first halves and the high ones x's
// second halves, arranged once per pair for all rows (VPERM2I128), so one
// AND, one shift+AND, two VPMADDUBSW, one VPADDW and one VPMADDWD per row
// cover 64 weights; lanes 0-3 belong to block b, 4-7 to b+1. The scales of
// the pair are two word broadcasts blended and widened by one VCVTPH2PS.
// A leftover block runs as in rows.
func (g *qamd) rowsQ4Y(R int, out, w, xq, xs reg.GPVirtual) {
	c, k := g.c, g.k
	rb, bb := k.RowBytes(), k.Format.BlockBytes()
	nb := k.Cols / 32
	pairs, rest := nb/2, nb%2
	nib, ones := g.bytesConst("qnib", 0x0f0f0f0f), g.bytesConst("qones16", 0x00010001)
	acc := make([]reg.VecVirtual, R)
	for r := range acc {
		acc[r] = c.YMM()
		c.VXORPS(acc[r], acc[r], acc[r])
	}
	wp, xp, sp := c.GP64(), c.GP64(), c.GP64()
	c.MOVQ(w, wp)
	c.MOVQ(xq, xp)
	c.MOVQ(xs, sp)
	if pairs > 0 {
		cnt := c.GP64()
		c.MOVQ(operand.U32(pairs), cnt)
		loop := g.newLabel("pair")
		c.Label(loop)
		if R == qRows {
			for r := 0; r < R; r++ {
				c.PREFETCHNTA(operand.Mem{Base: wp, Disp: (r + qAhead*R) * rb})
			}
		}
		x0, x1, xl, xh := c.YMM(), c.YMM(), c.YMM(), c.YMM()
		c.VMOVDQU(operand.Mem{Base: xp}, x0)
		c.VMOVDQU(operand.Mem{Base: xp, Disp: 32}, x1)
		c.VPERM2I128(operand.U8(0x20), x1, x0, xl) // first halves of both blocks
		c.VPERM2I128(operand.U8(0x31), x1, x0, xh) // second halves
		e, e2, base := c.YMM(), c.YMM(), c.YMM()
		c.VMOVDQU(g.bytesConst("qeight", 0x08080808), e)
		c.VPMADDUBSW(xh, e, e2)
		c.VPMADDUBSW(xl, e, e)
		c.VPADDW(e2, e, e)
		c.VPMADDWD(ones, e, base) // 8·Σx per lane
		dx, d1 := c.YMM(), c.XMM()
		c.VBROADCASTSS(operand.Mem{Base: sp}, dx)
		c.VBROADCASTSS(operand.Mem{Base: sp, Disp: 4}, d1)
		c.VINSERTF128(operand.U8(1), d1, dx, dx)
		for r := 0; r < R; r++ {
			ro := r * rb
			raw, hi := c.YMM(), c.YMM()
			c.VMOVDQU(operand.Mem{Base: wp, Disp: ro + 2}, raw.AsX())
			c.VINSERTI128(operand.U8(1), operand.Mem{Base: wp, Disp: ro + bb + 2}, raw, raw)
			c.VPSRLW(operand.U8(4), raw, hi)
			c.VPAND(nib, raw, raw)
			c.VPAND(nib, hi, hi)
			p, q := c.YMM(), c.YMM()
			c.VPMADDUBSW(xl, raw, p)
			c.VPMADDUBSW(xh, hi, q)
			c.VPADDW(q, p, p) // pairs at most 2·2·15·127: no overflow
			i32 := c.YMM()
			c.VPMADDWD(ones, p, i32)
			c.VPSUBD(base, i32, i32)
			f := c.YMM()
			c.VCVTDQ2PS(i32, f)
			h0, h1 := c.XMM(), c.XMM()
			c.VPBROADCASTW(operand.Mem{Base: wp, Disp: ro}, h0)
			c.VPBROADCASTW(operand.Mem{Base: wp, Disp: ro + bb}, h1)
			c.VPBLENDD(operand.U8(0xc), h1, h0, h0)
			d := c.YMM()
			c.VCVTPH2PS(h0, d)
			c.VMULPS(dx, d, d)
			c.VFMADD231PS(f, d, acc[r])
		}
		c.ADDQ(operand.U8(64), xp)
		c.ADDQ(operand.U8(8), sp)
		c.ADDQ(operand.U8(2*bb), wp)
		c.DECQ(cnt)
		c.JNZ(operand.LabelRef(loop))
	}
	if rest > 0 {
		x := c.YMM()
		c.VMOVDQU(operand.Mem{Base: xp}, x)
		sx := c.YMM()
		c.VBROADCASTSS(operand.Mem{Base: sp}, sx)
		eight := g.eightSum(x)
		for r := 0; r < R; r++ {
			isum := g.dotNibbles(operand.Mem{Base: wp, Disp: r*rb + 2}, x, eight)
			f := c.YMM()
			c.VCVTDQ2PS(isum, f)
			h, d := c.XMM(), c.YMM()
			c.VPBROADCASTW(operand.Mem{Base: wp, Disp: r * rb}, h)
			c.VCVTPH2PS(h, d)
			c.VMULPS(sx, d, d)
			c.VFMADD231PS(f, d, acc[r])
		}
	}
	for r := 0; r < R; r++ {
		c.VMOVSS(g.hsum(acc[r]), operand.Mem{Base: out, Disp: 4 * r})
	}
}
