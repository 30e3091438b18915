package posttrain

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/posttrain/tasks"
)

// SamplePairs makes on-policy preference pairs: it samples n replies of m
// to each problem at temperature temp and pairs every reply whose answer
// is wrong with one whose answer is right (in turn), or with the problem's
// worked solution when no sample is right. The rejected replies are thus
// the model's own mistakes, labelled by the verifiable answer check, which
// is what a reward model judging this model's replies must tell apart.
// Identical wrong replies to a problem are paired once. progress, when not
// nil, is called after each problem with the problems done and the pairs
// so far. Cancelling ctx stops it between problems with ctx's error.
func SamplePairs(ctx context.Context, m model.Model, e *Encoder, ps []tasks.Problem, n int, temp float64, maxNew int, rng *rand.Rand, progress func(done, pairs int)) ([]tasks.Pair, error) {
	if n < 1 {
		return nil, fmt.Errorf("samples per problem must be ≥ 1, got %d", n)
	}
	if !(temp > 0) || math.IsInf(temp, 0) {
		return nil, fmt.Errorf("temperature must be > 0 to sample, got %g", temp)
	}
	var out []tasks.Pair
	for pi, p := range ps {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("interrupted after %d of %d problems: %w", pi, len(ps), err)
		}
		prompt, err := e.Prompt(p.Prompt)
		if err != nil {
			return nil, fmt.Errorf("problem %q: %w", p.Prompt, err)
		}
		var right, wrong []string
		seen := map[string]bool{}
		for range n {
			text := decodeReply(e, sampleReply(m, prompt, maxNew, temp, e.Tok.EOS(), rng))
			if v, err := tasks.ParseAnswer(text); err == nil && v == p.Answer {
				right = append(right, text)
			} else if !seen[text] {
				seen[text] = true
				wrong = append(wrong, text)
			}
		}
		if len(right) == 0 {
			right = []string{p.Solution()}
		}
		for i, w := range wrong {
			out = append(out, tasks.Pair{Prompt: p.Prompt, Chosen: right[i%len(right)], Rejected: w})
		}
		if progress != nil {
			progress(pi+1, len(out))
		}
	}
	return out, nil
}
