package server

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"

	"github.com/modelc/modelc/runtime/generate"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/sample"
	"github.com/modelc/modelc/spec"
	"github.com/openai/openai-go/v3"
)

// greedyModel's sessions have model.Greedy, as the compiled float models'
// do: here Argmax of the inner Forward, counted apart from Forward.
type greedyModel struct {
	m                model.Model
	greedy, forwards atomic.Int64
}

func (g *greedyModel) Spec() *spec.Spec      { return g.m.Spec() }
func (g *greedyModel) Params() *model.Params { return g.m.Params() }
func (g *greedyModel) NewSession() model.Session {
	return &greedySession{Session: g.m.NewSession(), g: g}
}

type greedySession struct {
	model.Session
	g *greedyModel
}

func (s *greedySession) Forward(token, pos int) []float32 {
	s.g.forwards.Add(1)
	return s.Session.Forward(token, pos)
}

func (s *greedySession) Greedy(token, pos int) int {
	s.g.greedy.Add(1)
	return sample.Argmax(s.Session.Forward(token, pos))
}

// greedySpanModel is a greedyModel that also runs prompt chunks and decode
// steps in one batched pass (SpanBatcher).
type greedySpanModel struct{ *greedyModel }

func (g greedySpanModel) ForwardSpans(ss []model.Session, toks [][]int, pos []int) [][]float32 {
	inner := make([]model.Session, len(ss))
	for i, s := range ss {
		inner[i] = s.(*greedySession).Session
	}
	return g.m.(SpanBatcher).ForwardSpans(inner, toks, pos)
}

// TestGreedyOne: a lone greedy sequence decodes through model.Greedy (no
// logits made), with the text runtime/generate prints; a sampled one, and
// greedy ones decoded side by side, through the logits.
func TestGreedyOne(t *testing.T) {
	m := stories(t)
	tok := tok512(t)
	const prompt, maxTokens = "Once upon a time", 40
	ids, err := tok.Encode(prompt, true, false)
	if err != nil {
		t.Fatal(err)
	}
	smp, err := sample.New(sample.Params{Temperature: 0, TopP: 1})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := generate.Generate(context.Background(), m.NewSession(), tok, smp,
		generate.Options{Prompt: prompt, Steps: len(ids) + maxTokens - 1, MaxSeq: m.Spec().MaxSeq}, &buf); err != nil {
		t.Fatal(err)
	}
	want := buf.String()

	for _, spans := range []bool{false, true} {
		g := &greedyModel{m: m}
		var served model.Model = g
		if spans {
			served = greedySpanModel{g}
		}
		ts := startServer(t, testConfig(), served, tok)
		complete := func(temp float64) (string, int) {
			t.Helper()
			p := completionParams(prompt, maxTokens, temp, 1)
			p.Echo = openai.Bool(true)
			resp, err := ts.client.Completions.New(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			return resp.Choices[0].Text + "\n", int(resp.Usage.CompletionTokens)
		}

		got, n := complete(0)
		if got != want {
			t.Errorf("spans %v: greedy text\nserver   %q\ngenerate %q", spans, got, want)
		}
		// The first token comes from the prompt's logits; each later one
		// from one Greedy call on the token before it.
		if g.greedy.Load() != int64(n-1) || g.forwards.Load() != 0 {
			t.Errorf("spans %v: %d completion tokens took %d Greedy and %d Forward calls; want %d and 0",
				spans, n, g.greedy.Load(), g.forwards.Load(), n-1)
		}

		g.greedy.Store(0)
		if _, n := complete(0.8); g.greedy.Load() != 0 || !spans && g.forwards.Load() != int64(n-1) {
			t.Errorf("spans %v: a sampled sequence of %d tokens took %d Greedy and %d Forward calls; want 0 and %d",
				spans, n, g.greedy.Load(), g.forwards.Load(), n-1)
		}
	}
}
