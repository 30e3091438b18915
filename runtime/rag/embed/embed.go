// Package embed turns text into vectors for semantic retrieval: a
// deterministic hashing baseline that needs no model, and the pooled hidden
// states of a model compiled by modelc.
package embed

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"

	"github.com/modelc/modelc/runtime/rag/bm25"
	"github.com/modelc/modelc/runtime/rag/dense"
)

// Embedder maps texts to unit vectors of a fixed dimension. The name
// identifies the embedding space: vectors from embedders of different names
// are not comparable, and a store remembers the name it was built with.
type Embedder interface {
	Name() string
	Dim() int
	// Embed returns one vector per text, each of length Dim and unit norm
	// (a text with nothing to embed gives the zero vector).
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// Hash is the BASELINE embedder: a hashed bag of stemmed words and of their
// character trigrams (feature hashing with random signs), log-scaled and
// unit-normalised. It knows nothing of meaning beyond shared word pieces;
// it stands in for a trained model and makes dense retrieval testable
// without one.
type Hash struct {
	D int // dimension
}

// MaxHashDim bounds the hash embedder's dimension: far more than feature
// hashing gains from, and small enough that a mistyped value is an error
// rather than an allocation that takes the machine's memory.
const MaxHashDim = 1 << 16

// CheckHashDim says whether d is a dimension the hash embedder takes.
func CheckHashDim(d int) error {
	if d < 1 || d > MaxHashDim {
		return fmt.Errorf("must be in [1, %d], got %d", MaxHashDim, d)
	}
	return nil
}

// NewHash returns the baseline embedder with d dimensions.
func NewHash(d int) *Hash { return &Hash{D: d} }

// Name says what the vectors are, dimension included.
func (h *Hash) Name() string { return fmt.Sprintf("hash-v1/%d", h.D) }

// Dim is the vector length.
func (h *Hash) Dim() int { return h.D }

// Embed hashes each text.
func (h *Hash) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if err := CheckHashDim(h.D); err != nil {
		return nil, fmt.Errorf("hash embedder: dimension %w", err)
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		out[i] = h.one(t)
	}
	return out, nil
}

// Weights of the two feature kinds: whole words say more than pieces.
const (
	wordWeight    = 1.0
	trigramWeight = 0.35
)

func (h *Hash) one(text string) []float32 {
	counts := map[string]float64{}
	bm25.Default.Each(text, func(t string) {
		counts["w:"+t] += wordWeight
		p := "<" + t + ">"
		for i := 0; i+3 <= len(p); i++ {
			counts["c:"+p[i:i+3]] += trigramWeight
		}
	})
	v := make([]float64, h.D)
	for f, c := range counts {
		hs := fnv.New64a()
		hs.Write([]byte(f))
		x := hs.Sum64()
		sign := 1.0
		if x>>63 == 1 {
			sign = -1
		}
		v[(x&(1<<63-1))%uint64(h.D)] += sign * math.Log1p(c)
	}
	out := make([]float32, h.D)
	for i, x := range v {
		out[i] = float32(x)
	}
	dense.Normalize(out)
	return out
}
