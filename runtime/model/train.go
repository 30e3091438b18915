package model

// IgnoreTarget is the target of a position that contributes no loss: padding,
// or in masked language modelling a position that was not chosen.
const IgnoreTarget = -1

// Objectives a spec may name (spec.Objective); empty means ObjectiveCausal.
const (
	// ObjectiveCausal is next-token prediction with causal attention.
	ObjectiveCausal = "causal"
	// ObjectiveMasked is masked language modelling with bidirectional attention.
	ObjectiveMasked = "masked"
)

// Causal reports whether s attends causally (every objective but masked).
func Causal(s *Spec) bool { return s.Objective != ObjectiveMasked }

// Trainer runs batched forward and backward passes of a model over B
// sequences of T tokens, for training and evaluation. It reads the weights
// of the model it came from at every call, so an optimizer that updates
// Params().Data in place is seen by the next Forward.
type Trainer interface {
	// Forward runs tokens (B·T ids, sequence b at tokens[b*T:(b+1)*T], each at
	// positions 0..T-1) and returns the mean cross-entropy over the positions
	// whose target is not IgnoreTarget (0 when there are none). targets[i] is
	// the id position i should predict. B and T must not exceed the sizes the
	// trainer was made for; ids must be below the vocabulary size.
	Forward(tokens, targets []int32, B, T int) (loss float32)
	// Backward accumulates into Grads the gradient of the loss of the last
	// Forward with respect to every parameter.
	Backward()
	// Grads is the gradient buffer, laid out as Params().Data.
	Grads() []float32
	// ZeroGrads clears Grads.
	ZeroGrads()
}

// Trainable is a model that can be trained.
type Trainable interface {
	Model
	// NewTrainer returns a trainer for batches of at most B sequences of at
	// most T tokens (T ≤ the spec's max_seq). Attention is causal or
	// bidirectional as the spec's objective says.
	NewTrainer(B, T int) (Trainer, error)
}

// ExpertStats is implemented by trainers of mixture-of-experts models, so
// that a training loop can log how evenly the router spreads the tokens.
type ExpertStats interface {
	// ExpertUsage returns, per layer, each expert's share of the routing
	// slots (tokens × top_k) of the Forward calls since the last call, and
	// starts counting afresh. The shares of a layer sum to 1.
	ExpertUsage() [][]float64
	// AuxLoss is the load-balancing loss (already times its coefficient,
	// summed over layers) of the last Forward, which Backward adds to the
	// cross-entropy Forward returned.
	AuxLoss() float64
}

// GradTrainer is a Trainer whose objective need not be the mean
// cross-entropy: post-training (reward models, DPO, GRPO, distillation)
// reads what the last Forward computed and hands back the gradient of its
// own objective at the logits and at the final hidden state.
type GradTrainer interface {
	Trainer
	// TokenLosses writes into dst (B·T long) −log p(target) of each
	// position of the last Forward, and 0 where the target is IgnoreTarget.
	TokenLosses(dst []float64)
	// Probs is the softmax over the vocabulary of the rows with a target,
	// [M, vocab] in position order (valid until BackwardGrad or Forward).
	Probs() []float32
	// Hidden is the final-norm output of every position, [B·T, dim]: what
	// the classifier, or a head of the caller's, reads.
	Hidden() []float32
	// BackwardGrad accumulates into Grads the gradient of an objective
	// whose gradient with respect to the logits of the rows Probs holds is
	// dLogits ([M, vocab], nil for none; it may be Probs itself) and with
	// respect to Hidden is dHidden ([B·T, dim], nil for none). It replaces
	// Backward for the last Forward.
	BackwardGrad(dLogits, dHidden []float32)
}
