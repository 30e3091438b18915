package asm

import (
	"fmt"
	"math"
	"sort"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Training kernels besides the matrix products (amd64 only; other paths run
// the trainer's generated Go):
//
// Softmax (TKernel.Op TSoftmax), one row of V logits:
//
//	func(row *float32) (z float64, m float32)
//
// m = max(row), row[i] = e^(row[i]-m)/z with z = Σ e^(row[i]-m) summed in
// float64: the softmax in place; the cross-entropy of target τ is
// log z − (row_τ − m), taken by the caller from row_τ read before the call.
//
// Attention backward (TAttBwd), one query row t of one head of size HD whose
// Q, K, V rows (and their gradients) are S floats apart:
//
//	func(dq, dk, dv, dout, p, q, k, v, dp *float32, n int)
//
// with p the row's n attention probabilities, dout (g below) its output gradient, q and
// dq its query row and gradient, k, v, dk, dv the first key/value row and
// their gradients, dp scratch for n floats:
//
//	dp[u] = g·v_u,  dv_u += p_u·g,  σ = Σ p_u·dp[u],
//	ds_u = p_u·(dp[u] − σ)/√HD,  dq += Σ ds_u·k_u,  dk_u += ds_u·q   (u < n).
//
// Packed forward product (TMatMulP), R outputs of C inputs:
//
//	func(out, wp, x *float32, n int)
//
//	out[t*R+r] = Σ_c x[t*C+c]·w[r*C+c]  for t < n, r < R
//
// with the weights packed in panels of W = PackWidth(ISA) rows (the last
// one padded with zeros): wp[(b*C+c)*W+j] = w[(b*W+j)*C+c]. A register tile
// of tokens × W outputs accumulates over all C inputs (a panel row of W
// floats loaded, a token's input broadcast) and is stored once.
//
// SwiGLU's gradient (TSwiGLUBack) over n rows of F (the forward is the
// batched pass's OpSiLUMul kernel, which the trainer calls too):
//
//	func(dgu, dout, gu *float32, n int)    dg += dout·u·σ(g)·(1+g·(1−σ(g))), du += dout·g·σ(g)
//
// with g = gu[t*2F+i], u = gu[t*2F+F+i] (gate and up adjacent per row).
type TKernel struct {
	Op         TOp
	ISA        ISA
	Rows, Cols int // TMatMulP: outputs and inputs
	Vocab      int // TSoftmax: the row length
	FFN        int // TSwiGLUBack: F
	// TAttBwd: head size and row stride of q, k, v, dq, dk, dv.
	HeadDim, Stride int
}

// TOp is a training kernel's operation.
type TOp int

const (
	TSoftmax TOp = iota
	TAttBwd
	TMatMulP
	TSwiGLUBack
)

// PackWidth is the panel width (rows of w per panel) of isa's packed
// forward product, 0 if it has none.
func PackWidth(isa ISA) int {
	switch isa {
	case AVX512:
		return 48
	case AVX2:
		return 16
	}
	return 0
}

// Name is softmax_V_isa or attbwd_HD_S_isa.
func (k TKernel) Name() string {
	if k.Op == TSoftmax {
		return fmt.Sprintf("softmax_%d_%s", k.Vocab, k.ISA)
	}
	if k.Op == TMatMulP {
		return fmt.Sprintf("mmpack_%dx%d_%s", k.Rows, k.Cols, k.ISA)
	}
	if k.Op == TSwiGLUBack {
		return fmt.Sprintf("swiglub_%d_%s", k.FFN, k.ISA)
	}
	return fmt.Sprintf("attbwd_%d_%d_%s", k.HeadDim, k.Stride, k.ISA)
}

// Signature is the Go declaration of the kernel's parameters.
func (k TKernel) Signature() string {
	if k.Op == TSoftmax {
		return "func(row *float32) (z float64, m float32)"
	}
	if k.Op == TMatMulP {
		return "func(out, wp, x *float32, n int)"
	}
	if k.Op == TSwiGLUBack {
		return "func(dgu, dout, gu *float32, n int)"
	}
	return "func(dq, dk, dv, dout, p, q, k, v, dp *float32, n int)"
}

// lanes is the vector width the kernel uses, 0 if it cannot be generated:
// whole vectors only (the trainer's Go serves other shapes).
func (k TKernel) lanes() int {
	if k.Op == TMatMulP {
		switch k.ISA {
		case AVX512:
			return 16
		case AVX2:
			return 8
		}
		return 0
	}
	n := k.Vocab
	if k.Op == TAttBwd {
		n = k.HeadDim
	}
	if k.Op == TSwiGLUBack {
		n = k.FFN
	}
	switch {
	case k.ISA != AVX2 && k.ISA != AVX512 || n < 1:
		return 0
	case k.ISA == AVX512 && n%16 == 0 && (k.Op != TAttBwd || n >= wideAttention):
		return 16
	case n%8 == 0:
		return 8
	}
	return 0
}

// Supported reports whether the kernel can be generated: an amd64 ISA and
// a row of whole vectors (a multiple of 8 floats).
func (k TKernel) Supported() bool {
	if k.Op == TMatMulP && (k.Rows < 1 || k.Cols < 1 || k.Rows*k.Cols > 1<<28) {
		return false
	}
	if k.Op == TAttBwd && (k.Stride < k.HeadDim || k.Stride > 1<<20) || k.Op == TSoftmax && k.Vocab > 1<<26 {
		return false
	}
	return k.lanes() > 0
}

func (k TKernel) doc() string {
	if k.Op == TSwiGLUBack {
		return fmt.Sprintf("%s: SwiGLU's gradient over n rows of %d (gate|up adjacent).", k.Name(), k.FFN)
	}
	if k.Op == TMatMulP {
		return fmt.Sprintf("%s: out[t*%d+r] = Σ_c x[t*%d+c]·w[r*%[3]d+c] for t < n, w packed in panels of %d rows.", k.Name(), k.Rows, k.Cols, PackWidth(k.ISA))
	}
	if k.Op == TSoftmax {
		return fmt.Sprintf("%s: softmax of %d logits in place; returns Σe^(x-m) and m = max.", k.Name(), k.Vocab)
	}
	return fmt.Sprintf("%s: attention backward of one query row, head size %d, rows %d floats apart.", k.Name(), k.HeadDim, k.Stride)
}

// TrainOpsAMD64 returns the AVX2 and AVX-512 training kernels ks (all
// Supported): assembly and Go stubs, both !purego.
func TrainOpsAMD64(ks []TKernel, pkg string) (asmText, stubs []byte, err error) {
	seen := map[string]bool{}
	var uniq []TKernel
	for _, k := range ks {
		if !k.Supported() {
			return nil, nil, fmt.Errorf("training kernel %s: not supported", k.Name())
		}
		if !seen[k.Name()] {
			seen[k.Name()] = true
			uniq = append(uniq, k)
		}
	}
	sort.Slice(uniq, func(i, j int) bool { return uniq[i].Name() < uniq[j].Name() })
	c := build.NewContext()
	c.ConstraintExpr("!purego")
	g := &amd{c: c, consts: map[string]operand.Mem{}}
	for _, k := range uniq {
		g.tkernel(k)
	}
	return printAVO(c, pkg, "amd64 training kernels")
}

func (g *amd) tkernel(k TKernel) {
	c := g.c
	g.isa = k.ISA
	g.lanes, g.nreg = k.lanes(), 16
	if k.ISA == AVX512 {
		g.nreg = 32
	}
	g.kmask, g.vmask = map[int]reg.Register{}, map[int]reg.Register{}
	c.Function(k.Name())
	c.Attributes(attr.NOSPLIT)
	c.Pragma("noescape")
	c.SignatureExpr(k.Signature())
	c.Doc(k.doc())
	if k.Op == TSoftmax {
		g.softmax(k)
	} else if k.Op == TMatMulP {
		g.mmpack(k)
	} else if k.Op == TSwiGLUBack {
		g.swigluBack(k)
	} else {
		g.attbwd(k)
	}
	c.VZEROUPPER()
	c.RET()
}

// loop emits body(u) for count items of a counter register: blocks of u
// (u > 1) while at least u remain, then single items.
func (g *amd) loop(cnt reg.Register, u int, body func(u int)) {
	c := g.c
	lu, l1, l1l, done := g.newLabel("lu"), g.newLabel("l1_"), g.newLabel("l1l"), g.newLabel("ldone")
	if u > 1 {
		c.CMPQ(cnt, operand.U8(u))
		c.JL(operand.LabelRef(l1))
		c.Label(lu)
		body(u)
		c.SUBQ(operand.U8(u), cnt)
		c.CMPQ(cnt, operand.U8(u))
		c.JGE(operand.LabelRef(lu))
		c.Label(l1)
	}
	c.TESTQ(cnt, cnt)
	c.JLE(operand.LabelRef(done))
	c.Label(l1l)
	body(1)
	c.DECQ(cnt)
	c.JNE(operand.LabelRef(l1l))
	c.Label(done)
}

// softmax: max in four running vectors, then e^(x-m) stored and summed in
// float64, then the row scaled by float32(1/z).
func (g *amd) softmax(k TKernel) {
	c := g.c
	L := g.lanes
	nv := k.Vocab / L
	row := g.loadPtr("row")
	const un = 4
	// Pass 1: maximum.
	mx := make([]reg.VecVirtual, min(un, nv))
	for i := range mx {
		mx[i] = g.vec()
		c.VMOVUPS(mem(row, i*L*4), mx[i])
	}
	p, cnt := c.GP64(), c.GP64()
	c.MOVQ(row, p)
	if rest := nv - len(mx); rest > 0 {
		c.ADDQ(operand.U32(len(mx)*L*4), p)
		c.MOVQ(operand.U32(rest), cnt)
		g.loop(cnt, un, func(u int) {
			for i := 0; i < u; i++ {
				c.VMAXPS(mem(p, i*L*4), mx[i], mx[i])
			}
			c.ADDQ(operand.U32(u*L*4), p)
		})
	}
	for i := 1; i < len(mx); i++ {
		c.VMAXPS(mx[i], mx[0], mx[0])
	}
	m := mx[0]
	if L == 16 {
		t := c.YMM()
		c.VEXTRACTF64X4(operand.U8(1), m, t)
		c.VMAXPS(t, m.AsY(), m.AsY())
	}
	mxx := c.XMM()
	g.extract128(m.AsY(), mxx)
	c.VMAXPS(mxx, m.AsX(), mxx)
	g.hmax(mxx)
	mv := g.vec()
	c.VBROADCASTSS(mxx, mv)

	// Pass 2: e^(x-m), stored, summed in float64 (two accumulators of the
	// low and high halves).
	wide := func() reg.VecVirtual { return g.vec() } // float64 vectors of the same width
	s0, s1 := wide(), wide()
	g.zero(s0)
	g.zero(s1)
	c.MOVQ(row, p)
	c.MOVQ(operand.U32(nv), cnt)
	g.loop(cnt, 1, func(int) {
		e := g.vec()
		c.VMOVUPS(mem(p, 0), e)
		c.VSUBPS(mv, e, e)
		g.exp(e, g.vec)
		c.VMOVUPS(e, mem(p, 0))
		lo, hi := g.vec(), g.vec()
		if L == 16 {
			h := c.YMM()
			c.VEXTRACTF64X4(operand.U8(1), e, h)
			c.VCVTPS2PD(e.AsY(), lo)
			c.VCVTPS2PD(h, hi)
		} else {
			h := c.XMM()
			g.extract128(e, h)
			c.VCVTPS2PD(e.AsX(), lo)
			c.VCVTPS2PD(h, hi)
		}
		c.VADDPD(lo, s0, s0)
		c.VADDPD(hi, s1, s1)
		c.ADDQ(operand.U32(L*4), p)
	})
	c.VADDPD(s1, s0, s0)
	sy := s0.AsY()
	if L == 16 {
		t := c.YMM()
		c.VEXTRACTF64X4(operand.U8(1), s0, t)
		c.VADDPD(t, sy, sy)
	}
	sx := c.XMM()
	g.extract128(sy, sx)
	c.VADDPD(sx, asX(sy), sx)
	t := c.XMM()
	c.VPERMILPD(operand.U8(1), sx, t)
	c.VADDSD(t, sx, sx)
	c.Store(sx, c.ReturnIndex(0))
	c.Store(mxx, c.ReturnIndex(1))

	// Pass 3: scale by float32(1/z).
	one := c.XMM()
	c.VMOVSD(g.constant64("one64", math.Float64bits(1)), one)
	c.VDIVSD(sx, one, one)
	c.VCVTSD2SS(one, one, one)
	iv := g.vec()
	c.VBROADCASTSS(one, iv)
	c.MOVQ(row, p)
	c.MOVQ(operand.U32(nv), cnt)
	g.loop(cnt, un, func(u int) {
		for i := 0; i < u; i++ {
			v := g.vec()
			c.VMULPS(mem(p, i*L*4), iv, v)
			c.VMOVUPS(v, mem(p, i*L*4))
		}
		c.ADDQ(operand.U32(u*L*4), p)
	})
}

// constant64 is a 64-byte read-only vector of 8 copies of the 64-bit v.
func (g *amd) constant64(name string, v uint64) operand.Mem {
	if m, ok := g.consts[name]; ok {
		return m
	}
	m := g.c.StaticGlobal(name)
	g.c.DataAttributes(attr.RODATA | attr.NOPTR)
	for i := 0; i < 8; i++ {
		g.c.AppendDatum(operand.U64(v))
	}
	g.consts[name] = m
	return m
}

// attbwd: pass 1 over the keys four at a time (dot products of g with four
// value rows, reduced together), pass 2 two at a time (two accumulator sets
// for dq).
//
// The plan follows the head's size in vectors, nch: g lives in nch
// registers through pass 1 and dq's accumulators take nch per set in pass
// 2, which fits the register file up to attbwdRegChunks(nreg) vectors
// (10 on AVX2's 16 YMM, 26 on AVX-512's 32: heads of 80 and 208 floats, or
// 416 on ZMM). A larger head (Llama-7B's 128 on AVX2) keeps the first
// chunks of g in registers and reads the others from memory, and runs pass
// 2 over blocks of columns, each block a pass over the keys with its own
// accumulators: every product and every sum in the same order, so the
// results are the same bits as the unblocked plan's with one set.
func (g *amd) attbwd(k TKernel) {
	if nch := k.HeadDim / g.lanes; nch > attbwdRegChunks(g.nreg) {
		g.attbwdBlocked(k)
		return
	}
	c := g.c
	L, S, hd := g.lanes, k.Stride, k.HeadDim
	nch := hd / L
	row := S * 4
	dq, dk, dv := g.loadPtr("dq"), g.loadPtr("dk"), g.loadPtr("dv")
	gp, pp, qp, kp, vp, dpp := g.loadPtr("dout"), g.loadPtr("p"), g.loadPtr("q"), g.loadPtr("k"), g.loadPtr("v"), g.loadPtr("dp")
	gv := make([]reg.VecVirtual, nch)
	for j := range gv {
		gv[j] = g.vec()
		c.VMOVUPS(mem(gp, j*L*4), gv[j])
	}
	sumx := c.XMM()
	c.VXORPS(sumx, sumx, sumx)
	vq, dvq, pq, dpq, cnt := c.GP64(), c.GP64(), c.GP64(), c.GP64(), c.GP64()
	c.MOVQ(vp, vq)
	c.MOVQ(dv, dvq)
	c.MOVQ(pp, pq)
	c.MOVQ(dpp, dpq)
	c.MOVQ(g.param("n"), cnt)
	dot := func(base reg.Register, disp int) reg.VecVirtual {
		acc := g.vec()
		c.VMULPS(mem(base, disp), gv[0], acc)
		for j := 1; j < nch; j++ {
			c.VFMADD231PS(mem(base, disp+j*L*4), gv[j], acc)
		}
		return acc
	}
	dvUpdate := func(s int) {
		pb := g.vec()
		c.VBROADCASTSS(mem(pq, s*4), pb)
		for j := 0; j < nch; j++ {
			t := g.vec()
			c.VMOVUPS(mem(dvq, s*row+j*L*4), t)
			c.VFMADD231PS(gv[j], pb, t)
			c.VMOVUPS(t, mem(dvq, s*row+j*L*4))
		}
	}
	g.loop(cnt, 4, func(u int) {
		if u == 4 {
			var a [4]reg.Register
			for s := range a {
				a[s] = g.toY(dot(vq, s*row))
			}
			x := g.reduce4(a)
			c.VMOVUPS(x, mem(dpq, 0))
			c.VFMADD231PS(mem(pq, 0), x, sumx)
		} else {
			x := g.reduce1(dot(vq, 0))
			c.VMOVSS(x, mem(dpq, 0))
			pt := c.XMM()
			c.VMOVSS(mem(pq, 0), pt)
			c.VFMADD231SS(pt, x, sumx)
		}
		for s := 0; s < u; s++ {
			dvUpdate(s)
		}
		c.ADDQ(operand.U32(u*row), vq)
		c.ADDQ(operand.U32(u*row), dvq)
		c.ADDQ(operand.U8(u*4), pq)
		c.ADDQ(operand.U8(u*4), dpq)
	})
	// σ in every lane of sumx.
	t := c.XMM()
	c.VPERMILPS(operand.U8(0x4e), sumx, t)
	c.VADDPS(t, sumx, sumx)
	c.VPERMILPS(operand.U8(0xb1), sumx, t)
	c.VADDPS(t, sumx, sumx)

	// Pass 2.
	scale := g.f32(fmt.Sprintf("rsqrt%d", hd), float32(1/math.Sqrt(float64(hd))))
	sets := 2
	if 2*nch+5 > g.nreg {
		sets = 1
	}
	acc := make([][]reg.VecVirtual, sets)
	for s := range acc {
		acc[s] = make([]reg.VecVirtual, nch)
		for j := range acc[s] {
			acc[s][j] = g.vec()
			g.zero(acc[s][j])
		}
	}
	kq, dkq := c.GP64(), c.GP64()
	c.MOVQ(kp, kq)
	c.MOVQ(dk, dkq)
	c.MOVQ(pp, pq)
	c.MOVQ(dpp, dpq)
	c.MOVQ(g.param("n"), cnt)
	g.loop(cnt, sets, func(u int) {
		for s := 0; s < u; s++ {
			x := c.XMM()
			c.VMOVSS(mem(dpq, s*4), x)
			c.VSUBSS(sumx, x, x)
			c.VMULSS(mem(pq, s*4), x, x)
			c.VMULSS(scale, x, x)
			ds := g.vec()
			c.VBROADCASTSS(x, ds)
			for j := 0; j < nch; j++ {
				c.VFMADD231PS(mem(kq, s*row+j*L*4), ds, acc[s][j])
				t := g.vec()
				c.VMOVUPS(mem(dkq, s*row+j*L*4), t)
				c.VFMADD231PS(mem(qp, j*L*4), ds, t)
				c.VMOVUPS(t, mem(dkq, s*row+j*L*4))
			}
		}
		c.ADDQ(operand.U32(u*row), kq)
		c.ADDQ(operand.U32(u*row), dkq)
		c.ADDQ(operand.U8(u*4), pq)
		c.ADDQ(operand.U8(u*4), dpq)
	})
	for j := 0; j < nch; j++ {
		a := acc[0][j]
		for s := 1; s < sets; s++ {
			c.VADDPS(acc[s][j], a, a)
		}
		c.VADDPS(mem(dq, j*L*4), a, a)
		c.VMOVUPS(a, mem(dq, j*L*4))
	}
}

// attbwdRegChunks is the most vectors of a head attbwd's register plan
// holds (g through pass 1, one set of dq accumulators in pass 2) beside
// its temporaries: the rest of nreg goes to σ, the four dot products of a
// step and their reduction (pass 1), and to ds, a dk row and the step's
// scalars (pass 2).
func attbwdRegChunks(nreg int) int { return nreg - 6 }

// attbwdBlocked is attbwd for heads of more than attbwdRegChunks vectors.
// Pass 1 keeps the first gk chunks of g in registers and loads the others
// in each step, once for the step's four value rows (one accumulator per
// row, chunk after chunk in the same order as attbwd's dot); pass 2 walks
// the keys once per block of at most attbwdRegChunks columns of dq,
// recomputing each key's ds (a few scalar operations, the same bits).
func (g *amd) attbwdBlocked(k TKernel) {
	c := g.c
	L, S, hd := g.lanes, k.Stride, k.HeadDim
	nch := hd / L
	row := S * 4
	// Pass 1 holds σ, four dot products, a chunk of g or a value row, and
	// reduce4's temporaries beside the chunks of g it keeps.
	gk := min(nch, g.nreg-8)
	dq, dk, dv := g.loadPtr("dq"), g.loadPtr("dk"), g.loadPtr("dv")
	gp, pp, qp, kp, vp, dpp := g.loadPtr("dout"), g.loadPtr("p"), g.loadPtr("q"), g.loadPtr("k"), g.loadPtr("v"), g.loadPtr("dp")
	gv := make([]reg.VecVirtual, gk)
	for j := range gv {
		gv[j] = g.vec()
		c.VMOVUPS(mem(gp, j*L*4), gv[j])
	}
	// gAt is chunk j of g: a register, or loaded into a new one.
	gAt := func(j int) reg.VecVirtual {
		if j < gk {
			return gv[j]
		}
		t := g.vec()
		c.VMOVUPS(mem(gp, j*L*4), t)
		return t
	}
	sumx := c.XMM()
	c.VXORPS(sumx, sumx, sumx)
	vq, dvq, pq, dpq, cnt := c.GP64(), c.GP64(), c.GP64(), c.GP64(), c.GP64()
	c.MOVQ(vp, vq)
	c.MOVQ(dv, dvq)
	c.MOVQ(pp, pq)
	c.MOVQ(dpp, dpq)
	c.MOVQ(g.param("n"), cnt)
	// dots returns g·v of the u value rows from vq on, one accumulator each.
	dots := func(u int) []reg.VecVirtual {
		acc := make([]reg.VecVirtual, u)
		for j := 0; j < nch; j++ {
			gj := gAt(j)
			for s := range acc {
				m := mem(vq, s*row+j*L*4)
				if j == 0 {
					acc[s] = g.vec()
					c.VMULPS(m, gj, acc[s])
				} else {
					c.VFMADD231PS(m, gj, acc[s])
				}
			}
		}
		return acc
	}
	dvUpdate := func(s int) {
		pb := g.vec()
		c.VBROADCASTSS(mem(pq, s*4), pb)
		for j := 0; j < nch; j++ {
			t := g.vec()
			c.VMOVUPS(mem(dvq, s*row+j*L*4), t)
			if j < gk {
				c.VFMADD231PS(gv[j], pb, t)
			} else {
				c.VFMADD231PS(mem(gp, j*L*4), pb, t)
			}
			c.VMOVUPS(t, mem(dvq, s*row+j*L*4))
		}
	}
	g.loop(cnt, 4, func(u int) {
		if u == 4 {
			acc := dots(4)
			var a [4]reg.Register
			for s := range a {
				a[s] = g.toY(acc[s])
			}
			x := g.reduce4(a)
			c.VMOVUPS(x, mem(dpq, 0))
			c.VFMADD231PS(mem(pq, 0), x, sumx)
		} else {
			x := g.reduce1(dots(1)[0])
			c.VMOVSS(x, mem(dpq, 0))
			pt := c.XMM()
			c.VMOVSS(mem(pq, 0), pt)
			c.VFMADD231SS(pt, x, sumx)
		}
		for s := 0; s < u; s++ {
			dvUpdate(s)
		}
		c.ADDQ(operand.U32(u*row), vq)
		c.ADDQ(operand.U32(u*row), dvq)
		c.ADDQ(operand.U8(u*4), pq)
		c.ADDQ(operand.U8(u*4), dpq)
	})
	// σ in every lane of sumx.
	t := c.XMM()
	c.VPERMILPS(operand.U8(0x4e), sumx, t)
	c.VADDPS(t, sumx, sumx)
	c.VPERMILPS(operand.U8(0xb1), sumx, t)
	c.VADDPS(t, sumx, sumx)

	// Pass 2, one block of columns at a time, the blocks as even as the
	// register plan allows.
	scale := g.f32(fmt.Sprintf("rsqrt%d", hd), float32(1/math.Sqrt(float64(hd))))
	nb := attbwdRegChunks(g.nreg)
	blocks := (nch + nb - 1) / nb
	nb = (nch + blocks - 1) / blocks
	kq, dkq := c.GP64(), c.GP64()
	for j0 := 0; j0 < nch; j0 += nb {
		j1 := min(j0+nb, nch)
		acc := make([]reg.VecVirtual, j1-j0)
		for j := range acc {
			acc[j] = g.vec()
			g.zero(acc[j])
		}
		c.MOVQ(kp, kq)
		c.MOVQ(dk, dkq)
		c.MOVQ(pp, pq)
		c.MOVQ(dpp, dpq)
		c.MOVQ(g.param("n"), cnt)
		g.loop(cnt, 1, func(int) {
			x := c.XMM()
			c.VMOVSS(mem(dpq, 0), x)
			c.VSUBSS(sumx, x, x)
			c.VMULSS(mem(pq, 0), x, x)
			c.VMULSS(scale, x, x)
			ds := g.vec()
			c.VBROADCASTSS(x, ds)
			for j := j0; j < j1; j++ {
				c.VFMADD231PS(mem(kq, j*L*4), ds, acc[j-j0])
				t := g.vec()
				c.VMOVUPS(mem(dkq, j*L*4), t)
				c.VFMADD231PS(mem(qp, j*L*4), ds, t)
				c.VMOVUPS(t, mem(dkq, j*L*4))
			}
			c.ADDQ(operand.U32(row), kq)
			c.ADDQ(operand.U32(row), dkq)
			c.ADDQ(operand.U8(4), pq)
			c.ADDQ(operand.U8(4), dpq)
		})
		for j := j0; j < j1; j++ {
			a := acc[j-j0]
			c.VADDPS(mem(dq, j*L*4), a, a)
			c.VMOVUPS(a, mem(dq, j*L*4))
		}
	}
}

// mmpack: super-blocks of panels (together about 384 KB, in L2) outermost;
// inside one, token tiles of ti, and for each tile every panel of the
// super-block in turn, the C inputs innermost with the ti×cv accumulators in
// registers. A tile's outputs are written row by row in runs of the
// super-block's width: walking panels inside a tile (not tiles inside a
// panel) keeps the stores sequential instead of striding by whole rows,
// whose addresses alias to the same cache sets.
func (g *amd) mmpack(k TKernel) {
	c := g.c
	L, W := g.lanes, PackWidth(k.ISA)
	cv, ti := W/L, 6
	if k.ISA == AVX512 {
		ti = 8
	}
	R, C := k.Rows, k.Cols
	nfull, rem := R/W, R%W
	sb := max(1, 384<<10/(C*W*4))
	nt := k.NonTemporal()
	g.prepMask(rem % L)
	out, wp, x := g.loadPtr("out"), g.loadPtr("wp"), g.loadPtr("x")
	// tile: u tokens × one panel (nv full vectors and a tail of lanes).
	tile := func(u, nv, tail int, o, a, b reg.Register) {
		vecs := nv
		if tail > 0 {
			vecs++
		}
		acc := make([][]reg.VecVirtual, u)
		for i := range acc {
			acc[i] = make([]reg.VecVirtual, vecs)
			for v := range acc[i] {
				acc[i][v] = g.vec()
				g.zero(acc[i][v])
			}
		}
		ap, bp, kc := c.GP64(), c.GP64(), c.GP64()
		c.MOVQ(a, ap)
		c.MOVQ(b, bp)
		c.MOVQ(operand.U32(C), kc)
		lbl := g.newLabel("kc")
		c.Label(lbl)
		bv := make([]reg.VecVirtual, vecs)
		for v := range bv {
			bv[v] = g.vec()
			c.VMOVUPS(mem(bp, v*L*4), bv[v])
		}
		for i := 0; i < u; i++ {
			// One broadcast load per token, not one per FMA (an embedded
			// broadcast loads again for every vector: the loads then bound
			// the loop).
			s := g.vec()
			c.VBROADCASTSS(mem(ap, i*C*4), s)
			for v := range bv {
				c.VFMADD231PS(bv[v], s, acc[i][v])
			}
		}
		c.ADDQ(operand.U8(4), ap)
		c.ADDQ(operand.U32(W*4), bp)
		c.DECQ(kc)
		c.JNE(operand.LabelRef(lbl))
		for i := range acc {
			for v := range acc[i] {
				m := mem(o, i*R*4+v*L*4)
				switch {
				case v == nv:
					g.storeTail(acc[i][v], m, tail)
				case nt:
					c.VMOVNTPS(acc[i][v], m)
				default:
					c.VMOVUPS(acc[i][v], m)
				}
			}
		}
	}
	// group: np full panels and, if last, the partial one, at out and wp.
	group := func(np int, last bool) {
		ot, at, cnt := c.GP64(), c.GP64(), c.GP64()
		c.MOVQ(out, ot)
		c.MOVQ(x, at)
		c.MOVQ(g.param("n"), cnt)
		g.loop(cnt, ti, func(u int) {
			op, bp := c.GP64(), c.GP64()
			c.MOVQ(ot, op)
			c.MOVQ(wp, bp)
			if np > 0 {
				pc := c.GP64()
				c.MOVQ(operand.U32(np), pc)
				lbl := g.newLabel("pan")
				c.Label(lbl)
				tile(u, cv, 0, op, at, bp)
				c.ADDQ(operand.U32(W*4), op)
				c.ADDQ(operand.U32(C*W*4), bp)
				c.DECQ(pc)
				c.JNE(operand.LabelRef(lbl))
			}
			if last {
				tile(u, rem/L, rem%L, op, at, bp)
			}
			c.ADDQ(operand.U32(u*R*4), ot)
			c.ADDQ(operand.U32(u*C*4), at)
		})
	}
	if nsb := nfull / sb; nsb > 0 {
		cnt := c.GP64()
		c.MOVQ(operand.U32(nsb), cnt)
		lbl := g.newLabel("sb")
		c.Label(lbl)
		group(sb, false)
		c.ADDQ(operand.U32(sb*W*4), out)
		c.ADDQ(operand.U32(sb*C*W*4), wp)
		c.DECQ(cnt)
		c.JNE(operand.LabelRef(lbl))
	}
	if left := nfull % sb; left > 0 || rem > 0 {
		group(left, rem > 0)
	}
	if nt {
		c.SFENCE()
	}
}

// NonTemporal reports whether the packed product stores its outputs with
// non-temporal stores (outputs far beyond the caches, like the classifier's
// logits, then skip the read for ownership): R a multiple of 16 and at least
// 8192. The caller must then pass out 64-byte aligned.
func (k TKernel) NonTemporal() bool {
	return k.Op == TMatMulP && k.Rows%16 == 0 && k.Rows >= 8192
}

// swigluBack: row by row, F/L vectors each; σ(g) = 1/(1+e^(−g)).
func (g *amd) swigluBack(k TKernel) {
	c := g.c
	L, F := g.lanes, k.FFN
	out, dout := g.loadPtr("dgu"), g.loadPtr("dout")
	gu := g.loadPtr("gu")
	cnt := c.GP64()
	c.MOVQ(g.param("n"), cnt)
	g.loop(cnt, 1, func(int) {
		j, jn := c.GP64(), c.GP64()
		c.XORQ(j, j)
		c.MOVQ(operand.U32(F/L), jn)
		lbl := g.newLabel("sw")
		c.Label(lbl)
		at := func(base reg.Register, disp int) operand.Mem {
			return operand.Mem{Base: base, Index: j, Scale: 1, Disp: disp}
		}
		gv := g.vec()
		c.VMOVUPS(at(gu, 0), gv)
		e := g.vec()
		c.VMULPS(g.f32("minus1", -1), gv, e) // −g
		g.exp(e, g.vec)
		c.VADDPS(g.f32("one", 1), e, e)
		sig := g.vec()
		c.VMOVUPS(g.f32("one", 1), sig)
		c.VDIVPS(e, sig, sig)
		t1 := g.vec()
		c.VMULPS(at(dout, 0), sig, t1) // dout·σ
		du := g.vec()
		c.VMOVUPS(at(out, F*4), du)
		c.VFMADD231PS(t1, gv, du) // du += dout·σ·g
		c.VMOVUPS(du, at(out, F*4))
		oms := g.vec()
		c.VMOVUPS(g.f32("one", 1), oms)
		c.VSUBPS(sig, oms, oms)                 // 1−σ
		c.VFMADD213PS(g.f32("one", 1), gv, oms) // 1+g·(1−σ)
		c.VMULPS(at(gu, F*4), t1, t1)           // dout·σ·u
		dg := g.vec()
		c.VMOVUPS(at(out, 0), dg)
		c.VFMADD231PS(t1, oms, dg)
		c.VMOVUPS(dg, at(out, 0))
		c.ADDQ(operand.U8(L*4), j)
		c.DECQ(jn)
		c.JNE(operand.LabelRef(lbl))
		c.ADDQ(operand.U32(2*F*4), gu)
		c.ADDQ(operand.U32(2*F*4), out)
		c.ADDQ(operand.U32(F*4), dout)
	})
}
