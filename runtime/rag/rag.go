// Package rag is retrieval-augmented generation for modelc binaries: it
// ingests text files into a store (chunks indexed by BM25 and by dense
// vectors), retrieves by keywords, by meaning or both fused, and answers a
// question with a model from what it found.
//
// Sub-packages: chunk (splitting), bm25 (analyzer and scoring), dense
// (exact and HNSW vector search), embed (embedders), store (bbolt and
// PostgreSQL), eval (Cranfield, nDCG).
package rag

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/modelc/modelc/runtime/rag/bm25"
	"github.com/modelc/modelc/runtime/rag/embed"
	"github.com/modelc/modelc/runtime/rag/store"
	"github.com/modelc/modelc/runtime/rag/topk"
)

// Mode is how to retrieve.
type Mode string

// Retrieval modes.
const (
	BM25   Mode = "bm25"   // keywords, Okapi BM25
	Dense  Mode = "dense"  // meaning, cosine of embeddings
	Hybrid Mode = "hybrid" // both, fused by reciprocal rank
	FTS    Mode = "fts"    // PostgreSQL's full-text search (PostgreSQL stores only)
)

// ParseMode checks a mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case BM25, Dense, Hybrid, FTS:
		return m, nil
	}
	return "", fmt.Errorf("unknown retrieval mode %q (want bm25, dense, hybrid or fts)", s)
}

// RRFK is the k of reciprocal rank fusion: score = Σ 1/(k + rank).
const RRFK = 60

// Result is one retrieved chunk.
type Result struct {
	store.Chunk
	Score float64 // BM25 score, cosine, or fused score, as the mode gives
	// Ranks in the keyword and dense lists (1-based; 0: not in that list).
	KeywordRank, DenseRank int
}

// Retriever searches a store.
type Retriever struct {
	Store    store.Store
	Analyzer bm25.Analyzer
	Embedder embed.Embedder // nil: keyword search only
	// Candidates is how many each list contributes to a hybrid fusion
	// (default max(k, 100)).
	Candidates int
}

// ErrNoTerms is returned when a keyword query has no searchable words.
var ErrNoTerms = errors.New("the query has no searchable words (only stop words or punctuation)")

// ErrNoFTS is in the error of an fts search of a store without full-text
// search of its own (a file store).
var ErrNoFTS = errors.New("fts needs PostgreSQL")

// ErrEmptyQuery is returned for a query of nothing but white space, which
// would otherwise rank chunks by a zero vector, arbitrarily. It is an
// ErrNoTerms too (errors.Is), so that callers that answer without context
// when there is nothing to search for (the chat server) go on doing so.
var ErrEmptyQuery error = emptyQuery{}

type emptyQuery struct{}

func (emptyQuery) Error() string        { return "the query is empty" }
func (emptyQuery) Is(target error) bool { return target == ErrNoTerms }

// fullTexter is a store with its own full-text search.
type fullTexter interface {
	KeywordFTS(ctx context.Context, words []string, k int) ([]topk.Hit, error)
}

// check compares how the collection was built with how it is queried.
func (r *Retriever) check(ctx context.Context, mode Mode) (store.Meta, error) {
	m, ok, err := r.Store.Meta(ctx)
	if err != nil {
		return m, err
	}
	if !ok {
		return m, store.ErrEmpty
	}
	if m.Analyzer != r.Analyzer.Name() {
		return m, fmt.Errorf("store %s was indexed with analyzer %s, the query uses %s", r.Store.Location(), m.Analyzer, r.Analyzer.Name())
	}
	if mode == Dense || mode == Hybrid {
		if r.Embedder == nil {
			return m, fmt.Errorf("%s search needs the embedder the store was built with (%s)", mode, m.Embedder)
		}
		if r.Embedder.Name() != m.Embedder {
			return m, fmt.Errorf("store %s holds %s vectors, the query embedder is %s: pass the same embedder (or model)", r.Store.Location(), m.Embedder, r.Embedder.Name())
		}
	}
	return m, nil
}

// Search returns the k best chunks for query.
func (r *Retriever) Search(ctx context.Context, query string, mode Mode, k int) ([]Result, error) {
	if k < 1 {
		return nil, fmt.Errorf("k must be ≥ 1, got %d", k)
	}
	if strings.TrimSpace(query) == "" {
		return nil, ErrEmptyQuery
	}
	if _, err := r.check(ctx, mode); err != nil {
		return nil, err
	}
	var (
		hits          []topk.Hit
		kwRank, dRank map[uint64]int
		err           error
	)
	switch mode {
	case BM25:
		if hits, err = r.keyword(ctx, query, k); err != nil {
			return nil, err
		}
	case FTS:
		ft, ok := r.Store.(fullTexter)
		if !ok {
			return nil, fmt.Errorf("store %s has no full-text search of its own (%w); use bm25", r.Store.Location(), ErrNoFTS)
		}
		words := store.FTSAnalyzer.Terms(query)
		if len(words) == 0 {
			return nil, ErrNoTerms
		}
		if hits, err = ft.KeywordFTS(ctx, words, k); err != nil {
			return nil, err
		}
	case Dense:
		if hits, err = r.dense(ctx, query, k); err != nil {
			return nil, err
		}
	case Hybrid:
		n := r.Candidates
		if n <= 0 {
			n = max(k, 100)
		}
		kw, err := r.keyword(ctx, query, n)
		if err != nil && !errors.Is(err, ErrNoTerms) {
			return nil, err
		}
		dn, err := r.dense(ctx, query, n)
		if err != nil {
			return nil, err
		}
		kwRank, dRank = ranks(kw), ranks(dn)
		hits = Fuse(k, kw, dn)
	default:
		return nil, fmt.Errorf("unknown retrieval mode %q", mode)
	}
	return r.results(ctx, hits, mode, kwRank, dRank)
}

func ranks(hs []topk.Hit) map[uint64]int {
	m := make(map[uint64]int, len(hs))
	for i, h := range hs {
		m[h.ID] = i + 1
	}
	return m
}

func (r *Retriever) keyword(ctx context.Context, query string, k int) ([]topk.Hit, error) {
	terms := r.Analyzer.Terms(query)
	if len(terms) == 0 {
		return nil, ErrNoTerms
	}
	return r.Store.Keyword(ctx, terms, k)
}

func (r *Retriever) dense(ctx context.Context, query string, k int) ([]topk.Hit, error) {
	vs, err := r.Embedder.Embed(ctx, []string{query})
	if err != nil {
		return nil, fmt.Errorf("embed the query: %w", err)
	}
	return r.Store.Dense(ctx, vs[0], k)
}

func (r *Retriever) results(ctx context.Context, hits []topk.Hit, mode Mode, kwRank, dRank map[uint64]int) ([]Result, error) {
	ids := make([]uint64, len(hits))
	for i, h := range hits {
		ids[i] = h.ID
	}
	cs, err := r.Store.Chunks(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]Result, len(hits))
	for i, h := range hits {
		out[i] = Result{Chunk: cs[i], Score: h.Score}
		switch mode {
		case Hybrid:
			out[i].KeywordRank, out[i].DenseRank = kwRank[h.ID], dRank[h.ID]
		case Dense:
			out[i].DenseRank = i + 1
		default:
			out[i].KeywordRank = i + 1
		}
	}
	return out, nil
}

// Fuse merges rankings by reciprocal rank fusion (k = RRFK): each id scores
// the sum over the lists it is in of 1/(RRFK + rank), rank counted from 1.
func Fuse(k int, lists ...[]topk.Hit) []topk.Hit {
	scores := map[uint64]float64{}
	for _, l := range lists {
		for i, h := range l {
			scores[h.ID] += 1 / float64(RRFK+i+1)
		}
	}
	out := topk.Of(scores, k)
	sort.SliceStable(out, func(i, j int) bool { return topk.Better(out[i], out[j]) })
	return out
}
