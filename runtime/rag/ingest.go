package rag

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/modelc/modelc/runtime/rag/bm25"
	"github.com/modelc/modelc/runtime/rag/chunk"
	"github.com/modelc/modelc/runtime/rag/embed"
	"github.com/modelc/modelc/runtime/rag/store"
)

// IngestOptions say how to index.
type IngestOptions struct {
	Chunk    chunk.Options
	Analyzer bm25.Analyzer
	Embedder embed.Embedder
	// Force re-indexes sources whose content has not changed.
	Force bool
	// Progress receives progress lines and warnings (nil: quiet).
	Progress io.Writer
	// Batch is how many chunks are embedded at a time (default 64).
	Batch int
}

// IngestStats say what an ingest did.
type IngestStats struct {
	Files, Unchanged, Skipped, Chunks int
	Seconds                           float64
}

// ChunksPerSecond is the ingest rate.
func (s IngestStats) ChunksPerSecond() float64 {
	if s.Seconds <= 0 {
		return 0
	}
	return float64(s.Chunks) / s.Seconds
}

// Text is a document given as text rather than a file.
type Text struct {
	Source string
	Body   string
}

// TextExts are the extensions a directory walk picks up.
var TextExts = []string{".txt", ".md", ".markdown", ".text"}

// CollectFiles expands paths: files are taken as given, directories are
// walked for TextExts files (hidden entries skipped). A path that does not
// exist is an error; files that cannot be read are found later.
func CollectFiles(paths []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if a, err := filepath.Abs(p); err == nil {
			p = a
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			add(p)
			continue
		}
		err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // unreadable entries are skipped like unreadable files
			}
			if q != p && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.IsDir() && d.Type().IsRegular() {
				ext := strings.ToLower(filepath.Ext(q))
				for _, e := range TextExts {
					if ext == e {
						add(q)
						break
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Ingest indexes files (see CollectFiles) in one transaction: files that
// are binary or unreadable are skipped with a warning naming them; if
// anything else fails or ctx ends, nothing is written.
func Ingest(ctx context.Context, s store.Store, paths []string, o IngestOptions) (IngestStats, error) {
	files, err := CollectFiles(paths)
	if err != nil {
		return IngestStats{}, err
	}
	i := 0
	next := func() (Text, bool, error) {
		for i < len(files) {
			f := files[i]
			i++
			body, err := chunk.ReadText(f)
			if err != nil {
				if o.Progress != nil {
					fmt.Fprintf(o.Progress, "warning: skipping %v\n", err)
				}
				continue
			}
			return Text{Source: f, Body: body}, true, nil
		}
		return Text{}, false, nil
	}
	st, err := ingest(ctx, s, len(files), next, o)
	st.Skipped = len(files) - st.Files - st.Unchanged
	return st, err
}

// IngestTexts indexes documents given as text, in one transaction.
func IngestTexts(ctx context.Context, s store.Store, docs []Text, o IngestOptions) (IngestStats, error) {
	i := 0
	next := func() (Text, bool, error) {
		if i >= len(docs) {
			return Text{}, false, nil
		}
		i++
		return docs[i-1], true, nil
	}
	return ingest(ctx, s, len(docs), next, o)
}

func (o *IngestOptions) defaults() error {
	if o.Chunk.Counter == nil {
		o.Chunk.Counter = chunk.Words{}
	}
	if err := o.Chunk.Validate(); err != nil {
		return err
	}
	if o.Embedder == nil {
		return errors.New("ingest: no embedder")
	}
	if o.Batch <= 0 {
		o.Batch = 64
	}
	return nil
}

func ingest(ctx context.Context, s store.Store, total int, next func() (Text, bool, error), o IngestOptions) (st IngestStats, err error) {
	if err := o.defaults(); err != nil {
		return st, err
	}
	t0 := time.Now()
	want := store.Meta{Analyzer: o.Analyzer.Name(), Embedder: o.Embedder.Name(), Dim: o.Embedder.Dim()}
	tx, err := s.Begin(ctx)
	if err != nil {
		return st, err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			if ctx.Err() != nil {
				err = fmt.Errorf("ingest interrupted, nothing was written: %w", err)
			}
		}
	}()
	m, ok, err := s.Meta(ctx)
	if err != nil {
		return st, err
	}
	if ok && m != want {
		return st, fmt.Errorf("store %s was built with analyzer %s and embedder %s (dim %d); this ingest uses %s and %s (dim %d): use the same settings or another store",
			s.Location(), m.Analyzer, m.Embedder, m.Dim, want.Analyzer, want.Embedder, want.Dim)
	}
	if !ok {
		if err := tx.SetMeta(want); err != nil {
			return st, err
		}
	}
	// The hash covers what shapes the index, so that new chunk settings
	// re-index an unchanged file.
	settings := fmt.Sprintf("%d/%d/%s/%s|", o.Chunk.Size, o.Chunk.Overlap, want.Analyzer, want.Embedder)
	lastReport := time.Now()
	report := func(final bool) {
		if o.Progress == nil || (!final && time.Since(lastReport) < time.Second) {
			return
		}
		lastReport = time.Now()
		el := time.Since(t0).Seconds()
		fmt.Fprintf(o.Progress, "ingest: %d/%d sources (%d unchanged), %d chunks, %.0f chunks/s\n",
			st.Files+st.Unchanged, total, st.Unchanged, st.Chunks, float64(st.Chunks)/max(el, 1e-9))
	}
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		doc, more, err := next()
		if err != nil {
			return st, err
		}
		if !more {
			break
		}
		sum := sha256.Sum256([]byte(settings + doc.Body))
		hash := hex.EncodeToString(sum[:])
		if !o.Force {
			if h, ok, err := tx.SourceHash(doc.Source); err != nil {
				return st, err
			} else if ok && h == hash {
				st.Unchanged++
				report(false)
				continue
			}
		}
		d, err := buildDoc(ctx, doc, hash, o)
		if err != nil {
			return st, err
		}
		if err := tx.Put(d); err != nil {
			return st, err
		}
		st.Files++
		st.Chunks += len(d.Chunks)
		report(false)
	}
	if err := tx.Commit(); err != nil {
		return st, err
	}
	st.Seconds = time.Since(t0).Seconds()
	report(true)
	return st, nil
}

func buildDoc(ctx context.Context, t Text, hash string, o IngestOptions) (store.Doc, error) {
	cs, err := chunk.Split(t.Body, o.Chunk)
	if err != nil {
		return store.Doc{}, fmt.Errorf("%s: %w", t.Source, err)
	}
	d := store.Doc{Source: t.Source, Hash: hash, Chunks: make([]store.NewChunk, len(cs))}
	for lo := 0; lo < len(cs); lo += o.Batch {
		hi := min(lo+o.Batch, len(cs))
		texts := make([]string, hi-lo)
		for i := range texts {
			texts[i] = cs[lo+i].Text
		}
		vs, err := o.Embedder.Embed(ctx, texts)
		if err != nil {
			return store.Doc{}, fmt.Errorf("%s: embed: %w", t.Source, err)
		}
		if len(vs) != len(texts) {
			return store.Doc{}, fmt.Errorf("%s: embedder returned %d vectors for %d texts", t.Source, len(vs), len(texts))
		}
		for i, v := range vs {
			c := cs[lo+i]
			d.Chunks[lo+i] = store.NewChunk{Start: int64(c.Start), End: int64(c.End), Tokens: c.Tokens, Text: c.Text, Terms: o.Analyzer.Terms(c.Text), Vec: v}
		}
	}
	return d, nil
}
