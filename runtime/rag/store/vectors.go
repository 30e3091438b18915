package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/modelc/modelc/runtime/rag/dense"
	"github.com/modelc/modelc/runtime/rag/topk"
)

func encodeVec(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func decodeVec(b []byte, dim int, into []float32) ([]float32, error) {
	if len(b) != 4*dim {
		return nil, fmt.Errorf("stored vector of %d bytes, want %d", len(b), 4*dim)
	}
	for i := 0; i < dim; i++ {
		into = append(into, math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
	}
	return into, nil
}

// vecCache holds the dense index of one generation of a collection, so that
// a long-lived store (the server) loads vectors once per ingest, not per query.
type vecCache struct {
	mu  sync.Mutex
	gen uint64
	idx dense.Index
}

// get returns the cached index for gen, or builds one with load.
func (c *vecCache) get(gen uint64, load func() (dense.Index, error)) (dense.Index, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idx != nil && c.gen == gen {
		return c.idx, nil
	}
	idx, err := load()
	if err != nil {
		return nil, err
	}
	c.idx, c.gen = idx, gen
	return idx, nil
}

// indexFor wraps loaded vectors: an HNSW graph when the collection is large
// enough and a stored graph fits, else exact search.
func indexFor(f *dense.Flat, graph []byte, o Options) (dense.Index, error) {
	if o.HNSWMin > 0 && f.Len() >= o.HNSWMin && len(graph) > 0 {
		h, err := dense.ImportHNSW(graph, f, dense.DefaultHNSW.EfSearch)
		if err != nil {
			return nil, err
		}
		return h, nil
	}
	return f, nil
}

// graphFor builds the HNSW graph a commit stores (nil below the threshold).
func graphFor(f *dense.Flat, o Options) ([]byte, error) {
	if o.HNSWMin <= 0 || f.Len() < o.HNSWMin {
		return nil, nil
	}
	h, err := dense.BuildHNSW(f, dense.DefaultHNSW)
	if err != nil {
		return nil, err
	}
	return h.Export(), nil
}

func denseSearch(idx dense.Index, vec []float32, k, dim int) ([]topk.Hit, error) {
	if len(vec) != dim {
		return nil, fmt.Errorf("query vector of %d values, the collection's are %d", len(vec), dim)
	}
	q := append([]float32(nil), vec...)
	dense.Normalize(q)
	return idx.Search(q, k), nil
}
