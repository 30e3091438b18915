// Package topk keeps the k best scored ids of a stream, the selection every
// retriever ends with.
package topk

import "sort"

// Hit is an id with its score; higher is better.
type Hit struct {
	ID    uint64
	Score float64
}

// Better orders hits: higher score first, then lower id, so that rankings
// are deterministic when scores tie.
func Better(a, b Hit) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	return a.ID < b.ID
}

// Heap holds the best K hits pushed so far (a min-heap on Better).
type Heap struct {
	K int
	h []Hit
}

// New returns a heap keeping k hits.
func New(k int) *Heap { return &Heap{K: k, h: make([]Hit, 0, min(max(k, 0), 1<<16))} }

// Push offers a hit.
func (q *Heap) Push(x Hit) {
	if q.K <= 0 {
		return
	}
	if len(q.h) < q.K {
		q.h = append(q.h, x)
		q.up(len(q.h) - 1)
		return
	}
	if !Better(x, q.h[0]) {
		return
	}
	q.h[0] = x
	q.down(0)
}

// Worst is the score a hit must beat to enter a full heap (ok false while
// the heap is not full).
func (q *Heap) Worst() (float64, bool) {
	if len(q.h) < q.K || len(q.h) == 0 {
		return 0, false
	}
	return q.h[0].Score, true
}

// Sorted returns the kept hits, best first.
func (q *Heap) Sorted() []Hit {
	out := append([]Hit(nil), q.h...)
	sort.Slice(out, func(i, j int) bool { return Better(out[i], out[j]) })
	return out
}

// worse is the heap order: the root is the worst kept hit.
func (q *Heap) worse(i, j int) bool { return Better(q.h[j], q.h[i]) }

func (q *Heap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !q.worse(i, p) {
			return
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

func (q *Heap) down(i int) {
	n := len(q.h)
	for {
		l, m := 2*i+1, i
		if l < n && q.worse(l, m) {
			m = l
		}
		if r := l + 1; r < n && q.worse(r, m) {
			m = r
		}
		if m == i {
			return
		}
		q.h[i], q.h[m] = q.h[m], q.h[i]
		i = m
	}
}

// Of returns the best k of a map of scores.
func Of(scores map[uint64]float64, k int) []Hit {
	q := New(k)
	for id, s := range scores {
		q.Push(Hit{id, s})
	}
	return q.Sorted()
}
