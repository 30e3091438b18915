package generic

import (
	"runtime"
	"sync"

	"github.com/modelc/modelc/runtime/cpu"
	"github.com/modelc/modelc/runtime/kernels"
)

// parallel splits 0..n into chunks of at least grain items over the shared
// worker pool. Every caller makes each output element the work of one
// chunk, so results do not depend on the number of threads.
func parallel(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if n <= grain {
		fn(0, n)
		return
	}
	workers().RunGrain(n, grain, fn)
}

var (
	poolMu sync.Mutex
	pool   *cpu.Pool
)

// workers returns the persistent pool, remade when GOMAXPROCS (which
// --threads sets) has changed since it was made.
func workers() *cpu.Pool {
	n := runtime.GOMAXPROCS(0)
	poolMu.Lock()
	defer poolMu.Unlock()
	if pool == nil || pool.Threads() != n {
		if pool != nil {
			pool.Close()
		}
		pool = cpu.NewPool(n)
	}
	return pool
}

// minWork is roughly the number of multiply-adds worth handing to a thread.
// A variable so that tests can make every pass split into many slices.
var minWork = 1 << 15

func grainFor(perItem int) int { return max(1, minWork/max(1, perItem)) }

// rows runs fn over row ranges of an elementwise pass over N rows of width w.
func rows(N, w int, fn func(lo, hi int)) { parallel(N, grainFor(w), fn) }

// matmul is kernels.MatMul split by rows.
func matmul(out, in, w []float32, N, I, O int) {
	parallel(N, grainFor(I*O), func(lo, hi int) {
		kernels.MatMul(out[lo*O:hi*O], in[lo*I:hi*I], w, hi-lo, I, O)
	})
}

// matmulBackwardInput is kernels.MatMulBackwardInput split by rows.
func matmulBackwardInput(dIn, dOut, w []float32, N, I, O int) {
	parallel(N, grainFor(I*O), func(lo, hi int) {
		kernels.MatMulBackwardInput(dIn[lo*I:hi*I], dOut[lo*O:hi*O], w, hi-lo, I, O)
	})
}

// matmulBackwardWeight is kernels.MatMulBackwardWeight split by output rows.
func matmulBackwardWeight(dW, dOut, in []float32, N, I, O int) {
	parallel(O, grainFor(N*I), func(lo, hi int) {
		kernels.MatMulBackwardWeight(dW, dOut, in, N, I, O, lo, hi)
	})
}
