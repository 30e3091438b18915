package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// The matrix shapes of a training step of the 15M shape (dim 288, ffn 768),
// 256 rows: GFLOP/s of each pass.
func BenchmarkMatMul(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, sh := range [][3]int{{256, 288, 864}, {256, 288, 1536}, {256, 768, 288}} {
		N, I, O := sh[0], sh[1], sh[2]
		in, w, d := randVec(rng, N*I, 1), randVec(rng, O*I, 1), randVec(rng, N*O, 1)
		out, dIn, dW := make([]float32, N*O), make([]float32, N*I), make([]float32, O*I)
		flops := float64(2 * N * I * O)
		b.Run(fmt.Sprintf("fwd/%dx%dx%d", N, I, O), func(b *testing.B) {
			for b.Loop() {
				MatMul(out, in, w, N, I, O)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("dIn/%dx%dx%d", N, I, O), func(b *testing.B) {
			for b.Loop() {
				MatMulBackwardInput(dIn, d, w, N, I, O)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("dW/%dx%dx%d", N, I, O), func(b *testing.B) {
			for b.Loop() {
				MatMulBackwardWeight(dW, d, in, N, I, O, 0, O)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
