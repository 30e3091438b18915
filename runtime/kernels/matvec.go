package kernels

// MatVec computes out[r] = Σ_c w[r*cols+c]·x[c] for r < len(out); cols = len(x).
func MatVec(out, w, x []float32) {
	cols := len(x)
	for r := range out {
		row := w[r*cols : r*cols+cols]
		var s float32
		for c, v := range row {
			s += v * x[c]
		}
		out[r] = s
	}
}
