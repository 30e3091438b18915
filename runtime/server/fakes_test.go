package server

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
)

func sleep() { time.Sleep(5 * time.Millisecond) }

// gatedModel blocks every forward pass until open is called.
type gatedModel struct {
	model.Model
	gate chan struct{}
	once sync.Once
}

func newGatedModel(m model.Model) *gatedModel {
	return &gatedModel{Model: m, gate: make(chan struct{})}
}

func (g *gatedModel) open() { g.once.Do(func() { close(g.gate) }) }

func (g *gatedModel) NewSession() model.Session { return &gatedSession{s: g.Model.NewSession(), g: g} }

type gatedSession struct {
	s model.Session
	g *gatedModel
}

func (s *gatedSession) Forward(token, pos int) []float32 {
	<-s.g.gate
	return s.s.Forward(token, pos)
}

func (s *gatedSession) Prefill(tokens []int, pos int) []float32 {
	<-s.g.gate
	return s.s.Prefill(tokens, pos)
}

// countingModel counts how the engine drives a batching model.
type countingModel struct {
	m        model.Model
	b        model.Batcher
	batches  atomic.Int64 // ForwardBatch calls
	maxBatch atomic.Int64
	forwards atomic.Int64 // one-token Forward calls
	prefills atomic.Int64 // Session.Prefill calls
	delay    time.Duration
}

func (c *countingModel) Spec() *spec.Spec      { return c.m.Spec() }
func (c *countingModel) Params() *model.Params { return c.m.Params() }
func (c *countingModel) NewSession() model.Session {
	return &countingSession{Session: c.m.NewSession(), c: c}
}

func (c *countingModel) ForwardBatch(ss []model.Session, toks, pos []int) [][]float32 {
	c.batches.Add(1)
	if n := int64(len(ss)); n > c.maxBatch.Load() {
		c.maxBatch.Store(n)
	}
	time.Sleep(c.delay)
	inner := make([]model.Session, len(ss))
	for i, s := range ss {
		inner[i] = s.(*countingSession).Session
	}
	return c.b.ForwardBatch(inner, toks, pos)
}

type countingSession struct {
	model.Session
	c *countingModel
}

func (s *countingSession) Prefill(tokens []int, pos int) []float32 {
	s.c.prefills.Add(1)
	return s.Session.Prefill(tokens, pos)
}

func (s *countingSession) Forward(token, pos int) []float32 {
	s.c.forwards.Add(1)
	time.Sleep(s.c.delay)
	return s.Session.Forward(token, pos)
}

// spanCountingModel is a countingModel that also runs prompt chunks in the
// batched pass.
type spanCountingModel struct {
	*countingModel
	s SpanBatcher
}

func (c *spanCountingModel) ForwardSpans(ss []model.Session, toks [][]int, pos []int) [][]float32 {
	c.batches.Add(1)
	if n := int64(len(ss)); n > c.maxBatch.Load() {
		c.maxBatch.Store(n)
	}
	time.Sleep(c.delay)
	inner := make([]model.Session, len(ss))
	for i, s := range ss {
		inner[i] = s.(*countingSession).Session
	}
	return c.s.ForwardSpans(inner, toks, pos)
}
