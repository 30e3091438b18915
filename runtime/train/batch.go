package train

import (
	"fmt"
	"math/rand/v2"

	"github.com/modelc/modelc/runtime/model"
)

// Split is a range [Lo, Hi) of a token file.
type Split struct {
	Tokens *Tokens
	Lo, Hi int
}

// Len is the number of ids in the split.
func (s Split) Len() int { return s.Hi - s.Lo }

// ValFraction is the share of a corpus, at its end, held out for validation.
const ValFraction = 0.1

// SplitTokens cuts toks into a training split and a validation split (the
// last tenth), checking both hold at least one window of need ids.
func SplitTokens(toks *Tokens, need int) (trainSplit, valSplit Split, err error) {
	n := toks.Len()
	nv := int(float64(n) * ValFraction)
	trainSplit = Split{toks, 0, n - nv}
	valSplit = Split{toks, n - nv, n}
	if valSplit.Len() < need || trainSplit.Len() < need {
		return Split{}, Split{}, fmt.Errorf("corpus %s is too short: %d tokens, but a window is %d and both the training split (90 %%) and the validation split (10 %%) need one; use a longer corpus or a smaller --seq", toks.Path(), n, need)
	}
	return trainSplit, valSplit, nil
}

// Objective turns windows of a corpus into (tokens, targets) pairs.
type Objective struct {
	Masked bool
	// MaskID replaces 80 % of the chosen positions in masked language
	// modelling.
	MaskID int32
	Vocab  int
}

// MaskRate is the share of positions masked language modelling chooses.
const MaskRate = 0.15

// Need is how many ids one window of T positions reads.
func (o Objective) Need(T int) int {
	if o.Masked {
		return T
	}
	return T + 1
}

// Fill makes one sequence from win (Need(T) ids): for the causal objective
// tokens are win[:T] and targets win[1:]; for the masked one, a random 15 %
// of positions are chosen (at least one), of which 80 % become MaskID, 10 %
// a random id and 10 % stay, with targets the original ids at the chosen
// positions and IgnoreTarget elsewhere.
func (o Objective) Fill(tokens, targets, win []int32, T int, rng *rand.Rand) {
	if !o.Masked {
		copy(tokens[:T], win[:T])
		copy(targets[:T], win[1:T+1])
		return
	}
	copy(tokens[:T], win[:T])
	for i := range targets[:T] {
		targets[i] = model.IgnoreTarget
	}
	k := max(1, int(MaskRate*float64(T)+0.5))
	// A partial Fisher–Yates shuffle of the positions picks k of them.
	perm := make([]int32, T)
	for i := range perm {
		perm[i] = int32(i)
	}
	for i := 0; i < k; i++ {
		j := i + rng.IntN(T-i)
		perm[i], perm[j] = perm[j], perm[i]
		p := perm[i]
		targets[p] = win[p]
		switch r := rng.IntN(10); {
		case r < 8:
			tokens[p] = o.MaskID
		case r == 8:
			tokens[p] = int32(rng.IntN(o.Vocab))
		}
	}
}

// Sampler draws training batches: windows at random offsets of a split from
// a seeded generator whose state a checkpoint saves, so a resumed run draws
// the very batches the uninterrupted one would have.
type Sampler struct {
	Split Split
	Obj   Objective
	PCG   *rand.PCG
	rng   *rand.Rand
	// Drawn counts windows drawn so far: the data position.
	Drawn int64
	win   []int32
}

// NewSampler seeds a sampler.
func NewSampler(s Split, obj Objective, seed uint64) *Sampler {
	pcg := rand.NewPCG(seed, 0x6d6f64656c63) // "modelc": a fixed stream
	return &Sampler{Split: s, Obj: obj, PCG: pcg, rng: rand.New(pcg)}
}

// Next fills B sequences of T positions.
func (s *Sampler) Next(tokens, targets []int32, B, T int) {
	need := s.Obj.Need(T)
	if cap(s.win) < need {
		s.win = make([]int32, need)
	}
	win := s.win[:need]
	for b := 0; b < B; b++ {
		start := s.Split.Lo + s.rng.IntN(s.Split.Len()-need+1)
		s.Split.Tokens.Read(win, start)
		s.Obj.Fill(tokens[b*T:(b+1)*T], targets[b*T:(b+1)*T], win, T, s.rng)
		s.Drawn++
	}
}

// Windows returns up to max (all when max ≤ 0) start offsets of windows of
// need ids, stride apart, covering split from its start: the fixed windows
// evaluation runs, the same at every evaluation. A causal window of T+1 ids
// with stride T makes every position a target exactly once.
func Windows(s Split, need, stride, max int) []int {
	var starts []int
	for lo := s.Lo; lo+need <= s.Hi && (max <= 0 || len(starts) < max); lo += stride {
		starts = append(starts, lo)
	}
	return starts
}
