// Command ragbench measures the rag stores: ingest rate and query latency
// (p50, p99) for BM25, dense and hybrid retrieval on synthetic collections,
// with the embedded bbolt store and with PostgreSQL (a throwaway server
// started like the tests do), and retrieval quality on Cranfield.
//
//	go run ./runtime/rag/ragbench -sizes 1000,10000,100000
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/modelc/modelc/runtime/rag"
	"github.com/modelc/modelc/runtime/rag/bm25"
	"github.com/modelc/modelc/runtime/rag/chunk"
	"github.com/modelc/modelc/runtime/rag/embed"
	"github.com/modelc/modelc/runtime/rag/eval"
	"github.com/modelc/modelc/runtime/rag/internal/pgtest"
	"github.com/modelc/modelc/runtime/rag/internal/ragtest"
	"github.com/modelc/modelc/runtime/rag/store"
)

func main() {
	sizes := flag.String("sizes", "1000,10000,100000", "collection sizes in chunks")
	stores := flag.String("stores", "bolt,postgres", "stores to measure")
	queries := flag.Int("queries", 200, "queries per mode")
	words := flag.Int("words", 60, "words per synthetic chunk")
	dim := flag.Int("dim", 256, "hash embedder dimension")
	hnswMin := flag.Int("hnsw-min", 20000, "collection size from which dense search uses HNSW")
	cran := flag.Bool("cranfield", true, "also measure quality on Cranfield")
	flag.Parse()
	if err := run(*sizes, *stores, *queries, *words, *dim, *hnswMin, *cran); err != nil {
		fmt.Fprintln(os.Stderr, "ragbench:", err)
		os.Exit(1)
	}
}

func run(sizes, stores string, queries, words, dim, hnswMin int, cran bool) error {
	ctx := context.Background()
	var pg *pgtest.Server
	if strings.Contains(stores, "postgres") {
		var err error
		if pg, err = pgtest.Start(); err != nil {
			return err
		}
		defer pg.Stop()
		// Interrupted, still stop the server.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		go func() {
			<-sig
			pg.Stop()
			os.Exit(1)
		}()
	}
	tmp, err := os.MkdirTemp("", "ragbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	emb := embed.NewHash(dim)
	open := func(kind string) (store.Store, error) {
		loc := filepath.Join(tmp, fmt.Sprintf("b%d.db", time.Now().UnixNano()))
		if kind == "postgres" {
			if loc, err = pg.NewDB(); err != nil {
				return nil, err
			}
		}
		return store.Open(ctx, loc, store.Options{HNSWMin: hnswMin})
	}
	fmt.Printf("| store | chunks | ingest chunks/s | bm25 p50 / p99 ms | dense p50 / p99 ms | hybrid p50 / p99 ms | dense index |\n|---|---|---|---|---|---|---|\n")
	for _, ns := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(ns)
		if err != nil {
			return fmt.Errorf("-sizes: %q", ns)
		}
		docs, qs := synthetic(n, words, queries)
		for _, kind := range strings.Split(stores, ",") {
			s, err := open(kind)
			if err != nil {
				return err
			}
			o := rag.IngestOptions{Chunk: chunk.Options{Size: 10 * words, Overlap: 0}, Analyzer: bm25.Default, Embedder: emb, Progress: os.Stderr}
			st, err := rag.IngestTexts(ctx, s, docs, o)
			if err != nil {
				return err
			}
			r := &rag.Retriever{Store: s, Analyzer: bm25.Default, Embedder: emb}
			row := fmt.Sprintf("| %s | %d | %.0f |", kind, st.Chunks, st.ChunksPerSecond())
			for _, m := range []rag.Mode{rag.BM25, rag.Dense, rag.Hybrid} {
				// One warm-up query loads the vectors (or graph) once.
				if _, err := r.Search(ctx, qs[0], m, 10); err != nil {
					return err
				}
				lat := make([]float64, len(qs))
				for i, q := range qs {
					t0 := time.Now()
					if _, err := r.Search(ctx, q, m, 10); err != nil {
						return err
					}
					lat[i] = float64(time.Since(t0).Microseconds()) / 1000
				}
				sort.Float64s(lat)
				row += fmt.Sprintf(" %.2f / %.2f |", pct(lat, 50), pct(lat, 99))
			}
			idx := "exact"
			if hnswMin > 0 && st.Chunks >= hnswMin {
				idx = "HNSW"
			}
			fmt.Printf("%s %s |\n", row, idx)
			s.Close()
		}
	}
	if cran {
		return cranfield(ctx, open, emb, stores)
	}
	return nil
}

func pct(sorted []float64, p float64) float64 {
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

// synthetic makes n one-chunk documents of Zipf-distributed words from a
// 30,000-word vocabulary, and queries of 2–6 words drawn the same way.
func synthetic(n, words, queries int) ([]rag.Text, []string) {
	r := rand.New(rand.NewPCG(1, 2))
	z := rand.NewZipf(r, 1.1, 2, 29999)
	vocab := make([]string, 30000)
	for i := range vocab {
		vocab[i] = word(i)
	}
	docs := make([]rag.Text, n)
	var b strings.Builder
	for i := range docs {
		b.Reset()
		for j := 0; j < words; j++ {
			b.WriteString(vocab[z.Uint64()])
			b.WriteByte(' ')
		}
		docs[i] = rag.Text{Source: fmt.Sprintf("syn/%07d", i), Body: b.String()}
	}
	qs := make([]string, queries)
	for i := range qs {
		b.Reset()
		for j, m := 0, 2+r.IntN(5); j < m; j++ {
			b.WriteString(vocab[z.Uint64()])
			b.WriteByte(' ')
		}
		qs[i] = b.String()
	}
	return docs, qs
}

// word spells i in letters (a pronounceable-free but analyzer-stable term).
func word(i int) string {
	const letters = "bcdfghjklmnpqrstvwxz"
	s := []byte{'q'}
	for i++; i > 0; i /= len(letters) {
		s = append(s, letters[i%len(letters)], "aeiou"[i%5])
	}
	return string(s)
}

func cranfield(ctx context.Context, open func(string) (store.Store, error), emb embed.Embedder, stores string) error {
	data, err := ragtest.Data()
	if err != nil {
		return err
	}
	c, err := eval.LoadCranfield(filepath.Join(data, "retrieval"))
	if err != nil {
		return err
	}
	texts := make([]rag.Text, len(c.Docs))
	for i, d := range c.Docs {
		texts[i] = rag.Text{Source: strconv.Itoa(d.ID), Body: d.Title + "\n" + d.Text}
	}
	fmt.Printf("\n| store | mode | nDCG@10 | recall@10 |\n|---|---|---|---|\n")
	for _, kind := range strings.Split(stores, ",") {
		s, err := open(kind)
		if err != nil {
			return err
		}
		o := rag.IngestOptions{Chunk: chunk.Options{Size: 1000}, Analyzer: bm25.Default, Embedder: emb}
		if _, err := rag.IngestTexts(ctx, s, texts, o); err != nil {
			return err
		}
		r := &rag.Retriever{Store: s, Analyzer: bm25.Default, Embedder: emb}
		modes := []rag.Mode{rag.BM25, rag.Dense, rag.Hybrid}
		if kind == "postgres" {
			modes = append(modes, rag.FTS)
		}
		for _, m := range modes {
			sc, err := c.Run(func(q eval.Query) ([]int, error) {
				rs, err := r.Search(ctx, q.Text, m, 10)
				if err != nil {
					return nil, err
				}
				ids := make([]int, len(rs))
				for i, x := range rs {
					ids[i], _ = strconv.Atoi(x.Source)
				}
				return ids, nil
			})
			if err != nil {
				return err
			}
			fmt.Printf("| %s | %s | %.4f | %.4f |\n", kind, m, sc.NDCG10, sc.Recall10)
		}
		s.Close()
	}
	return nil
}
