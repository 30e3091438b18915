// Package dense is the semantic side of retrieval: unit vectors compared by
// cosine, searched exactly (a scan) or approximately (an HNSW graph).
package dense

import (
	"fmt"
	"math"

	"github.com/modelc/modelc/runtime/rag/topk"
)

// Normalize scales v to unit length in place and reports whether it could
// (a zero or non-finite vector cannot be normalised).
func Normalize(v []float32) bool {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 || math.IsInf(s, 0) || math.IsNaN(s) {
		return false
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
	return true
}

// Dot is the inner product; of unit vectors, their cosine. Eight
// accumulators let the CPU overlap the additions.
func Dot(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= n; i += 8 {
		x, y := a[i:i+8:i+8], b[i:i+8:i+8]
		s0 += x[0] * y[0]
		s1 += x[1] * y[1]
		s2 += x[2] * y[2]
		s3 += x[3] * y[3]
		s4 += x[4] * y[4]
		s5 += x[5] * y[5]
		s6 += x[6] * y[6]
		s7 += x[7] * y[7]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

// Index finds the vectors closest to a query.
type Index interface {
	// Search returns the k nearest ids by cosine, best first.
	Search(q []float32, k int) []topk.Hit
	Len() int
}

// Flat is the exact index: every query scans every vector.
type Flat struct {
	Dim  int
	IDs  []uint64
	Vecs []float32 // len(IDs) × Dim, unit rows
}

// NewFlat returns an empty flat index for vectors of dim.
func NewFlat(dim int) *Flat { return &Flat{Dim: dim} }

// Add appends a vector (normalised on the way in).
func (f *Flat) Add(id uint64, v []float32) error {
	if len(v) != f.Dim {
		return fmt.Errorf("vector of %d values, the index holds %d", len(v), f.Dim)
	}
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("vector %d: value %d is %v", id, i, x)
		}
	}
	n := len(f.Vecs)
	f.Vecs = append(f.Vecs, v...)
	Normalize(f.Vecs[n:]) // a zero vector stays zero: similar to nothing
	f.IDs = append(f.IDs, id)
	return nil
}

// Len is the number of vectors.
func (f *Flat) Len() int { return len(f.IDs) }

// Search scans every vector.
func (f *Flat) Search(q []float32, k int) []topk.Hit {
	if len(q) != f.Dim || k <= 0 {
		return nil
	}
	h := topk.New(k)
	for i, id := range f.IDs {
		s := Dot(q, f.Vecs[i*f.Dim:(i+1)*f.Dim])
		h.Push(topk.Hit{ID: id, Score: float64(s)})
	}
	return h.Sorted()
}

func logf(x float64) float64 { return math.Log(x) }
