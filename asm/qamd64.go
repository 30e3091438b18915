package asm

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/pass"
	"github.com/mmcloughlin/avo/printer"
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
	f, err := c.Result()
	if err != nil {
		return nil, nil, fmt.Errorf("amd64 quant kernels: %w", err)
	}
	if err := pass.Compile.Execute(f); err != nil {
		return nil, nil, fmt.Errorf("amd64 quant kernels: %w", err)
	}
	cfg := printer.Config{Name: "modelc", Pkg: pkg}
	if asmText, err = printer.NewGoAsm(cfg).Print(f); err != nil {
		return nil, nil, fmt.Errorf("amd64 quant kernels: print assembly: %w", err)
	}
	if stubs, err = printer.NewStubs(cfg).Print(f); err != nil {
		return nil, nil, fmt.Errorf("amd64 quant kernels: print stubs: %w", err)
	}
	return asmText, stubs, nil
}

// qamd emits the quantised kernels of one file.
type qamd struct {
	c      *build.Context
	k      QKernel
	consts map[string]operand.Mem
	label  int
	zero   reg.Register // AVX-512: a register holding zeros
}

// qRows is the row unroll: four rows share each x block load and scale.
const qRows = 4

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

func (g *qamd) param(name string) reg.GPVirtual {
	b, err := g.c.Param(name).Resolve()
	if err != nil {
		panic(err) // the signature is ours: a mismatch is a bug here
	}
	r := g.c.GP64()
	g.c.MOVQ(b.Addr, r)
	return r
}

func (g *qamd) kernel(k QKernel) {
	c := g.c
	g.k = k
	c.Function(k.Name())
	c.Attributes(attr.NOSPLIT)
	c.Pragma("noescape")
	c.SignatureExpr(QSignature)
	c.Doc(k.doc())
	out, w, xq, xs, n := g.param("out"), g.param("w"), g.param("xq"), g.param("xs"), g.param("n")
	if k.ISA == AVX512 {
		g.zero = c.YMM()
		c.VMOVUPS(g.bytesConst("qzero", 0), g.zero)
	}
	rb := k.RowBytes()
	loop4, tail, loop1, done := g.newLabel("rows4_"), g.newLabel("tail"), g.newLabel("rows1_"), g.newLabel("done")
	c.Label(loop4)
	c.CMPQ(n, operand.U8(qRows))
	c.JL(operand.LabelRef(tail))
	g.rows(qRows, out, w, xq, xs)
	c.ADDQ(operand.U32(qRows*rb), w)
	c.ADDQ(operand.U8(4*qRows), out)
	c.SUBQ(operand.U8(qRows), n)
	c.JMP(operand.LabelRef(loop4))
	c.Label(tail)
	c.TESTQ(n, n)
	c.JZ(operand.LabelRef(done))
	c.Label(loop1)
	g.rows(1, out, w, xq, xs)
	c.ADDQ(operand.U32(rb), w)
	c.ADDQ(operand.U8(4), out)
	c.DECQ(n)
	c.JNZ(operand.LabelRef(loop1))
	c.Label(done)
	c.VZEROUPPER()
	c.RET()
}

// rows computes R consecutive rows starting at w into out[0..R).
func (g *qamd) rows(R int, out, w, xq, xs reg.GPVirtual) {
	c, k := g.c, g.k
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
	x := c.YMM()
	c.VMOVUPS(operand.Mem{Base: xp}, x)
	sx := c.YMM()
	c.VBROADCASTSS(operand.Mem{Base: sp}, sx)
	for r := 0; r < R; r++ {
		q := g.weights(operand.Mem{Base: wp, Disp: r*rb + 2})
		isum := g.dot(q, x)
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

// weights loads one block's 32 codes at m as signed bytes.
func (g *qamd) weights(m operand.Mem) reg.VecVirtual {
	c := g.c
	y := c.YMM()
	if g.k.Format == Q8_0 {
		c.VMOVUPS(m, y)
		return y
	}
	// Q4_0: low nibbles are elements 0-15, high nibbles 16-31; value q-8.
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
	c.VPSUBB(g.bytesConst("qeight", 0x08080808), y, y)
	return y
}

// dot returns the eight int32 partial sums of Σ q_j·x_j over one block.
func (g *qamd) dot(q, x reg.VecVirtual) reg.VecVirtual {
	c := g.c
	aq, sx := c.YMM(), c.YMM()
	if g.k.ISA == AVX512 {
		c.VPABSB(q, aq)
		neg := c.K()
		c.VPMOVB2M(q, neg)
		c.VMOVAPS(x, sx)
		c.VPSUBB(x, g.zero, neg, sx) // sx = -x where q < 0
		isum := c.YMM()
		c.VMOVAPS(g.zero, isum)
		c.VPDPBUSD(sx, aq, isum)
		return isum
	}
	c.VPSIGNB(q, q, aq) // |q|
	c.VPSIGNB(q, x, sx) // sign(q)·x (0 where q is 0, as |q| is)
	p16, p32 := c.YMM(), c.YMM()
	c.VPMADDUBSW(sx, aq, p16)
	c.VPMADDWD(g.bytesConst("qones16", 0x00010001), p16, p32)
	return p32
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
