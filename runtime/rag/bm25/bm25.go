package bm25

import (
	"math"

	"github.com/modelc/modelc/runtime/rag/topk"
)

// Params are the Okapi BM25 constants.
type Params struct {
	K1 float64 // term-frequency saturation
	B  float64 // document-length normalisation
}

// DefaultParams are the customary k1 = 1.2, b = 0.75.
var DefaultParams = Params{K1: 1.2, B: 0.75}

// IDF is the inverse document frequency of a term found in df of n
// documents, in the form that is never negative (as Lucene uses):
// ln(1 + (n − df + 0.5) / (df + 0.5)).
func IDF(n, df int64) float64 {
	return math.Log(1 + (float64(n)-float64(df)+0.5)/(float64(df)+0.5))
}

// Term is the contribution of one query term to one document: the term
// occurs tf times in a document of dl terms, documents average avgdl terms.
func (p Params) Term(idf float64, tf, dl int, avgdl float64) float64 {
	if tf <= 0 {
		return 0
	}
	norm := 1 - p.B
	if avgdl > 0 {
		norm += p.B * float64(dl) / avgdl
	}
	t := float64(tf)
	return idf * t * (p.K1 + 1) / (t + p.K1*norm)
}

// QueryTerms counts the distinct terms of a query; a repeated term weighs
// its count (the query-side term frequency).
func QueryTerms(terms []string) map[string]int {
	q := make(map[string]int, len(terms))
	for _, t := range terms {
		q[t]++
	}
	return q
}

// Index is an in-memory inverted index: the reference implementation the
// stores are tested against, and fast enough to use directly.
type Index struct {
	P        Params
	postings map[string]map[uint64]int // term → doc → tf
	lens     map[uint64]int
	total    int64
}

// NewIndex returns an empty index with the given constants.
func NewIndex(p Params) *Index {
	return &Index{P: p, postings: map[string]map[uint64]int{}, lens: map[uint64]int{}}
}

// Len is the number of documents.
func (x *Index) Len() int { return len(x.lens) }

// Add indexes document id with its terms, replacing an earlier one.
func (x *Index) Add(id uint64, terms []string) {
	x.Remove(id)
	for t, n := range QueryTerms(terms) {
		p := x.postings[t]
		if p == nil {
			p = map[uint64]int{}
			x.postings[t] = p
		}
		p[id] = n
	}
	x.lens[id] = len(terms)
	x.total += int64(len(terms))
}

// Remove drops document id (a no-op when absent).
func (x *Index) Remove(id uint64) {
	dl, ok := x.lens[id]
	if !ok {
		return
	}
	for t, p := range x.postings {
		if _, ok := p[id]; ok {
			delete(p, id)
			if len(p) == 0 {
				delete(x.postings, t)
			}
		}
	}
	delete(x.lens, id)
	x.total -= int64(dl)
}

// Search returns the k best documents for the query terms; documents that
// share no term with the query are not returned.
func (x *Index) Search(query []string, k int) []topk.Hit {
	n := int64(len(x.lens))
	if n == 0 {
		return nil
	}
	avg := float64(x.total) / float64(n)
	scores := map[uint64]float64{}
	for t, qtf := range QueryTerms(query) {
		p := x.postings[t]
		if len(p) == 0 {
			continue
		}
		idf := IDF(n, int64(len(p)))
		for id, tf := range p {
			scores[id] += float64(qtf) * x.P.Term(idf, tf, x.lens[id], avg)
		}
	}
	return topk.Of(scores, k)
}
