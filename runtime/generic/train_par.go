package generic

import (
	"runtime"
	"sync"

	"github.com/modelc/modelc/runtime/kernels"
)

// parallel splits 0..n into at most GOMAXPROCS contiguous chunks of at least
// grain items and runs fn on each, the last on the calling goroutine. Every
// caller makes each output element the work of one chunk, so results do not
// depend on the number of threads.
func parallel(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	chunks := min(runtime.GOMAXPROCS(0), (n+grain-1)/grain)
	if chunks <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for c := 0; c < chunks-1; c++ {
		lo, hi := n*c/chunks, n*(c+1)/chunks
		wg.Go(func() { fn(lo, hi) })
	}
	fn(n*(chunks-1)/chunks, n)
	wg.Wait()
}

// minWork is roughly the number of multiply-adds worth handing to a thread.
const minWork = 1 << 15

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
