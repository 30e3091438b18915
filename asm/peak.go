package asm

import (
	"fmt"

	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Machine-limit kernels: the two ceilings a decoded token can hit. They are
// not model kernels (no shapes are baked in); bench/limits measures with them
// the read bandwidth and the FMA peak that the compiled models' figures are
// quoted against.
//
// FMA peak, func(n int, a, b float32, out *float32):
//
//	acc_i = acc_i·a + b, n times over F independent accumulators
//
// F chains (12 YMM on AVX2, 24 ZMM on AVX-512) exceed FMA latency × FMA
// pipes on current cores (4 × 2), so the loop issues an FMA on every pipe
// every cycle. With |a| < 1 the accumulators converge to b/(1-a) and never
// reach infinities or subnormals, which some cores run slowly. The sum of the
// accumulators goes to out[0:lanes] so nothing is dead code. Each call does
// n·F·lanes·2 FLOPs.
//
// Read, func(p *float32, n int, x float32, out *float32):
//
//	acc_j += p[i+j·lanes : …]·x, for n blocks of 8 vectors
//
// the instruction mix of the matvec kernels: an FMA with the weight vector as
// its memory operand, 8 independent accumulators, one block of 8 vectors per
// iteration (256 bytes with AVX2, 512 with AVX-512). p must hold n·8·lanes
// floats. The sum goes to out[0:lanes].

// LimitFMAChains is the number of independent FMA chains of each ISA's peak
// kernel.
func LimitFMAChains(isa ISA) int {
	if isa == AVX512 {
		return 24
	}
	return 12
}

// LimitLanes is the float32 lanes of the vectors isa's limit kernels use.
func LimitLanes(isa ISA) int {
	if isa == AVX512 {
		return 16
	}
	return 8
}

// LimitReadBlock is the number of vectors the read kernels load per
// iteration.
const LimitReadBlock = 8

// LimitsAMD64 returns the assembly and the Go stubs of the machine-limit
// kernels for the Go package pkg: peakFMA_avx2, peakFMA_avx512, read_avx2
// and read_avx512, constrained to !purego.
func LimitsAMD64(pkg string) (asmText, stubs []byte, err error) {
	c := build.NewContext()
	c.ConstraintExpr("!purego")
	for _, isa := range []ISA{AVX2, AVX512} {
		peakFMA(c, isa)
	}
	for _, isa := range []ISA{AVX2, AVX512} {
		readKernel(c, isa, false)
		readKernel(c, isa, true)
	}
	return printAVO(c, pkg, "limit kernels")
}

func limitVec(c *build.Context, isa ISA) reg.VecVirtual {
	if isa == AVX512 {
		return c.ZMM()
	}
	return c.YMM()
}

// limitSumStore adds vs pairwise into vs[0] and stores it at out.
func limitSumStore(c *build.Context, vs []reg.VecVirtual, out operand.Mem) {
	for len(vs) > 1 {
		half := (len(vs) + 1) / 2
		for i := half; i < len(vs); i++ {
			c.VADDPS(vs[i], vs[i-half], vs[i-half])
		}
		vs = vs[:half]
	}
	c.VMOVUPS(vs[0], out)
}

func peakFMA(c *build.Context, isa ISA) {
	chains := LimitFMAChains(isa)
	leaf(c, "peakFMA_"+isa.String(), "func(n int, a, b float32, out *float32)", fmt.Sprintf("peakFMA_%s runs n iterations of %d independent FMA chains acc = acc·a + b and stores their sum at out.", isa, chains))
	n := c.GP64()
	c.MOVQ(paramAddr(c, "n"), n)
	a, b := limitVec(c, isa), limitVec(c, isa)
	c.VBROADCASTSS(paramAddr(c, "a"), a)
	c.VBROADCASTSS(paramAddr(c, "b"), b)
	acc := make([]reg.VecVirtual, chains)
	for i := range acc {
		// A broadcast, not a xor: it writes without reading (see amd.zero).
		acc[i] = limitVec(c, isa)
		c.VBROADCASTSS(paramAddr(c, "b"), acc[i])
	}
	loop, done := "fma_loop_"+isa.String(), "fma_done_"+isa.String()
	c.TESTQ(n, n)
	c.JLE(operand.LabelRef(done))
	c.Label(loop)
	for i := range acc {
		c.VFMADD213PS(b, a, acc[i]) // acc = a·acc + b
	}
	c.DECQ(n)
	c.JNZ(operand.LabelRef(loop))
	c.Label(done)
	out := c.GP64()
	c.MOVQ(paramAddr(c, "out"), out)
	limitSumStore(c, acc, operand.Mem{Base: out})
	c.VZEROUPPER()
	c.RET()
}

func readKernel(c *build.Context, isa ISA, nta bool) {
	lanes := LimitLanes(isa)
	name, sig := "read_"+isa.String(), "func(p *float32, n int, x float32, out *float32)"
	doc := fmt.Sprintf("%s streams n blocks of %d vectors from p as FMA memory operands (acc += p·x) and stores the sum at out.", name, LimitReadBlock)
	if nta {
		name, sig = "readnta_"+isa.String(), "func(p *float32, n int, x float32, out *float32, ahead int)"
		doc = fmt.Sprintf("%s is read_%s with a PREFETCHNTA of every line ahead bytes on, as the decode matvecs stream their weights.", name, isa)
	}
	leaf(c, name, sig, doc)
	p, n := c.GP64(), c.GP64()
	c.MOVQ(paramAddr(c, "p"), p)
	c.MOVQ(paramAddr(c, "n"), n)
	var ahead reg.GPVirtual
	if nta {
		ahead = c.GP64()
		c.MOVQ(paramAddr(c, "ahead"), ahead)
	}
	x := limitVec(c, isa)
	c.VBROADCASTSS(paramAddr(c, "x"), x)
	acc := make([]reg.VecVirtual, LimitReadBlock)
	for i := range acc {
		acc[i] = limitVec(c, isa)
		c.VBROADCASTSS(paramAddr(c, "x"), acc[i])
	}
	loop, done := name+"_loop", name+"_done"
	c.TESTQ(n, n)
	c.JLE(operand.LabelRef(done))
	c.Label(loop)
	for i := range acc {
		d := 4 * lanes * i
		if nta && d%64 == 0 {
			c.PREFETCHNTA(operand.Mem{Base: p, Index: ahead, Scale: 1, Disp: d})
		}
		c.VFMADD231PS(operand.Mem{Base: p, Disp: d}, x, acc[i])
	}
	c.ADDQ(operand.U32(uint32(4*lanes*LimitReadBlock)), p)
	c.DECQ(n)
	c.JNZ(operand.LabelRef(loop))
	c.Label(done)
	out := c.GP64()
	c.MOVQ(paramAddr(c, "out"), out)
	limitSumStore(c, acc, operand.Mem{Base: out})
	c.VZEROUPPER()
	c.RET()
}
