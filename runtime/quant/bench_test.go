package quant

import "testing"

func BenchmarkQuantizeAct768(b *testing.B) {
	x := make([]float32, 768)
	for i := range x {
		x[i] = float32(i%37) - 18.3
	}
	xq, xs := make([]int8, 768), make([]float32, 24)
	b.SetBytes(768 * 4)
	for i := 0; i < b.N; i++ {
		QuantizeAct(xq, xs, x)
	}
}
