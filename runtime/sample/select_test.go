package sample

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// randomLogits draws n logits of the given scale; with ties, rounded to
// quarters so that many are equal (ties are ordered by id).
func randomLogits(r *rand.Rand, n int, scale float64, ties bool) []float32 {
	l := make([]float32, n)
	for i := range l {
		v := r.NormFloat64() * scale
		if ties {
			v = math.Round(v*4) / 4
		}
		l[i] = float32(v)
	}
	return l
}

func keptIDs(c []cand) []int {
	ids := make([]int, len(c))
	for i, x := range c {
		ids[i] = int(x.i)
	}
	return ids
}

// The one-pass top-k selection keeps the ids, in the order, that the heap
// over the full softmax keeps, and draws the same token for the same coin
// (the renormalisation over the kept set cancels the softmax's sum; only a
// coin within rounding of a boundary between two tokens may differ).
func TestTopKSelectionMatchesFullSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	mismatch, draws := 0, 0
	for trial := range 48 {
		n := []int{50, 512, 4096, 32000}[trial%4]
		ties := trial%3 == 0
		logits := randomLogits(r, n, []float64{0.5, 2, 6}[trial%3], ties)
		p := Params{Temperature: 0.3 + 1.2*r.Float64(), TopP: []float64{1, 0.9, 0.5}[trial%3], TopK: []int{1, 2, 40, 49}[(trial/3)%4]}
		fast, ref := mustNew(t, p), mustNew(t, p)
		fast.sampleTopK(logits, p.TopK, 0)
		ref.sampleTop(ref.softmax(logits), p.TopK, 0)
		got, want := keptIDs(fast.kept), keptIDs(ref.kept)
		if !slices.Equal(got, want) {
			// The top-p boundary may move by one token when the cumulative
			// sum lands within rounding of it; the order never differs.
			short, long := got, want
			if len(short) > len(long) {
				short, long = long, short
			}
			if p.TopP == 1 || len(long)-len(short) != 1 || !slices.Equal(short, long[:len(short)]) {
				t.Fatalf("trial %d (n %d, %+v): top-k selection keeps %v, full softmax and heap keep %v", trial, n, p, got, want)
			}
			continue
		}
		probs := slices.Clone(ref.softmax(logits))
		for c := range 16 {
			coin := (float32(c) + 0.5) / 16
			draws++
			if fast.sampleTopK(logits, p.TopK, coin) != ref.sampleTop(probs, p.TopK, coin) {
				mismatch++
			}
		}
	}
	if mismatch > draws/1000 {
		t.Fatalf("%d of %d draws differ from the full-softmax sampler", mismatch, draws)
	}
}

// The bucketed top-p selection gives exactly the heap's result: the same
// kept ids in the same order, and the same draw for every coin.
func TestTopPSelectionMatchesHeap(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for trial := range 40 {
		n := []int{2, 50, 4096, 32000}[trial%4]
		logits := randomLogits(r, n, []float64{0.1, 1, 2, 8}[(trial/4)%4], trial%3 == 0)
		p := Params{Temperature: 0.3 + 1.2*r.Float64(), TopP: []float64{0.9, 0.5, 0.99, 0.1, 0.999999}[trial%5]}
		fast, ref := mustNew(t, p), mustNew(t, p)
		probs := slices.Clone(fast.softmax(logits))
		for c := range 9 {
			coin := float32(c) / 8
			if c == 8 {
				coin = 0.99999994
			}
			a, b := fast.sampleTopP(probs, coin), ref.sampleTop(probs, 0, coin)
			if a != b {
				t.Fatalf("trial %d (n %d, %+v), coin %v: bucketed top-p draws %d, heap draws %d", trial, n, p, coin, a, b)
			}
			if !slices.Equal(keptIDs(fast.kept), keptIDs(ref.kept)) {
				t.Fatalf("trial %d (n %d, %+v): bucketed top-p keeps %v, heap keeps %v", trial, n, p, keptIDs(fast.kept), keptIDs(ref.kept))
			}
		}
	}
}

// Non-finite logits: NaNs are never kept, +Inf wins, equal infinities
// share the mass; the result is always inside the vocabulary.
func TestTopKNonFinite(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	s := mustNew(t, Params{Temperature: 1, TopP: 0.9, TopK: 2, Seed: 3})
	for _, c := range []struct {
		logits []float32
		want   []int
	}{
		{[]float32{nan, 1, 2, nan}, []int{2, 1}},
		{[]float32{1, inf, 2, nan}, []int{1}},
		{[]float32{-inf, nan, -inf}, []int{0, 2}},
	} {
		if got := s.Kept(c.logits); !slices.Equal(got, c.want) {
			t.Errorf("Kept(%v) = %v, want %v", c.logits, got, c.want)
		}
		for range 20 {
			if got := s.Sample(c.logits); got < 0 || got >= len(c.logits) || math.IsNaN(float64(c.logits[got])) {
				t.Fatalf("Sample(%v) = %d", c.logits, got)
			}
		}
	}
	if got := s.Sample([]float32{nan, nan, nan}); got < 0 || got > 2 {
		t.Fatalf("all NaN: %d", got)
	}
}

// TestNucleusMatchesBuckets: nucleus, which orders small candidate sets with
// the heap, keeps and draws what sampleTopP's buckets do, on both sides of
// heapTopP.
func TestNucleusMatchesBuckets(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	heap, buckets := 0, 0
	for trial := range 48 {
		n := []int{3, 512, 2048, 32000}[trial%4]
		logits := randomLogits(r, n, []float64{0.1, 1, 3, 8}[(trial/4)%4], trial%5 == 0)
		p := Params{Temperature: 0.5 + r.Float64(), TopP: []float64{0.9, 0.5, 0.99}[trial%3]}
		a, b := mustNew(t, p), mustNew(t, p)
		probs := slices.Clone(a.softmax(logits))
		cutoff := (1 - a.topP) / float32(n-1)
		c := 0
		for _, q := range probs {
			if q >= cutoff {
				c++
			}
		}
		if c <= heapTopP {
			heap++
		} else {
			buckets++
		}
		for k := range 5 {
			coin := float32(k) / 5
			if x, y := a.nucleus(probs, coin), b.sampleTopP(probs, coin); x != y || !slices.Equal(keptIDs(a.kept), keptIDs(b.kept)) {
				t.Fatalf("trial %d (n %d, %d candidates, %+v), coin %v: nucleus draws %d keeping %v, buckets %d keeping %v",
					trial, n, c, p, coin, x, keptIDs(a.kept), y, keptIDs(b.kept))
			}
		}
	}
	if heap == 0 || buckets == 0 {
		t.Fatalf("the trials took the heap %d times and the buckets %d: both sides must be tried", heap, buckets)
	}
}
