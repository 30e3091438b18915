package gen

import (
	. "github.com/dave/jennifer/jen"

	"github.com/modelc/modelc/asm"
)

// The quantised decode path (spec quant q8_0 or q4_0).
//
// The float weight struct still overlays the parameter buffer (norms, and the
// matrices whose rows are not whole 32-blocks, run from it); every matrix
// whose rows are whole blocks is multiplied in its ggml blocks, which
// qweights points at: the GGUF file's mapping when it holds them in the
// compiled format, otherwise blocks made at load from the float parameters
// (runtime/quant.Blocks). The activation feeding a quantised matrix is
// quantised to 8 bits per 32-block once (runtime/quant.QuantizeAct) and
// shared by the matrices that read it (Q, K, V; gate, up), as in
// runtime/quant/qmodel, whose arithmetic (RMSNorm, integer dots with one
// float multiply-add per block) this path follows; SwiGLU is the batched
// pass's siluMul kernel (the float kernels' exp: a few ulps from qmodel's).
//
// On AVX-512 VNNI the matrices are also copied at load into panels
// (runtime/quant.Panels, Model.qp) that the panel kernels read. A batched
// pass (prefill, ForwardSpans) runs all its rows through each layer with
// the panel matmuls, or on AVX2, NEON and Go with the QMatMul kernels over
// ggml's blocks, each row's arithmetic that of the decode step.

const quantPkg = "github.com/modelc/modelc/runtime/quant"

// rowBytes is the size of one quantised row of cols weights.
func (p *Plan) rowBytes(cols int) int { return cols / 32 * p.Quant.BlockBytes() }

// qmat is the Go type of a pointer to a quantised rows×cols matrix.
func (p *Plan) qmat(rows, cols int) *Statement {
	return Op("*").Index(Lit(rows)).Index(Lit(p.rowBytes(cols))).Byte()
}

func quantModelField(p *Plan) Code {
	if p.Quant == 0 {
		return Null()
	}
	return Add(
		Id("q").Id("qweights"),
		Line(), Comment("qp holds the panel copies of q's matrices (runtime/quant.Panels) when the"),
		Line(), Comment("kernels chosen at load read panels (AVX-512 VNNI); nil otherwise."),
		Line(), Id("qp").Op("*").Id("qweights"),
	)
}

func quantBind(p *Plan) Code {
	if p.Quant == 0 {
		return Null()
	}
	return If(Err().Op(":=").Id("m").Dot("bindQuant").Call(), Err().Op("!=").Nil()).Block(Return(Nil(), Err()))
}

// qcols is the longest quantised activation.
func (p *Plan) qcols() int {
	n := 0
	if p.QD {
		n = p.Spec.Dim
	}
	if p.QF {
		n = max(n, p.Spec.FFNDim)
	}
	return n
}

func quantSessionFields(p *Plan) Code {
	if p.Quant == 0 {
		return Null()
	}
	n := p.qcols()
	f := p.Spec.FFNDim
	var experts Code = Null()
	if p.QE {
		mf := p.Spec.MoE.FFNDim
		f = max(f, mf)
		experts = Add(
			Line(), Comment("hq and hs are an expert's quantised hidden activation (xq still holds its input)."),
			Line(), Id("hq").Index(Lit(mf)).Int8(),
			Line(), Id("hs").Index(Lit(mf/32)).Float32(),
		)
	}
	return Add(
		Comment("xq and xs are the quantised activation: 8-bit codes and a scale per 32-block."),
		Line(), Id("xq").Index(Lit(n)).Int8(),
		Line(), Id("xs").Index(Lit(n/32)).Float32(),
		Line(), Comment("hgu holds the quantised gate and up products side by side, as siluMul reads them."),
		Line(), Id("hgu").Index(Lit(2*f)).Float32(),
		experts,
	)
}

// emitQuantTypes writes qlayer, qweights and bindQuant.
// qmatrix is one quantised matrix of a layer: its qlayer field, its GGUF
// tensor (blk.N.<tensor>.weight) and its shape.
type qmatrix struct {
	field, tensor string
	rows, cols    int
}

// qlayerMatrices lists a layer's quantised matrices, in the order qlayer
// declares them and bindQuant and bindPanels bind them.
func (p *Plan) qlayerMatrices() []qmatrix {
	s := &p.Spec
	d, kv, f := s.Dim, s.KVDim(), s.FFNDim
	var ms []qmatrix
	if p.QD {
		ms = append(ms, qmatrix{"q", "attn_q", d, d}, qmatrix{"k", "attn_k", kv, d}, qmatrix{"v", "attn_v", kv, d}, qmatrix{"wo", "attn_output", d, d})
		if !p.MoE() {
			ms = append(ms, qmatrix{"gate", "ffn_gate", f, d}, qmatrix{"up", "ffn_up", f, d})
		}
	}
	if p.QF {
		ms = append(ms, qmatrix{"down", "ffn_down", d, f})
	}
	if p.QE {
		E, mf := s.MoE.Experts, s.MoE.FFNDim
		ms = append(ms, qmatrix{"gateExps", "ffn_gate_exps", E * mf, d}, qmatrix{"upExps", "ffn_up_exps", E * mf, d}, qmatrix{"downExps", "ffn_down_exps", E * d, mf})
		if s.MoE.SharedExpert {
			ms = append(ms, qmatrix{"sharedGate", "ffn_gate_shexp", mf, d}, qmatrix{"sharedUp", "ffn_up_shexp", mf, d}, qmatrix{"sharedDown", "ffn_down_shexp", d, mf})
		}
	}
	return ms
}

func emitQuantTypes(file *File, p *Plan) {
	s := &p.Spec
	d := s.Dim
	file.Comment("QFormat is the block format of the quantised matrices.")
	file.Const().Id("QFormat").Op("=").Lit(s.Quant)
	var lf []Code
	for _, m := range p.qlayerMatrices() {
		if m.field == "gateExps" {
			lf = append(lf, Comment("Every expert's rows, expert after expert (llama.cpp's 3-D stacks)."))
		}
		lf = append(lf, Id(m.field).Add(p.qmat(m.rows, m.cols)))
	}
	file.Comment("qlayer points at one block's quantised matrices, row after row of " + s.Quant + " blocks.")
	file.Type().Id("qlayer").Struct(lf...)
	wf := []Code{Id("layers").Index(Lit(s.Layers)).Id("qlayer")}
	if p.QD {
		wf = append(wf, List(Id("embd"), Id("cls")).Add(p.qmat(s.Vocab, d)))
	}
	file.Comment("qweights points at every quantised matrix (the classifier is the embedding when tied).")
	file.Type().Id("qweights").Struct(wf...)

	bind := func(dst Code, name Code, rows, cols int) Code {
		return Add(dst).Op("=").Parens(p.qmat(rows, cols)).Parens(Id("blocks").Call(name, Lit(rows*p.rowBytes(cols))))
	}
	layer := func(kind string) Code {
		return Qual("fmt", "Sprintf").Call(Lit("blk.%d."+kind+".weight"), Id("l"))
	}
	body := []Code{
		Var().Err().Error(),
		Id("blocks").Op(":=").Func().Params(Id("name").String(), Id("size").Int()).Qual("unsafe", "Pointer").Block(
			If(Err().Op("!=").Nil()).Block(Return(Nil())),
			Var().Id("b").Index().Byte(),
			If(List(Id("b"), Err()).Op("=").Qual(quantPkg, "Blocks").Call(Id("m").Dot("p"), Id("name"), Id("QFormat")), Err().Op("==").Nil().Op("&&").Len(Id("b")).Op("!=").Id("size")).Block(
				Err().Op("=").Qual("fmt", "Errorf").Call(Lit(p.Package+": %s holds %d bytes of blocks, want %d"), Id("name"), Len(Id("b")), Id("size")),
			),
			If(Err().Op("!=").Nil()).Block(Return(Nil())),
			Return(Qual("unsafe", "Pointer").Call(Qual("unsafe", "SliceData").Call(Id("b")))),
		),
	}
	if p.QD {
		body = append(body, bind(Id("m").Dot("q").Dot("embd"), Lit("token_embd.weight"), s.Vocab, d))
		if s.TieEmbeddings {
			body = append(body, Id("m").Dot("q").Dot("cls").Op("=").Id("m").Dot("q").Dot("embd"))
		} else {
			body = append(body, bind(Id("m").Dot("q").Dot("cls"), Lit("output.weight"), s.Vocab, d))
		}
	}
	var lb []Code
	lb = append(lb, Id("ql").Op(":=").Op("&").Id("m").Dot("q").Dot("layers").Index(Id("l")))
	ql := func(n string) *Statement { return Id("ql").Dot(n) }
	for _, m := range p.qlayerMatrices() {
		lb = append(lb, bind(ql(m.field), layer(m.tensor), m.rows, m.cols))
	}
	pf := p.QCalls()[0].PanelField()
	body = append(body, For(Id("l").Op(":=").Range().Lit(s.Layers)).Block(lb...),
		If(Err().Op("==").Nil().Op("&&").Id("kern").Dot(pf).Op("!=").Nil()).Block(Err().Op("=").Id("m").Dot("bindPanels").Call()),
		Return(Err()))
	file.Comment("bindQuant points the quantised matrices at their blocks: the model file's")
	file.Comment("own (no copy) when it holds them in QFormat, else blocks quantised from the")
	file.Comment("float parameters (runtime/quant.Blocks); and makes their panel copies when")
	file.Comment("the kernels in use read panels.")
	file.Func().Params(Id("m").Op("*").Id("Model")).Id("bindQuant").Params().Error().Block(body...)

	// bindPanels: every matrix the kernels multiply, copied into panels.
	pbind := func(dst, src Code, rows, cols int, release bool) Code {
		return Add(dst).Op("=").Parens(p.qmat(rows, cols)).Parens(Id("panel").Call(Qual("unsafe", "Pointer").Call(src), Lit(rows), Lit(cols), Lit(release)))
	}
	pb := []Code{
		Var().Err().Error(),
		Id("qp").Op(":=").New(Id("qweights")),
		Comment("panel copies one matrix; release drops the source's file pages"),
		Comment("from memory (all but the embedding rows, which stay in use)."),
		Id("panel").Op(":=").Func().Params(Id("w").Qual("unsafe", "Pointer"), List(Id("rows"), Id("cols")).Int(), Id("release").Bool()).Qual("unsafe", "Pointer").Block(
			If(Err().Op("!=").Nil()).Block(Return(Nil())),
			Id("src").Op(":=").Qual("unsafe", "Slice").Call(Parens(Op("*").Byte()).Parens(Id("w")), Id("rows").Op("*").Parens(Id("cols").Op("/").Lit(32)).Op("*").Lit(p.Quant.BlockBytes())),
			Var().Id("b").Index().Byte(),
			If(List(Id("b"), Err()).Op("=").Qual(quantPkg, "Panels").Call(Id("QFormat"), Id("src"), Id("rows"), Id("cols")), Err().Op("!=").Nil()).Block(Return(Nil())),
			If(Id("release")).Block(Qual(quantPkg, "Release").Call(Id("src"))),
			Return(Qual("unsafe", "Pointer").Call(Qual("unsafe", "SliceData").Call(Id("b")))),
		),
	}
	if p.QD {
		pb = append(pb, pbind(Id("qp").Dot("cls"), Id("m").Dot("q").Dot("cls"), s.Vocab, d, !s.TieEmbeddings))
	}
	var plb []Code
	plb = append(plb, List(Id("ql"), Id("pl")).Op(":=").Op("&").Id("m").Dot("q").Dot("layers").Index(Id("l")).Op(",").Op("&").Id("qp").Dot("layers").Index(Id("l")))
	pl := func(n string) *Statement { return Id("pl").Dot(n) }
	// (Experts of whole 32-blocks start on whole 16-row panels.)
	for _, m := range p.qlayerMatrices() {
		plb = append(plb, pbind(pl(m.field), ql(m.field), m.rows, m.cols, true))
	}
	pb = append(pb, For(Id("l").Op(":=").Range().Lit(s.Layers)).Block(plb...),
		If(Err().Op("!=").Nil()).Block(Return(Err())),
		Id("m").Dot("qp").Op("=").Id("qp"),
		Return(Nil()))
	file.Comment("bindPanels copies the quantised matrices into the panel layout of the")
	file.Comment("AVX-512 VNNI panel kernels (the embedding rows stay in m.q).")
	file.Func().Params(Id("m").Op("*").Id("Model")).Id("bindPanels").Params().Error().Block(pb...)

	// qpath: the matrices and kernels a step uses.
	var ggml, panel, types []Code
	types = append(types, Op("*").Id("qweights"))
	ggml = append(ggml, Op("&").Id("m").Dot("q"))
	panel = append(panel, Id("m").Dot("qp"))
	for _, c := range p.QCalls() {
		types = append(types, qFuncType())
		ggml = append(ggml, Id("kern").Dot(c.Field))
		panel = append(panel, Id("kern").Dot(c.PanelField()))
	}
	file.Comment("qpath returns the quantised matrices and kernels in use: the panel copies")
	file.Comment("and kernels when both exist (the kernel path may change after load), else")
	file.Comment("ggml's blocks and the kernels that read them.")
	file.Func().Params(Id("m").Op("*").Id("Model")).Id("qpath").Params().Params(types...).Block(
		If(Id("m").Dot("qp").Op("!=").Nil().Op("&&").Id("kern").Dot(pf).Op("!=").Nil()).Block(Return(panel...)),
		Return(ggml...),
	)
}

// qpart is one quantised matrix of a stacked product: its rows go to out at
// element off.
type qpart struct {
	out  Code // the output array
	off  int
	w    Code // pointer to the quantised matrix
	rows int
}

// qcall multiplies the quantised activation in s.xq/s.xs by the stacked
// matrices parts (all cols wide) with kernel field, split over the worker
// pool by rows when large enough, as callKernel does for the float kernels.
func qcall(c QCall, parts []qpart) Code { return qcallX(c, "xq", "xs", parts) }

// qcallX is qcall with the quantised activation in s.<xq>, s.<xs>.
func qcallX(c QCall, xq, xs string, parts []qpart) Code {
	xargs := []Code{Op("&").Id("s").Dot(xq).Index(Lit(0)), Op("&").Id("s").Dot(xs).Index(Lit(0))}
	return qsplit(c.Kernel.Cols, 1, parts, func(out, w, n Code) Code {
		return Id(c.Field).Call(append([]Code{out, w}, append(xargs, n)...)...)
	})
}

// qsplit calls kcall(out, w, n) over the row ranges of the stacked matrices
// parts (cols wide, for tokens activations), split over the worker pool by
// rows when large enough.
func qsplit(cols, tokens int, parts []qpart, kcall func(out, w, n Code) Code) Code {
	rows := 0
	for _, pt := range parts {
		rows += pt.rows
	}
	if rows*cols*tokens < ParallelMACs {
		var calls []Code
		for _, pt := range parts {
			calls = append(calls, kcall(Op("&").Add(pt.out).Index(Lit(pt.off)), Op("&").Add(pt.w).Index(Lit(0)).Index(Lit(0)), Lit(pt.rows)))
		}
		if len(calls) == 1 {
			return calls[0]
		}
		return Block(calls...)
	}
	// Split points fall on whole panels (asm.QPanelRows): a panel kernel's
	// rows must start at a panel. Parts that do not start on one are split
	// each on its own.
	P := asm.QPanelRows
	grain := (grainRows(cols) + P - 1) / P * P
	aligned := true
	for _, pt := range parts[:len(parts)-1] {
		aligned = aligned && pt.rows%P == 0
	}
	if !aligned {
		var calls []Code
		for _, pt := range parts {
			calls = append(calls, Id("pool").Dot("RunGrain").Call(Lit(pt.rows), Lit(grain), Func().Params(List(Id("lo"), Id("hi")).Int()).Block(
				kcall(Op("&").Add(pt.out).Index(plus("lo", pt.off)), Op("&").Add(pt.w).Index(Id("lo")).Index(Lit(0)), Id("hi").Op("-").Id("lo")),
			)))
		}
		return Block(calls...)
	}
	var body []Code
	base := 0
	for _, pt := range parts {
		b := base
		base += pt.rows
		if len(parts) == 1 {
			body = append(body, kcall(Op("&").Add(pt.out).Index(plus("lo", pt.off)), Op("&").Add(pt.w).Index(Id("lo")).Index(Lit(0)), Id("hi").Op("-").Id("lo")))
			break
		}
		body = append(body, If(
			List(Id("a"), Id("e")).Op(":=").Max(Id("lo"), Lit(b)).Op(",").Min(Id("hi"), Lit(b+pt.rows)),
			Id("a").Op("<").Id("e"),
		).Block(kcall(
			Op("&").Add(pt.out).Index(plus("a", pt.off-b)),
			Op("&").Add(pt.w).Index(plus("a", -b)).Index(Lit(0)),
			Id("e").Op("-").Id("a"),
		)))
	}
	return Id("pool").Dot("RunGrain").Call(Lit(rows), Lit(grain), Func().Params(List(Id("lo"), Id("hi")).Int()).Block(body...))
}

// plus is v+n with n folded in (v, v+n or v-|n|).
func plus(v string, n int) *Statement {
	switch {
	case n > 0:
		return Id(v).Op("+").Lit(n)
	case n < 0:
		return Id(v).Op("-").Lit(-n)
	}
	return Id(v)
}

// qact quantises the n activations of x (an array) into s.xq and s.xs.
func qact(x Code, n int) Code {
	return Qual(quantPkg, "QuantizeAct").Call(Id("s").Dot("xq").Index(Op(":").Lit(n)), Id("s").Dot("xs").Index(Op(":").Lit(n/32)), Add(x).Index(Op(":")))
}

// qnorm is runtime/kernels.RMSNorm (qmodel's): out = norm(x)·nw.
func qnorm(out, x, nw Code, eps Code) Code {
	return Qual(kernelsPkg, "RMSNorm").Call(Add(out).Index(Op(":")), Add(x).Index(Op(":")), Add(nw).Index(Op(":")), eps)
}

// qpathDecl declares qw and the quantised kernels of this step (s.m.qpath);
// only qmvD unless all (the classifier; a mixture's step, whose experts'
// kernels qmoeFFN takes itself).
func qpathDecl(p *Plan, all bool) Code {
	vars := []Code{Id("qw")}
	for _, c := range p.QCalls() {
		if all || c.Field == p.QMVD.Field {
			vars = append(vars, Id(c.Field))
		} else {
			vars = append(vars, Id("_"))
		}
	}
	return List(vars...).Op(":=").Id("s").Dot("m").Dot("qpath").Call()
}

// emitQuantForward writes Forward as step (the layers) then classify.
func emitQuantForward(file *File, p *Plan) {
	s := &p.Spec
	d, kv, hd, f := s.Dim, s.KVDim(), s.HeadDim(), s.FFNDim
	eps := Lit(float32(s.NormEps))
	sx := func(n string) *Statement { return Id("s").Dot(n) }
	residual := For(Id("i").Op(":=").Range().Lit(d)).Block(sx("x").Index(Id("i")).Op("+=").Add(sx("xb2")).Index(Id("i")))
	headsOf := func(n int, ptr *Statement) *Statement {
		return unsafeCast(Index(Lit(n)).Index(Lit(hd/2)).Index(Lit(2)).Float32(), ptr)
	}
	emitQuantTypes(file, p)

	file.Comment("Forward runs token at position pos and returns the logits.")
	file.Func().Params(Id("s").Op("*").Id("Session")).Id("Forward").Params(Id("token"), Id("pos").Int()).Index().Float32().Block(
		If(Uint().Parens(Id("token")).Op(">=").Id("Vocab").Op("||").Uint().Parens(Id("pos")).Op(">=").Id("MaxSeq")).Block(
			Panic(Qual("fmt", "Sprintf").Call(Lit(p.Package+": token %d at position %d is out of range"), Id("token"), Id("pos"))),
		),
		Id("s").Dot("step").Call(Id("token"), Id("pos")),
		Id("s").Dot("classify").Call(),
		Return(Id("s").Dot("logits").Index(Op(":"))),
	)

	embed := sx("x").Op("=").Id("w").Dot("tokEmbd").Index(Id("token"))
	if p.QD {
		embed = Qual(quantPkg, "DequantizeRow").Call(Id("QFormat"), sx("x").Index(Op(":")), Id("s").Dot("m").Dot("q").Dot("embd").Index(Id("token")).Index(Op(":")))
	}
	var attnIn, attnOut, ffnIn, ffnOut []Code
	if p.QD {
		attnIn = []Code{
			qnorm(sx("xb"), sx("x"), Id("lw").Dot("attnNorm"), eps),
			qact(sx("xb"), d),
			qcall(p.QMVD, []qpart{{sx("qkv"), 0, Id("ql").Dot("q"), d}, {sx("qkv"), d, Id("ql").Dot("k"), kv}, {sx("qkv"), d + kv, Id("ql").Dot("v"), kv}}),
		}
		attnOut = []Code{
			qact(sx("xb"), d),
			qcall(p.QMVD, []qpart{{sx("xb2"), 0, Id("ql").Dot("wo"), d}}),
			residual,
		}
		ffnIn = []Code{
			qnorm(sx("xb"), sx("x"), Id("lw").Dot("ffnNorm"), eps),
			qact(sx("xb"), d),
			qcall(p.QMVD, []qpart{{sx("hgu"), 0, Id("ql").Dot("gate"), f}, {sx("hgu"), f, Id("ql").Dot("up"), f}}),
			Id("kern").Dot(p.SiLUMul.Field).Call(Op("&").Add(sx("hb")).Index(Lit(0)), Op("&").Add(sx("hgu")).Index(Lit(0)), Lit(1)),
		}
	} else {
		attnIn = []Code{callKernel(p.QKV, sx("qkv"), Id("lw").Dot("qkv"), Op("&").Add(sx("x")).Index(Lit(0)), Op("&").Id("lw").Dot("attnNorm").Index(Lit(0)), eps)}
		attnOut = []Code{callKernel(p.Out, sx("x"), Id("lw").Dot("wo"), Op("&").Add(sx("xb")).Index(Lit(0)), nil, nil)} // adds into x
		ffnIn = []Code{callKernel(p.FFN, sx("hb"), Id("lw").Dot("gateUp"), Op("&").Add(sx("x")).Index(Lit(0)), Op("&").Id("lw").Dot("ffnNorm").Index(Lit(0)), eps)}
	}
	if p.QF {
		ffnOut = []Code{qact(sx("hb"), f), qcall(p.QMVF, []qpart{{sx("xb2"), 0, Id("ql").Dot("down"), d}}), residual}
	} else {
		ffnOut = []Code{callKernel(p.Down, sx("x"), Id("lw").Dot("down"), Op("&").Add(sx("hb")).Index(Lit(0)), nil, nil)} // adds into x
	}
	if p.QE {
		ffnIn = nil
		ffnOut = []Code{Id("s").Dot("qmoeFFN").Call(Id("l"), Op("&").Add(sx("x")), Op("&").Add(sx("xb2"))), residual}
		emitQuantMoE(file, p, eps)
	}
	layer := []Code{
		Id("lw").Op(",").Id("ql").Op(":=").Op("&").Id("w").Dot("layers").Index(Id("l")).Op(",").Op("&").Id("qw").Dot("layers").Index(Id("l")),
	}
	layer = append(layer, attnIn...)
	layer = append(layer,
		ropeCall(p, Op("&").Add(sx("qkv")).Index(Lit(0)), Op("&").Id("s").Dot("m").Dot("rcs").Index(Id("pos")).Index(Lit(0))),
		kvStore(p, Id("s"), Id("pos"), unsafeCast(Index(Lit(s.KVHeads)).Index(Lit(hd)).Float32(), Id("k")), Id("v")),
		Id("keys").Op(",").Id("values").Op(":=").Op("&").Add(sx("keys")).Index(Id("l")).Op(",").Op("&").Add(sx("values")).Index(Id("l")),
		decodeAttention(p),
	)
	layer = append(layer, attnOut...)
	layer = append(layer, ffnIn...)
	layer = append(layer, ffnOut...)
	file.Comment("step runs token at position pos through every layer into s.x (and the KV cache).")
	file.Func().Params(Id("s").Op("*").Id("Session")).Id("step").Params(Id("token"), Id("pos").Int()).Block(
		Id("w").Op(":=").Id("s").Dot("m").Dot("w"),
		qpathDecl(p, !p.QE), // qmoeFFN takes its experts' kernels itself
		embed,
		Id("k").Op(":=").Add(headsOf(s.KVHeads, Op("&").Add(sx("qkv")).Index(Lit(d)))),
		Id("v").Op(":=").Add(unsafeCast(Index(Lit(s.KVHeads)).Index(Lit(hd)).Float32(), Op("&").Add(sx("qkv")).Index(Lit(d+kv)))),
		For(Id("l").Op(":=").Range().Lit(s.Layers)).Block(layer...),
	)

	cls := Id("w").Dot("tokEmbd")
	if !s.TieEmbeddings {
		cls = Id("w").Dot("output")
	}
	var clsBody []Code
	if p.QD {
		clsBody = []Code{
			qpathDecl(p, false),
			qnorm(sx("xb"), sx("x"), Id("s").Dot("m").Dot("w").Dot("outNorm"), eps),
			qact(sx("xb"), d),
			qcall(p.QMVD, []qpart{{sx("logits"), 0, Id("qw").Dot("cls"), s.Vocab}}),
		}
	} else {
		clsBody = []Code{
			Id("w").Op(":=").Id("s").Dot("m").Dot("w"),
			callKernel(p.Classifier, sx("logits"), cls, Op("&").Add(sx("x")).Index(Lit(0)), Op("&").Id("w").Dot("outNorm").Index(Lit(0)), eps),
		}
	}
	file.Comment("classify writes the logits of the state step left in s.x.")
	file.Func().Params(Id("s").Op("*").Id("Session")).Id("classify").Params().Block(clsBody...)
}

// quantBatchFields are the batch buffers of the batched quantised pass
// (token-major, PrefillBatch rows), when the plan has one.
func quantBatchFields(p *Plan) []Code {
	fields := []Code{Id("rows").Index().Id("batchRow")}
	if p.QMMCalls() == nil {
		return fields
	}
	s := &p.Spec
	d, f, pb := s.Dim, s.FFNDim, p.PrefillBatch
	fields = append(fields, batchActFields(p)...)
	fields = append(fields,
		Comment("The rows' activations quantised for the d-wide (and the ffn-wide) products:"),
		Comment("codes, scales and -o·Σx per block (quant.ActSums)."),
		Id("dq").Index(Lit(pb)).Index(Lit(d)).Int8(),
		Id("ds").Index(Lit(pb)).Index(Lit(d/32)).Float32(),
		Id("dsum").Index(Lit(pb)).Index(Lit(d/32)).Int32(),
	)
	if p.QE {
		m := s.MoE
		mf := m.FFNDim
		fields = append(fields, moeGroupFields(p)...)
		fields = append(fields,
			Comment("A mixture's router scratch, and an expert's gathered rows quantised:"),
			Comment("inputs (gq, gs, gsum) and hidden activations (hq, hs, hsum)."),
			List(Id("elog"), Id("eprob")).Index(Lit(m.Experts)).Float32(),
			Id("gq").Index(Lit(pb)).Index(Lit(d)).Int8(),
			Id("gs").Index(Lit(pb)).Index(Lit(d/32)).Float32(),
			Id("gsum").Index(Lit(pb)).Index(Lit(d/32)).Int32(),
			Id("hq").Index(Lit(pb)).Index(Lit(mf)).Int8(),
			Id("hs").Index(Lit(pb)).Index(Lit(mf/32)).Float32(),
			Id("hsum").Index(Lit(pb)).Index(Lit(mf/32)).Int32(),
		)
	}
	if !p.QF {
		return fields
	}
	return append(fields,
		Id("fq").Index(Lit(pb)).Index(Lit(f)).Int8(),
		Id("fs").Index(Lit(pb)).Index(Lit(f/32)).Float32(),
		Id("fsum").Index(Lit(pb)).Index(Lit(f/32)).Int32(),
	)
}

// emitQuantRun writes run for the quantised path. When the dim-wide
// matrices are quantised the rows go through each layer together, every
// weight panel (AVX-512 VNNI) or block row (AVX2, NEON, Go) read once for
// the batch; the arithmetic of each row is the decode step's, so Prefill
// gives Forward's logits. Otherwise (and on AVX-512 without panels) the rows
// go one by one through step.
func emitQuantRun(file *File, p *Plan) {
	oneByOne := For(List(Id("_"), Id("r")).Op(":=").Range().Id("b").Dot("rows")).Block(
		Id("r").Dot("s").Dot("step").Call(Id("r").Dot("tok"), Id("r").Dot("pos")),
		If(Id("r").Dot("last")).Block(Id("r").Dot("s").Dot("classify").Call()),
	)
	if p.QMMCalls() == nil {
		file.Comment("run takes b's rows one by one through every layer, and the classifier")
		file.Comment("for the rows that end a span, into their sessions' logits.")
		file.Func().Params(Id("m").Op("*").Id("Model")).Id("run").Params(Id("b").Op("*").Id("batch")).Block(oneByOne)
		return
	}
	run := []Code{
		If(Id("m").Dot("qp").Op("!=").Nil().Op("&&").Id("kern").Dot("qmmQKV").Op("!=").Nil()).Block(append(quantPass(p, true), Return())...),
		If(Id("kern").Dot(gmmField("qmmQKV")).Op("!=").Nil()).Block(append(quantPass(p, false), Return())...),
		oneByOne,
	}
	file.Comment("run takes b's rows through every layer together, with the panel matmuls")
	file.Comment("(AVX-512 VNNI) or the matmuls over ggml's blocks (AVX2, NEON, Go), then the")
	file.Comment("classifier for the rows that end a span, into their sessions' logits; one by")
	file.Comment("one through step on AVX-512 without panels.")
	file.Func().Params(Id("m").Op("*").Id("Model")).Id("run").Params(Id("b").Op("*").Id("batch")).Block(run...)
}

// quantPass is the body of the batched quantised pass: with the panel
// matmuls over m.qp (AVX-512 VNNI) or with the matmuls over ggml's blocks in
// m.q (gmm…: AVX2, NEON, Go).
func quantPass(p *Plan, panel bool) []Code {
	s := &p.Spec
	d, kv, f := s.Dim, s.KVDim(), s.FFNDim
	eps := Lit(float32(s.NormEps))
	bx := func(n string) *Statement { return Id("b").Dot(n) }
	row := func(n string) *Statement { return Id("b").Dot(n).Index(Id("i")) }
	// qact quantises row i of x for the d-wide (or ffn-wide) products (with
	// the panel kernels' -o·Σx tables).
	qactRow := func(x string, wide bool) Code {
		q, sc, sum, n := "dq", "ds", "dsum", d
		if wide {
			q, sc, sum, n = "fq", "fs", "fsum", f
		}
		c := []Code{Qual(quantPkg, "QuantizeAct").Call(row(q).Index(Op(":")), row(sc).Index(Op(":")), row(x).Index(Op(":").Lit(n)))}
		if panel {
			c = append(c, Qual(quantPkg, "ActSums").Call(row(sum).Index(Op(":")), row(q).Index(Op(":")), Id("off")))
		}
		return Block(c...)
	}
	// mmcallX multiplies the tokens quantised rows of b.<q>, b.<sc>,
	// b.<sum> by the stacked parts with the matmul named field (qmm…:
	// panels, gmm…: ggml's blocks).
	mmcallX := func(field, q, sc, sum string, tokens Code, parts []qpart) Code {
		c := p.qmm(field)
		xargs := []Code{Op("&").Add(bx(q)).Index(Lit(0)).Index(Lit(0)), Op("&").Add(bx(sc)).Index(Lit(0)).Index(Lit(0))}
		if panel {
			xargs = append(xargs, Op("&").Add(bx(sum)).Index(Lit(0)).Index(Lit(0)))
		} else {
			field = gmmField(field)
		}
		return qsplit(c.Kernel.Cols, 64, parts, func(out, w, n Code) Code {
			return Id("kern").Dot(field).Call(append([]Code{out, w}, append(xargs, n, tokens)...)...)
		})
	}
	// mmcall is mmcallX over all the batch's rows, d- or ffn-wide.
	mmcall := func(field string, wide bool, parts []qpart) Code {
		if wide {
			return mmcallX(field, "fq", "fs", "fsum", Id("n"), parts)
		}
		return mmcallX(field, "dq", "ds", "dsum", Id("n"), parts)
	}
	residual := perRow(For(Id("j").Op(":=").Range().Lit(d)).Block(row("px").Index(Id("j")).Op("+=").Add(row("po")).Index(Id("j"))))
	cls := Id("qw").Dot("cls")
	clsSums := Null()
	if panel {
		clsSums = Qual(quantPkg, "ActSums").Call(Id("b").Dot("dsum").Index(Id("k")).Index(Op(":")), Id("b").Dot("dq").Index(Id("k")).Index(Op(":")), Id("off"))
	}
	layer := []Code{
		List(Id("lw"), Id("ql")).Op(":=").Op("&").Id("w").Dot("layers").Index(Id("l")).Op(",").Op("&").Id("qw").Dot("layers").Index(Id("l")),
		perRow(qnorm(row("pxn"), row("px"), Id("lw").Dot("attnNorm"), eps), qactRow("pxn", false)),
		mmcall("qmmQKV", false, []qpart{{bx("pqkv").Index(Lit(0)), 0, Id("ql").Dot("q"), d}, {bx("pqkv").Index(Lit(0)), d, Id("ql").Dot("k"), kv}, {bx("pqkv").Index(Lit(0)), d + kv, Id("ql").Dot("v"), kv}}),
		batchAttention(p, perRow),
		perRow(qactRow("patt", false)),
		mmcall("qmmOut", false, []qpart{{bx("po").Index(Lit(0)), 0, Id("ql").Dot("wo"), d}}),
		residual,
	}
	if p.MoE() {
		layer = append(layer, quantMoEPass(p, panel, eps, mmcallX)...)
	} else {
		layer = append(layer,
			perRow(qnorm(row("pxn"), row("px"), Id("lw").Dot("ffnNorm"), eps), qactRow("pxn", false)),
			mmcall("qmmGateUp", false, []qpart{{bx("phb").Index(Lit(0)), 0, Id("ql").Dot("gate"), f}, {bx("phb").Index(Lit(0)), f, Id("ql").Dot("up"), f}}),
			Id("kern").Dot(p.SiLUMul.Field).Call(Op("&").Add(bx("pact")).Index(Lit(0)).Index(Lit(0)), Op("&").Add(bx("phb")).Index(Lit(0)).Index(Lit(0)), Id("n")),
		)
	}
	switch {
	case p.MoE():
		layer = append(layer, residual)
	case p.QF:
		layer = append(layer,
			perRow(qactRow("pact", true)),
			mmcall("qmmDown", true, []qpart{{bx("po").Index(Lit(0)), 0, Id("ql").Dot("down"), d}}),
			residual,
		)
	default:
		// ffn_down stays float32 (rows not whole blocks): the step's float
		// matvec (which adds into the residual) row by row, so that each
		// row's sums are the step's (the float MatMul adds in another order).
		layer = append(layer, perRow(callKernel(p.Down, row("px"), Id("lw").Dot("down"), Op("&").Add(row("pact")).Index(Lit(0)), nil, nil)))
	}
	qw := Op("&").Id("m").Dot("q")
	if panel {
		qw = Id("m").Dot("qp")
	}
	body := []Code{
		List(Id("rows"), Id("n")).Op(":=").List(Id("b").Dot("rows"), Len(Id("b").Dot("rows"))),
		List(Id("w"), Id("qw")).Op(":=").List(Id("m").Dot("w"), qw),
	}
	if panel {
		body = append(body, Id("off").Op(":=").Qual(quantPkg, "PanelOffset").Call(Id("QFormat")))
	}
	body = append(body,
		perRow(Qual(quantPkg, "DequantizeRow").Call(Id("QFormat"), row("px").Index(Op(":")), Id("m").Dot("q").Dot("embd").Index(Id("r").Dot("tok")).Index(Op(":")))),
		For(Id("l").Op(":=").Range().Lit(s.Layers)).Block(layer...),
		// The classifier for the rows whose logits are wanted, quantised into
		// the first rows of dq.
		Id("k").Op(":=").Lit(0),
		perRow(If(Id("r").Dot("last")).Block(
			qnorm(Id("b").Dot("pxn").Index(Id("k")), row("px"), Id("w").Dot("outNorm"), eps),
			Qual(quantPkg, "QuantizeAct").Call(Id("b").Dot("dq").Index(Id("k")).Index(Op(":")), Id("b").Dot("ds").Index(Id("k")).Index(Op(":")), Id("b").Dot("pxn").Index(Id("k")).Index(Op(":"))),
			clsSums,
			Id("k").Op("++"),
		)),
		If(Id("k").Op("==").Lit(0)).Block(Return()),
		Id("n").Op("=").Id("k"),
		mmcall("qmmCls", false, []qpart{{bx("plog").Index(Lit(0)), 0, cls, s.Vocab}}),
		Id("k").Op("=").Lit(0),
		perRow(If(Id("r").Dot("last")).Block(
			Id("r").Dot("s").Dot("logits").Op("=").Id("b").Dot("plog").Index(Id("k")),
			Id("k").Op("++"),
		)),
	)
	return body
}

// emitQuantMoE writes qmoeFFN, a quantised step's mixture of experts for
// layer l from x into out (the step's and a batched pass's rows): the
// float router over the normalised x (kernels.MoERoute picks and weights
// the top k, as the float model does), then the shared expert and each
// chosen one through the quantised matvecs: gate and up on the 8-bit
// normalised x (s.xq), silu·mul, the hidden quantised into s.hq, down;
// out = shared + Σ_j w_j·expert_j. The session's scratch holds the rest.
func emitQuantMoE(file *File, p *Plan, eps Code) {
	s := &p.Spec
	m := s.MoE
	d, mf := s.Dim, m.FFNDim
	sx := func(n string) *Statement { return Id("s").Dot(n) }
	sc := func(n string) *Statement { return Id("s").Dot("moe").Dot(n) }
	out := Parens(Op("*").Id("out"))
	// expert runs one expert's matrices (pointers gate, up, down) into dst.
	expert := func(gate, up, down, dst Code) []Code {
		return []Code{
			qcall(p.QMVD, []qpart{{sx("hgu"), 0, gate, mf}, {sx("hgu"), mf, up, mf}}),
			Id("kern").Dot(p.SiLUMulE.Field).Call(Op("&").Add(sc("hb")).Index(Lit(0)), Op("&").Add(sx("hgu")).Index(Lit(0)), Lit(1)),
			Qual(quantPkg, "QuantizeAct").Call(sx("hq").Index(Op(":")), sx("hs").Index(Op(":")), sc("hb").Index(Op(":"))),
			qcallX(p.QMVE, "hq", "hs", []qpart{{dst, 0, down, d}}),
		}
	}
	body := []Code{}
	body = append(body,
		Id("lw").Op(":=").Op("&").Id("s").Dot("m").Dot("w").Dot("layers").Index(Id("l")),
		qpathDecl(p, true),
		Id("ql").Op(":=").Op("&").Id("qw").Dot("layers").Index(Id("l")),
		callKernel(p.Router, sc("logits"), Id("lw").Dot("router"), Op("&").Id("x").Index(Lit(0)), Op("&").Id("lw").Dot("ffnNorm").Index(Lit(0)), eps),
		Qual(kernelsPkg, "MoERoute").Call(sc("sel").Index(Op(":")), sc("w").Index(Op(":")), sc("probs").Index(Op(":")), sc("logits").Index(Op(":"))),
		qnorm(sx("xb"), Id("x"), Id("lw").Dot("ffnNorm"), eps),
		qact(sx("xb"), d),
	)
	if m.SharedExpert {
		body = append(body, expert(Id("ql").Dot("sharedGate"), Id("ql").Dot("sharedUp"), Id("ql").Dot("sharedDown"), out)...)
	} else {
		body = append(body, Op("*").Id("out").Op("=").Index(Lit(d)).Float32().Values())
	}
	// Expert e's rows of a stack, as a matrix of its own.
	rowsOf := func(stack string, rows, cols int) *Statement {
		return Parens(p.qmat(rows, cols)).Parens(Qual("unsafe", "Pointer").Call(Op("&").Id("ql").Dot(stack).Index(Int().Parens(Id("ex")).Op("*").Lit(rows))))
	}
	loop := []Code{
		List(Id("ge"), Id("ue"), Id("de")).Op(":=").List(rowsOf("gateExps", mf, d), rowsOf("upExps", mf, d), rowsOf("downExps", d, mf)),
	}
	loop = append(loop, expert(Id("ge"), Id("ue"), Id("de"), sc("tmp"))...)
	loop = append(loop,
		Id("wj").Op(":=").Add(sc("w")).Index(Id("j")),
		For(Id("i").Op(":=").Range().Lit(d)).Block(Id("out").Index(Id("i")).Op("+=").Id("wj").Op("*").Add(sc("tmp")).Index(Id("i"))),
	)
	body = append(body, For(List(Id("j"), Id("ex")).Op(":=").Range().Add(sc("sel"))).Block(loop...))
	file.Comment("qmoeFFN runs layer l's mixture of experts on x into out (the float router, the")
	file.Comment("chosen experts' quantised matrices); a batched pass calls it row by row.")
	file.Func().Params(Id("s").Op("*").Id("Session")).Id("qmoeFFN").Params(Id("l").Int(), List(Id("x"), Id("out")).Op("*").Index(Lit(d)).Float32()).Block(body...)
}

// quantMoEPass is a batched pass's mixture of experts into b.po: every row
// routed and its normalised input quantised (into dq) as the step does;
// the shared expert over all rows; then each expert over the rows routed to
// it, gathered (gq), gate|up, silu·mul, the hidden quantised (hq), down,
// each row's output kept per choice (etmp); finally each row's choices
// added in the step's order. Every token's sums are those of qmoeFFN.
func quantMoEPass(p *Plan, panel bool, eps Code, mmcallX func(field, q, sc, sum string, tokens Code, parts []qpart) Code) []Code {
	s := &p.Spec
	m := s.MoE
	d, mf := s.Dim, m.FFNDim
	bx := func(n string) *Statement { return Id("b").Dot(n) }
	row := func(n string) *Statement { return Id("b").Dot(n).Index(Id("i")) }
	sums := func(sum, q string, i Code) Code {
		if !panel {
			return Null()
		}
		return Qual(quantPkg, "ActSums").Call(bx(sum).Index(i).Index(Op(":")), bx(q).Index(i).Index(Op(":")), Id("off"))
	}
	// hidden runs gate|up of the tokens rows quantised in (q, sc, sum) by
	// the gate and up matrices, silu·mul, and quantises the hidden rows.
	hidden := func(q, sc, sum string, tokens Code, gate, up Code) []Code {
		return []Code{
			mmcallX("qmmExpGU", q, sc, sum, tokens, []qpart{{bx("ehgu").Index(Lit(0)), 0, gate, mf}, {bx("ehgu").Index(Lit(0)), mf, up, mf}}),
			Id("kern").Dot(p.SiLUMulE.Field).Call(Op("&").Add(bx("eact")).Index(Lit(0)).Index(Lit(0)), Op("&").Add(bx("ehgu")).Index(Lit(0)).Index(Lit(0)), tokens),
			For(Id("t").Op(":=").Range().Add(tokens)).Block(
				Qual(quantPkg, "QuantizeAct").Call(bx("hq").Index(Id("t")).Index(Op(":")), bx("hs").Index(Id("t")).Index(Op(":")), bx("eact").Index(Id("t")).Index(Op(":"))),
				sums("hsum", "hq", Id("t")),
			),
		}
	}
	var out []Code
	out = append(out, perRow(
		callKernel(p.Router, bx("elog"), Id("lw").Dot("router"), Op("&").Add(row("px")).Index(Lit(0)), Op("&").Id("lw").Dot("ffnNorm").Index(Lit(0)), eps),
		Qual(kernelsPkg, "MoERoute").Call(row("esel").Index(Op(":")), row("ew").Index(Op(":")), bx("eprob").Index(Op(":")), bx("elog").Index(Op(":"))),
		qnorm(row("pxn"), row("px"), Id("lw").Dot("ffnNorm"), eps),
		Qual(quantPkg, "QuantizeAct").Call(row("dq").Index(Op(":")), row("ds").Index(Op(":")), row("pxn").Index(Op(":").Lit(d))),
		sums("dsum", "dq", Id("i")),
	))
	if m.SharedExpert {
		out = append(out, hidden("dq", "ds", "dsum", Id("n"), Id("ql").Dot("sharedGate"), Id("ql").Dot("sharedUp"))...)
		out = append(out, mmcallX("qmmExpDown", "hq", "hs", "hsum", Id("n"), []qpart{{bx("po").Index(Lit(0)), 0, Id("ql").Dot("sharedDown"), d}}))
	} else {
		out = append(out, perRow(row("po").Op("=").Index(Lit(d)).Float32().Values()))
	}
	rowsOf := func(stack string, rows, cols int) *Statement {
		return Parens(p.qmat(rows, cols)).Parens(Qual("unsafe", "Pointer").Call(Op("&").Id("ql").Dot(stack).Index(Id("ex").Op("*").Lit(rows))))
	}
	// The panel kernels' -o·Σx tables go with the rows; ggml's have none.
	copies := [][2]string{{"gq", "dq"}, {"gs", "ds"}}
	if panel {
		copies = append(copies, [2]string{"gsum", "dsum"})
	}
	body := []Code{
		List(Id("ge"), Id("ue"), Id("de")).Op(":=").List(rowsOf("gateExps", mf, d), rowsOf("upExps", mf, d), rowsOf("downExps", d, mf)),
	}
	body = append(body, hidden("gq", "gs", "gsum", Id("k"), Id("ge"), Id("ue"))...)
	body = append(body, mmcallX("qmmExpDown", "hq", "hs", "hsum", Id("k"), []qpart{{bx("eout").Index(Lit(0)), 0, Id("de"), d}}))
	return append(out, expertGroups(p, copies, body...)...)
}
