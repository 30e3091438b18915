package posttrain

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/posttrain/tasks"
)

// scriptedModel replies with its scripts in turn (one per session): its
// logits put all the mass on the script's next token, then EOS.
type scriptedModel struct {
	s       *model.Spec
	scripts [][]int
	eos     int
	n       int
}

func (m *scriptedModel) Spec() *model.Spec     { return m.s }
func (m *scriptedModel) Params() *model.Params { return nil }
func (m *scriptedModel) NewSession() model.Session {
	sc := m.scripts[m.n%len(m.scripts)]
	m.n++
	return &scriptedSession{m: m, script: sc}
}

type scriptedSession struct {
	m      *scriptedModel
	script []int
	i      int
}

func (s *scriptedSession) next() []float32 {
	l := make([]float32, s.m.s.Vocab)
	tok := s.m.eos
	if s.i < len(s.script) {
		tok = s.script[s.i]
	}
	s.i++
	l[tok] = 1000
	return l
}
func (s *scriptedSession) Forward(int, int) []float32   { return s.next() }
func (s *scriptedSession) Prefill([]int, int) []float32 { return s.next() }

// TestSamplePairs: every distinct wrong reply is rejected against a right
// one (in turn), or against the worked solution when no reply was right.
func TestSamplePairs(t *testing.T) {
	tok := tok512(t)
	c := Common{Tok: tok}
	e, err := c.encoder()
	if err != nil {
		t.Fatal(err)
	}
	p := tasks.Problem{Kind: tasks.KindAdd, Prompt: "What is 2 + 3?", Answer: 5, Reasoning: "2+3=5"}
	enc := func(s string) []int {
		ids, err := tok.Encode(s, false, false)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	right, wrong1, wrong2 := p.Solution(), "<think>2+3=6</think>\nAnswer: 6", "no idea"
	m := &scriptedModel{s: tinySpec(), eos: tok.EOS(),
		scripts: [][]int{enc(wrong1), enc(right), enc(wrong1), enc(wrong2)}}
	rng := rand.New(rand.NewPCG(1, 1))
	var calls [][2]int
	pairs, err := SamplePairs(context.Background(), m, e, []tasks.Problem{p}, 4, 1, 32, rng, func(done, n int) { calls = append(calls, [2]int{done, n}) })
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) != 2 {
		t.Fatalf("%d pairs, want 2 (the repeated wrong reply once): %+v", len(pairs), pairs)
	}
	if len(calls) != 1 || calls[0] != [2]int{1, 2} {
		t.Errorf("progress calls %v, want [[1 2]]", calls)
	}
	for i, want := range []string{wrong1, wrong2} {
		pr := pairs[i]
		if pr.Prompt != p.Prompt || strings.TrimSpace(pr.Chosen) != right || strings.TrimSpace(pr.Rejected) != want {
			t.Fatalf("pair %d: %+v", i, pr)
		}
	}
	// No right reply: the worked solution is chosen.
	m.scripts, m.n = [][]int{enc(wrong2)}, 0
	pairs, err = SamplePairs(context.Background(), m, e, []tasks.Problem{p}, 3, 1, 32, rng, nil)
	if err != nil || len(pairs) != 1 || pairs[0].Chosen != p.Solution() || strings.TrimSpace(pairs[0].Rejected) != wrong2 {
		t.Fatalf("no right reply: %+v, %v", pairs, err)
	}
	if _, err := SamplePairs(context.Background(), m, e, []tasks.Problem{p}, 0, 1, 32, rng, nil); err == nil {
		t.Fatal("n = 0 accepted")
	}
	if _, err := SamplePairs(context.Background(), m, e, []tasks.Problem{p}, 2, 0, 32, rng, nil); err == nil {
		t.Fatal("temperature 0 accepted")
	}
	// Interrupted (Ctrl-C cancels the command's context): nothing is
	// sampled and the error says so.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m.n = 0
	if _, err := SamplePairs(ctx, m, e, []tasks.Problem{p}, 2, 1, 32, rng, nil); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "after 0 of 1 problems") {
		t.Errorf("cancelled: %v", err)
	}
	if m.n != 0 {
		t.Errorf("%d replies sampled after the interrupt", m.n)
	}
}
