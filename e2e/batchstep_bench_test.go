package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/modelc/modelc/generated/llama15m"
	"github.com/modelc/modelc/runtime/cli"
	"github.com/modelc/modelc/runtime/model"
)

// BenchmarkBatchStep15M measures one decode step of the compiled 15M shape
// (random weights) for B sessions at position 100: B = 1 is the one-token
// Forward a single client runs, B > 1 one ForwardBatch, the server's batched
// step. ns/token is the step's time over B. THREADS1=1 in the environment
// runs the model on one thread (CPU cost per step, steadier on a shared
// machine).
func BenchmarkBatchStep15M(b *testing.B) {
	m, err := llama15m.New(cli.RandomParams(llama15m.Spec(), 1))
	if err != nil {
		b.Fatal(err)
	}
	bm := m.(model.Batcher)
	if os.Getenv("THREADS1") != "" {
		llama15m.SetThreads(1)
		defer llama15m.SetThreads(0)
	}
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprintf("B=%d", n), func(b *testing.B) {
			ss := make([]model.Session, n)
			toks, pos := make([]int, n), make([]int, n)
			for i := range ss {
				ss[i] = m.NewSession()
				toks[i], pos[i] = 100+i, 100
			}
			for b.Loop() {
				if n == 1 {
					ss[0].Forward(toks[0], pos[0])
				} else {
					bm.ForwardBatch(ss, toks, pos)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
		})
	}
}
