package topk

import (
	"math/rand/v2"
	"sort"
	"testing"
)

func TestHeapMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		n, k := r.IntN(300), r.IntN(20)
		all := make([]Hit, n)
		q := New(k)
		for i := range all {
			all[i] = Hit{ID: uint64(r.IntN(1000)), Score: float64(r.IntN(30))} // ties on purpose
			q.Push(all[i])
		}
		sort.Slice(all, func(i, j int) bool { return Better(all[i], all[j]) })
		got := q.Sorted()
		want := all[:min(k, n)]
		if len(got) != len(want) {
			t.Fatalf("n %d k %d: %d hits, want %d", n, k, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("n %d k %d: hit %d is %v, want %v", n, k, i, got[i], want[i])
			}
		}
	}
}
