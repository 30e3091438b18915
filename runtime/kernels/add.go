package kernels

// Add adds y to x in place (the residual connection).
func Add(x, y []float32) {
	for i, v := range y {
		x[i] += v
	}
}
