package asm

import (
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The AVX-512 VNNI panel kernels (QKernel.Panel): the quantised matvec over
// weights rearranged at load by runtime/quant.Panels (its comment has the
// layout; QPanelRows must equal quant.PanelRows, which quanttest checks).
//
// Why a second layout: in ggml's, a kernel that shares the activation work
// across rows walks 8 row streams at once, and from one core that streams
// at about 60 % of the read bandwidth; one row at a time is one stream but
// does the activation work (and the scale shuffles) again for every row.
// In a panel, 16 rows' codes sit interleaved by 4 bytes, so one ZMM load is
// 4 codes of each of 16 rows and one VPDPBUSD with the activation's 4 bytes
// broadcast from memory adds all 16 partial dots: 8 loads and 8 VPDPBUSD
// (Q8_0) per block of 16 rows, no shuffles, and the weights are one linear
// stream. The 16 lanes of the float accumulator are the 16 rows' outputs.
//
// The offset making the codes unsigned (Q8_0 +128, Q4_0 +8) costs o·Σx per
// block, the same for every row: a table of -o·Σx_b is made on the stack
// once per call and each block's integer sums start from it.

// QPanelRows is runtime/quant.PanelRows.
const QPanelRows = 16

// panel emits the whole panel kernel body after the parameters are loaded.
func (g *qamd) panel(out, w, xq, xs, n reg.GPVirtual) {
	c, k := g.c, g.k
	nb := k.Cols / 32
	bb := k.Format.BlockBytes()
	pb := QPanelRows * bb // one block of a panel
	off := uint32(0x80808080)
	if k.Format == Q4_0 {
		off = 0x08080808
	}

	// The table of -o·Σx_b, one int32 per block.
	tbl := c.AllocLocal((4*nb + 7) &^ 7)
	offY := c.YMM()
	c.VMOVDQU(g.bytesConst(qOffName(off), off), offY)
	{
		xp, tp, cnt := c.GP64(), c.GP64(), c.GP64()
		c.MOVQ(xq, xp)
		c.LEAQ(tbl, tp)
		c.MOVQ(operand.U32(nb), cnt)
		loop := g.newLabel("sum")
		c.Label(loop)
		s := c.YMM()
		c.VMOVDQA32(g.zero, s)
		c.VPDPBUSD(operand.Mem{Base: xp}, offY, s)
		h := c.XMM()
		c.VEXTRACTI32X4(operand.U8(1), s, h)
		c.VPADDD(s.AsX(), h, h)
		t := c.XMM()
		c.VPSHUFD(operand.U8(0x4e), h, t)
		c.VPADDD(t, h, h)
		c.VPSHUFD(operand.U8(0xb1), h, t)
		c.VPADDD(t, h, h)
		c.VPSUBD(h, g.zeroZ.AsX(), h)
		c.VMOVD(h, operand.Mem{Base: tp})
		c.ADDQ(operand.U8(32), xp)
		c.ADDQ(operand.U8(4), tp)
		c.DECQ(cnt)
		c.JNZ(operand.LabelRef(loop))
	}
	var nib reg.VecVirtual
	if k.Format == Q4_0 {
		nib = c.ZMM()
		c.VMOVDQU64(g.zmmConst("qnibz", rep16(0x0f0f0f0f)), nib)
	}

	// The panels, one token: the matmul's arithmetic (panelTokens).
	k1 := c.K()
	tp := c.GP64()
	c.LEAQ(tbl, tp)
	panelLoop, done := g.newLabel("panel"), g.newLabel("pdone")
	c.Label(panelLoop)
	c.TESTQ(n, n)
	c.JLE(operand.LabelRef(done))
	g.panelMask(n, k1)
	g.panelTokens(1, w, out, xq, xs, tp, nib, k1)
	c.ADDQ(operand.U32(nb*pb), w)
	c.ADDQ(operand.U8(4*QPanelRows), out)
	c.SUBQ(operand.U8(QPanelRows), n)
	c.JMP(operand.LabelRef(panelLoop))
	c.Label(done)
}

// panelMask sets k1 to the rows of the panel that exist: all 16, or the
// last n (BZHI reads only the index's low byte, hence the CMOV for n ≥ 16).
func (g *qamd) panelMask(n reg.GPVirtual, k1 reg.Register) {
	c := g.c
	ones, mk := c.GP32(), c.GP32()
	c.MOVL(operand.U32(0xffff), ones)
	c.BZHIL(n.As32(), ones, mk)
	c.CMPQ(n, operand.U8(QPanelRows))
	c.CMOVLGE(ones, mk)
	c.KMOVW(mk, k1)
}

func qOffName(off uint32) string {
	if off == 0x80808080 {
		return "qoff80"
	}
	return "qoff8"
}

// panelMatMul is the panel kernel over b tokens (QKernel.Panel with Rows =
// the output stride per token): for each panel, the tokens in groups of 4
// (then one at a time) take the panel's blocks while they sit in L1, each
// token with the arithmetic of panel (so its outputs equal panel's bit for
// bit). The -o·Σx table comes from the caller (xsum, quant.ActSums), one
// row of blocks per token, as the codes (xq) and scales (xs) do.
func (g *qamd) panelMatMul(out, w, xq, xs, xsum, n, b reg.GPVirtual) {
	c, k := g.c, g.k
	nb := k.Cols / 32
	pb := QPanelRows * k.Format.BlockBytes()
	done := g.newLabel("pmmdone")
	c.TESTQ(b, b)
	c.JZ(operand.LabelRef(done))
	var nib reg.VecVirtual
	if k.Format == Q4_0 {
		nib = c.ZMM()
		c.VMOVDQU64(g.zmmConst("qnibz", rep16(0x0f0f0f0f)), nib)
	}
	k1 := c.K()

	panelLoop := g.newLabel("pmmpanel")
	c.Label(panelLoop)
	c.TESTQ(n, n)
	c.JLE(operand.LabelRef(done))
	g.panelMask(n, k1)
	op, xp, sp, tp, t := c.GP64(), c.GP64(), c.GP64(), c.GP64(), c.GP64()
	c.MOVQ(out, op)
	c.MOVQ(xq, xp)
	c.MOVQ(xs, sp)
	c.MOVQ(xsum, tp)
	c.MOVQ(b, t)
	group, single, next := g.newLabel("pmm4_"), g.newLabel("pmm1_"), g.newLabel("pmmnext")
	c.Label(group)
	c.CMPQ(t, operand.U8(4))
	c.JL(operand.LabelRef(single))
	g.panelTokens(4, w, op, xp, sp, tp, nib, k1)
	c.ADDQ(operand.U32(4*4*k.Rows), op)
	c.ADDQ(operand.U32(4*k.Cols), xp)
	c.ADDQ(operand.U32(4*4*nb), sp)
	c.ADDQ(operand.U32(4*4*nb), tp)
	c.SUBQ(operand.U8(4), t)
	c.JMP(operand.LabelRef(group))
	c.Label(single)
	c.TESTQ(t, t)
	c.JZ(operand.LabelRef(next))
	g.panelTokens(1, w, op, xp, sp, tp, nib, k1)
	c.ADDQ(operand.U32(4*k.Rows), op)
	c.ADDQ(operand.U32(k.Cols), xp)
	c.ADDQ(operand.U32(4*nb), sp)
	c.ADDQ(operand.U32(4*nb), tp)
	c.DECQ(t)
	c.JMP(operand.LabelRef(single))
	c.Label(next)
	c.ADDQ(operand.U32(nb*pb), w)
	c.ADDQ(operand.U8(4*QPanelRows), out)
	c.SUBQ(operand.U8(QPanelRows), n)
	c.JMP(operand.LabelRef(panelLoop))
	c.Label(done)
}

// panelTokens runs the panel at w for T tokens whose codes, scales and
// table rows start at xq0, xs0, ts0 (token i at +i rows), storing the rows
// selected by k1 at out0 + i·Rows floats.
func (g *qamd) panelTokens(T int, w, out0, xq0, xs0, ts0 reg.GPVirtual, nib reg.VecVirtual, k1 reg.Register) {
	c, k := g.c, g.k
	nb := k.Cols / 32
	pb := QPanelRows * k.Format.BlockBytes()
	pairs, odd := nb/2, nb%2
	chunks := 8
	if k.Format == Q4_0 {
		chunks = 4
	}
	acc := make([][2]reg.VecVirtual, T)
	for i := range acc {
		for j := range acc[i] {
			acc[i][j] = c.ZMM()
			c.VMOVDQA32(g.zeroZ, acc[i][j])
		}
	}
	// i is 8 × the pair: x advances 64 bytes a pair, the scales and the
	// table 8 (few registers: the caller's hold the token groups).
	wp, i8 := c.GP64(), c.GP64()
	c.MOVQ(w, wp)
	c.XORQ(i8, i8)
	xm := func(disp int) operand.Mem { return operand.Mem{Base: xq0, Index: i8, Scale: 8, Disp: disp} }
	sm := func(disp int) operand.Mem { return operand.Mem{Base: xs0, Index: i8, Scale: 1, Disp: disp} }
	tm := func(disp int) operand.Mem { return operand.Mem{Base: ts0, Index: i8, Scale: 1, Disp: disp} }
	block := func(j, scales, codes int) {
		// The block's codes once for all T tokens.
		var lo, hi []reg.VecVirtual
		for m := 0; m < chunks; m++ {
			v, at := c.ZMM(), operand.Mem{Base: wp, Disp: codes + 64*m}
			if k.Format == Q4_0 {
				// The loads folded into the masks: fewer instructions per
				// byte keep more of the stream in flight.
				h := c.ZMM()
				c.VPANDD(at, nib, v)
				c.VPANDND(at, nib, h)
				hi = append(hi, h)
			} else {
				c.VMOVDQU32(at, v)
			}
			lo = append(lo, v)
		}
		d := c.ZMM()
		c.VCVTPH2PS(operand.Mem{Base: wp, Disp: scales}, d)
		for i := 0; i < T; i++ {
			x := func(disp int) operand.Mem { return xm(i*k.Cols + 32*j + disp) }
			a := c.ZMM()
			c.VPBROADCASTD(tm(4*i*nb+4*j), a)
			if k.Format == Q8_0 && T > 1 {
				for m := 0; m < chunks; m++ {
					c.VPDPBUSD_BCST(x(4*m), lo[m], a)
				}
			} else if k.Format == Q8_0 {
				// One token: two chains of 4 for latency (the same sum).
				b2 := c.ZMM()
				c.VMOVDQA32(g.zeroZ, b2)
				for m := 0; m < chunks; m++ {
					dst := a
					if m%2 == 1 {
						dst = b2
					}
					c.VPDPBUSD_BCST(x(4*m), lo[m], dst)
				}
				c.VPADDD(b2, a, a)
			} else {
				bh := c.ZMM()
				c.VMOVDQA32(g.zeroZ, bh)
				for m := 0; m < chunks; m++ {
					c.VPDPBUSD_BCST(x(4*m), lo[m], a)
					c.VPDPBUSD_BCST(x(16+4*m), hi[m], bh)
				}
				c.VPSRAD(operand.U8(4), bh, bh)
				c.VPADDD(bh, a, a)
			}
			f, dt := c.ZMM(), c.ZMM()
			c.VCVTDQ2PS(a, f)
			c.VMULPS_BCST(sm(4*i*nb+4*j), d, dt)
			c.VFMADD231PS(f, dt, acc[i][j])
		}
	}
	if pairs > 0 {
		loop := g.newLabel("pmmpair")
		c.Label(loop)
		block(0, 0, 64)
		block(1, 32, 64+pb-32)
		c.ADDQ(operand.U32(2*pb), wp)
		c.ADDQ(operand.U8(8), i8)
		c.CMPQ(i8, operand.U32(8*pairs))
		c.JNE(operand.LabelRef(loop))
	}
	if odd > 0 {
		block(0, 0, 32)
	}
	for i := range acc {
		c.VADDPS(acc[i][1], acc[i][0], acc[i][0])
		c.VMOVUPS(acc[i][0], k1, operand.Mem{Base: out0, Disp: 4 * i * k.Rows})
	}
}
