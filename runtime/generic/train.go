package generic

import (
	"fmt"

	"github.com/modelc/modelc/runtime/kernels"
	"github.com/modelc/modelc/runtime/model"
)

// NewTrainer returns the generic model's batched trainer: forward over B×T
// tokens keeping every activation the backward pass needs, then backward op
// by op in reverse, each op's gradient from its kernel's backward beside the
// forward. It is the oracle the compiler's specialised trainer is tested
// against.
func (m *Model) NewTrainer(B, T int) (model.Trainer, error) {
	return m.NewTrainerOps(B, T, TrainOps{})
}

// TrainOps are the heavy operations a trainer runs, each over the whole
// batch: the function splits the work over threads itself. A compiled model
// passes its shape-specialised kernels; nil fields use runtime/kernels' over
// the generic worker pool. Shapes and accumulation are those of
// kernels.MatMul, MatMulBackwardInput and MatMulBackwardWeight (for all
// output rows), AttentionSeq (one sequence and head) and
// SoftmaxCrossEntropy. A mixture of experts' expert products keep the
// defaults.
type TrainOps struct {
	// MatMul sets out[n*O+o] = Σ_i in[n*I+i]·w[o*I+i].
	MatMul func(out, in, w []float32, N, I, O int)
	// BackwardInput adds Σ_o dOut[n*O+o]·w[o*I+i] to dIn[n*I+i].
	BackwardInput func(dIn, dOut, w []float32, N, I, O int)
	// BackwardWeight adds Σ_n dOut[n*O+o]·in[n*I+i] to dW[o*I+i].
	BackwardWeight func(dW, dOut, in []float32, N, I, O int)
	// AttentionSeq is kernels.AttentionSeq; it runs on one thread (the
	// trainer splits sequences and heads).
	AttentionSeq func(out, att, q, k, v []float32, T, hd, stride, outStride int, causal bool)
	// AttentionSeqBackward is kernels.AttentionSeqBackward, on one thread.
	AttentionSeqBackward func(dq, dk, dv, dOut, att, q, k, v, dp []float32, T, hd, stride, outStride int, causal bool)
	// SoftmaxCrossEntropy is kernels.SoftmaxCrossEntropy, on one thread.
	SoftmaxCrossEntropy func(logits []float32, targets []int32, N, V int) (float64, int)
	// SwiGLU and SwiGLUBackward are kernels.SwiGLURows and
	// SwiGLURowsBackward (of the dense FFN), on one thread.
	SwiGLU         func(out, gateUp []float32, N, F int)
	SwiGLUBackward func(dGateUp, dOut, gateUp []float32, N, F int)
}

// NewTrainerOps is NewTrainer with the operations of ops.
func (m *Model) NewTrainerOps(B, T int, ops TrainOps) (model.Trainer, error) {
	if ops.MatMul == nil {
		ops.MatMul = matmul
	}
	if ops.BackwardInput == nil {
		ops.BackwardInput = matmulBackwardInput
	}
	if ops.BackwardWeight == nil {
		ops.BackwardWeight = matmulBackwardWeight
	}
	if ops.AttentionSeq == nil {
		ops.AttentionSeq = kernels.AttentionSeq
	}
	if ops.AttentionSeqBackward == nil {
		ops.AttentionSeqBackward = kernels.AttentionSeqBackward
	}
	if ops.SoftmaxCrossEntropy == nil {
		ops.SoftmaxCrossEntropy = kernels.SoftmaxCrossEntropy
	}
	if ops.SwiGLU == nil {
		ops.SwiGLU = kernels.SwiGLURows
	}
	if ops.SwiGLUBackward == nil {
		ops.SwiGLUBackward = kernels.SwiGLURowsBackward
	}
	s := &m.p.Spec
	if B < 1 || T < 1 {
		return nil, fmt.Errorf("generic trainer: batch %d × sequence %d: both must be ≥ 1", B, T)
	}
	if s.MaxSeq > 0 && T > s.MaxSeq {
		return nil, fmt.Errorf("generic trainer: sequence length %d exceeds the model's max_seq %d", T, s.MaxSeq)
	}
	d, kv, f, v := s.Dim, s.KVDim(), s.FFNDim, s.Vocab
	if s.MoE != nil {
		f = 0 // the dense FFN buffers go unused
	}
	N := B * T
	tr := &Trainer{
		m: m, capB: B, capT: T, mm: ops,
		causal: model.Causal(s),
		grads:  make([]float32, len(m.p.Data)),
		tokens: make([]int32, N), targets: make([]int32, N),
	}
	tr.cos, tr.sin = kernels.RoPETable(T, m.freqs)
	tr.xs = make([][]float32, s.Layers+1)
	for l := range tr.xs {
		tr.xs[l] = make([]float32, N*d)
	}
	tr.acts = make([]acts, s.Layers)
	for l := range tr.acts {
		tr.acts[l] = acts{
			xn1: make([]float32, N*d), rstd1: make([]float32, N),
			qkv: make([]float32, N*(d+2*kv)),
			att: make([]float32, B*s.Heads*T*T),
			ao:  make([]float32, N*d), xMid: make([]float32, N*d),
			xn2: make([]float32, N*d), rstd2: make([]float32, N),
			gu: make([]float32, N*2*f), h: make([]float32, N*f),
		}
	}
	tr.xf, tr.rstdF = make([]float32, N*d), make([]float32, N)
	tr.xg, tr.tg, tr.rows = make([]float32, N*d), make([]int32, N), make([]int, N)
	tr.probs, tr.rowLoss = make([]float32, N*v), make([]float64, N)
	tr.dx, tr.dxn = make([]float32, N*d), make([]float32, N*d)
	tr.dqkv, tr.dgu, tr.dh = make([]float32, N*(d+2*kv)), make([]float32, N*2*f), make([]float32, N*f)
	tr.dp = make([]float32, B*s.KVHeads*T)
	if s.MoE != nil {
		tr.moe = newMoETrain(tr, N)
	}
	return tr, nil
}

// acts are the activations of one layer kept for the backward pass.
type acts struct {
	xn1, rstd1 []float32 // attention RMSNorm output and 1/rms per row
	qkv        []float32 // [N, dim+2·kv_dim]: Q, K (rotated) and V
	att        []float32 // [B, heads, T, T] attention probabilities
	ao         []float32 // attention output, before the output projection
	xMid       []float32 // residual stream after attention
	xn2, rstd2 []float32 // FFN RMSNorm
	gu, h      []float32 // gate|up projections, and SwiGLU of them
}

// Trainer is the generic model's model.Trainer.
type Trainer struct {
	m          *Model
	capB, capT int
	causal     bool
	mm         TrainOps
	grads      []float32
	cos, sin   []float32

	// the last Forward
	B, T            int
	tokens, targets []int32
	xs              [][]float32 // residual stream entering layer l; xs[layers] leaves the last
	acts            []acts
	xf, rstdF       []float32 // final RMSNorm
	rows            []int     // rows with a target; M of them
	xg              []float32 // their final-norm outputs, gathered
	tg              []int32   // and their targets
	M               int
	probs           []float32 // [M, vocab]
	rowLoss         []float64
	forwardDone     bool
	dx, dxn         []float32
	dqkv, dgu, dh   []float32
	dp              []float32
	moe             *moeTrain // mixture of experts, else nil
}

func (tr *Trainer) Grads() []float32 { return tr.grads }
func (tr *Trainer) ZeroGrads()       { clear(tr.grads) }

// weights of layer l resolved in the parameter buffer (and the gradient
// buffer, which has the same layout).
type lw struct {
	attnNorm, wqkv, wo, ffnNorm, wgu, wdown []float32
}

func (tr *Trainer) layerWeights(buf []float32, l int) lw {
	p, s := tr.m.p, &tr.m.p.Spec
	d, kv, f := s.Dim, s.KVDim(), s.FFNDim
	at := func(name string, n int) []float32 {
		t, _ := p.Lookup(model.LayerTensor(l, name))
		return buf[t.Off : t.Off+n : t.Off+n]
	}
	if s.MoE != nil {
		f = 0 // no dense FFN: moeWeights has the experts
	}
	return lw{
		attnNorm: at("attn_norm", d),
		wqkv:     at("attn_q", (d+2*kv)*d), // Q, K, V adjacent: one matrix
		wo:       at("attn_output", d*d),
		ffnNorm:  at("ffn_norm", d),
		wgu:      at("ffn_gate", 2*f*d), // gate and up adjacent
		wdown:    at("ffn_down", d*f),
	}
}

func (tr *Trainer) isMoE() bool { return tr.moe != nil }

func (tr *Trainer) tensor(buf []float32, name string) []float32 {
	t, _ := tr.m.p.Lookup(name)
	return buf[t.Off : t.Off+t.Len() : t.Off+t.Len()]
}

func (tr *Trainer) classifier(buf []float32) []float32 {
	if tr.m.p.Spec.TieEmbeddings {
		return tr.tensor(buf, model.TokEmbd)
	}
	return tr.tensor(buf, model.Output)
}

// Forward implements model.Trainer.
func (tr *Trainer) Forward(tokens, targets []int32, B, T int) float32 {
	if B < 1 || T < 1 || B > tr.capB || T > tr.capT || len(tokens) < B*T || len(targets) < B*T {
		panic(fmt.Sprintf("generic trainer: Forward(%d tokens, %d targets, B=%d, T=%d) on a trainer for B ≤ %d, T ≤ %d", len(tokens), len(targets), B, T, tr.capB, tr.capT))
	}
	s := &tr.m.p.Spec
	P := tr.m.p.Data
	d, kv, f, V, H, KVH, hd := s.Dim, s.KVDim(), s.FFNDim, s.Vocab, s.Heads, s.KVHeads, s.HeadDim()
	eps := float32(s.NormEps)
	N := B * T
	tr.B, tr.T = B, T
	copy(tr.tokens, tokens[:N])
	copy(tr.targets, targets[:N])
	S := d + 2*kv
	cos, sin := tr.cos[:T*hd/2], tr.sin[:T*hd/2]

	kernels.Embedding(tr.xs[0][:N*d], tr.tensor(P, model.TokEmbd), tr.tokens[:N], d)
	for l := range tr.acts {
		a, w := &tr.acts[l], tr.layerWeights(P, l)
		x := tr.xs[l]
		rows(N, d, func(lo, hi int) {
			kernels.RMSNormRows(a.xn1[lo*d:], a.rstd1[lo:], x[lo*d:], w.attnNorm, hi-lo, d, eps)
		})
		tr.mm.MatMul(a.qkv, a.xn1, w.wqkv, N, d, S)
		rows(N, S, func(lo, hi int) {
			// Q and K are adjacent in a row: one rotation pass over both.
			kernels.RoPERows(a.qkv[lo*S:], lo, hi-lo, T, S, d+kv, cos, sin)
		})
		group := H / KVH
		parallel(B*H, 1, func(lo, hi int) {
			for u := lo; u < hi; u++ {
				b, h := u/H, u%H
				base := b * T * S
				tr.mm.AttentionSeq(a.ao[b*T*d+h*hd:], a.att[u*T*T:(u+1)*T*T],
					a.qkv[base+h*hd:], a.qkv[base+d+(h/group)*hd:], a.qkv[base+d+kv+(h/group)*hd:],
					T, hd, S, d, tr.causal)
			}
		})
		tr.mm.MatMul(a.xMid, a.ao, w.wo, N, d, d)
		kernels.Add(a.xMid[:N*d], x[:N*d])
		rows(N, d, func(lo, hi int) {
			kernels.RMSNormRows(a.xn2[lo*d:], a.rstd2[lo:], a.xMid[lo*d:], w.ffnNorm, hi-lo, d, eps)
		})
		next := tr.xs[l+1]
		if tr.isMoE() {
			tr.moeForward(l, a.xn2, a.xMid, next, N)
			continue
		}
		tr.mm.MatMul(a.gu, a.xn2, w.wgu, N, d, 2*f)
		rows(N, 2*f, func(lo, hi int) {
			tr.mm.SwiGLU(a.h[lo*f:], a.gu[lo*2*f:], hi-lo, f)
		})
		tr.mm.MatMul(next, a.h, w.wdown, N, f, d)
		kernels.Add(next[:N*d], a.xMid[:N*d])
	}
	last := tr.xs[len(tr.acts)]
	rows(N, d, func(lo, hi int) {
		kernels.RMSNormRows(tr.xf[lo*d:], tr.rstdF[lo:], last[lo*d:], tr.tensor(P, model.OutputNorm), hi-lo, d, eps)
	})

	// The classifier runs only over rows with a target, gathered densely:
	// masked language modelling skips most of its products.
	M := 0
	for n, t := range tr.targets[:N] {
		if t >= 0 {
			tr.rows[M] = n
			tr.tg[M] = t
			copy(tr.xg[M*d:(M+1)*d], tr.xf[n*d:(n+1)*d])
			M++
		}
	}
	tr.M = M
	tr.forwardDone = true
	if M == 0 {
		return 0
	}
	tr.mm.MatMul(tr.probs, tr.xg, tr.classifier(P), M, d, V)
	rows(M, V, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			tr.rowLoss[r], _ = tr.mm.SoftmaxCrossEntropy(tr.probs[r*V:(r+1)*V], tr.tg[r:r+1], 1, V)
		}
	})
	// Summed in row order, whatever the threads: runs are reproducible.
	var sum float64
	for _, l := range tr.rowLoss[:M] {
		sum += l
	}
	return float32(sum / float64(M))
}

// Backward implements model.Trainer.
func (tr *Trainer) Backward() { tr.backward(false, nil, nil) }

// TokenLosses implements model.GradTrainer.
func (tr *Trainer) TokenLosses(dst []float64) {
	clear(dst[:tr.B*tr.T])
	for r, n := range tr.rows[:tr.M] {
		dst[n] = tr.rowLoss[r]
	}
}

// Probs implements model.GradTrainer.
func (tr *Trainer) Probs() []float32 { return tr.probs[:tr.M*tr.m.p.Spec.Vocab] }

// Hidden implements model.GradTrainer.
func (tr *Trainer) Hidden() []float32 { return tr.xf[:tr.B*tr.T*tr.m.p.Spec.Dim] }

// BackwardGrad implements model.GradTrainer.
func (tr *Trainer) BackwardGrad(dLogits, dHidden []float32) {
	V, d := tr.m.p.Spec.Vocab, tr.m.p.Spec.Dim
	if dLogits != nil && len(dLogits) < tr.M*V || dHidden != nil && len(dHidden) < tr.B*tr.T*d {
		panic(fmt.Sprintf("generic trainer: BackwardGrad with %d logit and %d hidden gradients for %d rows × %d and %d positions × %d", len(dLogits), len(dHidden), tr.M, V, tr.B*tr.T, d))
	}
	tr.backward(true, dLogits, dHidden)
}

// backward runs the backward pass from the gradient of the mean
// cross-entropy (custom false) or from the given gradients.
func (tr *Trainer) backward(custom bool, dLogits, dHidden []float32) {
	if !tr.forwardDone {
		panic("generic trainer: Backward without Forward")
	}
	tr.forwardDone = false
	s := &tr.m.p.Spec
	P, G := tr.m.p.Data, tr.grads
	d, kv, f, V, H, KVH, hd := s.Dim, s.KVDim(), s.FFNDim, s.Vocab, s.Heads, s.KVHeads, s.HeadDim()
	B, T, M := tr.B, tr.T, tr.M
	N := B * T
	S := d + 2*kv
	cos, sin := tr.cos[:T*hd/2], tr.sin[:T*hd/2]
	dx, dxn := tr.dx[:N*d], tr.dxn[:N*d]
	clear(dx)

	// Classifier and loss: the mean over M rows, so each row weighs 1/M
	// (or the caller's gradient of its own objective).
	dxf := dxn
	clear(dxf)
	if custom && dLogits != nil && M > 0 {
		copy(tr.probs[:M*V], dLogits[:M*V]) // a no-op when they alias
	}
	if M > 0 && !custom {
		scale := 1 / float32(M)
		rows(M, V, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				p := tr.probs[r*V : (r+1)*V] // becomes d logits, in place
				for i := range p {
					p[i] *= scale
				}
				p[tr.tg[r]] -= scale
			}
		})
	}
	if M > 0 && (!custom || dLogits != nil) {
		// The weight gradient first, while xg still holds the inputs; then
		// xg is free to receive their gradient.
		tr.mm.BackwardWeight(tr.classifier(G), tr.probs, tr.xg, M, d, V)
		dxg := tr.xg[:M*d]
		clear(dxg)
		tr.mm.BackwardInput(dxg, tr.probs, tr.classifier(P), M, d, V)
		for r, n := range tr.rows[:M] {
			copy(dxf[n*d:(n+1)*d], dxg[r*d:(r+1)*d])
		}
	}
	if dHidden != nil {
		kernels.Add(dxf, dHidden[:N*d])
	}
	last := tr.xs[len(tr.acts)]
	kernels.RMSNormRowsBackward(dx, tr.tensor(G, model.OutputNorm), dxf, last, tr.tensor(P, model.OutputNorm), tr.rstdF, N, d)

	for l := len(tr.acts) - 1; l >= 0; l-- {
		a, w, gw := &tr.acts[l], tr.layerWeights(P, l), tr.layerWeights(G, l)
		// dx is the gradient of the residual stream leaving the layer,
		// x_{l+1} = xMid + down(SwiGLU(gate|up(norm(xMid)))).
		if tr.isMoE() {
			clear(dxn)
			tr.moeBackward(l, dx, dxn, a.xn2, N)
		} else {
			dh := tr.dh[:N*f]
			clear(dh)
			tr.mm.BackwardWeight(gw.wdown, dx, a.h, N, f, d)
			tr.mm.BackwardInput(dh, dx, w.wdown, N, f, d)
			dgu := tr.dgu[:N*2*f]
			clear(dgu)
			rows(N, 2*f, func(lo, hi int) {
				tr.mm.SwiGLUBackward(dgu[lo*2*f:], dh[lo*f:], a.gu[lo*2*f:], hi-lo, f)
			})
			clear(dxn)
			tr.mm.BackwardWeight(gw.wgu, dgu, a.xn2, N, d, 2*f)
			tr.mm.BackwardInput(dxn, dgu, w.wgu, N, d, 2*f)
		}
		// The residual passes dx through; the norm's branch adds to it.
		kernels.RMSNormRowsBackward(dx, gw.ffnNorm, dxn, a.xMid, w.ffnNorm, a.rstd2, N, d)

		// xMid = x_l + wo(attention(rope(qkv(norm(x_l))))).
		dao := dxn
		clear(dao)
		tr.mm.BackwardWeight(gw.wo, dx, a.ao, N, d, d)
		tr.mm.BackwardInput(dao, dx, w.wo, N, d, d)
		dqkv := tr.dqkv[:N*S]
		clear(dqkv)
		group := H / KVH
		// One unit per sequence and key/value head: the query heads that
		// share its keys and values add to their gradients in turn.
		parallel(B*KVH, 1, func(lo, hi int) {
			for u := lo; u < hi; u++ {
				b, g := u/KVH, u%KVH
				base := b * T * S
				for h := g * group; h < (g+1)*group; h++ {
					tr.mm.AttentionSeqBackward(dqkv[base+h*hd:], dqkv[base+d+g*hd:], dqkv[base+d+kv+g*hd:],
						dao[b*T*d+h*hd:], a.att[(b*H+h)*T*T:(b*H+h+1)*T*T],
						a.qkv[base+h*hd:], a.qkv[base+d+g*hd:], a.qkv[base+d+kv+g*hd:],
						tr.dp[u*T:(u+1)*T], T, hd, S, d, tr.causal)
				}
			}
		})
		rows(N, S, func(lo, hi int) {
			kernels.RoPERowsBackward(dqkv[lo*S:], lo, hi-lo, T, S, d+kv, cos, sin)
		})
		dxn1 := dxn
		clear(dxn1)
		tr.mm.BackwardWeight(gw.wqkv, dqkv, a.xn1, N, d, S)
		tr.mm.BackwardInput(dxn1, dqkv, w.wqkv, N, d, S)
		kernels.RMSNormRowsBackward(dx, gw.attnNorm, dxn1, tr.xs[l], w.attnNorm, a.rstd1, N, d)
	}
	kernels.EmbeddingBackward(tr.tensor(G, model.TokEmbd), dx, tr.tokens[:N], d)
}
