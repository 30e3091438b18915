package kernels

import "math"

// IgnoreTarget marks a position that contributes no loss (padding, or in
// masked language modelling a position that was not chosen).
const IgnoreTarget = -1

// SoftmaxCrossEntropy turns, for each of N rows of V logits whose target is
// not IgnoreTarget, the logits into probabilities in place, and returns the
// sum over those rows of −log p[target] (in float64, from the logits, so a
// tiny probability does not round to an infinite loss) and their count.
// Rows without a target are left as they are.
func SoftmaxCrossEntropy(logits []float32, targets []int32, N, V int) (sum float64, count int) {
	for n := 0; n < N; n++ {
		tg := targets[n]
		if tg < 0 {
			continue
		}
		row := logits[n*V : n*V+V]
		m := row[0]
		for _, x := range row[1:] {
			m = max(m, x)
		}
		lt := row[tg]
		var z float64
		for i, x := range row {
			e := math.Exp(float64(x - m))
			row[i] = float32(e)
			z += e
		}
		inv := 1 / z
		for i := range row {
			row[i] = float32(float64(row[i]) * inv)
		}
		sum += math.Log(z) - float64(lt-m)
		count++
	}
	return sum, count
}

// SoftmaxCrossEntropyBackward accumulates into dLogits the gradient of
// scale·Σ(−log p[target]) over the rows with a target, from the probabilities
// SoftmaxCrossEntropy left: scale·(p − onehot(target)).
func SoftmaxCrossEntropyBackward(dLogits, probs []float32, targets []int32, N, V int, scale float32) {
	for n := 0; n < N; n++ {
		tg := targets[n]
		if tg < 0 {
			continue
		}
		d := dLogits[n*V : n*V+V]
		p := probs[n*V : n*V+V]
		for i, pv := range p {
			d[i] += scale * pv
		}
		d[tg] -= scale
	}
}

// ClassifierCrossEntropy is the model's head fused with its loss: logits =
// x ([N, D]) · Wᵀ (W is [V, D]) written to probs ([N, V]), then
// SoftmaxCrossEntropy over them. It returns the summed loss and the number of
// rows with a target; probs keeps the probabilities for the backward pass.
// Callers that have many rows without a target (masked language modelling)
// gather the rows that have one first, to skip their matrix products.
func ClassifierCrossEntropy(probs, x, w []float32, targets []int32, N, D, V int) (sum float64, count int) {
	MatMul(probs, x, w, N, D, V)
	return SoftmaxCrossEntropy(probs, targets, N, V)
}

// ClassifierCrossEntropyBackward accumulates into dx and dW the gradients of
// scale times ClassifierCrossEntropy's summed loss. It overwrites probs with
// the gradient of the logits.
func ClassifierCrossEntropyBackward(dx, dW, probs, x, w []float32, targets []int32, N, D, V int, scale float32) {
	for n := 0; n < N; n++ {
		d := probs[n*V : n*V+V]
		tg := targets[n]
		if tg < 0 {
			clear(d)
			continue
		}
		for i := range d {
			d[i] *= scale
		}
		d[tg] -= scale
	}
	MatMulBackwardInput(dx, probs, w, N, D, V)
	MatMulBackwardWeight(dW, probs, x, N, D, V, 0, V)
}
