package server

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/sample"
)

// Errors a submission can meet before any token is generated.
var (
	errQueueFull    = errors.New("server busy: every slot is in use and the queue is full")
	errShuttingDown = errors.New("server is shutting down")
)

// Finish reasons, as OpenAI names them (cancelled is ours: nobody reads it).
const (
	finishStop      = "stop"
	finishLength    = "length"
	finishCancelled = "cancelled"
)

// job is one sequence to generate: a prompt, how to sample, when to stop.
// The engine's loop writes its output; the HTTP handler reads it.
type job struct {
	ctx       context.Context
	prompt    []int
	maxTokens int
	sampler   *sample.Sampler
	stopIDs   []int // token ids that end the sequence (EOS, BOS, chat end-of-turn)
	text      *textStream
	notify    chan struct{} // shared by all jobs of one request; cap 1

	enqueued time.Time

	// Written by the loop, read by the handler under mu.
	mu        sync.Mutex
	out       []byte // text produced and not yet taken
	tokens    int    // completion tokens generated
	finished  bool
	finish    string
	err       error
	firstTok  time.Time
	lastTok   time.Time
	cancelled bool // the handler gave up on it (client gone)
}

// take returns the text produced since the last call and whether the job has
// finished (then also the reason, or the error that ended it).
func (j *job) take() (delta string, done bool, finish string, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delta = string(j.out)
	j.out = j.out[:0]
	return delta, j.finished, j.finish, j.err
}

func (j *job) completionTokens() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.tokens
}

func (j *job) signal() {
	select {
	case j.notify <- struct{}{}:
	default:
	}
}

// slot is one sequence's worth of KV cache.
type slot struct {
	id     int
	sess   model.Session
	job    *job
	cached []int // tokens whose keys and values are in the cache, from position 0

	prefill int       // prompt tokens already run (< len(prompt) while prefilling)
	last    int       // token to sample after (its logits are pending)
	logits  []float32 // logits to sample the next token from
	next    int       // the token sampled from logits
	picked  bool      // next was chosen without logits (greedyOne)
}

// SpanBatcher is implemented by models that run, in one pass over the
// weights, one or more consecutive tokens in each of several sessions
// (runtime/generic.Model): session i runs tokens[i] at positions pos[i],
// pos[i]+1, …, and gets the logits after its last token. The server then
// prefills prompts in chunks inside the decode steps instead of beside them.
type SpanBatcher interface {
	ForwardSpans(sessions []model.Session, tokens [][]int, pos []int) [][]float32
}

// engineConfig sizes an engine.
type engineConfig struct {
	Slots        int
	MaxQueue     int
	Batch        bool // use model.Batcher when the model has it
	PrefillChunk int  // prompt tokens run per step (per joining sequence without a SpanBatcher)
}

// engine schedules jobs onto slots and runs the one decode loop.
type engine struct {
	m       model.Model
	batcher model.Batcher // nil: one Forward per slot
	spans   SpanBatcher   // nil: prompts by Session.Prefill
	tok     textDecoder
	maxSeq  int
	vocab   int
	chunk   int
	metrics *metrics

	slots []*slot

	mu       sync.Mutex
	pending  []*job
	busy     int // slots holding a job
	maxQueue int
	closed   bool // no new submissions
	idle     chan struct{}

	wake chan struct{}
	quit chan struct{}
	done chan struct{}
}

func newEngine(m model.Model, tok textDecoder, cfg engineConfig, mt *metrics) *engine {
	s := m.Spec()
	e := &engine{
		m:        m,
		tok:      tok,
		maxSeq:   s.MaxSeq,
		vocab:    s.Vocab,
		chunk:    cfg.PrefillChunk,
		metrics:  mt,
		maxQueue: cfg.MaxQueue,
		wake:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if e.chunk <= 0 {
		e.chunk = 64
	}
	if cfg.Batch {
		e.batcher, _ = m.(model.Batcher)
		e.spans, _ = m.(SpanBatcher)
	}
	for i := range cfg.Slots {
		e.slots = append(e.slots, &slot{id: i, sess: m.NewSession()})
	}
	mt.slotsTotal.Set(float64(cfg.Slots))
	go e.loop()
	return e
}

// submit queues jobs atomically: all of them or none.
func (e *engine) submit(jobs []*job) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errShuttingDown
	}
	if e.busy+len(e.pending)+len(jobs) > len(e.slots)+e.maxQueue {
		return errQueueFull
	}
	now := time.Now()
	for _, j := range jobs {
		j.enqueued = now
		e.pending = append(e.pending, j)
	}
	e.metrics.queueDepth.Set(float64(len(e.pending)))
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return nil
}

// capacity is how many sequences the engine can hold at once.
func (e *engine) capacity() int { return len(e.slots) + e.maxQueue }

// abandon drops jobs whose handler has gone: queued ones leave the queue now,
// running ones are stopped by the loop at its next step.
func (e *engine) abandon(jobs []*job) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, j := range jobs {
		j.mu.Lock()
		j.cancelled = true
		j.mu.Unlock()
		for i, p := range e.pending {
			if p == j {
				e.pending = append(e.pending[:i], e.pending[i+1:]...)
				break
			}
		}
	}
	e.metrics.queueDepth.Set(float64(len(e.pending)))
	e.signalIdle()
}

// state reports slot use and queue length.
func (e *engine) state() (busy, queued int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.busy, len(e.pending)
}

// drain stops new submissions and waits until every job has finished or ctx
// is done.
func (e *engine) drain(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	for e.busy > 0 || len(e.pending) > 0 {
		if e.idle == nil {
			e.idle = make(chan struct{})
		}
		idle := e.idle
		e.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
		e.mu.Lock()
	}
	e.mu.Unlock()
	return nil
}

// signalIdle wakes drain when nothing is left; called with mu held.
func (e *engine) signalIdle() {
	if e.idle != nil && e.busy == 0 && len(e.pending) == 0 {
		close(e.idle)
		e.idle = nil
	}
}

// stop ends the loop; every job still queued or running ends with
// errShuttingDown. It is safe to call more than once.
func (e *engine) stop() {
	e.mu.Lock()
	e.closed = true
	select {
	case <-e.quit:
	default:
		close(e.quit)
	}
	e.mu.Unlock()
	<-e.done
}

// loop is the single decode loop: each iteration admits queued jobs into free
// slots, runs a chunk of every joining prompt, samples one token for every
// running sequence, and runs all of them one position further together.
func (e *engine) loop() {
	defer close(e.done)
	var running []*slot
	for {
		select {
		case <-e.quit:
			e.shutdown(running)
			return
		default:
		}
		running = e.admit(running)
		if len(running) == 0 {
			select {
			case <-e.wake:
			case <-e.quit:
			}
			continue
		}
		running = e.step(running)
	}
}

// admit moves queued jobs into free slots, preferring the slot whose cache
// already holds the longest prefix of the prompt.
func (e *engine) admit(running []*slot) []*slot {
	e.mu.Lock()
	defer e.mu.Unlock()
	for len(e.pending) > 0 && e.busy < len(e.slots) {
		j := e.pending[0]
		e.pending = e.pending[1:]
		var best *slot
		bestN := -1
		for _, s := range e.slots {
			if s.job != nil {
				continue
			}
			if n := commonPrefix(s.cached, j.prompt); n > bestN {
				best, bestN = s, n
			}
		}
		// At least the last prompt token runs, for its logits.
		n := min(bestN, len(j.prompt)-1)
		best.job = j
		best.cached = best.cached[:n]
		best.prefill = n
		best.logits, best.picked = nil, false
		e.busy++
		running = append(running, best)
		e.metrics.promptTokens.Add(float64(len(j.prompt)))
		e.metrics.cachedTokens.Add(float64(n))
		e.metrics.queueWait.Observe(time.Since(j.enqueued).Seconds())
	}
	e.metrics.queueDepth.Set(float64(len(e.pending)))
	e.metrics.slotsBusy.Set(float64(e.busy))
	return running
}

func commonPrefix(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// step runs one iteration over the running slots and returns those still running.
func (e *engine) step(running []*slot) []*slot {
	// Without a span batcher, prompts run first: a chunk of each, the
	// joining sequences side by side.
	var filling []*slot
	for _, s := range running {
		if e.spans == nil && s.prefill < len(s.job.prompt) && !e.gone(s) {
			filling = append(filling, s)
		}
	}
	if len(filling) > 0 {
		eachParallel(len(filling), func(i int) {
			s := filling[i]
			p := s.job.prompt
			end := min(len(p), s.prefill+e.chunk)
			logits := s.sess.Prefill(p[s.prefill:end], s.prefill)
			s.cached = append(s.cached, p[s.prefill:end]...)
			s.prefill = end
			if end == len(p) {
				s.logits, s.last = logits, p[end-1]
			}
		})
	}

	// Sample a token for every sequence that has logits (over the cores:
	// a softmax over a large vocabulary per sequence adds up), then emit
	// the tokens in order and finish the sequences that are done.
	var sampling []*slot
	for _, s := range running {
		if s.logits != nil {
			sampling = append(sampling, s)
		}
	}
	eachParallel(len(sampling), func(i int) {
		s := sampling[i]
		s.next = s.job.sampler.Sample(s.logits)
	})
	keep := running[:0]
	var fwd, fill []*slot
	for _, s := range running {
		if e.gone(s) {
			e.release(s, finishCancelled, nil)
			continue
		}
		if s.logits == nil && !s.picked { // still prefilling
			keep = append(keep, s)
			fill = append(fill, s)
			continue
		}
		if fin, err := e.emit(s); fin != "" || err != nil {
			e.release(s, fin, err)
			continue
		}
		if len(s.cached) >= e.maxSeq { // cannot happen with validated requests
			e.release(s, finishLength, nil)
			continue
		}
		keep = append(keep, s)
		fwd = append(fwd, s)
	}
	switch {
	case e.spans != nil:
		e.forwardSpans(fwd, fill)
	case len(fwd) > 0:
		e.forward(fwd)
	}
	return keep
}

// forwardSpans runs the decoding slots' tokens and chunks of the joining
// prompts (at most e.chunk prompt tokens in all, first come first served)
// in one pass.
func (e *engine) forwardSpans(fwd, fill []*slot) {
	t0 := time.Now()
	if len(fwd) == 1 && len(fill) == 0 && e.greedyOne(fwd[0]) {
		e.metrics.batchSize.Observe(1)
		e.metrics.stepSeconds.Observe(time.Since(t0).Seconds())
		return
	}
	n := len(fwd) + len(fill)
	sess := make([]model.Session, 0, n)
	spans := make([][]int, 0, n)
	pos := make([]int, 0, n)
	for _, s := range fwd {
		sess, spans, pos = append(sess, s.sess), append(spans, []int{s.last}), append(pos, len(s.cached))
	}
	budget := e.chunk
	var chunks []*slot
	for _, s := range fill {
		p := s.job.prompt
		k := min(len(p)-s.prefill, budget)
		if k <= 0 {
			break
		}
		budget -= k
		sess, spans, pos = append(sess, s.sess), append(spans, p[s.prefill:s.prefill+k]), append(pos, s.prefill)
		chunks = append(chunks, s)
	}
	if len(sess) == 0 {
		return
	}
	out := e.spans.ForwardSpans(sess, spans, pos)
	rows := 0
	for i, s := range fwd {
		s.logits = out[i]
		s.cached = append(s.cached, s.last)
		rows++
	}
	for i, s := range chunks {
		span := spans[len(fwd)+i]
		s.cached = append(s.cached, span...)
		s.prefill += len(span)
		rows += len(span)
		if s.prefill == len(s.job.prompt) {
			s.logits, s.last = out[len(fwd)+i], span[len(span)-1]
		}
	}
	e.metrics.batchSize.Observe(float64(rows))
	e.metrics.stepSeconds.Observe(time.Since(t0).Seconds())
}

// gone reports whether nobody waits for the slot's job any more.
func (e *engine) gone(s *slot) bool {
	if s.job.ctx.Err() != nil {
		return true
	}
	s.job.mu.Lock()
	defer s.job.mu.Unlock()
	return s.job.cancelled
}

// emit takes the slot's sampled token and appends its text to the job. It
// returns a finish reason when the sequence ends here.
func (e *engine) emit(s *slot) (string, error) {
	j := s.job
	next := s.next
	s.logits, s.picked = nil, false
	if next < 0 || next >= e.vocab {
		return "", fmt.Errorf("sampler returned token %d, outside the vocabulary of %d", next, e.vocab)
	}
	now := time.Now()
	j.mu.Lock()
	j.tokens++
	if j.firstTok.IsZero() {
		j.firstTok = now
		e.metrics.ttft.Observe(now.Sub(j.enqueued).Seconds())
	} else {
		e.metrics.interToken.Observe(now.Sub(j.lastTok).Seconds())
	}
	j.lastTok = now
	n := j.tokens
	j.mu.Unlock()
	e.metrics.completionTokens.Inc()

	finish := ""
	for _, id := range j.stopIDs {
		if next == id {
			finish = finishStop
		}
	}
	var delta []byte
	if finish == "" {
		piece, err := e.tok.Piece(s.last, next)
		if err != nil {
			return "", fmt.Errorf("decode token %d after %d: %w", next, s.last, err)
		}
		var hit bool
		delta, hit = j.text.add(piece)
		if hit {
			finish = finishStop
		}
	}
	if finish == "" && n >= j.maxTokens {
		finish = finishLength
	}
	if finish != "" {
		delta = append(delta, j.text.flush()...)
	}
	if len(delta) > 0 {
		j.mu.Lock()
		j.out = append(j.out, delta...)
		j.mu.Unlock()
		j.signal()
	}
	s.last = next
	return finish, nil
}

// forward runs every slot's last token one position on: one batched step, or
// one Forward per slot spread over the cores.
func (e *engine) forward(fwd []*slot) {
	t0 := time.Now()
	switch {
	case len(fwd) == 1 && e.greedyOne(fwd[0]):
	case e.batcher != nil:
		sess := make([]model.Session, len(fwd))
		toks := make([]int, len(fwd))
		pos := make([]int, len(fwd))
		for i, s := range fwd {
			sess[i], toks[i], pos[i] = s.sess, s.last, len(s.cached)
		}
		out := e.batcher.ForwardBatch(sess, toks, pos)
		for i, s := range fwd {
			s.logits = out[i]
			s.cached = append(s.cached, s.last)
		}
	default:
		eachParallel(len(fwd), func(i int) {
			s := fwd[i]
			s.logits = s.sess.Forward(s.last, len(s.cached))
			s.cached = append(s.cached, s.last)
		})
	}
	e.metrics.batchSize.Observe(float64(len(fwd)))
	e.metrics.stepSeconds.Observe(time.Since(t0).Seconds())
}

// greedyOne runs a lone decoding sequence whose sampler is greedy through
// model.Greedy, which finds the largest logit without making every one
// where the model can (the compiled float models screen the classifier,
// runtime/screen): the same token as sampling Forward's logits. It sets the
// slot's next token and reports whether it did. With more sequences in the
// step, one batched pass over the weights serves them all instead.
func (e *engine) greedyOne(s *slot) bool {
	g, ok := s.sess.(model.Greedy)
	if !ok || !s.job.sampler.Greedy() {
		return false
	}
	s.next, s.picked = g.Greedy(s.last, len(s.cached)), true
	s.cached = append(s.cached, s.last)
	return true
}

// release ends the slot's job and frees the slot. The slot counts as free
// before the job reads as finished, so that a client that has its answer
// finds the slot free.
func (e *engine) release(s *slot, finish string, err error) {
	j := s.job
	e.metrics.sequences.WithLabelValues(finishLabel(finish, err)).Inc()
	s.job = nil
	s.logits, s.picked = nil, false
	if s.prefill < len(j.prompt) {
		s.cached = s.cached[:min(len(s.cached), s.prefill)]
	}
	e.mu.Lock()
	e.busy--
	e.metrics.slotsBusy.Set(float64(e.busy))
	e.signalIdle()
	e.mu.Unlock()

	j.mu.Lock()
	j.finished, j.finish, j.err = true, finish, err
	if err == nil && finish != finishCancelled {
		j.out = append(j.out, j.text.flush()...)
	}
	j.mu.Unlock()
	j.signal()
}

func finishLabel(finish string, err error) string {
	if err != nil {
		return "error"
	}
	return finish
}

// shutdown ends every job with errShuttingDown.
func (e *engine) shutdown(running []*slot) {
	for _, s := range running {
		e.release(s, "", errShuttingDown)
	}
	e.mu.Lock()
	pending := e.pending
	e.pending = nil
	e.metrics.queueDepth.Set(0)
	e.signalIdle()
	e.mu.Unlock()
	for _, j := range pending {
		j.mu.Lock()
		j.finished, j.err = true, errShuttingDown
		j.mu.Unlock()
		j.signal()
	}
}

// eachParallel runs f(0..n-1) over at most GOMAXPROCS goroutines.
func eachParallel(n int, f func(i int)) {
	w := min(n, runtime.GOMAXPROCS(0))
	if w <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	for c := range w {
		lo, hi := n*c/w, n*(c+1)/w
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				f(i)
			}
		})
	}
	wg.Wait()
}
