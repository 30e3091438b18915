package asm

import (
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// ArgmaxAMD64 returns the assembly and stubs of argmax_avx2, the AVX2 form
// of runtime/sample.Argmax for n ≥ 1 floats (func(x *float32, n int) int):
// the index of the first element equal to the largest, or -1 when x holds
// a NaN (the caller then runs its Go loop, whose answer with NaNs depends
// on where they are). Two passes over x: the maximum (four running VMAXPS
// and an unordered compare of every element with itself), then the first
// position equal to it (VCMPPS, VMOVMSKPS, BSF); -0 and +0 are equal there,
// as they are to the Go loop's >.
func ArgmaxAMD64(pkg string) (asmText, stubs []byte, err error) {
	c := build.NewContext()
	c.ConstraintExpr("!purego")
	leaf(c, "argmax_avx2", "func(x *float32, n int) int", "argmax_avx2 is the index of the first largest of the n ≥ 1 floats at x, or -1 if one is a NaN.")
	x, n := loadParam(c, "x"), loadParam(c, "n")
	at := func(i reg.GPVirtual, disp int) operand.Mem {
		return operand.Mem{Base: x, Index: i, Scale: 4, Disp: disp}
	}

	// Pass 1: the maximum, and whether anything is unordered (a NaN).
	m := make([]reg.VecVirtual, 4)
	for j := range m {
		m[j] = c.YMM()
		c.VBROADCASTSS(operand.Mem{Base: x}, m[j])
	}
	nan := c.YMM()
	c.VXORPS(nan, nan, nan)
	i := c.GP64()
	c.XORQ(i, i)
	end := c.GP64() // n rounded down to whole 32-float steps
	c.MOVQ(n, end)
	c.ANDQ(operand.I32(-32), end)
	c.CMPQ(end, operand.Imm(0))
	c.JE(operand.LabelRef("amtail"))
	c.Label("amvec")
	for j := range m {
		v, u := c.YMM(), c.YMM()
		c.VMOVUPS(at(i, 32*j), v)
		c.VCMPPS(operand.U8(3), v, v, u) // unordered: v is a NaN
		c.VORPS(u, nan, nan)
		c.VMAXPS(v, m[j], m[j])
	}
	c.ADDQ(operand.U8(32), i)
	c.CMPQ(i, end)
	c.JL(operand.LabelRef("amvec"))
	// Lanes, then the last n mod 32 one at a time (scalar ops on h only: a
	// VEX scalar op would clear the upper lanes of a YMM accumulator).
	c.Label("amtail")
	nm := c.GP32()
	c.VMOVMSKPS(nan, nm)
	c.TESTL(nm, nm)
	c.JNZ(operand.LabelRef("amnan"))
	c.VMAXPS(m[1], m[0], m[0])
	c.VMAXPS(m[3], m[2], m[2])
	c.VMAXPS(m[2], m[0], m[0])
	h := hmaxPS(c, m[0])
	c.Label("amscalar")
	c.CMPQ(i, n)
	c.JGE(operand.LabelRef("ambest"))
	{
		v := c.XMM()
		c.VMOVSS(at(i, 0), v)
		c.VUCOMISS(v, v)
		c.JP(operand.LabelRef("amnan")) // unordered: a NaN
		c.VMAXSS(v, h, h)
		c.INCQ(i)
		c.JMP(operand.LabelRef("amscalar"))
	}
	c.Label("ambest")
	best := c.YMM()
	c.VBROADCASTSS(h, best)

	// Pass 2: the first position equal to it (there is one: no NaNs).
	c.XORQ(i, i)
	c.MOVQ(n, end)
	c.ANDQ(operand.I32(-8), end)
	mask := c.GP32()
	c.Label("amfind")
	c.CMPQ(i, end)
	c.JGE(operand.LabelRef("amfindtail"))
	{
		e := c.YMM()
		c.VCMPPS(operand.U8(0), at(i, 0), best, e) // equal
		c.VMOVMSKPS(e, mask)
		c.TESTL(mask, mask)
		c.JNZ(operand.LabelRef("amfound"))
		c.ADDQ(operand.U8(8), i)
		c.JMP(operand.LabelRef("amfind"))
	}
	c.Label("amfound")
	c.BSFL(mask, mask)
	lane := c.GP64()
	c.MOVL(mask, lane.As32()) // zero-extends
	c.ADDQ(lane, i)
	c.JMP(operand.LabelRef("amret"))
	c.Label("amfindtail")
	{
		e := c.XMM()
		c.VMOVSS(at(i, 0), e)
		c.VUCOMISS(h, e)
		c.JE(operand.LabelRef("amret")) // equal (no NaNs are left)
		c.INCQ(i)
		c.JMP(operand.LabelRef("amfindtail"))
	}
	c.Label("amnan")
	c.MOVQ(operand.I32(-1), i)
	c.Label("amret")
	c.Store(i, c.ReturnIndex(0))
	c.VZEROUPPER()
	c.RET()

	return printAVO(c, pkg, "argmax")
}

// hmaxPS returns an XMM whose lanes all hold the largest of the 8 floats of
// the YMM v (which must hold no NaN).
func hmaxPS(c *build.Context, v reg.VecVirtual) reg.VecVirtual {
	h, t := c.XMM(), c.XMM()
	c.VEXTRACTF128(operand.U8(1), v, h)
	c.VMAXPS(h, v.AsX(), h)
	c.VPERMILPS(operand.U8(0x4e), h, t)
	c.VMAXPS(t, h, h)
	c.VPERMILPS(operand.U8(0xb1), h, t)
	c.VMAXPS(t, h, h)
	return h
}
