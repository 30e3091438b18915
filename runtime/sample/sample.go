// Package sample picks the next token from a model's logits: greedy argmax, or
// temperature, softmax, top-k and top-p (nucleus) sampling the way llama2.c's
// run.c does it.
//
// The random numbers come from run.c's xorshift* generator (state ^= state>>12,
// ^= state<<25, ^= state>>27, output (state*0x2545F4914F6CDD1D)>>32), seeded
// with Params.Seed, so that a non-zero seed draws exactly the coins run.c draws
// for that seed and the choice made is reproducible across runs and machines.
// Seed 0 is a fixed point of xorshift; it is mapped to a fixed non-zero state.
package sample

import (
	"fmt"
	"math"
)

// Params configure a Sampler.
type Params struct {
	// Temperature divides the logits; 0 means greedy argmax.
	Temperature float64
	// TopP keeps the smallest most-probable set whose probability exceeds
	// TopP; 1 keeps everything.
	TopP float64
	// TopK keeps the K most probable tokens before top-p; 0 keeps everything.
	TopK int
	// Seed seeds the generator.
	Seed uint64
}

// Defaults are run.c's defaults: temperature 1, top-p 0.9, no top-k.
func Defaults() Params { return Params{Temperature: 1, TopP: 0.9} }

// Validate reports the first parameter out of range.
func (p Params) Validate() error {
	switch {
	case math.IsNaN(p.Temperature) || p.Temperature < 0 || math.IsInf(p.Temperature, 0):
		return fmt.Errorf("temperature: must be a finite number ≥ 0, got %v", p.Temperature)
	case math.IsNaN(p.TopP) || p.TopP <= 0 || p.TopP > 1:
		return fmt.Errorf("top-p: must be in (0, 1], got %v", p.TopP)
	case p.TopK < 0:
		return fmt.Errorf("top-k: must be ≥ 0 (0 = off), got %d", p.TopK)
	}
	return nil
}

// seed0 replaces a zero seed, which xorshift would never leave.
const seed0 = 0x9E3779B97F4A7C15

// Sampler draws tokens; it is not safe for concurrent use.
type Sampler struct {
	p     Params
	temp  float32
	topP  float32
	state uint64
	probs []float32
	heap  []cand
	kept  []cand
}

type cand struct {
	p float32
	i int32
}

// before orders candidates by probability, highest first, and by id on ties
// so that the result never depends on sort stability.
func before(a, b cand) bool { return a.p > b.p || (a.p == b.p && a.i < b.i) }

// New returns a sampler for p, or the error Validate gives.
func New(p Params) (*Sampler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	s := &Sampler{p: p, temp: float32(p.Temperature), topP: float32(p.TopP), state: p.Seed}
	if s.state == 0 {
		s.state = seed0
	}
	return s, nil
}

// Params returns the parameters the sampler was made with.
func (s *Sampler) Params() Params { return s.p }

func (s *Sampler) u32() uint32 {
	s.state ^= s.state >> 12
	s.state ^= s.state << 25
	s.state ^= s.state >> 27
	return uint32((s.state * 0x2545F4914F6CDD1D) >> 32)
}

// coin is a float32 in [0, 1) with 24 random bits, as run.c's random_f32.
func (s *Sampler) coin() float32 { return float32(s.u32()>>8) / 16777216.0 }

// Argmax returns the index of the largest value, the first one on ties
// (run.c's sample_argmax), or -1 for an empty slice.
func Argmax(x []float32) int {
	if len(x) == 0 {
		return -1
	}
	best, bv := 0, x[0]
	for i, v := range x[1:] {
		if v > bv {
			best, bv = i+1, v
		}
	}
	return best
}

// Sample returns the next token for logits (which it does not modify), or -1
// when logits is empty.
func (s *Sampler) Sample(logits []float32) int {
	n := len(logits)
	if n == 0 {
		return -1
	}
	if s.temp == 0 || n == 1 {
		return Argmax(logits)
	}
	probs := s.softmax(logits)
	coin := s.coin()
	k := s.p.TopK
	if k >= n {
		k = 0
	}
	if k == 0 && s.topP >= 1 {
		return sampleMult(probs, coin)
	}
	return s.sampleTop(probs, k, coin)
}

// Probs returns the distribution Sample draws from before top-k/top-p
// (logits/temperature, softmax), in a buffer reused by the next call.
func (s *Sampler) Probs(logits []float32) []float32 {
	if s.temp == 0 {
		return nil
	}
	return s.softmax(logits)
}

func (s *Sampler) softmax(logits []float32) []float32 {
	if cap(s.probs) < len(logits) {
		s.probs = make([]float32, len(logits))
	}
	p := s.probs[:len(logits)]
	mx := float32(math.Inf(-1))
	for i, v := range logits {
		v /= s.temp
		p[i] = v
		if v > mx {
			mx = v
		}
	}
	var sum float32
	for i, v := range p {
		e := float32(math.Exp(float64(v - mx)))
		p[i] = e
		sum += e
	}
	inv := 1 / sum
	for i := range p {
		p[i] *= inv
	}
	return p
}

// sampleMult draws from the whole distribution in id order (run.c's sample_mult).
func sampleMult(probs []float32, coin float32) int {
	var cdf float32
	for i, p := range probs {
		cdf += p
		if coin < cdf {
			return i
		}
	}
	return len(probs) - 1 // rounding
}

// sampleTop keeps the top k (k > 0), renormalises over them, then keeps the
// shortest prefix whose cumulative probability exceeds top-p, and draws from
// it. Without top-k it first drops every token below (1-p)/(n-1), which can
// never be in the nucleus (as run.c does). Candidates come out of a max-heap
// one at a time, so only the kept set is ever ordered: O(n + m log n) for m
// kept instead of sorting the vocabulary.
func (s *Sampler) sampleTop(probs []float32, k int, coin float32) int {
	n := len(probs)
	h := s.heap[:0]
	if k == 0 {
		cutoff := (1 - s.topP) / float32(n-1)
		for i, p := range probs {
			if p >= cutoff {
				h = append(h, cand{p, int32(i)})
			}
		}
	} else {
		for i, p := range probs {
			h = append(h, cand{p, int32(i)})
		}
	}
	s.heap = h
	if len(h) == 0 { // only NaNs: nothing comparable survived
		s.kept = s.kept[:0]
		return Argmax(probs)
	}
	heapify(h)
	kept := s.kept[:0]
	var cum float32
	if k > 0 {
		for len(kept) < k && len(h) > 0 {
			var c cand
			c, h = pop(h)
			kept = append(kept, c)
			cum += c.p
		}
		if s.topP < 1 {
			// The nucleus of the renormalised top-k distribution.
			limit := s.topP * cum
			cum = 0
			for j, c := range kept {
				cum += c.p
				if cum > limit {
					kept = kept[:j+1]
					break
				}
			}
		}
	} else {
		for len(h) > 0 {
			var c cand
			c, h = pop(h)
			kept = append(kept, c)
			cum += c.p
			if cum > s.topP {
				break
			}
		}
	}
	s.kept = kept
	r := coin * cum
	var cdf float32
	for _, c := range kept {
		cdf += c.p
		if r < cdf {
			return int(c.i)
		}
	}
	return int(kept[len(kept)-1].i) // rounding
}

func heapify(h []cand) {
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(h, i)
	}
}

func down(h []cand, i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && before(h[r], h[l]) {
			m = r
		}
		if !before(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// pop removes the best candidate and returns it with the shrunk heap.
func pop(h []cand) (cand, []cand) {
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	down(h, 0)
	return top, h
}

// Kept returns the ids top-k/top-p would draw from for logits, in order of
// probability (for tests and inspection); nil when every token is eligible
// or sampling is greedy.
func (s *Sampler) Kept(logits []float32) []int {
	n := len(logits)
	if n < 2 || s.temp == 0 {
		return nil
	}
	k := s.p.TopK
	if k >= n {
		k = 0
	}
	if k == 0 && s.topP >= 1 {
		return nil
	}
	probs := s.softmax(logits)
	s.sampleTop(probs, k, 0)
	ids := make([]int, len(s.kept))
	for j, c := range s.kept {
		ids[j] = int(c.i)
	}
	return ids
}
