package generic

// PackPanels writes panels lo..hi-1 of the R×C row-major matrix w into dst
// in the layout of the packed forward kernels (asm.TMatMulP): panel b holds
// rows b·W .. b·W+W-1 column by column, dst[(b*C+c)*W+j] = w[(b*W+j)*C+c],
// rows past R as zeros. dst holds ⌈R/W⌉·C·W floats.
func PackPanels(dst, w []float32, R, C, W, lo, hi int) {
	for b := lo; b < hi; b++ {
		blk := dst[b*C*W : (b+1)*C*W]
		for j := 0; j < W; j++ {
			r := b*W + j
			if r >= R {
				for c := 0; c < C; c++ {
					blk[c*W+j] = 0
				}
				continue
			}
			for c, v := range w[r*C : r*C+C] {
				blk[c*W+j] = v
			}
		}
	}
}
