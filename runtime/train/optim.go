// Package train trains models through the model.Trainer interface: AdamW with
// decoupled weight decay, gradient clipping by global norm, warm-up then
// cosine decay of the learning rate, gradient accumulation, causal and masked
// language modelling objectives, token files, checkpoints that resume bit for
// bit, metrics, a loss-curve plot, and the `train` and `eval` commands every
// generated binary carries.
package train

import (
	"math"

	"github.com/modelc/modelc/runtime/model"
)

// AdamW is Adam with decoupled weight decay (Loshchilov & Hutter), with
// PyTorch's arithmetic so that curves compare with torch.optim.AdamW.
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64
	// Step is the number of updates done (t in the paper).
	Step int64
	// M and V are the first and second moments, laid out as the parameters.
	M, V []float32
	// decay[i] says whether parameter i is weight-decayed.
	decay []bool
}

// NewAdamW returns an optimizer for p. Matrices are weight-decayed; vectors
// (the norm weights) are not, as is customary.
func NewAdamW(p *model.Params, beta1, beta2, weightDecay float64) *AdamW {
	o := &AdamW{
		Beta1: beta1, Beta2: beta2, Eps: 1e-8, WeightDecay: weightDecay,
		M: make([]float32, len(p.Data)), V: make([]float32, len(p.Data)),
		decay: make([]bool, len(p.Data)),
	}
	for _, t := range p.Tensors {
		if len(t.Shape) >= 2 {
			for i := t.Off; i < t.Off+t.Len(); i++ {
				o.decay[i] = true
			}
		}
	}
	return o
}

// Update applies one step with learning rate lr to params given grads.
func (o *AdamW) Update(params, grads []float32, lr float64) {
	o.Step++
	t := float64(o.Step)
	bc1 := 1 - math.Pow(o.Beta1, t)
	bc2 := 1 - math.Pow(o.Beta2, t)
	stepSize := float32(lr / bc1)
	sqrtBC2 := float32(math.Sqrt(bc2))
	decay := float32(1 - lr*o.WeightDecay)
	b1, b2 := float32(o.Beta1), float32(o.Beta2)
	eps := float32(o.Eps)
	m, v, dec := o.M[:len(params)], o.V[:len(params)], o.decay[:len(params)]
	grads = grads[:len(params)]
	for i, g := range grads {
		p := params[i]
		if dec[i] {
			p *= decay
		}
		mi := b1*m[i] + (1-b1)*g
		vi := b2*v[i] + (1-b2)*g*g
		m[i], v[i] = mi, vi
		denom := float32(math.Sqrt(float64(vi)))/sqrtBC2 + eps
		params[i] = p - stepSize*mi/denom
	}
}

// ClipGradNorm scales grads so that their global L2 norm is at most maxNorm
// (PyTorch's clip_grad_norm_: factor maxNorm/(norm+1e-6) when below one) and
// returns the norm before clipping. maxNorm ≤ 0 only measures.
func ClipGradNorm(grads []float32, maxNorm float64) float64 {
	var ss float64
	for _, g := range grads {
		ss += float64(g) * float64(g)
	}
	norm := math.Sqrt(ss)
	if maxNorm > 0 && norm > maxNorm {
		c := float32(maxNorm / (norm + 1e-6))
		for i := range grads {
			grads[i] *= c
		}
	}
	return norm
}

// Schedule is the learning rate: linear warm-up over Warmup steps, then
// cosine decay from LR to MinLR at step Total (nanoGPT's schedule).
type Schedule struct {
	LR, MinLR     float64
	Warmup, Total int
}

// At returns the learning rate of step (counted from 0).
func (s Schedule) At(step int) float64 {
	if step < s.Warmup {
		return s.LR * float64(step+1) / float64(s.Warmup+1)
	}
	if step >= s.Total || s.Total <= s.Warmup {
		return s.MinLR
	}
	r := float64(step-s.Warmup) / float64(s.Total-s.Warmup)
	return s.MinLR + 0.5*(1+math.Cos(math.Pi*r))*(s.LR-s.MinLR)
}
