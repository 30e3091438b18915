package generic

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/modelc/modelc/runtime/kernels"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
)

// batchSpec has grouped-query attention and widths that are not multiples
// of four, and is large enough that linear splits its columns.
func batchSpec(tied bool) *spec.Spec {
	return &spec.Spec{
		Name: "batch", Vocab: 301, Dim: 24, Layers: 2, Heads: 4, KVHeads: 2, FFNDim: 38, MaxSeq: 12,
		NormEps: 1e-5, RopeTheta: 10000, TieEmbeddings: tied, Objective: model.ObjectiveCausal,
	}
}

// sameLogits wants bit-identical logits on amd64, where Go never fuses a
// multiply-add, and near ones elsewhere.
func sameLogits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d logits, want %d", what, len(got), len(want))
	}
	for i := range got {
		if runtime.GOARCH == "amd64" {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: logit %d is %v, one-token Forward gives %v", what, i, got[i], want[i])
			}
		} else if math.Abs(float64(got[i]-want[i])) > 1e-4*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("%s: logit %d is %v, one-token Forward gives %v", what, i, got[i], want[i])
		}
	}
}

// TestForwardBatchMatchesForward runs sessions through a schedule in which
// they join and leave the batch at different positions, and checks every
// step's logits against a twin session stepped with Forward alone.
func TestForwardBatchMatchesForward(t *testing.T) {
	for _, procs := range []int{1, 3} {
		for _, tied := range []bool{false, true} {
			old := runtime.GOMAXPROCS(procs)
			s := batchSpec(tied)
			m := randomModel(t, s, 5)
			const n = 5
			rng := rand.New(rand.NewPCG(3, 4))
			batched := make([]model.Session, n)
			single := make([]model.Session, n)
			next := make([]int, n) // next position of each session
			for i := range n {
				batched[i], single[i] = m.NewSession(), m.NewSession()
			}
			for step := 0; step < 30; step++ {
				var ss []model.Session
				var toks, pos, idx []int
				for i := range n {
					if next[i] < s.MaxSeq && rng.IntN(3) > 0 {
						ss = append(ss, batched[i])
						toks = append(toks, rng.IntN(s.Vocab))
						pos = append(pos, next[i])
						idx = append(idx, i)
					}
				}
				got := m.ForwardBatch(ss, toks, pos)
				if len(got) != len(ss) {
					t.Fatalf("%d results for %d sessions", len(got), len(ss))
				}
				for j, i := range idx {
					want := single[i].Forward(toks[j], pos[j])
					sameLogits(t, "batch", got[j], want)
					next[i]++
				}
			}
			runtime.GOMAXPROCS(old)
		}
	}
}

// TestForwardSpans: prompt chunks of several sessions beside single decode
// tokens give, for each session, the logits its last token gets from
// one-token Forward calls, and leave the caches as those calls do.
func TestForwardSpans(t *testing.T) {
	for _, procs := range []int{1, 3} {
		old := runtime.GOMAXPROCS(procs)
		s := batchSpec(false)
		m := randomModel(t, s, 8)
		const n = 4
		rng := rand.New(rand.NewPCG(5, 6))
		batched := make([]model.Session, n)
		single := make([]model.Session, n)
		next := make([]int, n)
		for i := range n {
			batched[i], single[i] = m.NewSession(), m.NewSession()
		}
		for step := 0; step < 12; step++ {
			var ss []model.Session
			var spans [][]int
			var pos, idx []int
			for i := range n {
				room := s.MaxSeq - next[i]
				if room == 0 || rng.IntN(4) == 0 {
					continue
				}
				k := 1 + rng.IntN(min(room, 4))
				span := make([]int, k)
				for j := range span {
					span[j] = rng.IntN(s.Vocab)
				}
				ss, spans, pos, idx = append(ss, batched[i]), append(spans, span), append(pos, next[i]), append(idx, i)
			}
			got := m.ForwardSpans(ss, spans, pos)
			for j, i := range idx {
				var want []float32
				for k, tok := range spans[j] {
					want = single[i].Forward(tok, pos[j]+k)
				}
				sameLogits(t, fmt.Sprintf("procs %d step %d session %d", procs, step, i), got[j], want)
				next[i] += len(spans[j])
			}
		}
		runtime.GOMAXPROCS(old)
	}
}

// TestForwardBatchSessionLogits: the returned slices are the sessions' own
// buffers, as Forward's are.
func TestForwardBatchSessionLogits(t *testing.T) {
	m := randomModel(t, batchSpec(false), 1)
	a, b := m.NewSession(), m.NewSession()
	out := m.ForwardBatch([]model.Session{a, b}, []int{1, 2}, []int{0, 0})
	fa := a.Forward(3, 1)
	if &out[0][0] != &fa[0] {
		t.Fatal("ForwardBatch logits are not the session's buffer")
	}
	if got := m.ForwardBatch(nil, nil, nil); got != nil {
		t.Fatalf("empty batch gave %v", got)
	}
}

func TestForwardBatchMisuse(t *testing.T) {
	m := randomModel(t, batchSpec(false), 1)
	other := randomModel(t, batchSpec(false), 2)
	for name, f := range map[string]func(){
		"lengths":       func() { m.ForwardBatch([]model.Session{m.NewSession()}, []int{1, 2}, []int{0}) },
		"foreign":       func() { m.ForwardBatch([]model.Session{other.NewSession()}, []int{1}, []int{0}) },
		"token range":   func() { m.ForwardBatch([]model.Session{m.NewSession()}, []int{301}, []int{0}) },
		"position past": func() { m.ForwardBatch([]model.Session{m.NewSession()}, []int{1}, []int{12}) },
		"twice": func() {
			se := m.NewSession()
			m.ForwardBatch([]model.Session{se, se}, []int{1, 2}, []int{0, 1})
		},
		"empty span": func() { m.ForwardSpans([]model.Session{m.NewSession()}, [][]int{{}}, []int{0}) },
	} {
		func() {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(r.(string), "ForwardBatch") {
					t.Errorf("%s: recovered %v, want a ForwardBatch panic", name, r)
				}
			}()
			f()
		}()
	}
}

// TestLinear: the column-split product equals kernels.MatMul bit for bit
// for odd widths and any number of threads.
func TestLinear(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, procs := range []int{1, 2, 3, 7} {
		old := runtime.GOMAXPROCS(procs)
		for _, c := range []struct{ N, I, O int }{{1, 300, 1001}, {3, 129, 517}, {64, 200, 31}, {2, 512, 3}, {5, 7, 2000}} {
			in := make([]float32, c.N*c.I)
			w := make([]float32, c.O*c.I)
			for i := range in {
				in[i] = float32(rng.NormFloat64())
			}
			for i := range w {
				w[i] = float32(rng.NormFloat64())
			}
			want := make([]float32, c.N*c.O)
			kernels.MatMul(want, in, w, c.N, c.I, c.O)
			got := make([]float32, c.N*c.O)
			linear(got, in, w, c.N, c.I, c.O)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("procs %d %+v: element %d is %v, MatMul gives %v", procs, c, i, got[i], want[i])
				}
			}
		}
		runtime.GOMAXPROCS(old)
	}
}

// TestEmbed: the embedding is the mean of the final-normed hidden states
// that one-token Forward leaves in the session.
func TestEmbed(t *testing.T) {
	s := batchSpec(false)
	m := randomModel(t, s, 9)
	tokens := []int{5, 17, 300, 0, 42}
	got, err := m.Embed(tokens)
	if err != nil {
		t.Fatal(err)
	}
	se := m.NewSession().(*Session)
	want := make([]float64, s.Dim)
	for i, tk := range tokens {
		se.Forward(tk, i)
		for j, v := range se.x {
			want[j] += float64(v) / float64(len(tokens))
		}
	}
	if len(got) != s.Dim {
		t.Fatalf("embedding has %d values, want %d", len(got), s.Dim)
	}
	for j := range want {
		if math.Abs(float64(got[j])-want[j]) > 1e-5 {
			t.Fatalf("embedding[%d] = %v, want %v", j, got[j], want[j])
		}
	}
	// A different text gives a different vector.
	other, _ := m.Embed([]int{5, 17, 299})
	same := true
	for j := range other {
		same = same && other[j] == got[j]
	}
	if same {
		t.Fatal("different token sequences embed identically")
	}
}

func TestEmbedErrors(t *testing.T) {
	m := randomModel(t, batchSpec(false), 9)
	for _, c := range []struct {
		tokens []int
		want   string
	}{
		{nil, "no tokens"},
		{make([]int, 13), "13 tokens, the context holds 12"},
		{[]int{1, 301}, "token 1 is 301, outside the vocabulary of 301"},
		{[]int{-1}, "token 0 is -1"},
	} {
		_, err := m.Embed(c.tokens)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Embed(%d tokens): error %v, want %q", len(c.tokens), err, c.want)
		}
	}
}

// BenchmarkForwardBatch: decode tokens/s of the 15M shape, one batched step
// of B sessions against B one-token Forward calls.
func BenchmarkForwardBatch(b *testing.B) {
	s := &spec.Spec{Name: "b15m", Vocab: 32000, Dim: 288, Layers: 6, Heads: 6, KVHeads: 6, FFNDim: 768, MaxSeq: 256,
		NormEps: 1e-5, RopeTheta: 10000, TieEmbeddings: true, Objective: model.ObjectiveCausal}
	p := model.NewParams(s)
	for i := range p.Data {
		p.Data[i] = 0.01 * float32(i%13-6)
	}
	mm, err := New(p)
	if err != nil {
		b.Fatal(err)
	}
	m := mm.(*Model)
	for _, B := range []int{1, 4, 16, 64} {
		ss := make([]model.Session, B)
		toks, pos := make([]int, B), make([]int, B)
		for i := range ss {
			ss[i] = m.NewSession()
			toks[i], pos[i] = i, 100
		}
		b.Run("batched/B="+itoa(B), func(b *testing.B) {
			for b.Loop() {
				m.ForwardBatch(ss, toks, pos)
			}
			b.ReportMetric(float64(B*b.N)/b.Elapsed().Seconds(), "tok/s")
		})
		b.Run("single/B="+itoa(B), func(b *testing.B) {
			for b.Loop() {
				for i, se := range ss {
					se.Forward(toks[i], pos[i])
				}
			}
			b.ReportMetric(float64(B*b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}

func TestPackPanels(t *testing.T) {
	const R, C, W = 7, 3, 4
	w := make([]float32, R*C)
	for i := range w {
		w[i] = float32(i + 1)
	}
	dst := make([]float32, 2*C*W)
	for i := range dst {
		dst[i] = -1
	}
	PackPanels(dst, w, R, C, W, 0, 2)
	for b := 0; b < 2; b++ {
		for c := 0; c < C; c++ {
			for j := 0; j < W; j++ {
				want := float32(0)
				if r := b*W + j; r < R {
					want = w[r*C+c]
				}
				if got := dst[(b*C+c)*W+j]; got != want {
					t.Fatalf("panel %d column %d row %d: %g, want %g", b, c, j, got, want)
				}
			}
		}
	}
}

// TestNewRefusesUndecoded: parameters whose quantised tensors stayed in the
// file's blocks (checkpoint.LoadKeepBlocks) hold zeros there; the generic
// model must refuse them rather than run zeros.
func TestNewRefusesUndecoded(t *testing.T) {
	p := model.NewParams(batchSpec(false))
	if _, err := New(p); err != nil {
		t.Fatal(err)
	}
	p.Undecoded = map[string]bool{"blk.0.attn_q.weight": true}
	if _, err := New(p); err == nil || !strings.Contains(err.Error(), "blk.0.attn_q.weight") {
		t.Fatalf("undecoded tensor: %v", err)
	}
}
