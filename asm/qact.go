package asm

import (
	"math"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// QuantActAMD64 returns the assembly and stubs of quantizeAct_avx2, the AVX2
// form of runtime/quant.QuantizeAct (func(xq *int8, xs *float32, x *float32,
// nb int): nb blocks of 32), with the reference's arithmetic to the bit:
// xs[b] = max|x_b|/127 rounded to float16 (VCVTPS2PH, to nearest even),
// id = 127/max|x_b| (0 when xs[b] is 0), and each code x·id rounded to
// nearest, ties to even; the code is the low byte of the converted integer
// (a NaN converts to 0x80000000, so to 0, as the Go loop's NaN case gives).
func QuantActAMD64(pkg string) (asmText, stubs []byte, err error) {
	c := build.NewContext()
	c.ConstraintExpr("!purego")
	cst := newConstPool(c).u32
	leaf(c, "quantizeAct_avx2", "func(xq *int8, xs *float32, x *float32, nb int)", "quantizeAct_avx2 is QuantizeAct over nb blocks of 32 activations.")
	xq, xs, x, nb := loadParam(c, "xq"), loadParam(c, "xs"), loadParam(c, "x"), loadParam(c, "nb")
	abs, n127 := c.YMM(), c.YMM()
	c.VMOVUPS(cst("qaabs", 0x7fffffff), abs)
	c.VMOVUPS(cst("qa127", math.Float32bits(127)), n127)
	lowByte := c.YMM()
	c.VMOVUPS(cst("qalow", 0xff), lowByte)
	perm := c.YMM()
	pm := c.StaticGlobal("qaperm")
	c.DataAttributes(attr.RODATA | attr.NOPTR)
	for _, v := range []uint32{0, 4, 1, 5, 2, 6, 3, 7} {
		c.AppendDatum(operand.U32(v))
	}
	c.VMOVDQU(pm, perm)
	done := "qadone"
	c.TESTQ(nb, nb)
	c.JZ(operand.LabelRef(done))
	c.Label("qablk")
	v := make([]reg.VecVirtual, 4)
	for i := range v {
		v[i] = c.YMM()
		c.VMOVUPS(operand.Mem{Base: x, Disp: 32 * i}, v[i])
	}
	a := make([]reg.VecVirtual, 4)
	for i := range a {
		a[i] = c.YMM()
		c.VANDPS(abs, v[i], a[i])
	}
	c.VMAXPS(a[1], a[0], a[0])
	c.VMAXPS(a[3], a[2], a[2])
	c.VMAXPS(a[2], a[0], a[0])
	h, t := c.XMM(), c.XMM()
	c.VEXTRACTF128(operand.U8(1), a[0], h)
	c.VMAXPS(h, a[0].AsX(), h)
	c.VPERMILPS(operand.U8(0x4e), h, t)
	c.VMAXPS(t, h, h)
	c.VPERMILPS(operand.U8(0xb1), h, t)
	c.VMAXPS(t, h, h)
	d := c.XMM()
	c.VDIVSS(n127.AsX(), h, d)       // d = amax/127
	c.VCVTPS2PH(operand.U8(0), d, d) // to float16, nearest even
	c.VCVTPH2PS(d, d)
	c.VMOVSS(d, operand.Mem{Base: xs})
	c.VDIVSS(h, n127.AsX(), h) // 127/amax
	dy, id, z := c.YMM(), c.YMM(), c.YMM()
	c.VBROADCASTSS(d, dy)
	c.VBROADCASTSS(h, id)
	c.VXORPS(z, z, z)
	c.VCMPPS(operand.U8(4), z, dy, z) // d != 0
	c.VANDPS(z, id, id)
	q := make([]reg.VecVirtual, 4)
	for i := range q {
		f := c.YMM()
		c.VMULPS(id, v[i], f)
		c.VROUNDPS(operand.U8(0), f, f) // nearest, ties to even
		q[i] = c.YMM()
		c.VCVTTPS2DQ(f, q[i])
	}
	// Low bytes: the codes are in [-127, 127] but for a NaN one (an
	// infinite or NaN input), which converts to 0x80000000 and so to 0, as
	// the Go loop's roundCode gives.
	for i := range q {
		c.VPAND(lowByte, q[i], q[i])
	}
	c.VPACKUSDW(q[1], q[0], q[0])
	c.VPACKUSDW(q[3], q[2], q[2])
	c.VPACKUSWB(q[2], q[0], q[0])
	c.VPERMD(q[0], perm, q[0])
	c.VMOVDQU(q[0], operand.Mem{Base: xq})
	c.ADDQ(operand.U8(32), xq)
	c.ADDQ(operand.U8(4), xs)
	c.ADDQ(operand.U32(128), x)
	c.DECQ(nb)
	c.JNZ(operand.LabelRef("qablk"))
	c.Label(done)
	c.VZEROUPPER()
	c.RET()
	return printAVO(c, pkg, "quantizeAct")
}
