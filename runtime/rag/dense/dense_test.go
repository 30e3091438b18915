package dense

import (
	"math/rand/v2"
	"testing"
)

// clustered makes n unit vectors around c random centres, the shape real
// embeddings have (uniform random vectors are the worst case of any ANN index).
func clustered(n, dim, c int, seed uint64) *Flat {
	r := rand.New(rand.NewPCG(seed, 1))
	cent := make([][]float32, c)
	for i := range cent {
		cent[i] = make([]float32, dim)
		for j := range cent[i] {
			cent[i][j] = float32(r.NormFloat64())
		}
	}
	f := NewFlat(dim)
	v := make([]float32, dim)
	for i := 0; i < n; i++ {
		ce := cent[r.IntN(c)]
		for j := range v {
			v[j] = ce[j] + 0.7*float32(r.NormFloat64())
		}
		f.Add(uint64(i+1), v)
	}
	return f
}

func recall(a, b Index, queries *Flat, k int) float64 {
	agree, total := 0, 0
	for i := 0; i < queries.Len(); i++ {
		q := queries.Vecs[i*queries.Dim : (i+1)*queries.Dim]
		ex := map[uint64]bool{}
		for _, h := range a.Search(q, k) {
			ex[h.ID] = true
		}
		for _, h := range b.Search(q, k) {
			if ex[h.ID] {
				agree++
			}
		}
		total += k
	}
	return float64(agree) / float64(total)
}

func TestHNSWRecall(t *testing.T) {
	f := clustered(5000, 64, 50, 1)
	qs := clustered(200, 64, 50, 2)
	h, err := BuildHNSW(f, DefaultHNSW)
	if err != nil {
		t.Fatal(err)
	}
	if h.Len() != f.Len() {
		t.Fatalf("graph has %d nodes, want %d", h.Len(), f.Len())
	}
	r := recall(f, h, qs, 10)
	t.Logf("recall@10 %.3f", r)
	if r < 0.95 {
		t.Errorf("HNSW recall@10 %.3f against exact search, want ≥ 0.95", r)
	}
	// A wider beam finds more.
	h.P.EfSearch = 10
	if r10 := recall(f, h, qs, 10); r10 >= r || r10 < 0.3 {
		t.Errorf("recall with ef 10 is %.3f, with ef %d %.3f: want lower but sane", r10, DefaultHNSW.EfSearch, r)
	}
	h.P.EfSearch = DefaultHNSW.EfSearch

	// Export and import give the same graph and answers.
	b := h.Export()
	h2, err := ImportHNSW(b, f, DefaultHNSW.EfSearch)
	if err != nil {
		t.Fatal(err)
	}
	if string(h2.Export()) != string(b) {
		t.Fatal("re-exported graph differs")
	}
	q := qs.Vecs[:qs.Dim]
	a, c := h.Search(q, 10), h2.Search(q, 10)
	for i := range a {
		if a[i] != c[i] {
			t.Fatalf("imported graph answers %v, original %v", c, a)
		}
	}
	// Damaged graphs are errors, not panics.
	for _, bad := range [][]byte{nil, b[:3], b[:20], b[:len(b)-2], append(append([]byte{}, b...), 0)} {
		if _, err := ImportHNSW(bad, f, 10); err == nil {
			t.Errorf("a damaged graph of %d bytes imported", len(bad))
		}
	}
	if _, err := ImportHNSW(b, clustered(10, 64, 2, 3), 10); err == nil {
		t.Error("a graph imported for the wrong number of vectors")
	}
}

func TestFlatExact(t *testing.T) {
	f := NewFlat(3)
	for i, v := range [][]float32{{1, 0, 0}, {0, 2, 0}, {1, 1, 0}, {0, 0, 0}} {
		if err := f.Add(uint64(i+1), v); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Add(9, []float32{1, 2}); err == nil {
		t.Error("a vector of the wrong length was added")
	}
	nan := float32(0)
	if err := f.Add(9, []float32{nan / nan, 0, 0}); err == nil {
		t.Error("a NaN vector was added")
	}
	q := []float32{1, 0, 0}
	got := f.Search(q, 3)
	if len(got) != 3 || got[0].ID != 1 || got[1].ID != 3 || got[2].ID != 2 {
		t.Fatalf("search %v, want ids 1, 3, 2", got)
	}
	if d := got[1].Score - 0.70710678; d > 1e-6 || d < -1e-6 {
		t.Errorf("cosine of (1,0,0) and (1,1,0) is %v, want 0.7071", got[1].Score)
	}
}

func FuzzImportHNSW(f *testing.F) {
	fl := clustered(40, 8, 3, 5)
	h, _ := BuildHNSW(fl, HNSWParams{M: 4, EfConstruction: 10, EfSearch: 10, Seed: 1})
	f.Add(h.Export())
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ImportHNSW(b, fl, 10)
		if err != nil {
			return
		}
		g.Search(fl.Vecs[:8], 5) // an accepted graph must be searchable
	})
}
