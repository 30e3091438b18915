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
// xs[b] = max|x_b|/127, id = 1/xs[b] (0 when xs[b] is 0), and each code
// x·id rounded half away from zero: trunc(f) + copysign(1, f) where the
// fraction f - trunc(f) (exact) is at least one half; the code is the low
// byte of that integer, as Go's conversion keeps it.
func QuantActAMD64(pkg string) (asmText, stubs []byte, err error) {
	c := build.NewContext()
	c.ConstraintExpr("!purego")
	consts := map[string]operand.Mem{}
	cst := func(name string, v uint32) operand.Mem {
		if m, ok := consts[name]; ok {
			return m
		}
		m := c.StaticGlobal(name)
		c.DataAttributes(attr.RODATA | attr.NOPTR)
		for i := 0; i < 8; i++ {
			c.AppendDatum(operand.U32(v))
		}
		consts[name] = m
		return m
	}
	c.Function("quantizeAct_avx2")
	c.Attributes(attr.NOSPLIT)
	c.Pragma("noescape")
	c.SignatureExpr("func(xq *int8, xs *float32, x *float32, nb int)")
	c.Doc("quantizeAct_avx2 is QuantizeAct over nb blocks of 32 activations.")
	xq, xs, x, nb := loadParam(c, "xq"), loadParam(c, "xs"), loadParam(c, "x"), loadParam(c, "nb")
	abs, sign, half, one, n127 := c.YMM(), c.YMM(), c.YMM(), c.YMM(), c.YMM()
	c.VMOVUPS(cst("qaabs", 0x7fffffff), abs)
	c.VMOVUPS(cst("qasign", 0x80000000), sign)
	c.VMOVUPS(cst("qahalf", math.Float32bits(0.5)), half)
	c.VMOVUPS(cst("qaone", math.Float32bits(1)), one)
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
	c.VDIVSS(n127.AsX(), h, d) // d = amax/127
	c.VMOVSS(d, operand.Mem{Base: xs})
	dy, id, z := c.YMM(), c.YMM(), c.YMM()
	c.VBROADCASTSS(d, dy)
	c.VDIVPS(dy, one, id) // 1/d
	c.VXORPS(z, z, z)
	c.VCMPPS(operand.U8(4), z, dy, z) // d != 0
	c.VANDPS(z, id, id)
	q := make([]reg.VecVirtual, 4)
	for i := range q {
		f, tr, fr, s := c.YMM(), c.YMM(), c.YMM(), c.YMM()
		c.VMULPS(id, v[i], f)
		c.VROUNDPS(operand.U8(3), f, tr) // toward zero
		c.VSUBPS(tr, f, fr)
		c.VANDPS(abs, fr, fr)
		c.VCMPPS(operand.U8(13), half, fr, fr) // |frac| >= 0.5
		c.VANDPS(sign, f, s)
		c.VORPS(one, s, s) // copysign(1, f)
		c.VANDPS(fr, s, s)
		c.VADDPS(s, tr, tr)
		q[i] = c.YMM()
		c.VCVTTPS2DQ(tr, q[i])
	}
	// Low bytes, as Go's int8(int32(...)) keeps them: an infinite or NaN
	// code (a block of subnormals, whose 1/d overflows) converts to
	// 0x80000000 and so to 0, as on the Go path on amd64.
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
