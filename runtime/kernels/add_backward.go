package kernels

// AddBackward is the backward pass of the residual connection x += y: the
// gradient of the sum flows unchanged to both operands, so the gradient of
// the branch output y is accumulated from dx. It is Add, named for symmetry
// with the other operations so a reader of a backward pass finds it.
func AddBackward(dy, dx []float32) { Add(dy, dx) }
