package gen

import (
	"fmt"
	"math"

	. "github.com/dave/jennifer/jen"
)

// vecType names the blocked row type of n floats: n/Lanes blocks of Lanes
// floats then a tail, so that every index in a dot product is a constant or a
// range over a constant length and the compiler drops all bounds checks.
func vecType(n int) string { return fmt.Sprintf("vec%d", n) }

func emitVecType(f *File, n int) {
	var fields []Code
	if n/Lanes > 0 {
		fields = append(fields, Id("b").Index(Lit(n/Lanes)).Index(Lit(Lanes)).Float32())
	}
	if n%Lanes > 0 {
		fields = append(fields, Id("t").Index(Lit(n%Lanes)).Float32())
	}
	f.Commentf("%s is a row of %d floats laid out as %d blocks of %d and a tail of %d.", vecType(n), n, n/Lanes, Lanes, n%Lanes)
	f.Type().Id(vecType(n)).Struct(fields...)
}

// dot emits statements that leave Σ a·b over n floats in the variable dst;
// a and b are expressions of type *vecN.
func dot(dst string, a, b *Statement, n int) []Code {
	var code []Code
	nb, tail := n/Lanes, n%Lanes
	if nb > 0 {
		// Four accumulators, each taking two lanes per block: enough
		// independent additions to hide their latency, few enough registers
		// (4 sums + 8 products) that nothing spills.
		const acc = Lanes / 2
		sums := make([]Code, acc)
		for i := range sums {
			sums[i] = Id(fmt.Sprintf("s%d", i))
		}
		code = append(code, Var().List(sums...).Float32())
		body := []Code{List(Id("wa"), Id("xa")).Op(":=").Op("&").Add(a.Clone()).Dot("b").Index(Id("i")).Op(",").Op("&").Add(b.Clone()).Dot("b").Index(Id("i"))}
		for i := 0; i < acc; i++ {
			body = append(body, Id(fmt.Sprintf("s%d", i)).Op("+=").
				Id("wa").Index(Lit(i)).Op("*").Id("xa").Index(Lit(i)).Op("+").
				Id("wa").Index(Lit(i+acc)).Op("*").Id("xa").Index(Lit(i+acc)))
		}
		code = append(code, For(Id("i").Op(":=").Range().Lit(nb)).Block(body...))
		code = append(code, Id(dst).Op(":=").Add(pairwise(acc, func(i int) *Statement { return Id(fmt.Sprintf("s%d", i)) })))
	} else {
		code = append(code, Var().Id(dst).Float32())
	}
	for i := 0; i < tail; i++ {
		code = append(code, Id(dst).Op("+=").Add(a.Clone()).Dot("t").Index(Lit(i)).Op("*").Add(b.Clone()).Dot("t").Index(Lit(i)))
	}
	return code
}

// pairwise sums n terms as a balanced tree, so the additions overlap.
func pairwise(n int, term func(i int) *Statement) *Statement {
	var rec func(lo, hi int) *Statement
	rec = func(lo, hi int) *Statement {
		if hi-lo == 1 {
			return term(lo)
		}
		mid := (lo + hi) / 2
		return Parens(rec(lo, mid).Op("+").Add(rec(mid, hi)))
	}
	return rec(0, n)
}

func unsafeCast(typ *Statement, ptr *Statement) *Statement {
	return Parens(Op("*").Add(typ)).Parens(Qual("unsafe", "Pointer").Parens(ptr))
}

// emitNorm emits the RMSNorm of x (a *[n]float32) scaled by nw into a local
// vecN called xn, with epsilon eps.
func emitNorm(n int, eps float64) []Code {
	return []Code{
		Var().Id("ss").Float32(),
		For(Id("i").Op(":=").Range().Lit(n)).Block(Id("ss").Op("+=").Id("x").Index(Id("i")).Op("*").Id("x").Index(Id("i"))),
		Id("inv").Op(":=").Float32().Parens(Lit(1).Op("/").Qual("math", "Sqrt").Call(Float64().Parens(Id("ss").Op("/").Lit(float32(n)).Op("+").Lit(float32(eps))))),
		Var().Id("xn").Id(vecType(n)),
		Id("xf").Op(":=").Add(unsafeCast(Index(Lit(n)).Float32(), Op("&").Id("xn"))),
		For(Id("i").Op(":=").Range().Lit(n)).Block(Id("xf").Index(Id("i")).Op("=").Id("nw").Index(Id("i")).Op("*").Parens(Id("inv").Op("*").Id("x").Index(Id("i")))),
	}
}

// emitMatVec emits one specialised kernel.
func emitMatVec(f *File, m MatVec, eps float64) {
	rows, cols := m.Rows, m.Cols
	vt := Id(vecType(cols))
	var params []Code
	var pre, body []Code
	row := func(idx Code) *Statement { return Op("&").Id("w").Index(idx) }
	switch m.Fusion {
	case Plain, Residual:
		params = []Code{Id("out").Op("*").Index(Lit(rows)).Float32(), Id("w").Op("*").Index(Lit(rows)).Add(vt.Clone()), Id("x").Op("*").Index(Lit(cols)).Float32()}
		pre = []Code{Id("xv").Op(":=").Add(unsafeCast(vt.Clone(), Id("x")))}
		body = append([]Code{Id("wr").Op(":=").Add(row(Id("r")))}, dot("d", Id("wr"), Id("xv"), cols)...)
		op := "="
		if m.Fusion == Residual {
			op = "+="
		}
		body = append(body, Id("out").Index(Id("r")).Op(op).Id("d"))
	case Norm:
		params = []Code{Id("out").Op("*").Index(Lit(rows)).Float32(), Id("w").Op("*").Index(Lit(rows)).Add(vt.Clone()), Id("x").Op("*").Index(Lit(cols)).Float32(), Id("nw").Op("*").Index(Lit(cols)).Float32()}
		pre = append(emitNorm(cols, eps), Id("xv").Op(":=").Op("&").Id("xn"))
		body = append([]Code{Id("wr").Op(":=").Add(row(Id("r")))}, dot("d", Id("wr"), Id("xv"), cols)...)
		body = append(body, Id("out").Index(Id("r")).Op("=").Id("d"))
	case NormSwiGLU:
		params = []Code{Id("out").Op("*").Index(Lit(rows)).Float32(), Id("w").Op("*").Index(Lit(2 * rows)).Add(vt.Clone()), Id("x").Op("*").Index(Lit(cols)).Float32(), Id("nw").Op("*").Index(Lit(cols)).Float32()}
		pre = append(emitNorm(cols, eps), Id("xv").Op(":=").Op("&").Id("xn"))
		body = append(body, Id("wg").Op(":=").Add(row(Id("r"))))
		body = append(body, dot("g", Id("wg"), Id("xv"), cols)...)
		body = append(body, Id("wu").Op(":=").Add(row(Id("r").Op("+").Lit(rows))))
		// The up dot product sits in its own block to reuse the accumulator names.
		up := append(dot("u", Id("wu"), Id("xv"), cols),
			Id("out").Index(Id("r")).Op("=").Id("g").Op("/").Parens(Lit(float32(1)).Op("+").Qual(kernelsPkg, "Exp32").Call(Op("-").Id("g"))).Op("*").Id("u"))
		body = append(body, Block(up...))
	}
	f.Commentf("%s computes %s for rows [lo, hi) of %d rows of %d.", m.Name(), fusionDoc[m.Fusion], rows, cols)
	params = append(params, List(Id("lo"), Id("hi")).Int())
	f.Func().Id(m.Name()).Params(params...).Block(
		append(pre, For(Id("r").Op(":=").Id("lo"), Id("r").Op("<").Id("hi"), Id("r").Op("++")).Block(body...))...,
	)
}

var fusionDoc = [...]string{
	"out = W·x",
	"out += W·x",
	"out = W·rmsnorm(x)",
	"out = silu(Wg·rmsnorm(x)) · (Wu·rmsnorm(x))",
}

// emitRMSNorm emits a plain RMSNorm of a Dim vector (the final norm).
func emitRMSNorm(f *File, n int, eps float64) {
	f.Comment("rmsnorm writes x normalised by its root mean square and scaled by nw.")
	f.Func().Id("rmsnorm").Params(Id("out"), Id("x"), Id("nw").Op("*").Index(Lit(n)).Float32()).Block(
		Var().Id("ss").Float32(),
		For(Id("i").Op(":=").Range().Lit(n)).Block(Id("ss").Op("+=").Id("x").Index(Id("i")).Op("*").Id("x").Index(Id("i"))),
		Id("inv").Op(":=").Float32().Parens(Lit(1).Op("/").Qual("math", "Sqrt").Call(Float64().Parens(Id("ss").Op("/").Lit(float32(n)).Op("+").Lit(float32(eps))))),
		For(Id("i").Op(":=").Range().Lit(n)).Block(Id("out").Index(Id("i")).Op("=").Id("nw").Index(Id("i")).Op("*").Parens(Id("inv").Op("*").Id("x").Index(Id("i")))),
	)
}

// emitRoPE emits the rotation of the query and key heads by the per-position
// cos/sin tables.
func emitRoPE(f *File, heads, kvHeads, hd int) {
	half := hd / 2
	pairs := func(n int) *Statement { return Index(Lit(n)).Index(Lit(half)).Index(Lit(2)).Float32() }
	rot := func(name string, n int) Code {
		return For(Id("h").Op(":=").Range().Lit(n)).Block(
			For(Id("i").Op(":=").Range().Lit(half)).Block(
				Id("p").Op(":=").Op("&").Id(name).Index(Id("h")).Index(Id("i")),
				List(Id("a"), Id("b")).Op(":=").Id("p").Index(Lit(0)).Op(",").Id("p").Index(Lit(1)),
				Id("p").Index(Lit(0)).Op("=").Id("a").Op("*").Id("cos").Index(Id("i")).Op("-").Id("b").Op("*").Id("sin").Index(Id("i")),
				Id("p").Index(Lit(1)).Op("=").Id("a").Op("*").Id("sin").Index(Id("i")).Op("+").Id("b").Op("*").Id("cos").Index(Id("i")),
			),
		)
	}
	f.Comment("rope rotates each adjacent pair of every query and key head.")
	f.Func().Id("rope").Params(
		Id("q").Op("*").Add(pairs(heads)), Id("k").Op("*").Add(pairs(kvHeads)),
		List(Id("cos"), Id("sin")).Op("*").Index(Lit(half)).Float32(),
	).Block(rot("q", heads), rot("k", kvHeads))
}

// emitAttention emits multi-head attention with grouped KV heads over the
// cache, for a head size fixed at generation time. Per head: one pass for the
// scores and their maximum, one pass that exponentiates (inline, see emitExp)
// and accumulates the weighted values, then one scale by 1/Σ.
func emitAttention(f *File, heads, kvHeads, hd, maxSeq int) {
	group := heads / kvHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	headArr := func(n int) *Statement { return Index(Lit(n)).Index(Lit(hd)).Float32() }
	cache := Op("*").Index(Lit(maxSeq)).Index(Lit(kvHeads)).Index(Lit(hd)).Float32()
	loop := func(body ...Code) Code {
		return For(Id("t").Op(":=").Lit(0), Id("t").Op("<=").Id("pos"), Id("t").Op("++")).Block(body...)
	}
	maxOf := If(Id("sc").Op(">").Id("m")).Block(Id("m").Op("=").Id("sc"))

	var score, weigh, store []Code
	if hd <= UnrollHead {
		// Small heads: the query and the output live in registers.
		for i := 0; i < hd; i++ {
			score = append(score, Id(fmt.Sprintf("q%d", i)).Op(":=").Id("qh").Index(Lit(i)))
		}
		score = append(score, loop(
			Id("k").Op(":=").Op("&").Id("keys").Index(Id("t")).Index(Id("kh")),
			Id("sc").Op(":=").Add(pairwise(hd, func(i int) *Statement {
				return Id(fmt.Sprintf("q%d", i)).Op("*").Id("k").Index(Lit(i))
			})).Op("*").Lit(scale),
			Id("att").Index(Id("t")).Op("=").Id("sc"),
			maxOf,
		))
		var os []Code
		for i := 0; i < hd; i++ {
			os = append(os, Id(fmt.Sprintf("o%d", i)))
		}
		weigh = []Code{Var().List(os...).Float32()}
		acc := append(emitExp("e", Id("att").Index(Id("t")).Op("-").Id("m")),
			Id("sum").Op("+=").Id("e"),
			Id("v").Op(":=").Op("&").Id("values").Index(Id("t")).Index(Id("kh")))
		for i := 0; i < hd; i++ {
			acc = append(acc, Id(fmt.Sprintf("o%d", i)).Op("+=").Id("e").Op("*").Id("v").Index(Lit(i)))
		}
		weigh = append(weigh, loop(acc...))
		vals := make([]Code, hd)
		for i := range vals {
			vals[i] = Id(fmt.Sprintf("o%d", i)).Op("*").Id("inv")
		}
		store = []Code{Id("out").Index(Id("h")).Op("=").Index(Lit(hd)).Float32().Values(vals...)}
	} else {
		hv := Id(vecType(hd))
		score = []Code{Id("qv").Op(":=").Add(unsafeCast(hv.Clone(), Id("qh"))),
			loop(append(append([]Code{Id("kv").Op(":=").Add(unsafeCast(hv.Clone(), Op("&").Id("keys").Index(Id("t")).Index(Id("kh"))))},
				dot("d", Id("qv"), Id("kv"), hd)...),
				Id("sc").Op(":=").Id("d").Op("*").Lit(scale),
				Id("att").Index(Id("t")).Op("=").Id("sc"),
				maxOf)...),
		}
		acc := append(emitExp("e", Id("att").Index(Id("t")).Op("-").Id("m")),
			Id("sum").Op("+=").Id("e"),
			Id("v").Op(":=").Op("&").Id("values").Index(Id("t")).Index(Id("kh")),
			For(Id("i").Op(":=").Range().Lit(hd)).Block(Id("o").Index(Id("i")).Op("+=").Id("e").Op("*").Id("v").Index(Id("i"))))
		weigh = []Code{
			Id("o").Op(":=").Op("&").Id("out").Index(Id("h")),
			Op("*").Id("o").Op("=").Index(Lit(hd)).Float32().Values(),
			loop(acc...),
		}
		store = []Code{For(Id("i").Op(":=").Range().Lit(hd)).Block(Id("o").Index(Id("i")).Op("*=").Id("inv"))}
	}
	body := []Code{
		Id("kh").Op(":=").Id("h").Op("/").Lit(group),
		Id("qh").Op(":=").Op("&").Id("q").Index(Id("h")),
		Id("m").Op(":=").Qual("math", "Inf").Call(Lit(-1)),
	}
	// m is float64 only for its initial value; keep the arithmetic float32.
	body[2] = Id("m").Op(":=").Float32().Parens(Qual("math", "Inf").Call(Lit(-1)))
	body = append(body, score...)
	body = append(body, Var().Id("sum").Float32())
	body = append(body, weigh...)
	body = append(body, Id("inv").Op(":=").Lit(float32(1)).Op("/").Id("sum"))
	body = append(body, store...)
	f.Comment("attention computes every head's output for the query at pos over the")
	f.Comment("cached keys and values 0..pos; query heads share KV heads in groups.")
	f.Func().Id("attention").Params(
		Id("out"), Id("q").Op("*").Add(headArr(heads)),
		List(Id("keys"), Id("values")).Add(cache),
		Id("att").Op("*").Index(Lit(maxSeq)).Float32(), Id("pos").Int(),
	).Block(For(Id("h").Op(":=").Range().Lit(heads)).Block(body...))
}

// emitExp emits statements leaving e^x in dst for x ≤ 0 (a softmax argument),
// inline so that the loop around it needs no call: the same range reduction
// and polynomial as kernels.Exp32, with x clamped at -87 so that 2^n stays a
// normal float (e^-87 is 0 to softmax).
func emitExp(dst string, x *Statement) []Code {
	return []Code{
		Id("x").Op(":=").Add(x),
		If(Id("x").Op("<").Lit(float32(-87.3))).Block(Id("x").Op("=").Lit(float32(-87.3))),
		// Rounds to nearest for x ≤ 0: conversion truncates toward zero.
		Id("n").Op(":=").Float32().Parens(Int32().Parens(Id("x").Op("*").Lit(float32(1.442695041)).Op("-").Lit(float32(0.5)))),
		Id("r").Op(":=").Id("x").Op("-").Id("n").Op("*").Lit(float32(0.693359375)).Op("+").Id("n").Op("*").Lit(float32(2.12194440e-4)),
		Id("p").Op(":=").Lit(float32(1.9875691500e-4)).Op("*").Id("r").Op("+").Lit(float32(1.3981999507e-3)),
		Id("p").Op("=").Id("p").Op("*").Id("r").Op("+").Lit(float32(8.3334519073e-3)),
		Id("p").Op("=").Id("p").Op("*").Id("r").Op("+").Lit(float32(4.1665795894e-2)),
		Id("p").Op("=").Id("p").Op("*").Id("r").Op("+").Lit(float32(1.6666665459e-1)),
		Id("p").Op("=").Id("p").Op("*").Id("r").Op("+").Lit(float32(5.0000001201e-1)),
		Id("p").Op("=").Id("p").Op("*").Parens(Id("r").Op("*").Id("r")).Op("+").Id("r").Op("+").Lit(float32(1)),
		Id(dst).Op(":=").Id("p").Op("*").Qual("math", "Float32frombits").Call(Uint32().Parens(Int32().Parens(Id("n")).Op("+").Lit(127)).Op("<<").Lit(23)),
	}
}

const kernelsPkg = "github.com/modelc/modelc/runtime/kernels"
