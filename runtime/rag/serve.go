package rag

import (
	"context"

	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/tokenizer"
)

// OpenRetriever opens the store at loc for searching (read-only) with the
// embedder its vectors were made with: the hash baseline, or the pooled
// hidden states of m (the same weights `rag ingest --model` read). m
// may be nil when mode needs no vectors (bm25, fts) or the store holds
// hash vectors. The caller closes r.Store.
func OpenRetriever(ctx context.Context, loc string, mode Mode, m model.Model, tok tokenizer.Tokenizer) (*Retriever, error) {
	var l *loaded
	if m != nil && tok != nil {
		l = &loaded{m: m, tok: tok}
	}
	return openRetriever(ctx, loc, l, mode == Dense || mode == Hybrid)
}
