package bm25

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/standard"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	bleveindex "github.com/blevesearch/bleve_index_api"

	"github.com/modelc/modelc/runtime/rag/eval"
	"github.com/modelc/modelc/runtime/rag/internal/ragtest"
)

func cranfield(t testing.TB) *eval.Collection {
	t.Helper()
	c, err := eval.LoadCranfield(filepath.Join(ragtest.DataDir(t), "retrieval"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Docs) != 1400 || len(c.Queries) != 225 {
		t.Fatalf("Cranfield: %d docs, %d queries; want 1400, 225", len(c.Docs), len(c.Queries))
	}
	return c
}

func docText(d eval.Doc) string { return d.Title + "\n" + d.Text }

func ourBM25(t testing.TB, c *eval.Collection, a Analyzer, p Params) eval.Scores {
	x := NewIndex(p)
	for _, d := range c.Docs {
		x.Add(uint64(d.ID), a.Terms(docText(d)))
	}
	s, err := c.Run(func(q eval.Query) ([]int, error) {
		var r []int
		for _, h := range x.Search(a.Terms(q.Text), 10) {
			r = append(r, int(h.ID))
		}
		return r, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func bleveBM25(t testing.TB, c *eval.Collection, analyzer string) eval.Scores {
	m := bleve.NewIndexMapping()
	m.ScoringModel = bleveindex.BM25Scoring
	m.DefaultAnalyzer = analyzer
	dm := mapping.NewDocumentMapping()
	m.DefaultMapping = dm
	idx, err := bleve.NewUsing(filepath.Join(t.TempDir(), "bleve"), m, scorch.Name, scorch.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	b := idx.NewBatch()
	for _, d := range c.Docs {
		if err := b.Index(strconv.Itoa(d.ID), map[string]any{"body": docText(d)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := idx.Batch(b); err != nil {
		t.Fatal(err)
	}
	s, err := c.Run(func(q eval.Query) ([]int, error) {
		mq := bleve.NewMatchQuery(q.Text)
		mq.SetField("body")
		req := bleve.NewSearchRequestOptions(mq, 10, 0, false)
		res, err := idx.SearchInContext(context.Background(), req)
		if err != nil {
			return nil, err
		}
		var r []int
		for _, h := range res.Hits {
			id, _ := strconv.Atoi(h.ID)
			r = append(r, id)
		}
		return r, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCranfieldAgainstBleve holds our BM25 to at least bleve's BM25 on the
// same collection, with bleve's plain (standard) and English analyzers.
func TestCranfieldAgainstBleve(t *testing.T) {
	c := cranfield(t)
	for _, a := range []Analyzer{{}, {StopWords: true}, {Stem: true}, {StopWords: true, Stem: true}} {
		t.Logf("ours %-16s %v", a.Name(), ourBM25(t, c, a, DefaultParams))
	}
	ours := ourBM25(t, c, Default, DefaultParams)
	for _, an := range []string{standard.Name, en.AnalyzerName} {
		bs := bleveBM25(t, c, an)
		t.Logf("bleve %-15s %v", an, bs)
		if ours.NDCG10 < bs.NDCG10 {
			t.Errorf("nDCG@10: ours (%s) %.4f < bleve (%s) %.4f", Default.Name(), ours.NDCG10, an, bs.NDCG10)
		}
	}
}
