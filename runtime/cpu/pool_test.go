package cpu

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPoolCovers checks that every row is visited exactly once, in chunks
// that respect the grain, for many sizes, grains and thread counts.
func TestPoolCovers(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		p := NewPool(threads)
		for _, grain := range []int{1, 4, 7} {
			for n := 0; n <= 70; n++ {
				hits := make([]int32, n)
				var calls atomic.Int32
				p.RunGrain(n, grain, func(lo, hi int) {
					calls.Add(1)
					if lo >= hi || lo < 0 || hi > n {
						t.Errorf("threads %d grain %d n %d: bad chunk [%d,%d)", threads, grain, n, lo, hi)
						return
					}
					if lo%grain != 0 || (hi != n && hi%grain != 0) {
						t.Errorf("threads %d grain %d n %d: chunk [%d,%d) not on the grain", threads, grain, n, lo, hi)
					}
					for i := lo; i < hi; i++ {
						atomic.AddInt32(&hits[i], 1)
					}
				})
				for i, h := range hits {
					if h != 1 {
						t.Fatalf("threads %d grain %d n %d: row %d visited %d times", threads, grain, n, i, h)
					}
				}
				// One call when the job is one unit or the pool one thread,
				// else two chunks per thread (as many as there are units).
				units := (n + grain - 1) / grain
				want := min(units, 1)
				if min(units, threads) > 1 {
					want = min(units, 2*threads)
				}
				if got := int(calls.Load()); got != want {
					t.Errorf("threads %d grain %d n %d: %d chunks, want %d", threads, grain, n, got, want)
				}
				if got := int(calls.Load()); got > p.MaxChunks() {
					t.Errorf("threads %d grain %d n %d: %d chunks, more than MaxChunks %d", threads, grain, n, got, p.MaxChunks())
				}
			}
		}
		p.Close()
	}
}

// TestPoolManyJobs runs many small jobs back to back writing disjoint rows,
// under -race this checks the hand-off between jobs.
func TestPoolManyJobs(t *testing.T) {
	p := NewPool(4)
	defer p.Close()
	out := make([]int, 64)
	for job := 1; job <= 2000; job++ {
		p.Run(len(out), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				out[i] += i
			}
		})
	}
	for i, v := range out {
		if v != 2000*i {
			t.Fatalf("row %d = %d, want %d", i, v, 2000*i)
		}
	}
}

// TestPoolNoAlloc: a call whose function is made beforehand allocates
// nothing (decode calls the pool a few hundred times a token).
func TestPoolNoAlloc(t *testing.T) {
	p := NewPool(2)
	defer p.Close()
	var rows atomic.Int64
	fn := func(lo, hi int) { rows.Add(int64(hi - lo)) }
	if n := testing.AllocsPerRun(100, func() { p.Run(64, fn) }); n != 0 {
		t.Errorf("Run allocates %v times a call", n)
	}
	if got := rows.Load(); got != 101*64 {
		t.Errorf("%d rows run, want %d", got, 101*64)
	}
}

// TestPoolConcurrentCallers serialises concurrent Run calls.
func TestPoolConcurrentCallers(t *testing.T) {
	p := NewPool(3)
	defer p.Close()
	var wg sync.WaitGroup
	var total atomic.Int64
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				p.Run(10, func(lo, hi int) { total.Add(int64(hi - lo)) })
			}
		}()
	}
	wg.Wait()
	if got := total.Load(); got != 4*200*10 {
		t.Fatalf("total rows %d, want %d", got, 4*200*10)
	}
}

func TestPoolPanicPropagates(t *testing.T) {
	p := NewPool(2)
	defer p.Close()
	defer func() {
		v := recover()
		if v == nil || !strings.Contains(v.(string), "boom") {
			t.Fatalf("recovered %v, want the worker's panic", v)
		}
	}()
	p.Run(2, func(lo, hi int) {
		if lo == 1 {
			panic("boom")
		}
	})
}

func TestPoolClose(t *testing.T) {
	p := NewPool(3)
	p.Close()
	p.Close()
	n := 0
	p.Run(5, func(lo, hi int) { n += hi - lo })
	if n != 5 {
		t.Fatalf("after Close ran %d rows, want 5", n)
	}
	if NewPool(0).Threads() < 1 {
		t.Fatal("default pool has no threads")
	}
}

func TestLevels(t *testing.T) {
	ls := Levels()
	if len(ls) == 0 || ls[len(ls)-1] != Generic || ls[0] != Best() {
		t.Fatalf("Levels() = %v, Best() = %v", ls, Best())
	}
	f := Detect()
	if Supports(AVX512) && !(f.AVX512F && f.AVX512VL && f.AVX2 && f.FMA) {
		t.Fatalf("AVX512 supported without its features: %+v", f)
	}
	if f.PureGo && Best() != Generic {
		t.Fatalf("purego build picked %v", Best())
	}
	for _, l := range []Level{Generic, NEON, AVX2, AVX512} {
		if l.String() == "unknown" {
			t.Errorf("level %d has no name", l)
		}
	}
}

func BenchmarkPoolRun(b *testing.B) {
	for _, threads := range []int{1, 2} {
		p := NewPool(threads)
		out := make([]float32, 64)
		b.Run(map[int]string{1: "threads=1", 2: "threads=2"}[threads], func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				p.Run(len(out), func(lo, hi int) {
					for j := lo; j < hi; j++ {
						out[j]++
					}
				})
			}
		})
		p.Close()
	}
}

// TestPoolCallerTakesUnclaimedChunks: chunks are claimed, not assigned, so a
// job completes even when no worker ever runs (a worker the OS has not
// scheduled): here the pool's one worker goroutine does not exist at all.
func TestPoolCallerTakesUnclaimedChunks(t *testing.T) {
	p := &Pool{threads: 2, workers: []*worker{{wake: make(chan struct{}, 1)}}}
	done := make(chan []int32)
	go func() {
		hits := make([]int32, 100)
		p.RunGrain(100, 1, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				hits[i]++
			}
		})
		done <- hits
	}()
	select {
	case hits := <-done:
		for i, h := range hits {
			if h != 1 {
				t.Fatalf("row %d visited %d times", i, h)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the job waited for a worker that never ran")
	}
}

// TestChunkOf: ChunkOf names the chunk RunGrain handed each row to.
func TestChunkOf(t *testing.T) {
	for _, threads := range []int{1, 2, 3} {
		p := NewPool(threads)
		for _, n := range []int{1, 7, 64, 100, 512, 32000} {
			for _, grain := range []int{1, 4, 8, 12} {
				var mu sync.Mutex
				got := make([][2]int, n)
				p.RunGrain(n, grain, func(lo, hi int) {
					mu.Lock()
					defer mu.Unlock()
					for i := lo; i < hi; i++ {
						got[i] = [2]int{lo, hi}
					}
				})
				for i := range n {
					if lo, hi := p.ChunkOf(n, grain, i); [2]int{lo, hi} != got[i] {
						t.Fatalf("threads %d, n %d, grain %d: ChunkOf(%d) = %d, %d; RunGrain gave it %v", threads, n, grain, i, lo, hi, got[i])
					}
				}
			}
		}
		p.Close()
	}
}
