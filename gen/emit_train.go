package gen

import (
	"bytes"
	"fmt"
	"strings"

	. "github.com/dave/jennifer/jen"

	"github.com/modelc/modelc/asm"
)

const genericPkg = "github.com/modelc/modelc/runtime/generic"

// Token chunks of the compiled trainer's matrix products: a chunk of inputs
// (at most 128 × ffn_dim floats) stays in L2 while the weights stream past
// it. The weight gradient sums over fixed chunks of trainDWChunk tokens, so
// its result does not depend on the number of threads.
const (
	trainChunk   = 128
	trainDWChunk = 256
)

// trainCalls are the plan's batched products, each of which gets a forward
// kernel (already in kernelSet) and two backward kernels.
func (p *Plan) trainCalls() []KCall {
	var cs []KCall
	for _, c := range p.Calls() {
		if c.Kernel.Op == asm.OpMatMul {
			cs = append(cs, c)
		}
	}
	return cs
}

// BackwardKernels lists the backward matmul kernels of the trainer for isa.
func (p *Plan) BackwardKernels(isa asm.ISA) []asm.BKernel {
	var ks []asm.BKernel
	for _, c := range p.trainCalls() {
		for _, dw := range []bool{false, true} {
			ks = append(ks, asm.BKernel{DW: dw, ISA: isa, Rows: c.Kernel.Rows, Cols: c.Kernel.Cols})
		}
	}
	return ks
}

// TrainKernels lists the trainer's softmax and attention-backward kernels
// for isa that can be generated (amd64 ISAs, rows of whole vectors).
func (p *Plan) TrainKernels(isa asm.ISA) []asm.TKernel {
	s := &p.Spec
	var ks []asm.TKernel
	for _, k := range []asm.TKernel{
		{Op: asm.TSoftmax, ISA: isa, Vocab: s.Vocab},
		{Op: asm.TAttBwd, ISA: isa, HeadDim: s.HeadDim(), Stride: s.Dim + 2*s.KVDim()},
		{Op: asm.TSwiGLUBack, ISA: isa, FFN: s.FFNDim},
	} {
		if k.Supported() {
			ks = append(ks, k)
		}
	}
	for _, c := range p.trainCalls() {
		if k := (asm.TKernel{Op: asm.TMatMulP, ISA: isa, Rows: c.Kernel.Rows, Cols: c.Kernel.Cols}); k.Supported() {
			ks = append(ks, k)
		}
	}
	return ks
}

// trainPackMin is the fewest tokens for which the trainer packs a weight
// matrix and runs the packed forward kernel.
const trainPackMin = 32

func pfield(c KCall) string { return "fp" + strings.TrimPrefix(c.Field, "mm") }

func bfield(c KCall, dw bool) string {
	if dw {
		return "dw" + strings.TrimPrefix(c.Field, "mm")
	}
	return "dx" + strings.TrimPrefix(c.Field, "mm")
}

// emitTrain adds the trainer's files to out: the backward kernels of every
// path, their dispatch, and train_gen.go with Model.NewTrainer.
func emitTrain(p *Plan, out map[string][]byte) error {
	render := func(name string, f *File) error {
		var b bytes.Buffer
		if err := f.Render(&b); err != nil {
			return fmt.Errorf("gen %s: %w", name, err)
		}
		out[name] = b.Bytes()
		return nil
	}
	src, err := asm.BackwardGo(p.BackwardKernels(asm.Generic), p.Package)
	if err != nil {
		return fmt.Errorf("gen %s: %w", p.Package, err)
	}
	out["bkernels_go.go"] = src
	var archs []string
	for _, arch := range []string{"amd64", "arm64"} {
		isas := p.archISAs()[arch]
		if len(isas) == 0 {
			continue
		}
		var ks []asm.BKernel
		for _, isa := range isas {
			ks = append(ks, p.BackwardKernels(isa)...)
		}
		gen := asm.BackwardAMD64
		if arch == "arm64" {
			gen = asm.BackwardARM64
		}
		text, stubs, err := gen(ks, p.Package)
		if err != nil {
			return fmt.Errorf("gen %s: %w", p.Package, err)
		}
		out["bkernels_"+arch+".s"] = text
		out["bkernels_"+arch+".go"] = stubs
		if arch == "amd64" {
			var tks []asm.TKernel
			for _, isa := range isas {
				tks = append(tks, p.TrainKernels(isa)...)
			}
			if len(tks) > 0 {
				text, stubs, err := asm.TrainOpsAMD64(tks, p.Package)
				if err != nil {
					return fmt.Errorf("gen %s: %w", p.Package, err)
				}
				out["tkernels_amd64.s"] = text
				out["tkernels_amd64.go"] = stubs
			}
		}
		if err := render("train_"+arch+".go", emitTrainDispatch(p, isas)); err != nil {
			return err
		}
		archs = append(archs, arch)
	}
	constraint := ""
	if len(archs) > 0 {
		constraint = "purego || !(" + strings.Join(archs, " || ") + ")"
	}
	if err := render("train_other.go", emitTrainNoDispatch(p, constraint)); err != nil {
		return err
	}
	return render("train_gen.go", emitTrainer(p))
}

func trainSetValue(p *Plan, isa asm.ISA) *Statement {
	d := Dict{}
	for _, c := range p.trainCalls() {
		for _, dw := range []bool{false, true} {
			k := asm.BKernel{DW: dw, ISA: isa, Rows: c.Kernel.Rows, Cols: c.Kernel.Cols}
			d[Id(bfield(c, dw))] = Id(k.Name())
		}
	}
	smax := "softmaxRow"
	for _, k := range p.TrainKernels(isa) {
		switch k.Op {
		case asm.TSoftmax:
			smax = k.Name()
		case asm.TAttBwd:
			d[Id("attBwd")] = Id(k.Name())
		case asm.TSwiGLUBack:
			d[Id("swib")] = Id(k.Name())
		}
	}
	packed := false
	for _, c := range p.trainCalls() {
		if k := (asm.TKernel{Op: asm.TMatMulP, ISA: isa, Rows: c.Kernel.Rows, Cols: c.Kernel.Cols}); k.Supported() {
			d[Id(pfield(c))] = Id(k.Name())
			packed = true
		}
	}
	if packed {
		d[Id("packW")] = Lit(asm.PackWidth(isa))
	}
	d[Id("smax")] = Id(smax)
	return Id("trainSet").Values(d)
}

// emitTrainDispatch writes archTrain for the amd64 assembly paths, keyed by
// the forward kernel path's name so that both always agree.
func emitTrainDispatch(p *Plan, isas []asm.ISA) *File {
	f := NewFile(p.Package)
	f.HeaderComment(header)
	f.HeaderComment("")
	f.HeaderComment("//go:build !purego")
	var cases []Code
	for _, isa := range isas {
		cases = append(cases, Case(Lit(isa.String())).Block(Return(trainSetValue(p, isa), True())))
	}
	f.Comment("archTrain returns the assembly backward kernels of the kernel path named name, if generated.")
	f.Func().Id("archTrain").Params(Id("name").String()).Params(Id("trainSet"), Bool()).Block(
		Switch(Id("name")).Block(cases...),
		Return(Id("trainSet").Values(), False()),
	)
	return f
}

func emitTrainNoDispatch(p *Plan, constraint string) *File {
	f := NewFile(p.Package)
	f.HeaderComment(header)
	if constraint != "" {
		f.HeaderComment("")
		f.HeaderComment("//go:build " + constraint)
	}
	f.Comment("archTrain: this build has no assembly backward kernels (the pure-Go ones serve).")
	f.Func().Id("archTrain").Params(String()).Params(Id("trainSet"), Bool()).Block(
		Return(Id("trainSet").Values(), False()),
	)
	return f
}

// emitTrainer writes the trainer: runtime/generic's batched trainer with
// this package's matrix products (forward, input and weight gradients)
// specialised to its shapes and split over the package's worker pool.
func emitTrainer(p *Plan) *File {
	f := NewFile(p.Package)
	f.HeaderComment(header)
	f.ImportName(genericPkg, "generic")
	f.ImportName(modelPkg, "model")
	f.ImportName(kernelsPkg, "kernels")
	cs := p.trainCalls()

	dxType := Func().Params(List(Id("dx"), Id("dy"), Id("w")).Op("*").Float32(), Id("n").Int())
	dwType := Func().Params(List(Id("dw"), Id("dy"), Id("x")).Op("*").Float32(), List(Id("n"), Id("b")).Int())
	var fields []Code
	for _, c := range cs {
		fields = append(fields, Id(bfield(c, false)).Add(dxType.Clone()), Id(bfield(c, true)).Add(dwType.Clone()))
	}
	fpType := Func().Params(List(Id("out"), Id("wp"), Id("x")).Op("*").Float32(), Id("n").Int())
	for _, c := range cs {
		fields = append(fields, Id(pfield(c)).Add(fpType.Clone()))
	}
	fields = append(fields,
		Comment("packW: the panel width of the packed forward kernels fp* (nil without them)."),
		Id("packW").Int(),
		Comment("swib: SwiGLU's gradient over n rows (asm.TKernel); nil: runtime/kernels."),
		Id("swib").Func().Params(List(Id("dgu"), Id("dout"), Id("gu")).Op("*").Float32(), Id("n").Int()),
		Comment("smax: softmax of one row of logits in place, returning Σe^(x-m) and m = max."),
		Id("smax").Func().Params(Op("*").Float32()).Params(Float64(), Float32()),
		Comment("attBwd: attention backward of one query row (asm.TKernel); nil: the Go loops."),
		Id("attBwd").Func().Params(List(Id("dq"), Id("dk"), Id("dv"), Id("dout"), Id("p"), Id("q"), Id("k"), Id("v"), Id("dp")).Op("*").Float32(), Id("n").Int()),
	)
	f.Comment("trainSet is one instruction set's backward matrix kernels.")
	f.Type().Id("trainSet").Struct(fields...)
	f.Comment("goTrain is the pure-Go set, built everywhere.")
	f.Var().Id("goTrain").Op("=").Add(trainSetValue(p, asm.Generic))

	f.Comment("trainOps holds the kernels of the path in use when the trainer was made.")
	f.Type().Id("trainOps").Struct(Id("ks").Id("kernelSet"), Id("ts").Id("trainSet"),
		Comment("pack holds the weights of the forward product running, in panels (one product at a time)."),
		Id("pack").Index().Float32())

	ops := Dict{
		Id("MatMul"):               Id("o").Dot("matmul"),
		Id("BackwardInput"):        Id("o").Dot("backwardInput"),
		Id("BackwardWeight"):       Id("o").Dot("backwardWeight"),
		Id("AttentionSeq"):         Id("o").Dot("attention"),
		Id("AttentionSeqBackward"): Id("o").Dot("attentionBackward"),
		Id("SoftmaxCrossEntropy"):  Id("o").Dot("softmaxCrossEntropy"),
		Id("SwiGLUBackward"):       Id("o").Dot("swigluBackward"),
	}
	if hasSiLUMul(p) {
		ops[Id("SwiGLU")] = Id("o").Dot("swiglu")
	}
	f.Comment("NewTrainer returns a trainer for batches of at most B sequences of T tokens:")
	f.Comment("runtime/generic's trainer running this package's compiled matrix products.")
	f.Func().Params(Id("m").Op("*").Id("Model")).Id("NewTrainer").Params(List(Id("B"), Id("T")).Int()).Params(Qual(modelPkg, "Trainer"), Error()).Block(
		screenTrained(p),
		List(Id("g"), Err()).Op(":=").Qual(genericPkg, "New").Call(Id("m").Dot("p")),
		If(Err().Op("!=").Nil()).Block(Return(Nil(), Err())),
		Id("o").Op(":=").Op("&").Id("trainOps").Values(Dict{Id("ks"): Id("kern"), Id("ts"): Id("goTrain")}),
		If(List(Id("ts"), Id("ok")).Op(":=").Id("archTrain").Call(Id("kern").Dot("name")), Id("ok")).Block(
			Id("o").Dot("ts").Op("=").Id("ts"),
		),
		Return(Id("g").Assert(Op("*").Qual(genericPkg, "Model")).Dot("NewTrainerOps").Call(Id("B"), Id("T"), Qual(genericPkg, "TrainOps").Values(ops))),
	)

	// pick: the kernels of a product by its shape (I inputs, O outputs).
	fwType := Func().Params(List(Id("out"), Id("w"), Id("x")).Op("*").Float32(), List(Id("n"), Id("b")).Int())
	var cases []Code
	seen := map[[2]int]bool{}
	for _, c := range cs {
		shape := [2]int{c.Kernel.Cols, c.Kernel.Rows}
		if seen[shape] {
			continue // the same shape twice: the same kernels
		}
		seen[shape] = true
		cases = append(cases, Case(Id("I").Op("==").Lit(shape[0]).Op("&&").Id("O").Op("==").Lit(shape[1])).Block(
			Return(Id("o").Dot("ks").Dot(c.Field), Id("o").Dot("ts").Dot(bfield(c, false)), Id("o").Dot("ts").Dot(bfield(c, true)), Id("o").Dot("ts").Dot(pfield(c)), True()),
		))
	}
	f.Comment("pick returns the compiled kernels of the product with I inputs and O outputs.")
	f.Func().Params(Id("o").Op("*").Id("trainOps")).Id("pick").Params(List(Id("I"), Id("O")).Int()).Params(
		Id("fw").Add(fwType), Id("dx").Add(dxType.Clone()), Id("dw").Add(dwType.Clone()), Id("fp").Add(fpType.Clone()), Id("ok").Bool(),
	).Block(
		Switch().Block(cases...),
		Return(Nil(), Nil(), Nil(), Nil(), False()),
	)

	sl := func(names ...string) []Code {
		var ps []Code
		for _, n := range names {
			ps = append(ps, Id(n))
		}
		return []Code{List(ps...).Index().Float32(), List(Id("N"), Id("I"), Id("O")).Int()}
	}
	// Out-of-range slices fail here, in Go, before a kernel could write past them.
	bounds := func(pairs ...[2]Code) []Code {
		var cs []Code
		for _, p := range pairs {
			cs = append(cs, Id("_").Op("=").Add(p[0]).Index(p[1].(*Statement).Op("-").Lit(1)))
		}
		return cs
	}
	NI, NO, OI := Id("N").Op("*").Id("I"), Id("N").Op("*").Id("O"), Id("O").Op("*").Id("I")
	chunks := func(body ...Code) Code {
		return Id("pool").Dot("RunGrain").Call(Parens(Id("N").Op("+").Lit(trainChunk-1)).Op("/").Lit(trainChunk), Lit(1),
			Func().Params(List(Id("lo"), Id("hi")).Int()).Block(
				For(Id("c").Op(":=").Id("lo"), Id("c").Op("<").Id("hi"), Id("c").Op("++")).Block(append([]Code{
					Id("t0").Op(":=").Id("c").Op("*").Lit(trainChunk),
					Id("nb").Op(":=").Min(Lit(trainChunk), Id("N").Op("-").Id("t0")),
				}, body...)...),
			))
	}

	f.Comment("matmul: out[n*O+o] = Σ_i in[n*I+i]·w[o*I+i], token chunks over the pool; from")
	f.Comment(fmt.Sprintf("%d tokens on, w packed in panels (over the pool) for the packed kernel.", trainPackMin))
	f.Func().Params(Id("o").Op("*").Id("trainOps")).Id("matmul").Params(sl("out", "in", "w")...).Block(append(append([]Code{
		List(Id("fw"), Id("_"), Id("_"), Id("fp"), Id("ok")).Op(":=").Id("o").Dot("pick").Call(Id("I"), Id("O")),
		If(Op("!").Id("ok")).Block(Qual(kernelsPkg, "MatMul").Call(Id("out"), Id("in"), Id("w"), Id("N"), Id("I"), Id("O")), Return()),
		If(Id("N").Op("<=").Lit(0)).Block(Return()),
	}, bounds([2]Code{Id("out"), NO.Clone()}, [2]Code{Id("in"), NI.Clone()}, [2]Code{Id("w"), OI.Clone()})...),
		Comment("From 8192 outputs on the packed kernel may store non-temporally: out must be 64-byte aligned."),
		If(Id("fp").Op("!=").Nil().Op("&&").Id("N").Op(">=").Lit(trainPackMin).Op("&&").Parens(Id("O").Op("<").Lit(8192).Op("||").Uintptr().Call(Qual("unsafe", "Pointer").Call(Op("&").Id("out").Index(Lit(0)))).Op("%").Lit(64).Op("==").Lit(0))).Block(
			Id("W").Op(":=").Id("o").Dot("ts").Dot("packW"),
			Id("np").Op(":=").Parens(Id("O").Op("+").Id("W").Op("-").Lit(1)).Op("/").Id("W"),
			If(Id("need").Op(":=").Id("np").Op("*").Id("I").Op("*").Id("W"), Len(Id("o").Dot("pack")).Op("<").Id("need")).Block(
				Id("o").Dot("pack").Op("=").Make(Index().Float32(), Id("need")),
			),
			Id("wp").Op(":=").Id("o").Dot("pack"),
			Id("pool").Dot("RunGrain").Call(Id("np"), Lit(1), Func().Params(List(Id("lo"), Id("hi")).Int()).Block(
				Qual(genericPkg, "PackPanels").Call(Id("wp"), Id("w"), Id("O"), Id("I"), Id("W"), Id("lo"), Id("hi")),
			)),
			chunks(Id("fp").Call(Op("&").Id("out").Index(Id("t0").Op("*").Id("O")), Op("&").Id("wp").Index(Lit(0)), Op("&").Id("in").Index(Id("t0").Op("*").Id("I")), Id("nb"))),
			Return(),
		),
		chunks(Id("fw").Call(Op("&").Id("out").Index(Id("t0").Op("*").Id("O")), Op("&").Id("w").Index(Lit(0)), Op("&").Id("in").Index(Id("t0").Op("*").Id("I")), Id("O"), Id("nb"))),
	)...)

	f.Comment("backwardInput: dIn[n*I+i] += Σ_o dOut[n*O+o]·w[o*I+i], token chunks over the pool.")
	f.Func().Params(Id("o").Op("*").Id("trainOps")).Id("backwardInput").Params(sl("dIn", "dOut", "w")...).Block(append(append([]Code{
		List(Id("_"), Id("dx"), Id("_"), Id("_"), Id("ok")).Op(":=").Id("o").Dot("pick").Call(Id("I"), Id("O")),
		If(Op("!").Id("ok")).Block(Qual(kernelsPkg, "MatMulBackwardInput").Call(Id("dIn"), Id("dOut"), Id("w"), Id("N"), Id("I"), Id("O")), Return()),
		If(Id("N").Op("<=").Lit(0)).Block(Return()),
	}, bounds([2]Code{Id("dIn"), NI.Clone()}, [2]Code{Id("dOut"), NO.Clone()}, [2]Code{Id("w"), OI.Clone()})...),
		chunks(Id("dx").Call(Op("&").Id("dIn").Index(Id("t0").Op("*").Id("I")), Op("&").Id("dOut").Index(Id("t0").Op("*").Id("O")), Op("&").Id("w").Index(Lit(0)), Id("nb"))),
	)...)

	f.Comment("backwardWeight: dW[o*I+i] += Σ_n dOut[n*O+o]·in[n*I+i]; rows of dW over the pool,")
	f.Comment("tokens in fixed chunks, so the sums do not depend on the thread count.")
	f.Func().Params(Id("o").Op("*").Id("trainOps")).Id("backwardWeight").Params(sl("dW", "dOut", "in")...).Block(append(append([]Code{
		List(Id("_"), Id("_"), Id("dw"), Id("_"), Id("ok")).Op(":=").Id("o").Dot("pick").Call(Id("I"), Id("O")),
		If(Op("!").Id("ok")).Block(Qual(kernelsPkg, "MatMulBackwardWeight").Call(Id("dW"), Id("dOut"), Id("in"), Id("N"), Id("I"), Id("O"), Lit(0), Id("O")), Return()),
		If(Id("N").Op("<=").Lit(0)).Block(Return()),
	}, bounds([2]Code{Id("dW"), OI.Clone()}, [2]Code{Id("dOut"), NO.Clone()}, [2]Code{Id("in"), NI.Clone()})...),
		Id("grain").Op(":=").Max(Lit(8), Lit(GrainMACs).Op("/").Max(Lit(1), Id("N").Op("*").Id("I"))),
		Id("pool").Dot("RunGrain").Call(Id("O"), Id("grain"), Func().Params(List(Id("lo"), Id("hi")).Int()).Block(
			For(Id("t0").Op(":=").Lit(0), Id("t0").Op("<").Id("N"), Id("t0").Op("+=").Lit(trainDWChunk)).Block(
				Id("dw").Call(Op("&").Id("dW").Index(Id("lo").Op("*").Id("I")), Op("&").Id("dOut").Index(Id("t0").Op("*").Id("O").Op("+").Id("lo")),
					Op("&").Id("in").Index(Id("t0").Op("*").Id("I")), Id("hi").Op("-").Id("lo"), Min(Lit(trainDWChunk), Id("N").Op("-").Id("t0"))),
			),
		)),
	)...)
	emitTrainAttention(f, p)
	emitSoftmaxCE(f, p)
	emitSwiGLU(f, p)
	emitAttentionBackward(f, p)
	return f
}

// emitAttentionBackward writes kernels.AttentionSeqBackward with the head
// size baked in: the per-head vectors become fixed-size arrays, so the inner
// loops run without bounds checks.
func emitAttentionBackward(f *File, p *Plan) {
	hd := p.Spec.HeadDim()
	arr := func(name string, off Code) *Statement {
		return Parens(Op("*").Index(Id("HD")).Float32()).Parens(Id(name).Index(Add(off).Op(":")))
	}
	last := func(name string, stride string) Code {
		return Id("_").Op("=").Id(name).Index(Parens(Id("T").Op("-").Lit(1)).Op("*").Id(stride).Op("+").Lit(hd - 1))
	}
	at := func(i, stride string) *Statement { return Id(i).Op("*").Id(stride) }
	S := p.Spec.Dim + 2*p.Spec.KVDim()
	f.Comment("attentionBackward is kernels.AttentionSeqBackward: one query row at a time through the path's")
	f.Comment("kernel (trainSet.attBwd) when it has one, else attentionBackwardGo.")
	f.Func().Params(Id("o").Op("*").Id("trainOps")).Id("attentionBackward").Params(
		List(Id("dq"), Id("dk"), Id("dv"), Id("dOut"), Id("att"), Id("q"), Id("k"), Id("v"), Id("dp")).Index().Float32(),
		List(Id("T"), Id("hd"), Id("stride"), Id("outStride")).Int(), Id("causal").Bool(),
	).Block(
		If(Id("o").Dot("ts").Dot("attBwd").Op("==").Nil().Op("||").Id("hd").Op("!=").Lit(hd).Op("||").Id("stride").Op("!=").Lit(S).Op("||").Id("T").Op("<").Lit(1)).Block(
			Id("attentionBackwardGo").Call(Id("dq"), Id("dk"), Id("dv"), Id("dOut"), Id("att"), Id("q"), Id("k"), Id("v"), Id("dp"), Id("T"), Id("hd"), Id("stride"), Id("outStride"), Id("causal")),
			Return(),
		),
		last("dq", "stride"), last("dk", "stride"), last("dv", "stride"), last("q", "stride"), last("k", "stride"), last("v", "stride"), last("dOut", "outStride"),
		Id("_").Op("=").Id("att").Index(Id("T").Op("*").Id("T").Op("-").Lit(1)),
		Id("_").Op("=").Id("dp").Index(Id("T").Op("-").Lit(1)),
		For(Id("t").Op(":=").Lit(0), Id("t").Op("<").Id("T"), Id("t").Op("++")).Block(
			Id("L").Op(":=").Id("T"),
			If(Id("causal")).Block(Id("L").Op("=").Id("t").Op("+").Lit(1)),
			Id("o").Dot("ts").Dot("attBwd").Call(Op("&").Id("dq").Index(Id("t").Op("*").Lit(S)), Op("&").Id("dk").Index(Lit(0)), Op("&").Id("dv").Index(Lit(0)),
				Op("&").Id("dOut").Index(Id("t").Op("*").Id("outStride")), Op("&").Id("att").Index(Id("t").Op("*").Id("T")),
				Op("&").Id("q").Index(Id("t").Op("*").Lit(S)), Op("&").Id("k").Index(Lit(0)), Op("&").Id("v").Index(Lit(0)), Op("&").Id("dp").Index(Lit(0)), Id("L")),
		),
	)
	f.Comment("attentionBackwardGo is kernels.AttentionSeqBackward with the head size baked in.")
	f.Func().Id("attentionBackwardGo").Params(
		List(Id("dq"), Id("dk"), Id("dv"), Id("dOut"), Id("att"), Id("q"), Id("k"), Id("v"), Id("dp")).Index().Float32(),
		List(Id("T"), Id("hd"), Id("stride"), Id("outStride")).Int(), Id("causal").Bool(),
	).Block(
		Const().Id("HD").Op("=").Lit(hd),
		If(Id("hd").Op("!=").Id("HD").Op("||").Id("T").Op("<").Lit(1)).Block(
			Qual(kernelsPkg, "AttentionSeqBackward").Call(Id("dq"), Id("dk"), Id("dv"), Id("dOut"), Id("att"), Id("q"), Id("k"), Id("v"), Id("dp"), Id("T"), Id("hd"), Id("stride"), Id("outStride"), Id("causal")),
			Return(),
		),
		Id("scale").Op(":=").Float32().Call(Lit(1).Op("/").Qual("math", "Sqrt").Call(Lit(float64(hd)))),
		last("dq", "stride"), last("dk", "stride"), last("dv", "stride"), last("q", "stride"), last("k", "stride"), last("v", "stride"), last("dOut", "outStride"),
		Id("_").Op("=").Id("att").Index(Id("T").Op("*").Id("T").Op("-").Lit(1)),
		Id("dp").Op("=").Id("dp").Index(Op(":").Id("T")),
		For(Id("t").Op(":=").Lit(0), Id("t").Op("<").Id("T"), Id("t").Op("++")).Block(
			Id("L").Op(":=").Id("T"),
			If(Id("causal")).Block(Id("L").Op("=").Id("t").Op("+").Lit(1)),
			Id("p").Op(":=").Id("att").Index(Id("t").Op("*").Id("T").Op(":").Id("t").Op("*").Id("T").Op("+").Id("L")),
			Id("g").Op(":=").Add(arr("dOut", at("t", "outStride"))),
			Var().Id("sum").Float32(),
			For(List(Id("u"), Id("pu")).Op(":=").Range().Id("p")).Block(
				List(Id("vu"), Id("dvu")).Op(":=").List(arr("v", at("u", "stride")), arr("dv", at("u", "stride"))),
				dotLoop(hd),
			),
			List(Id("qt"), Id("dqt")).Op(":=").List(arr("q", at("t", "stride")), arr("dq", at("t", "stride"))),
			For(List(Id("u"), Id("pu")).Op(":=").Range().Id("p")).Block(
				Id("ds").Op(":=").Id("pu").Op("*").Parens(Id("dp").Index(Id("u")).Op("-").Id("sum")).Op("*").Id("scale"),
				List(Id("ku"), Id("dku")).Op(":=").List(arr("k", at("u", "stride")), arr("dk", at("u", "stride"))),
				axpyLoop(hd),
			),
		),
	)
}

// emitTrainAttention writes the trainer's attention: kernels.AttentionSeq
// through the compiled attention kernel (strided over the Q|K|V rows), one
// query at a time, its weights normalised into the probabilities the
// backward pass reads.
func emitTrainAttention(f *File, p *Plan) {
	s := &p.Spec
	hd, S := s.HeadDim(), s.Dim+2*s.KVDim()
	last := func(name string, stride Code) Code {
		return Id("_").Op("=").Id(name).Index(Parens(Id("T").Op("-").Lit(1)).Op("*").Add(stride).Op("+").Lit(hd - 1))
	}
	f.Comment("attention is kernels.AttentionSeq for one sequence and head on the compiled kernel.")
	f.Func().Params(Id("o").Op("*").Id("trainOps")).Id("attention").Params(
		List(Id("out"), Id("att"), Id("q"), Id("k"), Id("v")).Index().Float32(),
		List(Id("T"), Id("hd"), Id("stride"), Id("outStride")).Int(), Id("causal").Bool(),
	).Block(
		If(Id("hd").Op("!=").Lit(hd).Op("||").Id("stride").Op("!=").Lit(S).Op("||").Id("T").Op("<").Lit(1)).Block(
			Qual(kernelsPkg, "AttentionSeq").Call(Id("out"), Id("att"), Id("q"), Id("k"), Id("v"), Id("T"), Id("hd"), Id("stride"), Id("outStride"), Id("causal")),
			Return(),
		),
		last("out", Id("outStride")), last("q", Lit(S)), last("k", Lit(S)), last("v", Lit(S)),
		Id("_").Op("=").Id("att").Index(Id("T").Op("*").Id("T").Op("-").Lit(1)),
		For(Id("t").Op(":=").Lit(0), Id("t").Op("<").Id("T"), Id("t").Op("++")).Block(
			Id("L").Op(":=").Id("T"),
			If(Id("causal")).Block(Id("L").Op("=").Id("t").Op("+").Lit(1)),
			Id("row").Op(":=").Id("att").Index(Id("t").Op("*").Id("T").Op(":").Id("t").Op("*").Id("T").Op("+").Id("T")),
			Id("o").Dot("ks").Dot("attTrain").Call(Op("&").Id("out").Index(Id("t").Op("*").Id("outStride")), Op("&").Id("q").Index(Id("t").Op("*").Lit(S)),
				Op("&").Id("k").Index(Lit(0)), Op("&").Id("v").Index(Lit(0)), Op("&").Id("row").Index(Lit(0)), Id("L")),
			Comment("The kernel leaves e^(s-max) in row: normalise into probabilities."),
			Var().Id("sum").Float32(),
			For(List(Id("_"), Id("e")).Op(":=").Range().Id("row").Index(Op(":").Id("L"))).Block(Id("sum").Op("+=").Id("e")),
			Id("inv").Op(":=").Lit(1).Op("/").Id("sum"),
			For(Id("j").Op(":=").Range().Id("row").Index(Op(":").Id("L"))).Block(Id("row").Index(Id("j")).Op("*=").Id("inv")),
			Clear(Id("row").Index(Id("L").Op(":"))),
		),
	)
}

// emitSwiGLU writes the trainer's SwiGLU and its gradient: the path's
// kernels for the spec's FFN width, runtime/kernels otherwise.
func emitSwiGLU(f *File, p *Plan) {
	F := p.Spec.FFNDim
	if hasSiLUMul(p) {
		f.Comment("swiglu is kernels.SwiGLURows through the batched pass's SiLU·mul kernel (every path has one).")
		f.Func().Params(Id("o").Op("*").Id("trainOps")).Id("swiglu").Params(List(Id("out"), Id("gu")).Index().Float32(), List(Id("N"), Id("F")).Int()).Block(
			If(Id("F").Op("!=").Lit(F).Op("||").Id("N").Op("<").Lit(1)).Block(
				Qual(kernelsPkg, "SwiGLURows").Call(Id("out"), Id("gu"), Id("N"), Id("F")),
				Return(),
			),
			Id("_").Op("=").Id("out").Index(Id("N").Op("*").Lit(F).Op("-").Lit(1)),
			Id("_").Op("=").Id("gu").Index(Id("N").Op("*").Lit(2*F).Op("-").Lit(1)),
			Id("o").Dot("ks").Dot(p.SiLUMul.Field).Call(Op("&").Id("out").Index(Lit(0)), Op("&").Id("gu").Index(Lit(0)), Id("N")),
		)
	}
	f.Comment("swigluBackward is kernels.SwiGLURowsBackward through the path's kernel when it has one.")
	f.Func().Params(Id("o").Op("*").Id("trainOps")).Id("swigluBackward").Params(List(Id("dgu"), Id("dout"), Id("gu")).Index().Float32(), List(Id("N"), Id("F")).Int()).Block(
		If(Id("o").Dot("ts").Dot("swib").Op("==").Nil().Op("||").Id("F").Op("!=").Lit(F).Op("||").Id("N").Op("<").Lit(1)).Block(
			Qual(kernelsPkg, "SwiGLURowsBackward").Call(Id("dgu"), Id("dout"), Id("gu"), Id("N"), Id("F")),
			Return(),
		),
		Id("_").Op("=").Id("dgu").Index(Id("N").Op("*").Lit(2*F).Op("-").Lit(1)),
		Id("_").Op("=").Id("dout").Index(Id("N").Op("*").Lit(F).Op("-").Lit(1)),
		Id("_").Op("=").Id("gu").Index(Id("N").Op("*").Lit(2*F).Op("-").Lit(1)),
		Id("o").Dot("ts").Dot("swib").Call(Op("&").Id("dgu").Index(Lit(0)), Op("&").Id("dout").Index(Lit(0)), Op("&").Id("gu").Index(Lit(0)), Id("N")),
	)
}

// emitSoftmaxCE writes the trainer's kernels.SoftmaxCrossEntropy: each row
// through the path's softmax kernel (trainSet.smax), and softmaxRow, the Go
// kernel, with an inline float32 exponential (a call per element costs more
// than the polynomial); sums stay in float64.
func emitSoftmaxCE(f *File, p *Plan) {
	V := p.Spec.Vocab
	f.Comment("softmaxCrossEntropy is kernels.SoftmaxCrossEntropy, each row through the path's softmax kernel.")
	f.Func().Params(Id("o").Op("*").Id("trainOps")).Id("softmaxCrossEntropy").Params(Id("logits").Index().Float32(), Id("targets").Index().Int32(), List(Id("N"), Id("V")).Int()).Params(Id("sum").Float64(), Id("count").Int()).Block(
		If(Id("V").Op("!=").Lit(V)).Block(Return(Qual(kernelsPkg, "SoftmaxCrossEntropy").Call(Id("logits"), Id("targets"), Id("N"), Id("V")))),
		For(Id("n").Op(":=").Lit(0), Id("n").Op("<").Id("N"), Id("n").Op("++")).Block(
			Id("tg").Op(":=").Id("targets").Index(Id("n")),
			If(Id("tg").Op("<").Lit(0)).Block(Continue()),
			Id("row").Op(":=").Id("logits").Index(Id("n").Op("*").Lit(V).Op(":").Id("n").Op("*").Lit(V).Op("+").Lit(V)),
			Id("lt").Op(":=").Id("row").Index(Id("tg")),
			List(Id("z"), Id("m")).Op(":=").Id("o").Dot("ts").Dot("smax").Call(Op("&").Id("row").Index(Lit(0))),
			Id("sum").Op("+=").Qual("math", "Log").Call(Id("z")).Op("-").Float64().Call(Id("lt").Op("-").Id("m")),
			Id("count").Op("++"),
		),
		Return(),
	)
	f.Comment(fmt.Sprintf("softmaxRow: the softmax of the %d logits at p in place; returns Σe^(x-m) and m = max.", V))
	f.Func().Id("softmaxRow").Params(Id("p").Op("*").Float32()).Params(Id("z").Float64(), Id("m").Float32()).Block(
		Id("row").Op(":=").Qual("unsafe", "Slice").Call(Id("p"), Lit(V)),
		Id("m").Op("=").Id("row").Index(Lit(0)),
		For(List(Id("_"), Id("x")).Op(":=").Range().Id("row")).Block(Id("m").Op("=").Max(Id("m"), Id("x"))),
		For(List(Id("i"), Id("x")).Op(":=").Range().Id("row")).Block(
			// e^(x-m) inline, as the pure-Go kernels do: round by the
			// 1.5·2^23 trick, Cody–Waite reduction, degree-6 polynomial, 2^n
			// through the exponent bits; x-m ≤ 0, clamped above the
			// smallest normal.
			Id("ex").Op(":=").Max(Id("x").Op("-").Id("m"), Lit(-87.3)),
			Id("et").Op(":=").Id("ex").Op("*").Lit(1.442695041).Op("+").Lit(12582912),
			Id("en").Op(":=").Id("et").Op("-").Lit(12582912),
			Id("er").Op(":=").Id("ex").Op("-").Id("en").Op("*").Lit(0.693359375).Op("+").Id("en").Op("*").Lit(2.12194440e-4),
			Id("ep").Op(":=").Lit(1.9875691500e-4).Op("*").Id("er").Op("+").Lit(1.3981999507e-3),
			Id("ep").Op("=").Id("ep").Op("*").Id("er").Op("+").Lit(8.3334519073e-3),
			Id("ep").Op("=").Id("ep").Op("*").Id("er").Op("+").Lit(4.1665795894e-2),
			Id("ep").Op("=").Id("ep").Op("*").Id("er").Op("+").Lit(1.6666665459e-1),
			Id("ep").Op("=").Id("ep").Op("*").Id("er").Op("+").Lit(5.0000001201e-1),
			Id("ep").Op("=").Id("ep").Op("*").Parens(Id("er").Op("*").Id("er")).Op("+").Id("er").Op("+").Lit(1),
			Id("e").Op(":=").Id("ep").Op("*").Qual("math", "Float32frombits").Call(Parens(Qual("math", "Float32bits").Call(Id("et")).Op("+").Lit(127)).Op("<<").Lit(23)),
			Id("row").Index(Id("i")).Op("=").Id("e"),
			Id("z").Op("+=").Float64().Call(Id("e")),
		),
		Id("inv").Op(":=").Float32().Call(Lit(1).Op("/").Id("z")),
		For(Id("i").Op(":=").Range().Id("row")).Block(Id("row").Index(Id("i")).Op("*=").Id("inv")),
		Return(),
	)
}

// dotLoop emits d = g·vu and dvu += pu·g over the head: fully unrolled with
// four partial sums (a single sum is a chain of dependent adds), or a loop
// for large heads.
func dotLoop(hd int) Code {
	if hd > 128 {
		return Block(
			Var().Id("d").Float32(),
			For(Id("i").Op(":=").Range().Id("HD")).Block(
				Id("d").Op("+=").Id("g").Index(Id("i")).Op("*").Id("vu").Index(Id("i")),
				Id("dvu").Index(Id("i")).Op("+=").Id("pu").Op("*").Id("g").Index(Id("i")),
			),
			Id("dp").Index(Id("u")).Op("=").Id("d"),
			Id("sum").Op("+=").Id("pu").Op("*").Id("d"),
		)
	}
	var cs []Code
	cs = append(cs, Var().List(Id("d0"), Id("d1"), Id("d2"), Id("d3")).Float32())
	for i := 0; i < hd; i++ {
		cs = append(cs,
			Id(fmt.Sprintf("d%d", i%4)).Op("+=").Id("g").Index(Lit(i)).Op("*").Id("vu").Index(Lit(i)),
			Id("dvu").Index(Lit(i)).Op("+=").Id("pu").Op("*").Id("g").Index(Lit(i)))
	}
	cs = append(cs,
		Id("d").Op(":=").Parens(Id("d0").Op("+").Id("d1")).Op("+").Parens(Id("d2").Op("+").Id("d3")),
		Id("dp").Index(Id("u")).Op("=").Id("d"),
		Id("sum").Op("+=").Id("pu").Op("*").Id("d"))
	return Block(cs...)
}

// axpyLoop emits dqt += ds·ku and dku += ds·qt over the head, unrolled.
func axpyLoop(hd int) Code {
	if hd > 128 {
		return For(Id("i").Op(":=").Range().Id("HD")).Block(
			Id("dqt").Index(Id("i")).Op("+=").Id("ds").Op("*").Id("ku").Index(Id("i")),
			Id("dku").Index(Id("i")).Op("+=").Id("ds").Op("*").Id("qt").Index(Id("i")),
		)
	}
	var cs []Code
	for i := 0; i < hd; i++ {
		cs = append(cs,
			Id("dqt").Index(Lit(i)).Op("+=").Id("ds").Op("*").Id("ku").Index(Lit(i)),
			Id("dku").Index(Lit(i)).Op("+=").Id("ds").Op("*").Id("qt").Index(Lit(i)))
	}
	return Block(cs...)
}
