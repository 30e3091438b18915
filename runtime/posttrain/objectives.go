package posttrain

import (
	"math"
)

// The objectives of the stages as plain functions of numbers, each
// returning its value and its derivatives: tested on hand-computed cases,
// then turned into logit or hidden-state gradients for BackwardGrad.

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// logSigmoid is log σ(x), stable for large |x|.
func logSigmoid(x float64) float64 {
	if x >= 0 {
		return -math.Log1p(math.Exp(-x))
	}
	return x - math.Log1p(math.Exp(x))
}

// BradleyTerry is the reward-model loss of one pair, −log σ(rc − rr), and
// its derivatives with respect to the chosen and rejected rewards.
func BradleyTerry(rc, rr float64) (loss, dc, dr float64) {
	z := rc - rr
	s := sigmoid(-z)
	return -logSigmoid(z), -s, s
}

// DPO is the direct preference optimisation loss of one pair,
// −log σ(β·((πc − refc) − (πr − refr))), from the sequence log-probs of
// chosen and rejected replies under the policy and the frozen reference,
// with its derivatives with respect to the policy's two log-probs.
func DPO(beta, pc, pr, refc, refr float64) (loss, dc, dr float64) {
	z := beta * ((pc - refc) - (pr - refr))
	s := sigmoid(-z)
	return -logSigmoid(z), -beta * s, beta * s
}

// GroupAdvantages normalises rewards within each consecutive group of G:
// (r − mean) / (std + 1e-6), the population std; a group whose rewards
// are all equal has advantages 0 (nothing to learn from it).
func GroupAdvantages(rewards []float64, G int) []float64 {
	adv := make([]float64, len(rewards))
	for g := 0; g+G <= len(rewards); g += G {
		var mean float64
		for _, r := range rewards[g : g+G] {
			mean += r
		}
		mean /= float64(G)
		var v float64
		for _, r := range rewards[g : g+G] {
			v += (r - mean) * (r - mean)
		}
		std := math.Sqrt(v / float64(G))
		if std < 1e-9 {
			continue
		}
		for i, r := range rewards[g : g+G] {
			adv[g+i] = (r - mean) / (std + 1e-6)
		}
	}
	return adv
}

// GRPOToken is the per-token GRPO objective to maximise,
// min(ρA, clip(ρ, 1−ε, 1+ε)A) − β·KL, with ρ = exp(logp − logpOld) and KL
// the k3 estimator exp(ref − logp) − (ref − logp) − 1, and its derivative
// with respect to logp. Where the clipped term is the smaller one the
// ratio term has no gradient (the PPO trust region).
func GRPOToken(logp, logpOld, logpRef, adv, eps, beta float64) (obj, dlogp, kl float64) {
	rho := math.Exp(logp - logpOld)
	unclipped := rho * adv
	clipped := math.Max(1-eps, math.Min(1+eps, rho)) * adv
	var d float64
	if unclipped <= clipped {
		obj = unclipped
		d = unclipped // d(ρA)/dlogp = ρA
	} else {
		obj = clipped
	}
	r := math.Exp(logpRef - logp)
	kl = r - (logpRef - logp) - 1
	obj -= beta * kl
	d -= beta * (1 - r)
	return obj, d, kl
}

// logProbGrad turns per-row coefficients c (the derivative of a loss with
// respect to each row's log p(target)) into the gradient of the logits,
// c·(onehot − p), in place over probs ([rows, V]).
func logProbGrad(probs []float32, targets []int32, coef []float64, V int) {
	for r, c := range coef {
		p := probs[r*V : (r+1)*V]
		cf := float32(c)
		for i := range p {
			p[i] *= -cf
		}
		p[targets[r]] += cf
	}
}

// DistillRow is the distillation loss of one position: α·τ²·KL(qt‖qs) +
// (1−α)·(−log ps[target]), where q are the distributions at temperature τ
// made from the probabilities ps (student) and pt (teacher) at
// temperature 1; the τ² keeps the soft term's gradient on the hard term's
// scale (Hinton et al.). It writes into dlogits the gradient with respect to
// the student's logits: α·τ·(qs − qt) + (1−α)·(ps − onehot), and returns
// the loss and the KL.
func DistillRow(dlogits, ps, pt []float32, target int, tau, alpha float64) (loss, kl float64) {
	V := len(ps)
	qs, qt := tempered(ps, tau), tempered(pt, tau)
	for i := range V {
		if qt[i] > 0 {
			kl += qt[i] * (math.Log(qt[i]) - math.Log(math.Max(qs[i], 1e-300)))
		}
	}
	hard := 0.0
	if target >= 0 {
		hard = -math.Log(math.Max(float64(ps[target]), 1e-45))
	}
	for i := range V {
		g := alpha * tau * (qs[i] - qt[i])
		if target >= 0 {
			g += (1 - alpha) * float64(ps[i])
			if i == target {
				g -= 1 - alpha
			}
		}
		dlogits[i] = float32(g)
	}
	return alpha*tau*tau*kl + (1-alpha)*hard, kl
}

// tempered is softmax(log p / τ) in float64.
func tempered(p []float32, tau float64) []float64 {
	q := make([]float64, len(p))
	m := math.Inf(-1)
	for i, v := range p {
		q[i] = math.Log(math.Max(float64(v), 1e-45)) / tau
		m = math.Max(m, q[i])
	}
	var z float64
	for i := range q {
		q[i] = math.Exp(q[i] - m)
		z += q[i]
	}
	for i := range q {
		q[i] /= z
	}
	return q
}
