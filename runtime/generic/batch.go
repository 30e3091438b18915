package generic

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/modelc/modelc/runtime/kernels"
	"github.com/modelc/modelc/runtime/model"
)

// The batched decode step: B sessions each run one token, and every linear
// layer becomes one [B, in] × [out, in]ᵀ matrix product, so each weight is
// read once per step instead of once per session. Every per-row operation
// (norms, RoPE, attention, SwiGLU, residual adds) is the same kernel call the
// one-token Forward makes, and kernels.MatMul sums each output in the same
// order as kernels.MatVec, so a session's logits do not depend on what else
// is in the batch.

var _ model.Batcher = (*Model)(nil)

// batchScratch holds the activations of one batched step, reused across
// steps through the model's pool.
type batchScratch struct {
	x, xb, xb2, qkv, gateUp, hb, out []float32
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
	B := len(sessions)
	if len(tokens) != B || len(pos) != B {
		panic(fmt.Sprintf("generic: ForwardBatch: %d sessions, %d tokens, %d positions", B, len(tokens), len(pos)))
	}
	if B == 0 {
		return nil
	}
	ss := m.sessions(sessions)
	sc := m.scratch(B)
	defer scratchPool.Put(sc)
	m.hidden(ss, tokens, pos, sc)

	s := &m.p.Spec
	V := s.Vocab
	sc.out = grow(sc.out, B*V)
	linear(sc.out, sc.x, ss[0].classifier, B, s.Dim, V)
	logits := make([][]float32, B)
	for b, se := range ss {
		copy(se.logits, sc.out[b*V:(b+1)*V])
		logits[b] = se.logits
	}
	return logits
}

func (m *Model) sessions(sessions []model.Session) []*Session {
	ss := make([]*Session, len(sessions))
	for i, x := range sessions {
		se, ok := x.(*Session)
		if !ok || se.m != m {
			panic(fmt.Sprintf("generic: ForwardBatch: session %d (%T) was not made by this model", i, x))
		}
		ss[i] = se
	}
	return ss
}

// hidden runs every layer for the batch and leaves the final-normed hidden
// states in sc.x ([B, dim]); keys and values go into each session's cache.
func (m *Model) hidden(ss []*Session, tokens, pos []int, sc *batchScratch) {
	s := &m.p.Spec
	B := len(ss)
	d, kv, hd, f := s.Dim, s.KVDim(), s.HeadDim(), s.FFNDim
	qkvW := d + 2*kv
	eps := float32(s.NormEps)
	group := s.Heads / s.KVHeads
	for b, se := range ss {
		t, p := tokens[b], pos[b]
		if t < 0 || t >= s.Vocab || p < 0 || p >= s.MaxSeq {
			panic(fmt.Sprintf("generic: ForwardBatch: token %d at position %d outside vocab %d / max_seq %d", t, p, s.Vocab, s.MaxSeq))
		}
		copy(sc.x[b*d:(b+1)*d], se.embd[t*d:(t+1)*d])
	}
	x, xb, xb2 := sc.x, sc.xb, sc.xb2
	for l, w := range ss[0].layers {
		for b := range B {
			kernels.RMSNorm(xb[b*d:(b+1)*d], x[b*d:(b+1)*d], w.attnNorm, eps)
		}
		linear(sc.qkv, xb, w.wqkv, B, d, qkvW)
		// Attention is per session: its own positions and cache.
		parallel(B, grainFor(s.Heads*hd*(pos[0]+1)), func(lo, hi int) {
			for b := lo; b < hi; b++ {
				se, p := ss[b], pos[b]
				row := sc.qkv[b*qkvW : (b+1)*qkvW]
				q, k, v := row[:d], row[d:d+kv], row[d+kv:]
				kernels.RoPE(q, p, m.freqs)
				kernels.RoPE(k, p, m.freqs)
				copy(se.keys[l][p*kv:], k)
				copy(se.values[l][p*kv:], v)
				out := xb[b*d : (b+1)*d]
				for h := 0; h < s.Heads; h++ {
					kernels.Attention(out[h*hd:(h+1)*hd], q[h*hd:(h+1)*hd], se.keys[l], se.values[l], se.att, p, kv, (h/group)*hd)
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
		linear(sc.gateUp, xb, w.wgateUp, B, d, 2*f)
		kernels.SwiGLURows(sc.hb, sc.gateUp, B, f)
		linear(xb2, sc.hb, w.wdown, B, f, d)
		for b := range B {
			kernels.Add(x[b*d:(b+1)*d], xb2[b*d:(b+1)*d])
		}
	}
	for b := range B {
		kernels.RMSNorm(x[b*d:(b+1)*d], x[b*d:(b+1)*d], ss[0].outNorm, eps)
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
	chunks := parallelChunks(O, grainFor(N*I))
	if chunks <= 1 {
		kernels.MatMul(out, in, w, N, I, O)
		return
	}
	var wg sync.WaitGroup
	for c := range chunks {
		// Blocks start on a multiple of 4 so that MatMul's 4-row groups
		// are those of the undivided product.
		lo, hi := (O*c/chunks)&^3, (O*(c+1)/chunks)&^3
		if c == chunks-1 {
			hi = O
		}
		run := func() {
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
		}
		if c == chunks-1 {
			run()
		} else {
			wg.Go(run)
		}
	}
	wg.Wait()
}
