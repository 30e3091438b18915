package cpu

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Pool is a persistent set of worker goroutines that split a range of rows
// between them. The calling goroutine works too, so a pool of T threads has
// T-1 workers. Chunks are claimed, not assigned: the caller and the workers
// take the next unclaimed chunk until none is left, so a worker the OS has
// not scheduled yet (a shared machine, a server's other goroutines) delays
// nobody — the caller does its chunks. Workers spin briefly after a job (the
// next matvec of a forward pass usually follows within microseconds) and
// then park, so an idle pool costs nothing.
//
// Run is meant to be called from one goroutine at a time; concurrent calls
// are serialised.
type Pool struct {
	threads int
	mu      sync.Mutex // serialises Run
	// state is the job generation <<32 | the next unclaimed chunk <<16 | the
	// job's chunk count, in one word so that a claim (a CAS on it) is only
	// won for the job it was read from, and a worker that claims nothing never
	// reads the job's other fields (which the next job may already be writing).
	state  atomic.Uint64
	done   atomic.Int32 // chunks finished in the current job
	closed atomic.Bool
	// The job, written before state changes and read by the chunks' workers
	// after they see it; Run waits for them before the next job.
	fn       func(lo, hi int)
	n, grain int
	chunks   int
	panicked atomic.Pointer[any]
	workers  []*worker
	wg       sync.WaitGroup
}

type worker struct {
	sleeping atomic.Bool
	wake     chan struct{}
	_        [64]byte // keep workers' flags on separate cache lines
}

// spinFor is how long an idle worker polls for the next job before parking.
const spinFor = 50 * time.Microsecond

// spinPolls is how many times Run polls for its workers' last chunks before
// it starts yielding to other goroutines between polls (some microseconds).
const spinPolls = 1 << 12

// MaxThreads bounds every --threads flag. Each thread is a goroutine (and,
// busy, an OS thread), so a mistyped huge count would start that many; 1,024
// is past any core count these models run on, as the server's slot limit.
const MaxThreads = 1024

// CheckThreads validates the value of a --threads flag: 1 to MaxThreads.
func CheckThreads(n int) error {
	if n < 1 || n > MaxThreads {
		return fmt.Errorf("--threads: must be between 1 and %d, got %d", MaxThreads, n)
	}
	return nil
}

// NewPool starts a pool of threads threads (≤ 0 means one per core, as
// runtime.GOMAXPROCS reports).
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	p := &Pool{threads: threads}
	for i := 1; i < threads; i++ {
		w := &worker{wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, w)
		p.wg.Add(1)
		go p.loop(w)
	}
	return p
}

// Threads is the number of threads work is split over.
func (p *Pool) Threads() int { return p.threads }

// MaxChunks is the most chunks one Run or RunGrain call hands to fn, so a
// caller that gives each call of fn its own scratch needs this many. Two per
// thread: when a worker is descheduled in the middle of its chunk, the
// others still share the rest.
func (p *Pool) MaxChunks() int { return min(2*p.threads, 1<<16-1) }

// Run calls fn over contiguous chunks [lo, hi) covering [0, n), at most
// MaxChunks of them, and returns when all are done.
func (p *Pool) Run(n int, fn func(lo, hi int)) { p.RunGrain(n, 1, fn) }

// RunGrain is Run with chunks that are multiples of grain items (except the
// last) and at least grain items each: it keeps row blocks of a kernel whole
// and puts small jobs on fewer threads (one when n ≤ grain), since waking a
// thread costs more than a tiny matvec.
func (p *Pool) RunGrain(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	units := (n + grain - 1) / grain
	if min(units, p.threads) <= 1 || p.closed.Load() {
		fn(0, n)
		return
	}
	chunks := min(units, p.MaxChunks())
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fn, p.n, p.grain, p.chunks = fn, n, grain, chunks
	p.done.Store(0)
	p.state.Store((p.state.Load()>>32+1)<<32 | uint64(chunks))
	for _, w := range p.workers[:min(chunks, p.threads)-1] {
		if w.sleeping.CompareAndSwap(true, false) {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
	p.claim(p.state.Load() >> 32)
	// The last chunks usually finish within microseconds: spin on the
	// counter (a Gosched per poll goes through the scheduler's lock, which
	// cost 2-thread decode about a tenth of its time), yielding only when
	// the wait gets long.
	for i := 0; p.done.Load() != int32(chunks); i++ {
		if i > spinPolls {
			runtime.Gosched()
		}
	}
	p.fn = nil
	if v := p.panicked.Swap(nil); v != nil {
		panic(fmt.Sprintf("cpu.Pool worker: %v", *v))
	}
}

// chunk returns the rows of chunk i of the current job.
func (p *Pool) chunk(i int) (lo, hi int) { return chunkRows(p.n, p.grain, p.chunks, i) }

// chunkRows returns the rows of chunk i when n rows in units of grain are
// shared out evenly over chunks.
func chunkRows(n, grain, chunks, i int) (lo, hi int) {
	units := (n + grain - 1) / grain
	q, r := units/chunks, units%chunks
	start := i*q + min(i, r)
	size := q
	if i < r {
		size++
	}
	return min(start*grain, n), min((start+size)*grain, n)
}

// ChunkOf returns the rows [lo, hi) of the call RunGrain(n, grain, fn) that
// holds row i: a kernel computing that call's rows one at a time takes the
// same row blocks as the whole call did, so the same bits (runtime/screen).
func (p *Pool) ChunkOf(n, grain, i int) (lo, hi int) {
	grain = max(grain, 1)
	units := (n + grain - 1) / grain
	if min(units, p.threads) <= 1 || p.closed.Load() {
		return 0, n
	}
	chunks := min(units, p.MaxChunks())
	q, r := units/chunks, units%chunks
	u := i / grain
	c := r + (u-r*(q+1))/max(q, 1)
	if u < r*(q+1) {
		c = u / (q + 1)
	}
	return chunkRows(n, grain, chunks, c)
}

func (p *Pool) loop(w *worker) {
	defer p.wg.Done()
	// Zero, not a fresh load: the first job may be posted before this
	// goroutine runs, and it must not be taken as already seen.
	seen := uint64(0) // the last job generation this worker took part in
	for {
		// Wait for a new job: spin, then park.
		deadline := time.Now().Add(spinFor)
		for i := 0; p.state.Load()>>32 == seen; i++ {
			if i&63 == 63 {
				if time.Now().After(deadline) {
					w.sleeping.Store(true)
					if p.state.Load()>>32 == seen {
						<-w.wake
					}
					w.sleeping.Store(false)
					deadline = time.Now().Add(spinFor)
				}
			}
		}
		seen = p.state.Load() >> 32
		if p.closed.Load() {
			return
		}
		p.claim(seen)
	}
}

// claim runs unclaimed chunks of job generation gen until none is left.
func (p *Pool) claim(gen uint64) {
	for {
		s := p.state.Load()
		next, chunks := int(s>>16&0xffff), int(s&0xffff)
		if s>>32 != gen || next >= chunks {
			return
		}
		if !p.state.CompareAndSwap(s, s+1<<16) {
			continue
		}
		p.work(next)
		p.done.Add(1)
	}
}

func (p *Pool) work(i int) {
	defer func() {
		if v := recover(); v != nil {
			p.panicked.Store(box(v))
		}
	}()
	lo, hi := p.chunk(i)
	p.fn(lo, hi)
}

// box returns a pointer to a copy of v. work calls it only on a panic: a
// pointer to recover's result taken in work itself moves that variable to
// the heap on every chunk, an allocation per chunk of every call.
func box(v any) *any { return &v }

// Close stops the workers; later calls run on the caller alone.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Swap(true) {
		return
	}
	p.state.Add(1 << 32)
	for _, w := range p.workers {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	p.wg.Wait()
}
