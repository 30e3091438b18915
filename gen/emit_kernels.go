package gen

import (
	"fmt"
	"slices"
	"strings"

	. "github.com/dave/jennifer/jen"

	"github.com/modelc/modelc/asm"
)

func unsafeCast(typ *Statement, ptr *Statement) *Statement {
	return Parens(Op("*").Add(typ)).Parens(Qual("unsafe", "Pointer").Parens(ptr))
}

// kernelFuncType is the Go type of a kernel of op (asm.Kernel.Signature).
func kernelFuncType(op asm.Op) *Statement {
	f := func(ptrs []string, rest ...Code) *Statement {
		var ps []Code
		for _, p := range ptrs {
			ps = append(ps, Id(p))
		}
		params := []Code{List(ps...).Op("*").Float32()}
		return Func().Params(append(params, rest...)...)
	}
	switch op {
	case asm.OpMatVec, asm.OpMatVecAdd, asm.OpSwiGLU:
		return f([]string{"out", "w", "x"}, Id("n").Int())
	case asm.OpRMSNormMatVec, asm.OpRMSNormSwiGLU:
		return f([]string{"out", "w", "x", "nw"}, Id("n").Int(), Id("eps").Float32())
	case asm.OpAttention, asm.OpGroupAttention, asm.OpGroupAttentionT:
		return f([]string{"out", "q", "k", "v", "att"}, Id("t").Int())
	case asm.OpMatMul:
		return f([]string{"out", "w", "x"}, List(Id("n"), Id("b")).Int())
	case asm.OpSiLUMul:
		return f([]string{"out", "h"}, Id("n").Int())
	case asm.OpRoPE:
		return f([]string{"x", "cs"})
	}
	panic(fmt.Sprintf("gen: no function type for %s", op))
}

// emitKernelSet writes the kernelSet type and the pure-Go set; the kernels
// themselves come from asm.
func emitKernelSet(f *File, p *Plan) {
	var fields []Code
	fields = append(fields, Id("name").String())
	for _, c := range p.Calls() {
		fields = append(fields, Id(c.Field).Add(kernelFuncType(c.Kernel.Op)))
	}
	for _, c := range p.QCalls() {
		fields = append(fields, Id(c.Field).Add(qFuncType()))
	}
	for i, c := range p.QCalls() {
		if i == 0 {
			fields = append(fields, Comment("The panel kernels (AVX-512 VNNI) read the panel copies of the quantised matrices (Model.qp); nil on other paths."))
		}
		fields = append(fields, Id(c.PanelField()).Add(qFuncType()))
	}
	for i, c := range p.QMMCalls() {
		if i == 0 {
			fields = append(fields, Comment("The panel matmuls of the batched quantised pass (AVX-512 VNNI); nil on other paths."))
		}
		fields = append(fields, Id(c.Field).Add(qmmFuncType()))
	}
	for i, c := range p.GMMCalls() {
		if i == 0 {
			fields = append(fields, Comment("The matmuls of the batched quantised pass over ggml's blocks (AVX2, NEON, Go); nil on AVX-512."))
		}
		fields = append(fields, Id(c.Field).Add(gmmFuncType()))
	}
	f.Comment("kernelSet is one instruction set's kernels for this model's shapes.")
	f.Type().Id("kernelSet").Struct(fields...)
	f.Comment("goKernels is the specialised pure-Go path, built everywhere.")
	f.Var().Id("goKernels").Op("=").Add(kernelSetValue(p, asm.Generic))

	f.Comment("kern is the kernel path in use: the widest this machine runs, chosen once at start.")
	f.Var().Id("kern").Op("=").Id("pickKernels").Call()
	f.Func().Id("pickKernels").Params().Id("kernelSet").Block(
		For(List(Id("_"), Id("l")).Op(":=").Range().Qual(cpuPkg, "Levels").Call()).Block(
			If(List(Id("ks"), Id("ok")).Op(":=").Id("archKernels").Call(Id("l")), Id("ok")).Block(Return(Id("ks"))),
		),
		Return(Id("goKernels")),
	)
	f.Comment("UseKernels switches to the kernels of level l (tests run every path the")
	f.Comment("machine can); it fails when the machine or this build cannot run them.")
	f.Func().Id("UseKernels").Params(Id("l").Qual(cpuPkg, "Level")).Error().Block(
		If(Id("l").Op("==").Qual(cpuPkg, "Generic")).Block(Id("kern").Op("=").Id("goKernels"), Return(Nil())),
		If(Op("!").Qual(cpuPkg, "Supports").Call(Id("l"))).Block(
			Return(Qual("fmt", "Errorf").Call(Lit(p.Package+": this machine or build cannot run %s kernels"), Id("l"))),
		),
		List(Id("ks"), Id("ok")).Op(":=").Id("archKernels").Call(Id("l")),
		If(Op("!").Id("ok")).Block(
			Return(Qual("fmt", "Errorf").Call(Lit(p.Package+": %s kernels were not generated (see the spec's targets)"), Id("l"))),
		),
		Id("kern").Op("=").Id("ks"),
		Return(Nil()),
	)
	f.Comment("KernelPath names the kernel path in use.")
	f.Func().Id("KernelPath").Params().String().Block(Return(Id("kern").Dot("name")))
}

func kernelSetValue(p *Plan, isa asm.ISA) *Statement {
	d := Dict{Id("name"): Lit(isa.String())}
	for _, c := range p.Calls() {
		d[Id(c.Field)] = Id(KernelName(c, isa))
	}
	for _, c := range p.QCalls() {
		d[Id(c.Field)] = Id(QKernelName(c, isa, false))
		if isa == asm.AVX512 {
			k := c.Kernel
			k.ISA, k.Panel = isa, true
			d[Id(c.PanelField())] = Id(k.Name())
		}
	}
	if isa == asm.AVX512 {
		for _, c := range p.QMMCalls() {
			d[Id(c.Field)] = Id(c.Kernel.Name())
		}
	} else {
		for _, c := range p.GMMCalls() {
			d[Id(c.Field)] = Id(QKernelName(c, isa, false))
		}
	}
	return Id("kernelSet").Values(d)
}

// qFuncType is the Go type of a quantised matvec (asm.QSignature).
func qFuncType() *Statement {
	return Func().Params(Id("out").Op("*").Float32(), Id("w").Op("*").Byte(), Id("xq").Op("*").Int8(), Id("xs").Op("*").Float32(), Id("n").Int())
}

// qmmFuncType is the Go type of a panel QMatMul (asm.QPanelMatMulSignature).
func qmmFuncType() *Statement {
	return Func().Params(Id("out").Op("*").Float32(), Id("w").Op("*").Byte(), Id("xq").Op("*").Int8(), Id("xs").Op("*").Float32(), Id("xsum").Op("*").Int32(), List(Id("n"), Id("b")).Int())
}

// gmmFuncType is the Go type of a QMatMul over ggml's blocks (asm.QMatMulSignature).
func gmmFuncType() *Statement {
	return Func().Params(Id("out").Op("*").Float32(), Id("w").Op("*").Byte(), Id("xq").Op("*").Int8(), Id("xs").Op("*").Float32(), List(Id("n"), Id("b")).Int())
}

// qFallback replaces the quantised kernels of a level's set when the CPU
// lacks what they need: AVX-512 VNNI (then AVX2's), NEON's SDOT (then the
// SMULL/SADALP ones). Nil when there is nothing to check.
func qFallback(p *Plan, isa asm.ISA) []Code {
	if len(p.QCalls()) == 0 || (isa != asm.AVX512 && isa != asm.NEON) {
		return nil
	}
	var set []Code
	cond := Op("!").Id("f").Dot("ASIMDDP")
	if isa == asm.AVX512 {
		cond = Op("!").Id("f").Dot("AVX512BW").Op("||").Op("!").Id("f").Dot("AVX512VNNI")
	}
	for _, c := range p.QCalls() {
		name := QKernelName(c, asm.NEON, true)
		if isa == asm.AVX512 {
			name = QKernelName(c, asm.AVX2, false)
		}
		set = append(set, Id("ks").Dot(c.Field).Op("=").Id(name))
		if isa == asm.AVX512 {
			set = append(set, Id("ks").Dot(c.PanelField()).Op("=").Nil())
		}
	}
	if isa == asm.AVX512 {
		for _, c := range p.QMMCalls() {
			set = append(set, Id("ks").Dot(c.Field).Op("=").Nil())
		}
		for _, c := range p.GMMCalls() {
			set = append(set, Id("ks").Dot(c.Field).Op("=").Id(QKernelName(c, asm.AVX2, false)))
		}
	} else {
		for _, c := range p.GMMCalls() {
			set = append(set, Id("ks").Dot(c.Field).Op("=").Id(QKernelName(c, asm.NEON, true)))
		}
	}
	return []Code{If(Id("f").Op(":=").Qual(cpuPkg, "Detect").Call(), cond).Block(set...)}
}

var isaLevel = map[asm.ISA]string{asm.AVX512: "AVX512", asm.AVX2: "AVX2", asm.NEON: "NEON"}

// emitArchDispatch writes archKernels for one GOARCH's assembly paths.
func emitArchDispatch(p *Plan, arch string, isas []asm.ISA) *File {
	f := NewFile(p.Package)
	f.HeaderComment(header)
	f.HeaderComment("")
	f.HeaderComment("//go:build !purego")
	var cases []Code
	for _, isa := range slices.Backward(isas) {
		if fb := qFallback(p, isa); fb != nil {
			body := append([]Code{Id("ks").Op(":=").Add(kernelSetValue(p, isa))}, fb...)
			cases = append(cases, Case(Qual(cpuPkg, isaLevel[isa])).Block(append(body, Return(Id("ks"), True()))...))
			continue
		}
		cases = append(cases, Case(Qual(cpuPkg, isaLevel[isa])).Block(Return(kernelSetValue(p, isa), True())))
	}
	f.Comment("archKernels returns the " + arch + " assembly kernels of level l, if generated.")
	f.Func().Id("archKernels").Params(Id("l").Qual(cpuPkg, "Level")).Params(Id("kernelSet"), Bool()).Block(
		Switch(Id("l")).Block(cases...),
		Return(Id("kernelSet").Values(), False()),
	)
	return f
}

// emitNoArchDispatch writes archKernels for builds without assembly.
func emitNoArchDispatch(p *Plan, archs []string) *File {
	f := NewFile(p.Package)
	f.HeaderComment(header)
	if len(archs) > 0 {
		f.HeaderComment("")
		f.HeaderComment("//go:build purego || !(" + strings.Join(archs, " || ") + ")")
	}
	f.Comment("archKernels: this build has no assembly kernels.")
	f.Func().Id("archKernels").Params(Qual(cpuPkg, "Level")).Params(Id("kernelSet"), Bool()).Block(
		Return(Id("kernelSet").Values(), False()),
	)
	return f
}
