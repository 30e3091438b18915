package rag

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/rag/bm25"
	"github.com/modelc/modelc/runtime/rag/chunk"
	"github.com/modelc/modelc/runtime/rag/embed"
	"github.com/modelc/modelc/runtime/rag/internal/ragtest"
	"github.com/modelc/modelc/runtime/rag/store"
)

type env struct {
	t               *testing.T
	dir, db         string
	model, tok      string
	storiesCommands func() []*cobra.Command
}

func newEnv(t *testing.T) *env {
	data := ragtest.DataDir(t)
	e := &env{t: t, dir: t.TempDir(), model: filepath.Join(data, "models", "stories260K.bin"), tok: filepath.Join(data, "models", "tok512.bin")}
	e.db = filepath.Join(e.dir, "rag.db")
	p, _, err := checkpoint.Load(e.model)
	if err != nil {
		t.Fatal(err)
	}
	s := p.Spec
	e.storiesCommands = func() []*cobra.Command { return Commands("stories", &s, generic.New) }
	return e
}

func (e *env) write(name, body string) string {
	p := filepath.Join(e.dir, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// run executes `rag ARGS` (or `embed ARGS` when args[0] is "embed").
func (e *env) run(args ...string) (string, string, error) {
	cmds := e.storiesCommands()
	root := &cobra.Command{Use: "stories", SilenceErrors: true, SilenceUsage: true}
	root.AddCommand(cmds...)
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func (e *env) must(args ...string) (string, string) {
	e.t.Helper()
	out, errs, err := e.run(args...)
	if err != nil {
		e.t.Fatalf("%v: %v\nstderr: %s", args, err, errs)
	}
	return out, errs
}

const lilyDoc = `# Lily

Lily lives in a small red house by the sea. Every morning she walks her dog
along the beach and collects shells.
`

const aeroDoc = `Boundary layer transition on a flat plate depends on the Reynolds number,
the pressure gradient and the turbulence of the free stream.
`

func TestCLI(t *testing.T) {
	e := newEnv(t)
	docs := filepath.Join(e.dir, "docs")
	a := e.write("docs/lily.md", lilyDoc)
	b := e.write("docs/aero.txt", aeroDoc)
	e.write("docs/.hidden/secret.md", "hidden words zebra")
	e.write("docs/image.png", "\x89PNG\x00\x00")
	bin := e.write("blob.txt", "text\x00with a NUL")
	storeFlag := "--store=" + e.db

	// A search before any ingest is a clear error.
	if _, _, err := e.run("rag", storeFlag, "search", "house"); err == nil || !strings.Contains(err.Error(), "ingest") {
		t.Errorf("search of a missing store: %v", err)
	}
	// An ingest of a path that is not there makes no store.
	if _, _, err := e.run("rag", storeFlag, "ingest", filepath.Join(e.dir, "nothere")); err == nil || !strings.Contains(err.Error(), "nothere") {
		t.Errorf("ingest of a missing path: %v", err)
	}
	if _, err := os.Stat(e.db); err == nil {
		t.Errorf("a failed ingest left a store at %s", e.db)
	}

	out, errs := e.must("rag", storeFlag, "ingest", docs, bin)
	if !strings.Contains(out, "ingested 2 files (0 unchanged, 1 skipped)") {
		t.Errorf("ingest said %q", out)
	}
	if !strings.Contains(errs, "warning: skipping") || !strings.Contains(errs, "blob.txt") || !strings.Contains(errs, "ingest: ") {
		t.Errorf("ingest stderr lacks the warning naming blob.txt or progress: %q", errs)
	}

	for _, mode := range []string{"bm25", "dense", "hybrid"} {
		out, _ = e.must("rag", storeFlag, "search", "--mode", mode, "-k", "1", "red", "house", "sea")
		if !strings.HasPrefix(out, "1. ") || !strings.Contains(out, a+":") || !strings.Contains(out, "red house") {
			t.Errorf("%s search for the red house: %q", mode, out)
		}
	}
	if out, _ = e.must("rag", storeFlag, "search", "--mode", "bm25", "zebra"); !strings.Contains(out, "no matches") {
		t.Errorf("a hidden file was indexed: %q", out)
	}
	if _, _, err := e.run("rag", storeFlag, "search", "--mode", "bm25", "the", "of"); !errors.Is(err, ErrNoTerms) {
		t.Errorf("a stop-word query: %v", err)
	}
	if _, _, err := e.run("rag", storeFlag, "search", "--mode", "fts", "house"); err == nil || !strings.Contains(err.Error(), "PostgreSQL") {
		t.Errorf("fts on the file store: %v", err)
	}

	// Unchanged files are skipped; a changed one replaces its chunks.
	out, _ = e.must("rag", storeFlag, "-q", "ingest", docs)
	if !strings.Contains(out, "ingested 0 files (2 unchanged") {
		t.Errorf("second ingest: %q", out)
	}
	os.WriteFile(b, []byte("Shock waves reflect from the wall of the nozzle.\n"), 0o644)
	out, _ = e.must("rag", storeFlag, "-q", "ingest", docs)
	if !strings.Contains(out, "ingested 1 files (1 unchanged") {
		t.Errorf("ingest after a change: %q", out)
	}
	if out, _ = e.must("rag", storeFlag, "search", "--mode", "bm25", "reynolds"); !strings.Contains(out, "no matches") {
		t.Errorf("old chunks of a changed file survive: %q", out)
	}
	if out, _ = e.must("rag", storeFlag, "search", "--mode", "bm25", "nozzle"); !strings.Contains(out, b) {
		t.Errorf("new chunks of a changed file missing: %q", out)
	}
	// Mixing embedders in one store is refused.
	if _, _, err := e.run("rag", storeFlag, "ingest", "--hash-dim", "64", docs); err == nil || !strings.Contains(err.Error(), "hash-v1/256") {
		t.Errorf("ingest with another embedder: %v", err)
	}

	// Ask: the answer, then the sources.
	out, errs = e.must("rag", storeFlag, "ask", "-m", e.model, "-z", e.tok, "-k", "1", "-n", "200", "--mode", "bm25", "--show-prompt", "Where does Lily live?")
	if !strings.Contains(out, "\nSources:\n[1] "+a+":") {
		t.Errorf("ask output lacks the source: %q", out)
	}
	if !strings.Contains(errs, "[1] "+a+":") || !strings.Contains(errs, "Question: Where does Lily live?\nAnswer:") {
		t.Errorf("prompt on stderr: %q", errs)
	}
	answer := strings.TrimSpace(out[:strings.Index(out, "\nSources:")])
	if answer == "" || strings.Contains(answer, "Question:") {
		t.Errorf("the answer %q is empty or echoes the prompt", answer)
	}
	// Deterministic: greedy by default.
	out2, _ := e.must("rag", storeFlag, "ask", "-m", e.model, "-z", e.tok, "-k", "1", "-n", "200", "--mode", "bm25", "Where does Lily live?")
	if out2 != out {
		t.Errorf("greedy answers differ:\n%q\n%q", out, out2)
	}
	// A replaced template.
	tmpl := e.write("t.tmpl", "{{range .Contexts}}<{{.Source}}> {{.Text}}{{end}}\nQ: {{.Question}}\nA:")
	_, errs = e.must("rag", storeFlag, "ask", "-m", e.model, "-z", e.tok, "-k", "1", "-n", "300", "--template", tmpl, "--show-prompt", "Where does Lily live?")
	if !strings.Contains(errs, "<"+a+"> # Lily") || !strings.Contains(errs, "Q: Where does Lily live?\nA:") {
		t.Errorf("custom template prompt: %q", errs)
	}
	bad := e.write("bad.tmpl", "{{.Nope")
	if _, _, err := e.run("rag", storeFlag, "ask", "-m", e.model, "-z", e.tok, "--template", bad, "q"); err == nil || !strings.Contains(err.Error(), "bad.tmpl") {
		t.Errorf("broken template: %v", err)
	}
	// A question longer than the context.
	long := strings.Repeat("Lily house sea dog ", 300)
	if _, _, err := e.run("rag", storeFlag, "ask", "-m", e.model, "-z", e.tok, "--mode", "bm25", long); err == nil || !strings.Contains(err.Error(), "question alone") {
		t.Errorf("a question longer than the context: %v", err)
	}
	if _, _, err := e.run("rag", storeFlag, "ask", "Where?"); err == nil || !strings.Contains(err.Error(), "--model") {
		t.Errorf("ask without a model: %v", err)
	}

	// A store being written is locked for others.
	s, err := openForWrite(e.db)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = e.run("rag", storeFlag, "search", "house")
	s.Close()
	if err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("search of a locked store: %v", err)
	}
	if _, _, err := e.run("rag", "--store", filepath.Join(e.dir, "nope", "x.db"), "ingest", docs); err == nil || !strings.Contains(err.Error(), "x.db") {
		t.Errorf("a store that cannot be created: %v", err)
	}

	// embed: the baseline, and the model's pooled states.
	out, _ = e.must("embed", "hello world")
	var v []float64
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &v); err != nil || len(v) != 256 {
		t.Errorf("embed: %d values, %v", len(v), err)
	}
	out, _ = e.must("embed", "-m", e.model, "-z", e.tok, "hello", "world")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &v) != nil || len(v) != 64 {
		t.Errorf("model embed: %q", out)
	}
}

func openForWrite(path string) (store.Store, error) {
	return store.Open(context.Background(), path, store.Options{})
}

// TestModelIngest indexes with the model: token-bounded chunks and pooled
// vectors, searched with the same model.
func TestModelIngest(t *testing.T) {
	e := newEnv(t)
	var b strings.Builder
	for i := 0; i < 30; i++ {
		b.WriteString(lilyDoc)
		b.WriteString(aeroDoc)
	}
	f := e.write("docs/long.md", b.String())
	storeFlag := "--store=" + e.db
	if _, _, err := e.run("rag", storeFlag, "ingest", "-m", e.model, "-z", e.tok, "--chunk-tokens", "9999", f); err == nil || !strings.Contains(err.Error(), "context") {
		t.Errorf("chunks longer than the context: %v", err)
	}
	// Chunks of 400 words do not fit a context of 200: ask keeps as much of
	// the best one as fits rather than none.
	words := "--store=" + filepath.Join(t.TempDir(), "words.db")
	e.must("rag", words, "-q", "ingest", "--chunk-tokens", "400", f)
	out, errs := e.must("rag", words, "ask", "-m", e.model, "-z", e.tok, "-k", "2", "-n", "200", "--mode", "bm25", "--show-prompt", "Where does Lily live?")
	if !strings.Contains(errs, "the best chunk was cut by") || !strings.Contains(errs, "1 retrieved chunks did not fit") ||
		!strings.Contains(out, "\nSources:\n[1] "+f+":") || strings.Contains(out, "[2] ") {
		t.Errorf("ask over chunks longer than the context: stdout %q stderr %q", out, errs)
	}
	e.must("rag", storeFlag, "-q", "ingest", "-m", e.model, "-z", e.tok, "--chunk-tokens", "64", "--overlap", "8", f)
	if _, _, err := e.run("rag", storeFlag, "search", "--mode", "dense", "shells"); err == nil || !strings.Contains(err.Error(), "--model") {
		t.Errorf("dense search of model vectors without the model: %v", err)
	}
	out, _ = e.must("rag", storeFlag, "search", "-m", e.model, "-z", e.tok, "--full", "--mode", "hybrid", "-k", "3", "shells", "beach")
	if !strings.Contains(out, "[bm25 #") || !strings.Contains(out, f) {
		t.Errorf("hybrid search with model vectors: %q", out)
	}
	// The embedder is the weights, not the file's name: a renamed copy
	// searches the store, a copy with one weight changed is refused.
	raw, err := os.ReadFile(e.model)
	if err != nil {
		t.Fatal(err)
	}
	renamed := filepath.Join(t.TempDir(), "renamed.bin")
	os.WriteFile(renamed, raw, 0o644)
	e.must("rag", storeFlag, "search", "-m", renamed, "-z", e.tok, "--mode", "dense", "shells")
	raw[len(raw)/2] ^= 1
	changed := filepath.Join(t.TempDir(), "stories260K.bin")
	os.WriteFile(changed, raw, 0o644)
	if _, _, err := e.run("rag", storeFlag, "search", "-m", changed, "-z", e.tok, "--mode", "dense", "shells"); err == nil || !strings.Contains(err.Error(), "vectors") {
		t.Errorf("dense search with other weights under the same name: %v", err)
	}
	// Every stored chunk is within 64 tokens of the model's tokenizer.
	s, err := store.Open(context.Background(), e.db, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, _ := s.Stats(context.Background())
	ids := make([]uint64, st.Chunks)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	cs, err := s.Chunks(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := (&app{}).load(&modelFlags{model: e.model, tokenizer: e.tok, generic: true, threads: 1})
	for _, c := range cs {
		n, _ := chunk.Tokens{Enc: l.tok}.Count(c.Text)
		if n > 64 || c.Tokens != n || b.String()[c.Start:c.End] != c.Text {
			t.Fatalf("chunk %d: %d tokens (says %d), offsets [%d,%d) match %v", c.ID, n, c.Tokens, c.Start, c.End, b.String()[c.Start:c.End] == c.Text)
		}
	}
}

// cancelling embeds normally until n texts, then cancels the ingest.
type cancelling struct {
	embed.Embedder
	n      int
	cancel func()
}

func (c *cancelling) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	c.n -= len(texts)
	if c.n < 0 {
		c.cancel()
		return nil, ctx.Err()
	}
	return c.Embedder.Embed(ctx, texts)
}

// TestInterruptedIngest: an ingest cut short leaves the store as it was.
func TestInterruptedIngest(t *testing.T) {
	for _, backend := range []string{"bolt", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			loc := filepath.Join(t.TempDir(), "rag.db")
			if backend == "postgres" {
				loc = postgresURL(t)
			}
			s, err := store.Open(context.Background(), loc, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			o := IngestOptions{Chunk: chunk.Options{Size: 20, Overlap: 5}, Analyzer: bm25.Default, Embedder: embed.NewHash(32)}
			first := []Text{{"a", lilyDoc}, {"b", aeroDoc}}
			if _, err := IngestTexts(context.Background(), s, first, o); err != nil {
				t.Fatal(err)
			}
			before, _ := s.Stats(context.Background())
			r := &Retriever{Store: s, Analyzer: bm25.Default, Embedder: o.Embedder}
			hitsBefore, _ := r.Search(context.Background(), "lily house", Hybrid, 5)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			o.Embedder = &cancelling{Embedder: o.Embedder, n: 5, cancel: cancel}
			var more []Text
			for i := 0; i < 20; i++ {
				more = append(more, Text{Source: "m" + string(rune('a'+i)), Body: strings.Repeat("house by the sea ", 30)})
			}
			more = append(more, Text{"a", "replaced text"})
			_, err = IngestTexts(ctx, s, more, o)
			if err == nil || !strings.Contains(err.Error(), "nothing was written") {
				t.Fatalf("interrupted ingest: %v", err)
			}
			after, _ := s.Stats(context.Background())
			if after != before {
				t.Errorf("stats after an interrupted ingest %+v, before %+v", after, before)
			}
			hitsAfter, err := r.Search(context.Background(), "lily house", Hybrid, 5)
			if err != nil || len(hitsAfter) != len(hitsBefore) || hitsAfter[0].Text != hitsBefore[0].Text {
				t.Errorf("search after an interrupted ingest differs: %v", err)
			}
		})
	}
}

func TestFuse(t *testing.T) {
	a := []struct{ id uint64 }{{1}, {2}, {3}}
	b := []struct{ id uint64 }{{3}, {4}}
	var la, lb = toHits(a), toHits(b)
	got := Fuse(3, la, lb)
	// 3: 1/63 + 1/61; 1: 1/61; 2: 1/62 = 4: 1/62 (tie → lower id).
	want := []uint64{3, 1, 2}
	for i, h := range got {
		if h.ID != want[i] {
			t.Fatalf("fused %v, want ids %v", got, want)
		}
	}
	if d := got[0].Score - (1.0/63 + 1.0/61); d > 1e-15 || d < -1e-15 {
		t.Errorf("fused score %v", got[0].Score)
	}
}

func TestAugment(t *testing.T) {
	s, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "a.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := IngestOptions{Chunk: chunk.Options{Size: 50, Overlap: 5}, Analyzer: bm25.Default, Embedder: embed.NewHash(32)}
	if _, err := IngestTexts(context.Background(), s, []Text{{"lily.md", lilyDoc}, {"aero.txt", aeroDoc}}, o); err != nil {
		t.Fatal(err)
	}
	r := &Retriever{Store: s, Analyzer: bm25.Default, Embedder: o.Embedder}
	p, rs, err := Augment(context.Background(), r, "Where is the red house?", BM25, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "[1] lily.md:0-" + strconv.Itoa(len(strings.TrimRight(lilyDoc, "\n"))) + "\n" + strings.TrimRight(lilyDoc, "\n") + "\n\nQuestion: Where is the red house?\nAnswer:"
	if p != want || len(rs) != 1 {
		t.Errorf("prompt\n%q\nwant\n%q", p, want)
	}
}
