// Package store keeps a collection of chunks with their keyword postings
// and vectors, behind one interface with two back ends: one local bbolt file
// (the default, nothing to install) and PostgreSQL.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modelc/modelc/runtime/rag/bm25"
	"github.com/modelc/modelc/runtime/rag/topk"
)

// Chunk is a stored chunk.
type Chunk struct {
	ID         uint64
	Source     string
	Start, End int64 // byte offsets in the source
	Tokens     int
	Text       string
}

// NewChunk is a chunk to store, with its index terms and its vector.
type NewChunk struct {
	Start, End int64
	Tokens     int
	Text       string
	Terms      []string  // analyzed terms, in order, with repeats
	Vec        []float32 // Meta.Dim values
}

// Doc is everything one source contributes.
type Doc struct {
	Source string
	Hash   string // of the content, so that an unchanged source can be skipped
	Chunks []NewChunk
}

// Meta describes how a collection was built; queries must be analyzed and
// embedded the same way.
type Meta struct {
	Analyzer string `json:"analyzer"`
	Embedder string `json:"embedder"`
	Dim      int    `json:"dim"`
}

// Stats count a collection.
type Stats struct {
	Sources, Chunks int
	Terms           int64 // total index terms (for BM25's average length)
}

// ErrEmpty is returned by searches of a collection without chunks.
var ErrEmpty = errors.New("the collection is empty: ingest some files first")

// Store is a collection.
type Store interface {
	// Meta returns how the collection was built (ok false for a new one).
	Meta(ctx context.Context) (m Meta, ok bool, err error)
	Stats(ctx context.Context) (Stats, error)
	// Begin starts the one transaction of an ingest: until Commit, nobody
	// sees its changes, and Rollback (or a crash) leaves the store as it was.
	Begin(ctx context.Context) (Tx, error)
	// Keyword ranks chunks by Okapi BM25 over terms (analyzed query words).
	Keyword(ctx context.Context, terms []string, k int) ([]topk.Hit, error)
	// Dense ranks chunks by the cosine of their vectors with vec.
	Dense(ctx context.Context, vec []float32, k int) ([]topk.Hit, error)
	// Chunks returns the chunks with the given ids, in that order.
	Chunks(ctx context.Context, ids []uint64) ([]Chunk, error)
	// Location names the store in messages.
	Location() string
	Close() error
}

// Tx is an ingest in progress.
type Tx interface {
	// SetMeta records how the collection is built (on its first ingest).
	SetMeta(Meta) error
	// SourceHash returns the hash a source was stored with.
	SourceHash(source string) (hash string, ok bool, err error)
	// Put stores doc, replacing every chunk its source had.
	Put(doc Doc) error
	// Delete removes a source and its chunks.
	Delete(source string) error
	Commit() error
	Rollback() error
}

// Options tune opening.
type Options struct {
	// ReadOnly opens for searching only (bbolt: a shared lock, so that
	// several searches can run while no ingest does).
	ReadOnly bool
	// LockTimeout bounds the wait for another process's lock (default 1 s).
	LockTimeout time.Duration
	// HNSWMin is the collection size from which dense search uses an HNSW
	// graph (built at commit) instead of an exact scan; 0 means 20,000, a
	// negative value never.
	HNSWMin int
	// BM25 constants (default k1 1.2, b 0.75).
	BM25 bm25.Params
}

func (o Options) withDefaults() Options {
	if o.LockTimeout == 0 {
		o.LockTimeout = time.Second
	}
	if o.HNSWMin == 0 {
		o.HNSWMin = 20000
	}
	if o.BM25 == (bm25.Params{}) {
		o.BM25 = bm25.DefaultParams
	}
	return o
}

// IsPostgres reports whether location names a PostgreSQL database.
func IsPostgres(location string) bool {
	return strings.HasPrefix(location, "postgres://") || strings.HasPrefix(location, "postgresql://")
}

// Open opens (creating if needed) the store at location: a postgres:// URL,
// or the path of a bbolt file.
func Open(ctx context.Context, location string, o Options) (Store, error) {
	o = o.withDefaults()
	if location == "" {
		return nil, errors.New("store: no location given (a file path or a postgres:// URL)")
	}
	if IsPostgres(location) {
		return OpenPostgres(ctx, location, o)
	}
	return OpenBolt(location, o)
}

// checkDoc validates a document before it is written.
func checkDoc(d Doc, dim int) error {
	if d.Source == "" {
		return errors.New("store: document without a source")
	}
	for i, c := range d.Chunks {
		if len(c.Vec) != dim {
			return fmt.Errorf("store: %s chunk %d: vector of %d values, the collection's are %d", d.Source, i, len(c.Vec), dim)
		}
		if c.Start < 0 || c.End < c.Start {
			return fmt.Errorf("store: %s chunk %d: bad offsets [%d, %d)", d.Source, i, c.Start, c.End)
		}
		for _, t := range c.Terms {
			if t == "" || strings.IndexByte(t, 0) >= 0 || len(t) > 255 {
				return fmt.Errorf("store: %s chunk %d: bad term %q", d.Source, i, t)
			}
		}
	}
	return nil
}
