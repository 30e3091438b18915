package generic

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/modelc/modelc/runtime/kernels"
	"github.com/modelc/modelc/runtime/model"
)

// The batched step: B rows — one decode token of each of several sessions,
// or consecutive prompt tokens of a session — and every linear layer becomes
// one [B, in] × [out, in]ᵀ matrix product, so each weight is read once per
// step instead of once per token. Every per-row operation
// (norms, RoPE, attention, SwiGLU, residual adds) is the same kernel call the
// one-token Forward makes, and kernels.MatMul sums each output in the same
// order as kernels.MatVec, so a session's logits do not depend on what else
// is in the batch.

var _ model.Batcher = (*Model)(nil)

// batchScratch holds the activations of one batched step, reused across
// steps through the model's pool.
type batchScratch struct {
	x, xb, xb2, qkv, gateUp, hb, xl, out []float32
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// scratchPool holds batchScratch values of any model: each is resized on use.
var scratchPool sync.Pool

func (m *Model) scratch(B int) *batchScratch {
	sc, _ := scratchPool.Get().(*batchScratch)
	if sc == nil {
		sc = &batchScratch{}
	}
	s := &m.p.Spec
	d, kv, f := s.Dim, s.KVDim(), s.FFNDim
	sc.x = grow(sc.x, B*d)
	sc.xb = grow(sc.xb, B*d)
	sc.xb2 = grow(sc.xb2, B*d)
	sc.qkv = grow(sc.qkv, B*(d+2*kv))
	sc.gateUp = grow(sc.gateUp, B*2*f)
	sc.hb = grow(sc.hb, B*f)
	return sc
}

// ForwardBatch runs tokens[i] at position pos[i] in sessions[i] (all made by
// m.NewSession) and returns each session's logits, which live in the session
// as Forward's do. It panics on a session of another model or on mismatched
// lengths: those are programming errors, not input.
func (m *Model) ForwardBatch(sessions []model.Session, tokens, pos []int) [][]float32 {
	if len(tokens) != len(sessions) || len(pos) != len(sessions) {
		panic(fmt.Sprintf("generic: ForwardBatch: %d sessions, %d tokens, %d positions", len(sessions), len(tokens), len(pos)))
	}
	spans := make([][]int, len(tokens))
	for i := range tokens {
		spans[i] = tokens[i : i+1 : i+1]
	}
	return m.ForwardSpans(sessions, spans, pos)
}

// ForwardSpans runs, in one pass over the weights, tokens[i] (one or more)
// in sessions[i] at positions pos[i], pos[i]+1, …, and returns each
// session's logits after its last token: prompt chunks and single decode
// tokens of different sessions go through the same matrix products
// (chunked prefill beside decoding). A session may appear only once. Each
// row is computed exactly as Forward computes it.
func (m *Model) ForwardSpans(sessions []model.Session, tokens [][]int, pos []int) [][]float32 {
	S := len(sessions)
	if len(tokens) != S || len(pos) != S {
		panic(fmt.Sprintf("generic: ForwardBatch: %d sessions, %d token spans, %d positions", S, len(tokens), len(pos)))
	}
	if S == 0 {
		return nil
	}
	ss := m.sessions(sessions)
	var rows []row
	last := make([]int, S) // each session's last row
	for i, se := range ss {
		if len(tokens[i]) == 0 {
			panic(fmt.Sprintf("generic: ForwardBatch: session %d has no tokens", i))
		}
		for t, tok := range tokens[i] {
			rows = append(rows, row{se: se, token: tok, pos: pos[i] + t})
		}
		last[i] = len(rows) - 1
	}
	sc := m.scratch(len(rows))
	defer scratchPool.Put(sc)
	m.hidden(rows, sc)

	// The classifier runs on the rows whose logits are wanted only.
	s := &m.p.Spec
	d, V := s.Dim, s.Vocab
	sc.xl = grow(sc.xl, S*d)
	for i, r := range last {
		copy(sc.xl[i*d:(i+1)*d], sc.x[r*d:(r+1)*d])
	}
	sc.out = grow(sc.out, S*V)
	linear(sc.out, sc.xl, ss[0].classifier, S, d, V)
	logits := make([][]float32, S)
	for i, se := range ss {
		copy(se.logits, sc.out[i*V:(i+1)*V])
		logits[i] = se.logits
	}
	return logits
}

// row is one token of one session in a batched pass.
type row struct {
	se         *Session
	token, pos int
}

func (m *Model) sessions(sessions []model.Session) []*Session {
	ss := make([]*Session, len(sessions))
	seen := make(map[*Session]bool, len(sessions))
	for i, x := range sessions {
		se, ok := x.(*Session)
		if !ok || se.m != m {
			panic(fmt.Sprintf("generic: ForwardBatch: session %d (%T) was not made by this model", i, x))
		}
		if seen[se] {
			panic(fmt.Sprintf("generic: ForwardBatch: session %d appears twice", i))
		}
		seen[se] = true
		ss[i] = se
	}
	return ss
}

// hidden runs every layer for the rows and leaves their final-normed hidden
// states in sc.x ([rows, dim]). Keys and values of all rows go into their
// sessions' caches before any row attends, so that the rows of a prompt
// chunk see each other as one-token Forward calls in order would.
func (m *Model) hidden(rows []row, sc *batchScratch) {
	s := &m.p.Spec
	B := len(rows)
	d, kv, hd, f := s.Dim, s.KVDim(), s.HeadDim(), s.FFNDim
	qkvW := d + 2*kv
	eps := float32(s.NormEps)
	group := s.Heads / s.KVHeads
	maxPos := 0
	for b, r := range rows {
		if r.token < 0 || r.token >= s.Vocab || r.pos < 0 || r.pos >= s.MaxSeq {
			panic(fmt.Sprintf("generic: ForwardBatch: token %d at position %d outside vocab %d / max_seq %d", r.token, r.pos, s.Vocab, s.MaxSeq))
		}
		copy(sc.x[b*d:(b+1)*d], r.se.embd[r.token*d:(r.token+1)*d])
		maxPos = max(maxPos, r.pos)
	}
	x, xb, xb2 := sc.x, sc.xb, sc.xb2
	layers := rows[0].se.layers
	for l, w := range layers {
		for b := range B {
			kernels.RMSNorm(xb[b*d:(b+1)*d], x[b*d:(b+1)*d], w.attnNorm, eps)
		}
		linear(sc.qkv, xb, w.wqkv, B, d, qkvW)
		for b, r := range rows {
			q := sc.qkv[b*qkvW : b*qkvW+d]
			k, v := sc.qkv[b*qkvW+d:b*qkvW+d+kv], sc.qkv[b*qkvW+d+kv:(b+1)*qkvW]
			kernels.RoPE(q, r.pos, m.freqs)
			kernels.RoPE(k, r.pos, m.freqs)
			copy(r.se.keys[l][r.pos*kv:], k)
			copy(r.se.values[l][r.pos*kv:], v)
		}
		// Attention is per row: its session's cache up to its position.
		parallel(B, grainFor(s.Heads*hd*(maxPos+1)), func(lo, hi int) {
			att := make([]float32, maxPos+1)
			for b := lo; b < hi; b++ {
				r := rows[b]
				q := sc.qkv[b*qkvW : b*qkvW+d]
				out := xb[b*d : (b+1)*d]
				for h := 0; h < s.Heads; h++ {
					kernels.Attention(out[h*hd:(h+1)*hd], q[h*hd:(h+1)*hd], r.se.keys[l], r.se.values[l], att, r.pos, kv, (h/group)*hd)
				}
			}
		})
		linear(xb2, xb, w.wo, B, d, d)
		for b := range B {
			kernels.Add(x[b*d:(b+1)*d], xb2[b*d:(b+1)*d])
		}

		for b := range B {
			kernels.RMSNorm(xb[b*d:(b+1)*d], x[b*d:(b+1)*d], w.ffnNorm, eps)
		}
		if w.moe != nil {
			// Rows grouped by expert: each chosen expert read once.
			m.moeRows(l, w.moe, xb2, xb, B, d)
			for b := range B {
				kernels.Add(x[b*d:(b+1)*d], xb2[b*d:(b+1)*d])
			}
			continue
		}
		linear(sc.gateUp, xb, w.wgateUp, B, d, 2*f)
		kernels.SwiGLURows(sc.hb, sc.gateUp, B, f)
		linear(xb2, sc.hb, w.wdown, B, f, d)
		for b := range B {
			kernels.Add(x[b*d:(b+1)*d], xb2[b*d:(b+1)*d])
		}
	}
	outNorm := rows[0].se.outNorm
	for b := range B {
		kernels.RMSNorm(x[b*d:(b+1)*d], x[b*d:(b+1)*d], outNorm, eps)
	}
}

// blockPool holds the per-block outputs of linear.
var blockPool sync.Pool

func parallelChunks(n, grain int) int {
	return max(1, min(runtime.GOMAXPROCS(0), (n+grain-1)/grain))
}

// linear computes out[n*O+o] = Σ_i in[n*I+i]·w[o*I+i] with kernels.MatMul,
// shared among the cores by blocks of output columns: in a decode step the
// batch is small and the weights are what there is much of. Each block is
// computed into its own buffer and copied into place.
func linear(out, in, w []float32, N, I, O int) {
	blocks := parallelChunks(O, grainFor(N*I))
	if blocks <= 1 {
		kernels.MatMul(out, in, w, N, I, O)
		return
	}
	parallel(blocks, 1, func(c0, c1 int) {
		// Blocks start on a multiple of 4 so that MatMul's 4-row groups
		// are those of the undivided product.
		lo, hi := (O*c0/blocks)&^3, (O*c1/blocks)&^3
		if c1 == blocks {
			hi = O
		}
		n := hi - lo
		bp, _ := blockPool.Get().(*[]float32)
		if bp == nil {
			bp = new([]float32)
		}
		*bp = grow(*bp, N*n)
		tmp := *bp
		kernels.MatMul(tmp, in, w[lo*I:hi*I], N, I, n)
		for r := range N {
			copy(out[r*O+lo:r*O+hi], tmp[r*n:(r+1)*n])
		}
		blockPool.Put(bp)
	})
}
