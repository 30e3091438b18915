package asm

import (
	"math"

	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// ScreenAMD64 returns the assembly and stubs of runtime/screen's kernels:
// screenprep_avx512 and screenprep_avx2 (see screenPrep), screen_avx2 (see
// screenAVX2) and screen_avx512vnni
// (func(hi *float32, mask *uint16, w *byte,
// x *int32, row *float32, groups, quads int, tok *uint32)): every row's
// approximate logit from an int8 copy of a classifier, with its bound, and
// which rows may be the largest.
//
// w holds groups panels of 16 rows, each quads runs of 64 bytes: four
// columns of the 16 rows, lane i (4 bytes) row i's columns, as unsigned
// q+128. x holds quads dwords of four signed bytes, the quantised input.
// row holds per group 16 scales, 16 factors a and 16 factors n; tok the
// token's input scale sx, bound factors X and D (float bits) and the
// offset correction -128·Σx (int32). Per row r,
//
//	approx = (Σ(q+128)·x - 128·Σx)·scale·sx, B = a·X + n·D,
//	hi[r] = approx + B, and bit r of mask is set when hi[r] ≥ max(approx - B).
//
// One VPDPBUSD takes four columns of sixteen rows, the input's four bytes
// broadcast from memory, so the sixteen sums sit in the lanes of one
// register with no horizontal reduction; four accumulators (quads a
// multiple of 4) keep four VPDPBUSD in flight.
func ScreenAMD64(pkg string) (asmText, stubs []byte, err error) {
	c := build.NewContext()
	c.ConstraintExpr("!purego")
	leaf(c, "screen_avx512vnni",
		"func(hi *float32, mask *uint16, w *byte, x *int32, row *float32, groups, quads int, tok *uint32)",
		"screen_avx512vnni writes each row's upper bound into hi and sets the bits of mask of the rows whose upper bound reaches the largest lower bound (see asm.ScreenAMD64).")
	hi, mask, w, x, row, groups, quads, r := screenSetup(c, c.ZMM)
	maxlo := r.maxlo

	// Pass 1: approximations, bounds, the largest lower bound.
	hp, g := c.GP64(), c.GP64()
	c.MOVQ(hi, hp)
	c.MOVQ(groups, g)
	c.Label("scgroup")
	acc := make([]reg.VecVirtual, 4)
	for u := range acc {
		acc[u] = c.ZMM()
		c.VPXORD(acc[u], acc[u], acc[u])
	}
	xp, j := c.GP64(), c.GP64()
	c.MOVQ(x, xp)
	c.MOVQ(quads, j)
	c.Label("scquad")
	for u := range acc {
		v := c.ZMM()
		c.VMOVDQU32(operand.Mem{Base: w, Disp: 64 * u}, v)
		c.VPDPBUSD_BCST(operand.Mem{Base: xp, Disp: 4 * u}, v, acc[u])
	}
	c.ADDQ(operand.U32(256), w)
	c.ADDQ(operand.U8(16), xp)
	c.SUBQ(operand.U8(4), j)
	c.JNZ(operand.LabelRef("scquad"))
	c.VPADDD(acc[1], acc[0], acc[0])
	c.VPADDD(acc[3], acc[2], acc[2])
	c.VPADDD(acc[2], acc[0], acc[0])
	r.acc = acc[0]
	screenBounds(c, r, row, hp, 0, c.ZMM)
	c.ADDQ(operand.U8(64), hp)
	c.ADDQ(operand.U32(192), row)
	c.DECQ(g)
	c.JNZ(operand.LabelRef("scgroup"))

	// The largest lower bound in every lane.
	y := c.YMM()
	c.VEXTRACTF64X4(operand.U8(1), maxlo, y)
	c.VMAXPS(y, maxlo.AsY(), y)
	m := c.ZMM()
	c.VBROADCASTSS(hmaxPS(c, y), m)

	// Pass 2: the rows whose upper bound reaches it.
	c.MOVQ(hi, hp)
	c.MOVQ(groups, g)
	k := c.K()
	c.Label("scmask")
	c.VCMPPS(operand.U8(0x12), operand.Mem{Base: hp}, m, k) // m ≤ hi, ordered
	c.KMOVW(k, operand.Mem{Base: mask})
	c.ADDQ(operand.U8(64), hp)
	c.ADDQ(operand.U8(2), mask)
	c.DECQ(g)
	c.JNZ(operand.LabelRef("scmask"))
	c.VZEROUPPER()
	c.RET()

	screenAVX2(c)
	screenPrep(c, false)
	screenPrep(c, true)
	return printAVO(c, pkg, "screen")
}

// screenAVX2 emits screen_avx2, screen_avx512vnni's work for AVX2 machines
// over the same panels: a panel's 16 rows as two halves of 8 (bytes 0–31
// and 32–63). VPMADDUBSW multiplies the unsigned weight bytes by the
// input's signed bytes and adds adjacent pairs into int16 with saturation,
// so the input must be quantised to ±63 (runtime/screen's prepare does on
// this path): a pair is then at most 2·255·63 = 32130, below 2^15.
// VPMADDWD by ones widens each row's two pairs into its int32 sum.
func screenAVX2(c *build.Context) {
	leaf(c, "screen_avx2",
		"func(hi *float32, mask *uint16, w *byte, x *int32, row *float32, groups, quads int, tok *uint32)",
		"screen_avx2 is screen_avx512vnni for AVX2, with the input quantised to ±63 (see asm.ScreenAMD64 and screenAVX2).")
	hi, mask, w, x, row, groups, quads, r := screenSetup(c, c.YMM)
	maxlo := r.maxlo
	ones := c.YMM()
	{
		t := c.GP32()
		c.MOVL(operand.U32(0x00010001), t)
		c.VMOVD(t, ones.AsX())
		c.VPBROADCASTD(ones.AsX(), ones)
	}

	// Pass 1: approximations, bounds, the largest lower bound.
	hp, g := c.GP64(), c.GP64()
	c.MOVQ(hi, hp)
	c.MOVQ(groups, g)
	c.Label("sagroup")
	// acc[h][k]: half h's rows, quads of parity k (two chains per half).
	var acc [2][2]reg.VecVirtual
	for h := range acc {
		for k := range acc[h] {
			acc[h][k] = c.YMM()
			c.VPXOR(acc[h][k], acc[h][k], acc[h][k])
		}
	}
	xp, j := c.GP64(), c.GP64()
	c.MOVQ(x, xp)
	c.MOVQ(quads, j)
	c.Label("saquad")
	for u := range 4 {
		xb := c.YMM()
		c.VPBROADCASTD(operand.Mem{Base: xp, Disp: 4 * u}, xb)
		for h := range 2 {
			v := c.YMM()
			c.VMOVDQU(operand.Mem{Base: w, Disp: 64*u + 32*h}, v)
			c.VPMADDUBSW(xb, v, v) // v unsigned × xb signed
			c.VPMADDWD(ones, v, v)
			c.VPADDD(v, acc[h][u%2], acc[h][u%2])
		}
	}
	c.ADDQ(operand.U32(256), w)
	c.ADDQ(operand.U8(16), xp)
	c.SUBQ(operand.U8(4), j)
	c.JNZ(operand.LabelRef("saquad"))
	for h := range 2 {
		a := acc[h][0]
		c.VPADDD(acc[h][1], a, a)
		r.acc = a
		screenBounds(c, r, row, hp, 32*h, c.YMM)
	}
	c.ADDQ(operand.U8(64), hp)
	c.ADDQ(operand.U32(192), row)
	c.DECQ(g)
	c.JNZ(operand.LabelRef("sagroup"))

	// The largest lower bound in every lane.
	m := c.YMM()
	c.VBROADCASTSS(hmaxPS(c, maxlo), m)

	// Pass 2: the rows whose upper bound reaches it, 8 bits a half.
	c.MOVQ(hi, hp)
	c.MOVQ(groups, g)
	lo, hb := c.GP32(), c.GP32()
	c.Label("samask")
	for h, r := range []reg.GPVirtual{lo, hb} {
		t := c.YMM()
		c.VCMPPS(operand.U8(0x12), operand.Mem{Base: hp, Disp: 32 * h}, m, t) // m ≤ hi, ordered
		c.VMOVMSKPS(t, r)
	}
	c.SHLL(operand.U8(8), hb)
	c.ORL(lo, hb)
	c.MOVW(hb.As16(), operand.Mem{Base: mask})
	c.ADDQ(operand.U8(64), hp)
	c.ADDQ(operand.U8(2), mask)
	c.DECQ(g)
	c.JNZ(operand.LabelRef("samask"))
	c.VZEROUPPER()
	c.RET()
}

// screenSetup loads the screen kernels' arguments and broadcasts the token's
// factors (tok: sx, X, D and the offset correction) into vectors mk makes,
// with the running maximum of the lower bounds at -Inf.
func screenSetup(c *build.Context, mk func() reg.VecVirtual) (hi, mask, w, x, row, groups, quads reg.GPVirtual, r screenRegs) {
	hi, mask, w, x, row = loadParam(c, "hi"), loadParam(c, "mask"), loadParam(c, "w"), loadParam(c, "x"), loadParam(c, "row")
	groups, quads, tok := loadParam(c, "groups"), loadParam(c, "quads"), loadParam(c, "tok")
	r = screenRegs{sx: mk(), bx: mk(), bd: mk(), corr: mk(), maxlo: mk()}
	c.VBROADCASTSS(operand.Mem{Base: tok}, r.sx)
	c.VBROADCASTSS(operand.Mem{Base: tok, Disp: 4}, r.bx)
	c.VBROADCASTSS(operand.Mem{Base: tok, Disp: 8}, r.bd)
	c.VPBROADCASTD(operand.Mem{Base: tok, Disp: 12}, r.corr)
	t := c.GP32()
	c.MOVL(operand.U32(0xff800000), t)
	c.VMOVD(t, r.maxlo.(reg.Vec).AsX())
	c.VPBROADCASTD(r.maxlo.(reg.Vec).AsX(), r.maxlo)
	return hi, mask, w, x, row, groups, quads, r
}

// screenRegs are the registers screenBounds reads: a vector of rows' int32
// sums (acc, set per call) and the token's broadcast factors, and the
// running maximum it folds.
type screenRegs struct{ acc, corr, sx, bx, bd, maxlo reg.VecVirtual }

// screenBounds emits, for the rows whose int32 sums are in r.acc (sixteen on
// a ZMM, eight on a YMM, from byte disp of the group's factor arrays and of
// hp), approx = (sum + corr)·scale·sx and B = a·X + n·D, stores approx + B at
// hp+disp and folds approx − B into r.maxlo. mk makes a vector of acc's width.
func screenBounds(c *build.Context, r screenRegs, row, hp reg.GPVirtual, disp int, mk func() reg.VecVirtual) {
	c.VPADDD(r.corr, r.acc, r.acc)
	f, b, t := mk(), mk(), mk()
	c.VCVTDQ2PS(r.acc, f) // exact while 127·127·cols < 2^24 (cols ≤ 1040); the bound's slack covers more
	c.VMULPS(operand.Mem{Base: row, Disp: disp}, f, f)
	c.VMULPS(r.sx, f, f)
	c.VMULPS(operand.Mem{Base: row, Disp: 64 + disp}, r.bx, b)
	c.VFMADD231PS(operand.Mem{Base: row, Disp: 128 + disp}, r.bd, b)
	c.VADDPS(b, f, t)
	c.VMOVUPS(t, operand.Mem{Base: hp, Disp: disp})
	c.VSUBPS(b, f, t)
	c.VMAXPS(t, r.maxlo, r.maxlo)
}

// screenPrep emits screenprep_avx512 (func(xq *int32, xn *float32, tok
// *uint32, x, g *float32, n int, eps float32) bool), runtime/screen's
// prepare for n a multiple of 16: xn = RMSNorm(x)·gain, its int8 quantisation
// (round to nearest, clamped to ±127) packed four to a dword into xq, and tok
// as screen_avx512vnni reads it: sx = max|xn|/127, X = ‖xn‖ and
// D = ‖xn - sx·q‖ (each taken up by 2^-11 for their float32 sums' rounding)
// and -128·Σq, then inv = 1/sqrt(Σx²/n + eps). False, with nothing stored in tok, when max|xn| is NaN or
// outside [1e-10, 1e15). With avx2 it emits screenprep_avx2 instead: the
// same on YMMs for n a multiple of 8, quantised to ±63 for screen_avx2.
func screenPrep(c *build.Context, avx2 bool) {
	name, lanes, levels, vec := "screenprep_avx512", 16, 127, c.ZMM
	target := "screen_avx512vnni"
	if avx2 {
		name, lanes, levels, vec = "screenprep_avx2", 8, 63, c.YMM
		target = "screen_avx2"
	}
	leaf(c, name,
		"func(xq *int32, xn *float32, tok *uint32, x, gain *float32, n int, eps float32) bool",
		name+" normalises and quantises the classifier's input for "+target+" (see asm.ScreenAMD64).")
	xq, xn, tok, x, g, n := loadParam(c, "xq"), loadParam(c, "xn"), loadParam(c, "tok"), loadParam(c, "x"), loadParam(c, "gain"), loadParam(c, "n")
	// zero: not VXORPS, which on a ZMM is AVX512DQ (the screen does not check it).
	zero := func(v reg.VecVirtual) {
		if avx2 {
			c.VPXOR(v, v, v)
		} else {
			c.VPXORD(v, v, v)
		}
	}
	bcst := func(bits uint32) reg.VecVirtual {
		t, v := c.GP32(), vec()
		c.MOVL(operand.U32(bits), t)
		if avx2 { // AVX2's VPBROADCASTD takes no general register
			c.VMOVD(t, v.(reg.Vec).AsX())
			c.VPBROADCASTD(v.(reg.Vec).AsX(), v)
		} else {
			c.VPBROADCASTD(t, v)
		}
		return v
	}
	hsum := func(v reg.VecVirtual) reg.VecVirtual { // lane 0 of the result: the sum of v's lanes
		y := v
		if !avx2 {
			y = c.YMM()
			c.VEXTRACTF64X4(operand.U8(1), v, y)
			c.VADDPS(y, v.AsY(), y)
		}
		h := c.XMM()
		c.VEXTRACTF128(operand.U8(1), y, h)
		c.VADDPS(h, y.AsX(), h)
		t := c.XMM()
		c.VPERMILPS(operand.U8(0x4e), h, t)
		c.VADDPS(t, h, h)
		c.VPERMILPS(operand.U8(0xb1), h, t)
		c.VADDPS(t, h, h)
		return h
	}
	fold := func(v reg.VecVirtual, op func(a, b, dst operand.Op)) reg.VecVirtual {
		if avx2 {
			return foldY(c, v, op)
		}
		return foldD(c, v, op)
	}
	i := c.GP64()
	at := func(base reg.GPVirtual) operand.Mem { return operand.Mem{Base: base, Index: i, Scale: 4} }
	lbl := func(s string) string {
		if avx2 {
			return "y" + s
		}
		return s
	}

	// Σx², two accumulators.
	ss := []reg.VecVirtual{vec(), vec()}
	for _, a := range ss {
		zero(a)
	}
	c.XORQ(i, i)
	c.Label(lbl("sp1"))
	for k, acc := range ss { // n/lanes may be odd: the loop can leave after either
		v := vec()
		c.VMOVUPS(at(x), v)
		c.VFMADD231PS(v, v, acc)
		c.ADDQ(operand.U8(lanes), i)
		c.CMPQ(i, n)
		if k == 0 {
			c.JGE(operand.LabelRef(lbl("sp1done")))
		} else {
			c.JL(operand.LabelRef(lbl("sp1")))
		}
	}
	c.Label(lbl("sp1done"))
	c.VADDPS(ss[1], ss[0], ss[0])
	h := hsum(ss[0])
	nf, e := c.XMM(), c.XMM()
	c.VCVTSI2SSQ(n, nf, nf)
	c.VDIVSS(nf, h, h)
	c.VMOVSS(paramAddr(c, "eps"), e)
	c.VADDSS(e, h, h)
	c.VSQRTSS(h, h, h)
	one := c.XMM()
	c.MOVL(operand.U32(0x3f800000), i.As32())
	c.VMOVD(i.As32(), one)
	c.VDIVSS(h, one, one)
	inv := vec()
	c.VBROADCASTSS(one, inv)

	// xn, Σxn², max|xn| (as bits, unsigned: a NaN above every float).
	x2, mb, abs := vec(), vec(), bcst(0x7fffffff)
	zero(x2)
	zero(mb)
	c.XORQ(i, i)
	c.Label(lbl("sp2"))
	{
		v, a := vec(), vec()
		c.VMULPS(at(g), inv, v)
		c.VMULPS(at(x), v, v)
		c.VMOVUPS(v, at(xn))
		c.VFMADD231PS(v, v, x2)
		if avx2 {
			c.VPAND(abs, v, a)
		} else {
			c.VPANDD(abs, v, a)
		}
		c.VPMAXUD(a, mb, mb)
	}
	c.ADDQ(operand.U8(lanes), i)
	c.CMPQ(i, n)
	c.JL(operand.LabelRef(lbl("sp2")))
	{
		t := fold(mb, func(a, b, d operand.Op) { c.VPMAXUD(a, b, d) })
		m := c.GP32()
		c.VMOVD(t, m)
		c.CMPL(m, operand.U32(math.Float32bits(screenTiny)))
		c.JB(operand.LabelRef(lbl("spno")))
		c.CMPL(m, operand.U32(math.Float32bits(screenHuge)))
		c.JAE(operand.LabelRef(lbl("spno")))
		c.VMOVD(m, t)
		c.MOVL(operand.U32(math.Float32bits(float32(levels))), m)
		u2 := c.XMM()
		c.VMOVD(m, u2)
		c.VDIVSS(u2, t, t) // sx = max/levels
		c.VMOVSS(t, operand.Mem{Base: tok})
		c.MOVL(operand.U32(0x3f800000), m)
		c.VMOVD(m, u2)
		c.VDIVSS(t, u2, u2)
		sxv, rv := vec(), vec()
		c.VBROADCASTSS(t, sxv)
		c.VBROADCASTSS(u2, rv)

		// q = round(xn/sx) clamped, d = xn - sx·q, Σd², Σq.
		d2, qs, lo, hi := vec(), vec(), bcst(uint32(-int32(levels))), bcst(uint32(levels))
		zero(d2)
		zero(qs)
		c.XORQ(i, i)
		qp := c.GP64()
		c.MOVQ(xq, qp)
		c.Label(lbl("sp3"))
		v, q, f := vec(), vec(), vec()
		c.VMOVUPS(at(xn), v)
		c.VMULPS(rv, v, f)
		c.VCVTPS2DQ(f, q)
		c.VPMINSD(hi, q, q)
		c.VPMAXSD(lo, q, q)
		c.VPADDD(q, qs, qs)
		c.VCVTDQ2PS(q, f)
		c.VFNMADD231PS(sxv, f, v) // v - sx·q, one rounding
		c.VFMADD231PS(v, v, d2)
		if avx2 {
			// Eight dwords to eight bytes (within ±63: the packs keep them):
			// the upper half packs after the lower into words, then bytes.
			w := c.XMM()
			c.VEXTRACTI128(operand.U8(1), q, w)
			c.VPACKSSDW(w, q.(reg.Vec).AsX(), w)
			c.VPACKSSWB(w, w, w)
			c.VMOVQ(w, operand.Mem{Base: qp})
		} else {
			c.VPMOVDB(q, operand.Mem{Base: qp})
		}
		c.ADDQ(operand.U8(lanes), qp)
		c.ADDQ(operand.U8(lanes), i)
		c.CMPQ(i, n)
		c.JL(operand.LabelRef(lbl("sp3")))

		grow := c.XMM()
		c.MOVL(operand.U32(0x3f800800), m) // 1 + 2^-11
		c.VMOVD(m, grow)
		for k, acc := range []reg.VecVirtual{x2, d2} {
			s := hsum(acc)
			c.VSQRTSS(s, s, s)
			c.VMULSS(grow, s, s)
			c.VMOVSS(s, operand.Mem{Base: tok, Disp: 4 + 4*k})
		}
		{
			t := fold(qs, func(a, b, d operand.Op) { c.VPADDD(a, b, d) })
			c.VMOVD(t, m)
			c.IMUL3L(operand.I32(-128), m, m)
			c.MOVL(m, operand.Mem{Base: tok, Disp: 12})
		}
		c.VMOVSS(one, operand.Mem{Base: tok, Disp: 16}) // inv, for the overflow check
	}
	ok := c.GP8()
	c.MOVB(operand.U8(1), ok)
	c.Store(ok, c.ReturnIndex(0))
	c.VZEROUPPER()
	c.RET()
	c.Label(lbl("spno"))
	c.MOVB(operand.U8(0), ok)
	c.Store(ok, c.ReturnIndex(0))
	c.VZEROUPPER()
	c.RET()
}

// screenTiny and screenHuge are runtime/screen's tiny and huge: the prep
// kernels decline an input whose max|xn| is outside [tiny, huge) (compared
// as float32 bits), as its Go loop does.
const screenTiny, screenHuge float32 = 1e-10, 1e15

// foldD folds the 16 dwords of the ZMM v with op (VPADDD, VPMAXUD: op(a, b,
// dst) in Go operand order) into lane 0 of the XMM it returns.
func foldD(c *build.Context, v reg.VecVirtual, op func(a, b, dst operand.Op)) reg.VecVirtual {
	y := c.YMM()
	c.VEXTRACTI64X4(operand.U8(1), v, y)
	op(y, v.AsY(), y)
	return foldY(c, y, op)
}

// foldY is foldD for the 8 dwords of the YMM v.
func foldY(c *build.Context, v reg.VecVirtual, op func(a, b, dst operand.Op)) reg.VecVirtual {
	t := c.XMM()
	c.VEXTRACTI128(operand.U8(1), v, t)
	op(t, v.(reg.Vec).AsX(), t)
	u := c.XMM()
	c.VPSHUFD(operand.U8(0x4e), t, u)
	op(u, t, t)
	c.VPSHUFD(operand.U8(0xb1), t, u)
	op(u, t, t)
	return t
}
