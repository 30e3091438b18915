package e2e

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/modelc/modelc/generated/llama15m"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/train"
)

// BenchmarkTrainStep15M times whole optimizer steps (forward, backward,
// clipping, AdamW) at the 15M shape over 8 sequences of 256 random tokens,
// for the generic trainer and the compiled one (llama15m's NewTrainer).
// Each runs on 1 and 2 threads (sub-benchmarks threads=1, threads=2), with
// GOMAXPROCS set to match: -test.cpu is not used because Go 1.26 runs a
// sub-benchmark whose body uses b.Loop under the last -test.cpu value, not
// its own. A generic step takes tens of seconds on one thread: run it with
// -benchtime=2x.
func BenchmarkTrainStep15M(b *testing.B) {
	for _, c := range []struct {
		name string
		new  func(*model.Params) (model.Model, error)
	}{{"generic", generic.New}, {"compiled", llama15m.New}} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", c.name, threads), func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(threads))
				llama15m.SetThreads(threads)
				defer llama15m.SetThreads(0)
				q := train.InitParams(llama15m.Spec(), 1)
				m, err := c.new(q)
				if err != nil {
					b.Fatal(err)
				}
				const B, T = 8, 256
				tr, err := m.(model.Trainable).NewTrainer(B, T)
				if err != nil {
					b.Fatal(err)
				}
				opt := train.NewAdamW(q, 0.9, 0.95, 0.1)
				rng := rand.New(rand.NewPCG(1, 2))
				tokens, targets := make([]int32, B*T), make([]int32, B*T)
				for i := range tokens {
					tokens[i], targets[i] = int32(rng.IntN(32000)), int32(rng.IntN(32000))
				}
				step := func() {
					tr.ZeroGrads()
					tr.Forward(tokens, targets, B, T)
					tr.Backward()
					train.ClipGradNorm(tr.Grads(), 1)
					opt.Update(q.Data, tr.Grads(), 3e-4)
				}
				step()
				cpu0 := cpuTime()
				b.ResetTimer()
				for b.Loop() {
					step()
				}
				b.ReportMetric(float64(B*T*b.N)/b.Elapsed().Seconds(), "tok/s")
				// Per CPU second: the figure that survives a machine shared with
				// other jobs (with 2 threads it sums both threads' time).
				b.ReportMetric(float64(B*T*b.N)/(cpuTime()-cpu0).Seconds(), "tok/cpu-s")
			})
		}
	}
}

// cpuTime is the process's user+system time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
