package asm

import (
	"math"
	"strconv"

	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Softmax exponentials (runtime/sample): what the sampler computes is
// float32(math.Exp(float64(d))) for every d = logit/temperature - max, and
// the kernels must give those very bits, so that a seed draws the same
// tokens on every path and machine. expshift_avx2 evaluates exp in float64
// to within 2^-46 (2^-51 of math.Exp at worst in the tests): Cody–Waite
// reduction by ln 2, Taylor to degree 12 in Estrin's form with FMA, 2^k from the
// bits. It keeps the float32 rounding of its value y only when y lies more
// than 2^-45·y from the rounding midpoint: math.Exp is within 2^-52 of the
// true value, as y is within 2^-46, so both then round alike. Otherwise (one
// in ≈ 2^20 of random inputs, and every d outside [-87, 0] but for d ≤ -104,
// whose exponential rounds to 0) the lane is -1 and the caller calls
// math.Exp.
const (
	softmaxShifter = 0x1.8p52
	softmaxMargin  = 256
	softmaxLow     = -87  // exp(-87) ≈ 1.6e-38: a normal float32
	softmaxZeroLim = -104 // exp(-104) ≈ 6.8e-46 < 2^-150: rounds to 0
)

// SoftmaxAMD64 returns the assembly and stubs of runtime/sample's AVX2
// softmax kernels:
//
//   - scalemax_avx2(p, logits *float32, n int, temp float32) float32 writes
//     p[i] = logits[i]/temp for the n ≥ 1 logits and returns the largest,
//     NaNs skipped (-Inf when all are NaN), as the Go loop does;
//   - expshift_avx2(p *float32, n int, mx float32) (sum float32, bad int)
//     replaces p[i] by float32(math.Exp(float64(p[i]-mx))) for n a multiple
//     of 8, or by -1 where it cannot vouch for those bits (bad is then
//     non-zero), and returns the float32 sum of what it wrote, added in
//     index order as the Go loop does;
//   - scale_avx2(p *float32, n int, s float32) multiplies the n floats at p
//     by s.
func SoftmaxAMD64(pkg string) (asmText, stubs []byte, err error) {
	c := build.NewContext()
	c.ConstraintExpr("!purego")
	k := newConstPool(c)
	f64 := k.f64

	scaleMax(c, k)

	leaf(c, "expshift_avx2", "func(p *float32, n int, mx float32) (sum float32, bad int)", "expshift_avx2 replaces each of the n (a multiple of 8) floats at p by float32(math.Exp(float64(p[i]-mx))), or by -1 where it cannot vouch for those bits (then bad is non-zero), and returns their float32 sum added in order.")
	p, n := loadParam(c, "p"), loadParam(c, "n")
	mx := c.XMM()
	c.VBROADCASTSS(paramAddr(c, "mx"), mx)
	bad := c.YMM()
	c.VXORPD(bad, bad, bad)
	sum := c.XMM()
	c.VXORPS(sum, sum, sum)
	i := c.GP64()
	c.XORQ(i, i)
	// One group of 4 lanes a step: two interleaved groups ran a fifth
	// faster but need 18 vector registers, and AVX2 has 16.
	c.Label("eloop")
	c.CMPQ(i, n)
	c.JGE(operand.LabelRef("edone"))
	const groups = 1
	var x, kd, r, e [groups]reg.VecVirtual
	at := func(g int) operand.Mem { return operand.Mem{Base: p, Index: i, Scale: 4, Disp: 16 * g} }
	for g := range groups {
		d := c.XMM()
		c.VMOVUPS(at(g), d)
		c.VSUBPS(mx, d, d) // float32, as the Go loop's p[i] - mx
		x[g] = c.YMM()
		c.VCVTPS2PD(d, x[g])
	}
	// x = k·ln2 + r, |r| ≤ ln2/2; exp(r) by Taylor; 2^k from its bits.
	// k is rounded by adding 1.5·2^52, which leaves it (two's complement)
	// in the low bits of kd for expCheck's 2^k.
	for g := range groups {
		kd[g] = c.YMM()
		c.VMULPD(f64("sm_log2e", math.Log2E), x[g], kd[g])
		c.VADDPD(f64("sm_shifter", softmaxShifter), kd[g], kd[g])
	}
	for g := range groups {
		kf := c.YMM()
		c.VSUBPD(f64("sm_shifter", softmaxShifter), kd[g], kf) // k as a float64
		r[g] = c.YMM()
		c.VMOVAPD(x[g], r[g])
		c.VFNMADD231PD(f64("sm_ln2hi", 6.93147180369123816490e-01), kf, r[g])
		c.VFNMADD231PD(f64("sm_ln2lo", 1.90821492927058770002e-10), kf, r[g])
	}
	// exp(r) = Σ r^j/j!, j ≤ 12, in Estrin's form (four multiply-adds deep
	// where Horner's is twelve): pairs a = c[2i] + c[2i+1]·r, then
	// b = a + a'·r², then a + a'·r⁴, then the two halves with r⁸.
	cf := func(j int) operand.Mem {
		f := 1.0
		for i := 2; i <= j; i++ {
			f *= float64(i)
		}
		return f64("sm_c"+strconv.Itoa(j), 1/f)
	}
	pair := func(g, j int) reg.VecVirtual { // c[j] + c[j+1]·r
		a := c.YMM()
		c.VMOVUPD(cf(j+1), a)
		c.VFMADD213PD(cf(j), r[g], a)
		return a
	}
	var r2, r4 [groups]reg.VecVirtual
	for g := range groups {
		r2[g] = c.YMM()
		c.VMULPD(r[g], r[g], r2[g])
	}
	var lo, hi [groups]reg.VecVirtual
	for g := range groups {
		lo[g] = pair(g, 0)
		c.VFMADD231PD(pair(g, 2), r2[g], lo[g]) // c0..c3
		hi[g] = pair(g, 4)
		c.VFMADD231PD(pair(g, 6), r2[g], hi[g]) // c4..c7
		r4[g] = c.YMM()
		c.VMULPD(r2[g], r2[g], r4[g])
		c.VFMADD231PD(hi[g], r4[g], lo[g]) // c0..c7
	}
	for g := range groups {
		hi[g] = pair(g, 8)
		c.VFMADD231PD(pair(g, 10), r2[g], hi[g]) // c8..c11
		c.VFMADD231PD(cf(12), r4[g], hi[g])      // c8..c12
		c.VMULPD(r4[g], r4[g], r4[g])            // r⁸
		e[g] = lo[g]
		c.VFMADD231PD(hi[g], r4[g], e[g])
	}
	zero := c.YMM()
	c.VXORPD(zero, zero, zero)
	for g := range groups {
		expCheck(c, k, x[g], kd[g], e[g], zero, bad, sum, at(g))
	}
	c.ADDQ(operand.U8(4*groups), i)
	c.JMP(operand.LabelRef("eloop"))
	c.Label("edone")
	flag := c.GP32()
	c.VMOVMSKPD(bad, flag)
	ret := c.GP64()
	c.MOVL(flag, ret.As32()) // zero-extends
	c.Store(sum, c.ReturnIndex(0))
	c.Store(ret, c.ReturnIndex(1))
	c.VZEROUPPER()
	c.RET()

	scaleBy(c)
	return printAVO(c, pkg, "softmax")
}

// scaleBy emits scale_avx2 (see SoftmaxAMD64).
func scaleBy(c *build.Context) {
	leaf(c, "scale_avx2", "func(p *float32, n int, s float32)", "scale_avx2 multiplies the n floats at p by s.")
	p, n := loadParam(c, "p"), loadParam(c, "n")
	s := c.YMM()
	c.VBROADCASTSS(paramAddr(c, "s"), s)
	i, end := c.GP64(), c.GP64()
	c.XORQ(i, i)
	c.MOVQ(n, end)
	c.ANDQ(operand.I32(-8), end)
	c.Label("mloop")
	c.CMPQ(i, end)
	c.JGE(operand.LabelRef("mtail"))
	v := c.YMM()
	c.VMULPS(operand.Mem{Base: p, Index: i, Scale: 4}, s, v)
	c.VMOVUPS(v, operand.Mem{Base: p, Index: i, Scale: 4})
	c.ADDQ(operand.U8(8), i)
	c.JMP(operand.LabelRef("mloop"))
	c.Label("mtail")
	c.CMPQ(i, n)
	c.JGE(operand.LabelRef("mret"))
	x := c.XMM()
	c.VMULSS(operand.Mem{Base: p, Index: i, Scale: 4}, s.AsX(), x)
	c.VMOVSS(x, operand.Mem{Base: p, Index: i, Scale: 4})
	c.INCQ(i)
	c.JMP(operand.LabelRef("mtail"))
	c.Label("mret")
	c.VZEROUPPER()
	c.RET()
}

// expCheck finishes a group of 4 lanes: y = e·2^k, whose float32 rounding
// is kept when y is clear of the rounding midpoint (the 29 bits float32
// drops from y's mantissa, 2^28 at the midpoint, more than 256 away from
// it: 256 float64 ulps are at least 2^-45·y); 0 for x ≤ -104, -1
// otherwise (then bad gets the lane). The 4 floats go to at and, in order,
// into sum.
func expCheck(c *build.Context, k *constPool, x, kd, e, zero, bad, sum reg.VecVirtual, at operand.Mem) {
	f64, u64 := k.f64, k.u64
	scale := c.YMM()
	c.VPADDQ(u64("sm_bias", 1023), kd, scale)
	c.VPSLLQ(operand.U8(52), scale, scale) // 2^k
	y := c.YMM()
	c.VMULPD(scale, e, y)
	dropped := c.YMM()
	c.VPAND(u64("sm_low29", 1<<29-1), y, dropped)
	c.VPSUBQ(u64("sm_mid", 1<<28), dropped, dropped)
	ok, m := c.YMM(), c.YMM()
	c.VPCMPGTQ(u64("sm_margin", softmaxMargin), dropped, ok) // above the midpoint by more
	c.VMOVDQU(u64("sm_negmargin", -softmaxMargin&(1<<64-1)), m)
	c.VPCMPGTQ(dropped, m, m) // below it by more
	c.VPOR(m, ok, ok)
	const geOQ, leOQ = 0x1d, 0x12
	c.VCMPPD(operand.U8(geOQ), f64("sm_low", softmaxLow), x, m)
	c.VANDPD(m, ok, ok)
	c.VCMPPD(operand.U8(leOQ), zero, x, m)
	c.VANDPD(m, ok, ok) // NaN fails every ordered compare
	z := c.YMM()
	c.VCMPPD(operand.U8(leOQ), f64("sm_zerolim", softmaxZeroLim), x, z)
	res := c.YMM()
	c.VMOVUPD(f64("sm_neg1", -1), res)
	c.VBLENDVPD(ok, y, res, res)   // ok ? y : -1
	c.VBLENDVPD(z, zero, res, res) // x ≤ -104 ? 0 : res
	c.VORPD(z, ok, ok)
	c.VANDNPD(f64("sm_ones", math.Float64frombits(^uint64(0))), ok, ok) // lanes left -1
	c.VORPD(ok, bad, bad)
	out := c.XMM()
	c.VCVTPD2PSY(res, out) // y rounds to the float32 checked above; 0, -1 exactly
	c.VMOVUPS(out, at)
	// The sum, one lane after another as the Go loop adds them; its chain
	// of dependent adds runs beside the next lanes' exponentials.
	c.VADDSS(out, sum, sum)
	t := c.XMM()
	c.VMOVSHDUP(out, t) // lane 1
	c.VADDSS(t, sum, sum)
	c.VMOVHLPS(out, out, t) // lane 2
	c.VADDSS(t, sum, sum)
	c.VPERMILPS(operand.U8(0xff), out, t) // lane 3
	c.VADDSS(t, sum, sum)
}

// scaleMax emits scalemax_avx2 (see SoftmaxAMD64).
func scaleMax(c *build.Context, k *constPool) {
	leaf(c, "scalemax_avx2", "func(p, logits *float32, n int, temp float32) float32", "scalemax_avx2 writes p[i] = logits[i]/temp for the n ≥ 1 logits and returns the largest, NaNs skipped (-Inf when all are).")
	p, l, n := loadParam(c, "p"), loadParam(c, "logits"), loadParam(c, "n")
	t := c.YMM()
	c.VBROADCASTSS(paramAddr(c, "temp"), t)
	m := c.YMM()
	c.VBROADCASTSS(k.u32("sm_neginf", math.Float32bits(float32(math.Inf(-1)))), m)
	i, end := c.GP64(), c.GP64()
	c.XORQ(i, i)
	c.MOVQ(n, end)
	c.ANDQ(operand.I32(-8), end)
	c.Label("sloop")
	c.CMPQ(i, end)
	c.JGE(operand.LabelRef("stail"))
	v := c.YMM()
	c.VMOVUPS(operand.Mem{Base: l, Index: i, Scale: 4}, v)
	c.VDIVPS(t, v, v)
	c.VMOVUPS(v, operand.Mem{Base: p, Index: i, Scale: 4})
	c.VMAXPS(m, v, m) // max(v, m): m where v is a NaN
	c.ADDQ(operand.U8(8), i)
	c.JMP(operand.LabelRef("sloop"))
	c.Label("stail")
	h := hmaxPS(c, m)
	c.Label("sscalar")
	c.CMPQ(i, n)
	c.JGE(operand.LabelRef("sret"))
	s := c.XMM()
	c.VMOVSS(operand.Mem{Base: l, Index: i, Scale: 4}, s)
	c.VDIVSS(t.AsX(), s, s)
	c.VMOVSS(s, operand.Mem{Base: p, Index: i, Scale: 4})
	c.VMAXSS(h, s, h)
	c.INCQ(i)
	c.JMP(operand.LabelRef("sscalar"))
	c.Label("sret")
	c.Store(h, c.ReturnIndex(0))
	c.VZEROUPPER()
	c.RET()
}
