package posttrain

import (
	"math"
	"math/rand/v2"
	"strings"

	"github.com/modelc/modelc/runtime/model"
)

// seq is an encoded prompt+reply: the reply's tokens are the trained ones.
type seq struct {
	ids   []int
	train []bool
}

// encodeReply encodes prompt and reply, cut to T tokens.
func encodeReply(e *Encoder, prompt, reply string, T int) (seq, error) {
	ids, tr, err := e.Reply(prompt, reply)
	if err != nil {
		return seq{}, err
	}
	if len(ids) > T {
		ids, tr = ids[:T], tr[:T]
	}
	return seq{ids, tr}, nil
}

// fillSeqs lays sequences out as rows of a B×T batch: targets on the
// reply's tokens (when withTargets), padding after each.
func fillSeqs(tokens, targets []int32, ss []seq, T int, withTargets bool) {
	for b, s := range ss {
		for i := range T {
			tokens[b*T+i], targets[b*T+i] = 0, model.IgnoreTarget
			if i < len(s.ids) {
				tokens[b*T+i] = int32(s.ids[i])
			}
			if withTargets && i+1 < len(s.ids) && s.train[i+1] {
				targets[b*T+i] = int32(s.ids[i+1])
			}
		}
	}
}

// seqLogProbs runs a forward over ss and returns each sequence's summed
// log-probability of its reply tokens, and the token losses (for the
// caller's gradient).
func seqLogProbs(tr model.GradTrainer, ss []seq, T int, tokens, targets []int32, losses []float64) []float64 {
	B := len(ss)
	fillSeqs(tokens, targets, ss, T, true)
	tr.Forward(tokens, targets, B, T)
	tr.TokenLosses(losses)
	out := make([]float64, B)
	for n, l := range losses[:B*T] {
		out[n/T] -= l
	}
	return out
}

// backwardSeqCoef backpropagates a loss whose derivative with respect to
// sequence b's summed reply log-prob is coef[b] (per-token coefficients
// when perToken is set: one per position), from the last Forward.
func backwardTokenCoef(tr model.GradTrainer, targets []int32, N, V int, coefAt func(n int) float64) {
	var rowT []int32
	var coef []float64
	for n, t := range targets[:N] {
		if t >= 0 {
			rowT = append(rowT, t)
			coef = append(coef, coefAt(n))
		}
	}
	p := tr.Probs()
	logProbGrad(p, rowT, coef, V)
	tr.BackwardGrad(p, nil)
}

// sampleReply generates a reply to the prompt ids from a session at
// temperature temp (greedy at 0), stopping at EOS or after maxNew tokens.
func sampleReply(m model.Model, prompt []int, maxNew int, temp float64, eos int, rng *rand.Rand) []int {
	s := m.NewSession()
	maxSeq := m.Spec().MaxSeq
	logits := s.Prefill(prompt, 0)
	var out []int
	probs := make([]float64, len(logits))
	for len(out) < maxNew && len(prompt)+len(out) < maxSeq {
		next := pick(logits, temp, rng, probs)
		out = append(out, next)
		if next == eos {
			break
		}
		logits = s.Forward(next, len(prompt)+len(out)-1)
	}
	return out
}

func pick(logits []float32, temp float64, rng *rand.Rand, probs []float64) int {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	if temp <= 0 {
		return best
	}
	var z float64
	for i, v := range logits {
		probs[i] = math.Exp(float64(v-logits[best]) / temp)
		z += probs[i]
	}
	u := rng.Float64() * z
	for i, p := range probs {
		u -= p
		if u <= 0 {
			return i
		}
	}
	return best
}

// decodeReply turns reply ids into text, dropping EOS and what the
// template marks as the end of a turn.
func decodeReply(e *Encoder, ids []int) string {
	var keep []int
	for _, id := range ids {
		if id == e.Tok.EOS() {
			break
		}
		keep = append(keep, id)
	}
	s, _ := e.Tok.Decode(keep)
	for _, st := range e.Template.Stop() {
		if i := strings.Index(s, st); i >= 0 {
			s = s[:i]
		}
	}
	return strings.TrimSpace(s)
}
