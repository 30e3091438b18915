package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelc/modelc/runtime/rag/bm25"
	"github.com/modelc/modelc/runtime/rag/dense"
	"github.com/modelc/modelc/runtime/rag/internal/pgtest"
	"github.com/modelc/modelc/runtime/rag/topk"
)

var (
	pgOnce sync.Once
	pgSrv  *pgtest.Server
	pgErr  error
)

func TestMain(m *testing.M) {
	if p := os.Getenv("RAG_STORE_CRASH_HELPER"); p != "" {
		crashHelper(p)
		return
	}
	code := m.Run()
	if pgSrv != nil {
		pgSrv.Stop()
	}
	os.Exit(code)
}

// postgresURL starts the package's PostgreSQL once and gives each caller a
// fresh database. Missing binaries fail the test: CI must install them.
func postgresURL(t *testing.T) string {
	t.Helper()
	pgOnce.Do(func() { pgSrv, pgErr = pgtest.Start() })
	if pgErr != nil {
		t.Fatalf("PostgreSQL: %v", pgErr)
	}
	u, err := pgSrv.NewDB()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

type backend struct {
	name string
	open func(t *testing.T, o Options) Store
}

func backends() []backend {
	return []backend{
		{"bolt", func(t *testing.T, o Options) Store {
			s, err := Open(context.Background(), filepath.Join(t.TempDir(), "rag.db"), o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"postgres", func(t *testing.T, o Options) Store {
			s, err := Open(context.Background(), postgresURL(t), o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
	}
}

const dim = 16

var words = strings.Fields("wing lift drag shock wave boundary layer flow mach number heat transfer plate cylinder pressure gradient laminar turbulent nozzle jet")

// corpus makes n sources of a few chunks of random words with random vectors.
func corpus(seed uint64, n int) []Doc {
	r := rand.New(rand.NewPCG(seed, 7))
	var docs []Doc
	for i := 0; i < n; i++ {
		d := Doc{Source: fmt.Sprintf("dir/file%03d.txt", i), Hash: fmt.Sprint(seed, i)}
		for j, nc := 0, 1+r.IntN(3); j < nc; j++ {
			var ws []string
			for k, nw := 0, 3+r.IntN(20); k < nw; k++ {
				ws = append(ws, words[r.IntN(len(words))])
			}
			text := strings.Join(ws, " ")
			v := make([]float32, dim)
			for k := range v {
				v[k] = float32(r.NormFloat64())
			}
			d.Chunks = append(d.Chunks, NewChunk{Start: int64(100 * j), End: int64(100*j + len(text)), Tokens: len(ws), Text: text, Terms: bm25.Default.Terms(text), Vec: v})
		}
		docs = append(docs, d)
	}
	return docs
}

func ingest(t *testing.T, s Store, docs []Doc) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.SetMeta(Meta{Analyzer: bm25.Default.Name(), Embedder: "test", Dim: dim}); err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if err := tx.Put(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// reference indexes what the store should hold (latest doc per source wins).
type reference struct {
	x      *bm25.Index
	f      *dense.Flat
	chunks map[string]NewChunk // "source@start" → chunk
}

func refOf(docs []Doc, stored func(source string, start int64) uint64) *reference {
	last := map[string]Doc{}
	var order []string
	for _, d := range docs {
		if _, ok := last[d.Source]; !ok {
			order = append(order, d.Source)
		}
		last[d.Source] = d
	}
	r := &reference{x: bm25.NewIndex(bm25.DefaultParams), f: dense.NewFlat(dim), chunks: map[string]NewChunk{}}
	for _, src := range order {
		for _, c := range last[src].Chunks {
			id := stored(src, c.Start)
			r.x.Add(id, c.Terms)
			r.f.Add(id, c.Vec)
			r.chunks[fmt.Sprint(src, "@", c.Start)] = c
		}
	}
	return r
}

// sameHits compares rankings; scores within 1e-9 count as ties (SQL sums
// in another order than Go), and tied hits may come in any order.
func sameHits(t *testing.T, what string, got, want []topk.Hit) {
	t.Helper()
	norm := func(hs []topk.Hit) []topk.Hit {
		out := make([]topk.Hit, len(hs))
		for i, h := range hs {
			out[i] = topk.Hit{ID: h.ID, Score: math.Round(h.Score*1e9) / 1e9}
		}
		sort.Slice(out, func(i, j int) bool { return topk.Better(out[i], out[j]) })
		return out
	}
	g, w := norm(got), norm(want)
	if len(g) != len(w) {
		t.Fatalf("%s: %d hits, want %d\ngot  %v\nwant %v", what, len(got), len(want), got, want)
	}
	for i := range g {
		if g[i].ID != w[i].ID || math.Abs(g[i].Score-w[i].Score) > 1e-5*math.Max(1, math.Abs(w[i].Score)) {
			t.Fatalf("%s: hit %d is %v, want %v\ngot  %v\nwant %v", what, i, got[i], want[i], got, want)
		}
	}
}

// idsOf maps (source, start) to stored ids: a query with every word finds
// every chunk.
func idsOf(t *testing.T, s Store, _ uint64) func(string, int64) uint64 {
	ctx := context.Background()
	m := map[string]uint64{}
	hits, err := s.Keyword(ctx, bm25.Default.Terms(strings.Join(words, " ")), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]uint64, len(hits))
	for i, h := range hits {
		ids[i] = h.ID
	}
	cs, err := s.Chunks(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		m[fmt.Sprint(c.Source, "@", c.Start)] = c.ID
	}
	return func(src string, start int64) uint64 {
		id, ok := m[fmt.Sprint(src, "@", start)]
		if !ok {
			t.Fatalf("chunk %s@%d not stored", src, start)
		}
		return id
	}
}

func checkAgainst(t *testing.T, s Store, docs []Doc, maxID uint64) {
	t.Helper()
	ctx := context.Background()
	ref := refOf(docs, idsOf(t, s, maxID))
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Chunks != ref.x.Len() {
		t.Fatalf("stats: %d chunks, want %d", st.Chunks, ref.x.Len())
	}
	r := rand.New(rand.NewPCG(9, 9))
	for q := 0; q < 20; q++ {
		var qw []string
		for k, n := 0, 1+r.IntN(4); k < n; k++ {
			qw = append(qw, words[r.IntN(len(words))])
		}
		terms := bm25.Default.Terms(strings.Join(qw, " "))
		got, err := s.Keyword(ctx, terms, 10)
		if err != nil {
			t.Fatal(err)
		}
		sameHits(t, fmt.Sprintf("keyword %q", qw), got, ref.x.Search(terms, 10))
		v := make([]float32, dim)
		for k := range v {
			v[k] = float32(r.NormFloat64())
		}
		gotD, err := s.Dense(ctx, v, 10)
		if err != nil {
			t.Fatal(err)
		}
		dense.Normalize(v)
		sameHits(t, "dense", gotD, ref.f.Search(v, 10))
	}
	// Chunks come back as stored.
	hits := ref.x.Search([]string{"flow"}, 5)
	ids := make([]uint64, len(hits))
	for i, h := range hits {
		ids[i] = h.ID
	}
	cs, err := s.Chunks(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		want := ref.chunks[fmt.Sprint(c.Source, "@", c.Start)]
		if c.ID != ids[i] || c.Text != want.Text || c.End != want.End || c.Tokens != want.Tokens {
			t.Fatalf("chunk %d: %+v, want %+v", ids[i], c, want)
		}
	}
}

func TestStores(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			s := b.open(t, Options{HNSWMin: -1})
			if _, ok, err := s.Meta(ctx); ok || err != nil {
				t.Fatalf("new store: meta ok %v, err %v", ok, err)
			}
			if _, err := s.Keyword(ctx, []string{"flow"}, 5); !errors.Is(err, ErrEmpty) {
				t.Fatalf("empty store keyword search: %v, want ErrEmpty", err)
			}
			if _, err := s.Dense(ctx, make([]float32, dim), 5); !errors.Is(err, ErrEmpty) {
				t.Fatalf("empty store dense search: %v, want ErrEmpty", err)
			}
			docs := corpus(1, 40)
			ingest(t, s, docs)
			if m, ok, err := s.Meta(ctx); !ok || err != nil || m.Dim != dim || m.Embedder != "test" {
				t.Fatalf("meta %+v %v %v", m, ok, err)
			}
			checkAgainst(t, s, docs, 200)

			// Re-ingesting changed sources replaces their chunks.
			changed := corpus(2, 10)
			ingest(t, s, changed)
			all := append(append([]Doc{}, docs...), changed...)
			checkAgainst(t, s, all, 400)
			st, _ := s.Stats(ctx)
			if st.Sources != 40 {
				t.Errorf("%d sources after re-ingesting 10 of 40, want 40", st.Sources)
			}
			tx, _ := s.Begin(ctx)
			if h, ok, err := tx.SourceHash(changed[3].Source); !ok || err != nil || h != changed[3].Hash {
				t.Errorf("source hash %q %v %v, want %q", h, ok, err, changed[3].Hash)
			}
			if err := tx.Delete(docs[20].Source); err != nil {
				t.Fatal(err)
			}
			tx.Commit()
			st2, _ := s.Stats(ctx)
			if st2.Sources != 39 || st2.Chunks != st.Chunks-len(docs[20].Chunks) {
				t.Errorf("after delete: %+v, before %+v (source had %d chunks)", st2, st, len(docs[20].Chunks))
			}

			// A rolled-back ingest changes nothing.
			before, _ := s.Keyword(ctx, []string{"flow", "wing"}, 50)
			tx, err := s.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range corpus(3, 30) {
				if err := tx.Put(d); err != nil {
					t.Fatal(err)
				}
			}
			tx.Rollback()
			after, _ := s.Keyword(ctx, []string{"flow", "wing"}, 50)
			sameHits(t, "after rollback", after, before)
			if st3, _ := s.Stats(ctx); st3 != st2 {
				t.Errorf("stats after rollback %+v, want %+v", st3, st2)
			}

			// Bad documents are refused with the source named.
			tx, _ = s.Begin(ctx)
			err = tx.Put(Doc{Source: "bad.txt", Chunks: []NewChunk{{Text: "x", Terms: []string{"x"}, Vec: []float32{1}}}})
			if err == nil || !strings.Contains(err.Error(), "bad.txt") {
				t.Errorf("a vector of the wrong size: %v", err)
			}
			tx.Rollback()
			if _, err := s.Dense(ctx, []float32{1, 2}, 3); err == nil {
				t.Error("a query vector of the wrong size was accepted")
			}
		})
	}
}

// TestHNSWPath checks that large collections search through the stored
// graph, with answers close to exact search.
func TestHNSWPath(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			s := b.open(t, Options{HNSWMin: 100})
			docs := corpus(4, 150)
			ingest(t, s, docs)
			ref := refOf(docs, idsOf(t, s, 1000))
			r := rand.New(rand.NewPCG(5, 5))
			agree := 0
			for q := 0; q < 30; q++ {
				v := make([]float32, dim)
				for k := range v {
					v[k] = float32(r.NormFloat64())
				}
				got, err := s.Dense(ctx, v, 10)
				if err != nil {
					t.Fatal(err)
				}
				dense.Normalize(v)
				ex := map[uint64]bool{}
				for _, h := range ref.f.Search(v, 10) {
					ex[h.ID] = true
				}
				for _, h := range got {
					if ex[h.ID] {
						agree++
					}
				}
			}
			if rec := float64(agree) / 300; rec < 0.95 {
				t.Errorf("recall@10 through the stored graph %.3f, want ≥ 0.95", rec)
			}
		})
	}
}

func TestLocked(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rag.db")
	a, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	t0 := time.Now()
	_, err = Open(ctx, path, Options{LockTimeout: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "locked") || !strings.Contains(err.Error(), path) {
		t.Fatalf("second open: %v, want a locked error naming the file", err)
	}
	if el := time.Since(t0); el > 5*time.Second {
		t.Errorf("gave up after %v, want about 200ms", el)
	}
	if _, err := Open(ctx, filepath.Join(t.TempDir(), "missing.db"), Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "missing.db") {
		t.Errorf("read-only open of a missing file: %v", err)
	}
	notDB := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notDB, []byte(strings.Repeat("not a database\n", 500)), 0o644)
	if _, err := Open(ctx, notDB, Options{}); err == nil || !strings.Contains(err.Error(), "notes.txt") {
		t.Errorf("opening a text file as a store: %v", err)
	}

	// PostgreSQL: a second ingest waits for the first, then gives up.
	u := postgresURL(t)
	p1, err := Open(ctx, u, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Close()
	p2, err := Open(ctx, u, Options{LockTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	tx, err := p1.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Begin(ctx); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("concurrent ingest: %v, want a locked error", err)
	}
	tx.Rollback()
	tx2, err := p2.Begin(ctx)
	if err != nil {
		t.Fatalf("ingest after the other ended: %v", err)
	}
	tx2.Rollback()
	if _, err := Open(ctx, "postgres://nobody@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", Options{}); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("unreachable server: %v", err)
	}
}

// crashHelper runs in a child process: it starts an ingest, says "ready"
// mid-transaction, and waits to be killed.
func crashHelper(path string) {
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	tx, _ := s.Begin(context.Background())
	for _, d := range corpus(8, 200) {
		if err := tx.Put(d); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
}

// TestCrashMidIngest kills a process in the middle of an ingest: the store
// must open afterwards exactly as it was.
func TestCrashMidIngest(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rag.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	docs := corpus(1, 20)
	ingest(t, s, docs)
	before, _ := s.Keyword(ctx, []string{"flow"}, 100)
	s.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RAG_STORE_CRASH_HELPER="+path)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q", line)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	s, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after, err := s.Keyword(ctx, []string{"flow"}, 100)
	if err != nil {
		t.Fatal(err)
	}
	sameHits(t, "after a crash", after, before)
	checkAgainst(t, s, docs, 200)
}

// FuzzRecords feeds damaged bytes to the decoders of stored records: they
// must fail cleanly, and what they accept must re-encode to the same bytes.
func FuzzRecords(f *testing.F) {
	f.Add(chunkRecord{Chunk: Chunk{Source: "a.md", Start: 1, End: 9, Tokens: 3, Text: "héllo"}, dl: 2, terms: []string{"a", "b"}}.encode())
	f.Add(encodeSource("abc", []uint64{1, 2, 300}))
	f.Add([]byte("\x04a.md\x01\x09\x03\x02\x06h\xc3\xa9llo\x02\x01a\x01b"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Accepted records survive a round trip (byte equality is too much:
		// a varint may be written in more than one way).
		if r, err := decodeChunk(b); err == nil {
			r2, err := decodeChunk(r.encode())
			if err != nil || r2.Chunk != r.Chunk || r2.dl != r.dl || strings.Join(r2.terms, "\x00") != strings.Join(r.terms, "\x00") {
				t.Fatalf("chunk record %x does not survive a round trip: %v", b, err)
			}
		}
		if h, ids, err := decodeSource(b); err == nil {
			h2, ids2, err := decodeSource(encodeSource(h, ids))
			if err != nil || h2 != h || fmt.Sprint(ids2) != fmt.Sprint(ids) {
				t.Fatalf("source record %x does not survive a round trip: %v", b, err)
			}
		}
		decodeVec(b, len(b)/4, nil)
	})
}
