// Package model defines what every model modelc runs implements — the generic
// model and each generated package alike — and the one weight buffer they share.
package model

import "github.com/modelc/modelc/spec"

// Model is a set of weights bound to code that runs them.
type Model interface {
	Spec() *spec.Spec
	Params() *Params
	// NewSession returns an inference context with its own KV cache.
	NewSession() Session
}

// Session runs a model one token (or one prompt) at a time over its own KV cache.
type Session interface {
	// Forward runs token at position pos and returns the logits over the
	// vocabulary. The slice is owned by the session and valid until its next call.
	Forward(token, pos int) []float32
	// Prefill runs tokens at positions pos, pos+1, … and returns the logits of
	// the last one (valid until the next call).
	Prefill(tokens []int, pos int) []float32
}

// Greedy is a Session that can find the greedy next token without computing
// every logit: the generated float models screen their classifier with an
// int8 copy of it (runtime/screen) and compute in F32 only the rows that can
// win. The answer is always sample.Argmax of Forward's logits.
type Greedy interface {
	// Greedy runs token at position pos as Forward does and returns the index
	// of the largest logit, the first of equal ones. It may leave the logits
	// unmade: a slice Forward returned before is not valid after it. The copy
	// is made on the model's first Greedy call: a generated model stops
	// screening once NewTrainer is called for it, and weights changed in
	// place by other means after that first call are not seen by it.
	Greedy(token, pos int) int
}

// GreedyPreparer is a Model whose Greedy needs work made once (the screen's
// int8 copy of the classifier: 0.18 s for a 32000 × 768 one); PrepareGreedy
// makes it now, at load, so that the first greedy token does not pay for it.
type GreedyPreparer interface {
	PrepareGreedy()
}

// Factory binds parameters to code; it fails when their shape does not fit.
type Factory func(p *Params) (Model, error)

// Spec is re-exported so that generated packages need only runtime imports.
type Spec = spec.Spec

// TokenizerSpec is re-exported for the same reason.
type TokenizerSpec = spec.Tokenizer

// Batcher is implemented by models that can run one decode step of several
// sessions together, reading each weight once for the whole batch (continuous
// batching in the server). Sessions must come from the same model.
type Batcher interface {
	// ForwardBatch runs tokens[i] at position pos[i] in sessions[i] and returns
	// each session's logits (owned by that session, valid until its next call).
	ForwardBatch(sessions []Session, tokens, pos []int) [][]float32
}

// TrainSpec is re-exported for the same reason.
type TrainSpec = spec.Train

// MoESpec is re-exported for the same reason.
type MoESpec = spec.MoE
