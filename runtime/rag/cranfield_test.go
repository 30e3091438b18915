package rag

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/modelc/modelc/runtime/rag/bm25"
	"github.com/modelc/modelc/runtime/rag/chunk"
	"github.com/modelc/modelc/runtime/rag/embed"
	"github.com/modelc/modelc/runtime/rag/eval"
	"github.com/modelc/modelc/runtime/rag/internal/ragtest"
	"github.com/modelc/modelc/runtime/rag/store"
)

// CranfieldTexts are the collection's documents as ingest input: title and
// abstract, one source per document.
func cranfieldTexts(c *eval.Collection) []Text {
	ts := make([]Text, len(c.Docs))
	for i, d := range c.Docs {
		ts[i] = Text{Source: "cran/" + strconv.Itoa(d.ID), Body: d.Title + "\n" + d.Text}
	}
	return ts
}

// cranfieldRun scores one retrieval mode; chunks map back to their
// documents (first chunk wins).
func cranfieldRun(t *testing.T, c *eval.Collection, r *Retriever, mode Mode) eval.Scores {
	t.Helper()
	s, err := c.Run(func(q eval.Query) ([]int, error) {
		rs, err := r.Search(context.Background(), q.Text, mode, 30)
		if err != nil {
			return nil, err
		}
		var ids []int
		seen := map[int]bool{}
		for _, x := range rs {
			id, err := strconv.Atoi(strings.TrimPrefix(x.Source, "cran/"))
			if err != nil {
				return nil, fmt.Errorf("source %q", x.Source)
			}
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		return ids, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCranfield measures BM25, dense (the hash baseline) and hybrid
// retrieval on Cranfield through both stores. The two stores must agree,
// BM25 must match the reference index (which beats bleve's BM25, see
// bm25.TestCranfieldAgainstBleve), and the figures must stay where they
// were measured (RESULTS.md).
func TestCranfield(t *testing.T) {
	c, err := eval.LoadCranfield(filepath.Join(ragtest.DataDir(t), "retrieval"))
	if err != nil {
		t.Fatal(err)
	}
	o := IngestOptions{Chunk: chunk.Options{Size: 1000, Overlap: 0}, Analyzer: bm25.Default, Embedder: embed.NewHash(256)}
	// Reference BM25 over the same text with the in-memory index.
	x := bm25.NewIndex(bm25.DefaultParams)
	for _, d := range c.Docs {
		if strings.TrimSpace(d.Title+d.Text) != "" { // as the chunker: no words, no chunk
			x.Add(uint64(d.ID), bm25.Default.Terms(d.Title+"\n"+d.Text))
		}
	}
	ref, _ := c.Run(func(q eval.Query) ([]int, error) {
		var r []int
		for _, h := range x.Search(bm25.Default.Terms(q.Text), 10) {
			r = append(r, int(h.ID))
		}
		return r, nil
	})
	figures := map[string]map[Mode]eval.Scores{}
	var bmRetriever *Retriever
	for _, b := range []string{"bolt", "postgres"} {
		loc := filepath.Join(t.TempDir(), "cran.db")
		if b == "postgres" {
			loc = postgresURL(t)
		}
		s, err := store.Open(context.Background(), loc, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		st, err := IngestTexts(context.Background(), s, cranfieldTexts(c), o)
		if err != nil {
			t.Fatal(err)
		}
		nonEmpty := 0
		for _, d := range cranfieldTexts(c) {
			if strings.TrimSpace(d.Body) != "" {
				nonEmpty++
			}
		}
		if st.Chunks != nonEmpty || st.Files != 1400 {
			t.Fatalf("%s: %d sources, %d chunks; want 1400, and one chunk for each of the %d with words", b, st.Files, st.Chunks, nonEmpty)
		}
		r := &Retriever{Store: s, Analyzer: bm25.Default, Embedder: o.Embedder}
		figures[b] = map[Mode]eval.Scores{}
		if b == "bolt" {
			bmRetriever = r
		}
		modes := []Mode{BM25, Dense, Hybrid}
		if b == "postgres" {
			modes = append(modes, FTS)
		}
		for _, m := range modes {
			sc := cranfieldRun(t, c, r, m)
			figures[b][m] = sc
			t.Logf("%-8s %-6s %v", b, m, sc)
		}
	}
	bo, pg := figures["bolt"], figures["postgres"]
	for _, m := range []Mode{BM25, Dense, Hybrid} {
		if d := bo[m].NDCG10 - pg[m].NDCG10; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s: bolt nDCG@10 %.6f, postgres %.6f: the stores disagree", m, bo[m].NDCG10, pg[m].NDCG10)
		}
	}
	// The store's BM25 gives the reference index's scores (ranks may differ
	// only among equal scores: the ids differ, two documents being empty).
	for _, q := range c.Queries {
		rs, err := bmRetriever.Search(context.Background(), q.Text, BM25, 10)
		if err != nil {
			t.Fatal(err)
		}
		want := x.Search(bm25.Default.Terms(q.Text), 10)
		if len(rs) != len(want) {
			t.Fatalf("query %d: %d hits, reference %d", q.ID, len(rs), len(want))
		}
		for i := range rs {
			if d := rs[i].Score - want[i].Score; d > 1e-9 || d < -1e-9 {
				t.Fatalf("query %d hit %d: score %.9f, reference %.9f", q.ID, i, rs[i].Score, want[i].Score)
			}
		}
	}
	t.Logf("reference BM25 index: %v", ref)
	// Floors a little under the measured figures: a regression fails.
	for m, floor := range map[Mode]float64{BM25: 0.37, Dense: 0.29, Hybrid: 0.34} {
		if bo[m].NDCG10 < floor {
			t.Errorf("%s nDCG@10 %.4f fell under %.2f", m, bo[m].NDCG10, floor)
		}
	}
}
