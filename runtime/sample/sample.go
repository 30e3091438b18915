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
	"slices"
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
	count []int32   // sampleTopP: candidates per bucket
	mass  []float64 // sampleTopP: probability per bucket
	keys  []uint64  // sampleTopP: candidates as sort keys
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
	if i := argmaxAsm(x); i >= 0 { // AVX2: 512 logits in ≈ 30 ns instead of ≈ 300
		return i
	}
	return argmaxGo(x)
}

// argmaxGo is Argmax's loop: a NaN is never larger, so NaNs are skipped
// unless x[0] is one (then the answer is 0), as in run.c.
func argmaxGo(x []float32) int {
	best, bv := 0, x[0]
	for i, v := range x[1:] {
		if v > bv {
			best, bv = i+1, v
		}
	}
	return best
}

// Greedy reports whether s always picks the largest logit (temperature 0):
// a caller may then ask the model for that token without the logits
// (model.Greedy).
func (s *Sampler) Greedy() bool { return s.temp == 0 }

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
	k := s.p.TopK
	if k >= n {
		k = 0
	}
	if k > 0 {
		return s.sampleTopK(logits, k, s.coin())
	}
	probs := s.softmax(logits)
	coin := s.coin()
	if s.topP >= 1 {
		return sampleMult(probs, coin)
	}
	return s.nucleus(probs, coin)
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
	sum, ok := expAsm(p, logits, s.temp)
	if !ok {
		sum = expGo(p, logits, s.temp)
	}
	inv := 1 / sum
	if !scaleAsm(p, inv) {
		for i := range p {
			p[i] *= inv
		}
	}
	return p
}

// expGo sets p[i] = float32(math.Exp(float64(logits[i]/temp - mx))), mx the
// largest logits[i]/temp (NaNs skipped), and returns their float32 sum in
// index order: the numbers expAsm must match.
func expGo(p, logits []float32, temp float32) (sum float32) {
	mx := float32(math.Inf(-1))
	for i, v := range logits {
		v /= temp
		p[i] = v
		if v > mx {
			mx = v
		}
	}
	for i, v := range p {
		e := float32(math.Exp(float64(v - mx)))
		p[i] = e
		sum += e
	}
	return sum
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
// kept instead of sorting the vocabulary. Sample goes through sampleTopK,
// and through nucleus to this or sampleTopP, which give the same result; this
// is also their reference in the tests and sampleTopP's fallback.
func (s *Sampler) sampleTop(probs []float32, k int, coin float32) int {
	var h []cand
	if k == 0 {
		h, _ = s.candidates(probs, len(probs))
	} else {
		h = s.heap[:0]
		for i, p := range probs {
			h = append(h, cand{p, int32(i)})
		}
		s.heap = h
	}
	return s.fromHeap(h, probs, k, coin)
}

// candidates gathers into s.heap the tokens at or above top-p's cutoff,
// (1-p)/(n-1), or stops and reports false after more than most.
func (s *Sampler) candidates(probs []float32, most int) ([]cand, bool) {
	cutoff := (1 - s.topP) / float32(len(probs)-1)
	h := s.heap[:0]
	defer func() { s.heap = h }()
	for i, p := range probs {
		if p >= cutoff {
			if len(h) == most {
				return h, false
			}
			h = append(h, cand{p, int32(i)})
		}
	}
	return h, true
}

// fromHeap is sampleTop's selection and draw from its candidates h.
func (s *Sampler) fromHeap(h []cand, probs []float32, k int, coin float32) int {
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
	return s.draw(coin, cum)
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
	if k > 0 {
		s.sampleTopK(logits, k, 0)
	} else {
		s.nucleus(s.softmax(logits), 0)
	}
	ids := make([]int, len(s.kept))
	for j, c := range s.kept {
		ids[j] = int(c.i)
	}
	return ids
}

// heapTopP is the most candidates (probabilities at or above top-p's
// cutoff) that nucleus orders with sampleTop's heap: below it the heap beats
// sampleTopP's buckets, whose fixed cost (≈ 1,700 buckets cleared and
// walked) is most of a 512-token vocabulary's sampling (heap 0.2–1.8 µs,
// buckets 2.6–7.8 µs there); above it a flat distribution's nucleus of
// thousands is cheaper bucketed.
const heapTopP = 1024

// nucleus is sampleTop without top-k, through whichever of the heap and the
// buckets is faster for probs; both keep the same tokens and draw the same one.
func (s *Sampler) nucleus(probs []float32, coin float32) int {
	if h, ok := s.candidates(probs, heapTopP); ok {
		return s.fromHeap(h, probs, 0, coin)
	}
	return s.sampleTopP(probs, coin)
}

// sampleTopK keeps the k (0 < k < len(logits)) most probable tokens, then
// the top-p nucleus of their renormalised distribution, and draws from it.
// Probability is monotone in logit/temperature, so the k are chosen on
// logit/temperature (ties by id, as sampleTop orders them) in one pass with a
// k-element heap, and only their k exponentials are computed: the softmax
// over the whole vocabulary would be normalised away by the renormalisation.
// The kept ids and their order are sampleTop's over the full softmax
// whenever the k+1 most probable tokens have distinct probabilities (the
// exponential can only merge values that underflow or round together).
func (s *Sampler) sampleTopK(logits []float32, k int, coin float32) int {
	h := s.heap[:0]
	i := 0
	// Fill the heap with the first k comparable logits.
	for ; i < len(logits) && len(h) < k; i++ {
		v := logits[i] / s.temp
		if v != v { // NaN: not comparable, never kept
			continue
		}
		h = append(h, cand{v, int32(i)})
	}
	if len(h) == k {
		for j := k/2 - 1; j >= 0; j-- {
			downWorst(h, j)
		}
		// A logit not above the root's cannot make it (l/temp is monotone
		// in l, and on a tie the later id loses; NaN is never above): the
		// scan is one load and one comparison per logit, against the root's
		// logit kept in a register.
		thr := logits[h[0].i]
		for ; i < len(logits); i++ {
			l := logits[i]
			if !(l > thr) {
				continue
			}
			// Every id in the heap is below i, so on a tie i loses.
			if v := l / s.temp; v > h[0].p {
				h[0] = cand{v, int32(i)}
				downWorst(h, 0)
				thr = logits[h[0].i]
			}
		}
	}
	s.heap = h
	if len(h) == 0 { // only NaNs
		s.kept = s.kept[:0]
		return Argmax(logits)
	}
	kept := append(s.kept[:0], h...)
	slices.SortFunc(kept, cmpCand)
	mx := kept[0].p
	var cum float32
	for j := range kept {
		e := float32(1) // v == mx: also when both are ±Inf
		if v := kept[j].p; v != mx {
			e = float32(math.Exp(float64(v - mx)))
		}
		kept[j].p = e
		cum += e
	}
	if s.topP < 1 {
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
	s.kept = kept
	return s.draw(coin, cum)
}

// downWorst restores the heap whose root is the least probable candidate
// (on ties, the highest id): the k best seen so far, worst on top.
func downWorst(h []cand, i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && before(h[l], h[r]) {
			m = r
		}
		if !before(h[i], h[m]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// sampleTopP is sampleTop without top-k, with the same result (the same
// candidates summed in the same order), but it orders only the nucleus and
// little more, by bucketing: a float32 probability's bits shifted right by
// 16 (exponent and 7 mantissa bits) grow with it, so the buckets from the
// top down are the candidates in order up to the order inside each bucket
// (within 1 % of each other). The buckets that hold the nucleus, with a
// margin for rounding, are gathered and sorted one at a time as the
// cumulative sum reaches them. Anything unexpected (no candidates, a
// rounding margin too thin) falls back to sampleTop.
func (s *Sampler) sampleTopP(probs []float32, coin float32) int {
	n := len(probs)
	cutoff := (1 - s.topP) / float32(n-1)
	base := math.Float32bits(cutoff) >> 16
	top := math.Float32bits(1) >> 16
	if base > top {
		return s.sampleTop(probs, 0, coin)
	}
	nb := int(top-base) + 1
	if cap(s.count) < nb {
		s.count = make([]int32, nb)
		s.mass = make([]float64, nb)
	}
	count, mass := s.count[:nb], s.mass[:nb]
	clear(count)
	clear(mass)
	for _, p := range probs {
		if p >= cutoff {
			b := math.Float32bits(p)>>16 - base
			if b >= uint32(nb) { // above 1: not a distribution
				return s.sampleTop(probs, 0, coin)
			}
			count[b]++
			mass[b] += float64(p)
		}
	}
	// The lowest bucket needed: the cumulative mass from the top passes
	// top-p with a margin far above float32 rounding of the sums.
	low, total := 0, 0
	var m float64
	for b := nb - 1; b >= 0; b-- {
		m += mass[b]
		total += int(count[b])
		if m > float64(s.topP)+0.01 {
			low = b
			break
		}
	}
	if total == 0 {
		return s.sampleTop(probs, 0, coin)
	}
	// Offsets of the buckets from the top, reusing count as the write index.
	off := 0
	for b := nb - 1; b >= low; b-- {
		c := int(count[b])
		count[b] = int32(off)
		off += c
	}
	if cap(s.keys) < total {
		s.keys = make([]uint64, total)
	}
	// A candidate's key sorts as sampleTop orders, descending: the
	// probability's bits (monotone for p ≥ 0) above the complement of its id.
	g := s.keys[:total]
	for i, p := range probs {
		if p >= cutoff {
			bits := math.Float32bits(p)
			if b := int(bits>>16 - base); b >= low {
				g[count[b]] = uint64(bits)<<32 | uint64(^uint32(i))
				count[b]++
			}
		}
	}
	// count[b] is now the end of bucket b; its start is the end of b+1.
	var cum float32
	start := 0
	kept := s.kept[:0]
	for b := nb - 1; b >= low; b-- {
		end := int(count[b])
		seg := g[start:end]
		slices.Sort(seg)
		for j := len(seg) - 1; j >= 0; j-- {
			c := cand{math.Float32frombits(uint32(seg[j] >> 32)), int32(^uint32(seg[j]))}
			kept = append(kept, c)
			cum += c.p
			if cum > s.topP {
				s.kept = kept
				return s.draw(coin, cum)
			}
		}
		start = end
	}
	s.kept = kept
	return s.sampleTop(probs, 0, coin)
}

// cmpCand orders candidates as before does.
func cmpCand(a, b cand) int {
	switch {
	case before(a, b):
		return -1
	case before(b, a):
		return 1
	}
	return 0
}

// draw picks from s.kept, whose probabilities sum to cum, with coin.
func (s *Sampler) draw(coin, cum float32) int {
	r := coin * cum
	var cdf float32
	for _, c := range s.kept {
		cdf += c.p
		if r < cdf {
			return int(c.i)
		}
	}
	return int(s.kept[len(s.kept)-1].i) // rounding
}
