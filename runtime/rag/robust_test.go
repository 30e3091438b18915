package rag

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/runtime/rag/embed"
	"github.com/modelc/modelc/runtime/rag/store"
)

// runWithin runs the CLI and fails the test if it does not return in d (an
// ingest into a damaged store once waited for ever in Close).
func (e *env) runWithin(d time.Duration, args ...string) (string, string, error) {
	e.t.Helper()
	type res struct {
		out, errs string
		err       error
	}
	c := make(chan res, 1)
	go func() {
		out, errs, err := e.run(args...)
		c <- res{out, errs, err}
	}()
	select {
	case r := <-c:
		return r.out, r.errs, r.err
	case <-time.After(d):
		e.t.Fatalf("%v: still running after %v (deadlocked?)", args, d)
		return "", "", nil
	}
}

// manyDocs writes n documents of varied words, so that the store spans
// many pages.
func (e *env) manyDocs(n int) string {
	r := rand.New(rand.NewPCG(5, 6))
	words := strings.Fields(lilyDoc + aeroDoc)
	for i := 0; i < n; i++ {
		var b strings.Builder
		for j := 0; j < 150; j++ {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
		e.write(fmt.Sprintf("many/doc%02d.txt", i), b.String())
	}
	return filepath.Join(e.dir, "many")
}

// TestDamagedStore: a store cut short, or with a page overwritten, gives an
// error naming it to search, serve (OpenRetriever) and ingest: no crash, no
// hang, and a failed ingest leaves the file as it was.
func TestDamagedStore(t *testing.T) {
	e := newEnv(t)
	docs := e.manyDocs(30)
	e.must("rag", "--store", e.db, "-q", "ingest", docs)
	good, err := os.ReadFile(e.db)
	if err != nil {
		t.Fatal(err)
	}

	cut := filepath.Join(e.dir, "cut.db")
	os.WriteFile(cut, good[:len(good)/4], 0o644)
	_, _, err = e.run("rag", "--store", cut, "search", "boundary layer", "-k", "2")
	if !errors.Is(err, store.ErrDamaged) || !strings.HasPrefix(err.Error(), "store "+cut+" is damaged: the file has ") {
		t.Errorf("search of a truncated store: %v", err)
	}
	if _, err := OpenRetriever(context.Background(), cut, Hybrid, nil, nil); !errors.Is(err, store.ErrDamaged) {
		t.Errorf("OpenRetriever of a truncated store: %v", err)
	}

	// Each page overwritten in turn, then an ingest: it succeeds (a free
	// page) or says the store is damaged, and changes nothing then.
	flip := filepath.Join(e.dir, "flip.db")
	r := rand.New(rand.NewPCG(1, 2))
	fails := 0
	for pg := 2; pg*4096 < len(good); pg++ {
		b := bytes.Clone(good)
		for i := pg * 4096; i < (pg+1)*4096; i++ {
			b[i] = byte(r.Uint32())
		}
		os.WriteFile(flip, b, 0o644)
		out, _, err := e.runWithin(20*time.Second, "rag", "--store", flip, "-q", "ingest", "--force", docs)
		if err == nil {
			if !strings.Contains(out, "ingested 30 files") {
				t.Errorf("page %d: ingest said %q", pg, out)
			}
			continue
		}
		fails++
		if !errors.Is(err, store.ErrDamaged) || !strings.HasPrefix(err.Error(), "store "+flip+" is damaged: ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("page %d: ingest into a damaged store: %v", pg, err)
		}
		if after, _ := os.ReadFile(flip); !bytes.Equal(after, b) {
			t.Errorf("page %d: the failed ingest changed the file", pg)
		}
	}
	if fails == 0 {
		t.Errorf("no ingest met the damage")
	}
}

// TestBadFlagsMakeNoStore: flags are checked before the store is opened,
// so that a rejected ingest leaves no new, empty store behind.
func TestBadFlagsMakeNoStore(t *testing.T) {
	e := newEnv(t)
	doc := e.write("a.md", lilyDoc)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--chunk-tokens", "0"}, "--chunk-tokens 0 --overlap 40: chunk size must be ≥ 1 token, got 0"},
		{[]string{"--chunk-tokens", "20", "--overlap", "20"}, "--chunk-tokens 20 --overlap 20: chunk overlap must be in [0, size 20), got 20"},
		{[]string{"--overlap", "-1"}, "--chunk-tokens 200 --overlap -1: chunk overlap must be in [0, size 200), got -1"},
		{[]string{"--hash-dim", "100000000000"}, "--hash-dim: must be in [1, 65536], got 100000000000"},
		{[]string{"--hash-dim", "9223372036854775807"}, "--hash-dim: must be in [1, 65536], got 9223372036854775807"},
		{[]string{"--hash-dim", "0"}, "--hash-dim: must be in [1, 65536], got 0"},
	} {
		args := append([]string{"rag", "--store", e.db, "ingest", doc}, c.args...)
		if _, _, err := e.run(args...); err == nil || err.Error() != c.want {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
		if _, err := os.Stat(e.db); err == nil {
			t.Errorf("%v: a rejected ingest made %s", c.args, e.db)
			os.Remove(e.db)
		}
	}
	for _, d := range []string{"65537", "9223372036854775807", "-3"} {
		if _, _, err := e.run("embed", "--hash-dim", d, "hi"); err == nil || err.Error() != "--hash-dim: must be in [1, 65536], got "+d {
			t.Errorf("embed --hash-dim %s: %v", d, err)
		}
	}
	// The largest dimension allowed works.
	out, _ := e.must("embed", "--hash-dim", "65536", "hi")
	if n := strings.Count(out, ",") + 1; n != 65536 {
		t.Errorf("embed --hash-dim 65536 printed %d values", n)
	}
	// A store naming a dimension past the bound is refused, not allocated.
	if _, err := embedderFor("hash-v1/9223372036854775807", nil); err == nil || !strings.Contains(err.Error(), "bad dimension") {
		t.Errorf("a store naming a huge hash dimension: %v", err)
	}
	if _, err := embed.NewHash(1<<40).Embed(context.Background(), []string{"x"}); err == nil {
		t.Errorf("a hash embedder of 2^40 dimensions embedded")
	}

	// An empty file is no store to search.
	empty := e.write("empty.db", "")
	if _, _, err := e.run("rag", "--store", empty, "search", "house"); err == nil || err.Error() != "store "+empty+" is an empty file, not a store (ingest some files first)" {
		t.Errorf("search of an empty file: %v", err)
	}
	if _, _, err := e.run("rag", "--store", doc, "search", "house"); err == nil || err.Error() != "store "+doc+" is not a store file (not a bbolt database)" {
		t.Errorf("search of a Markdown file: %v", err)
	}
}

// TestEmptyQuery: a query of white space is an error in every mode, not
// chunks ranked by a zero vector.
func TestEmptyQuery(t *testing.T) {
	e := newEnv(t)
	e.must("rag", "--store", e.db, "-q", "ingest", e.write("a.md", lilyDoc), e.write("b.txt", aeroDoc))
	for _, q := range []string{"", "  ", "\t\n"} {
		for _, mode := range []string{"hybrid", "dense", "bm25"} {
			out, _, err := e.run("rag", "--store", e.db, "search", "--mode", mode, q)
			if !errors.Is(err, ErrEmptyQuery) || err.Error() != "the query is empty" || out != "" {
				t.Errorf("%s search for %q: %v, printed %q", mode, q, err, out)
			}
			// The chat server answers without context on ErrNoTerms.
			if !errors.Is(err, ErrNoTerms) {
				t.Errorf("%s search for %q: %v is not an ErrNoTerms", mode, q, err)
			}
		}
	}
}

// TestTemplateExecError: a template that fails on the data says so in one
// short line naming the file, not with the data printed whole.
func TestTemplateExecError(t *testing.T) {
	e := newEnv(t)
	e.must("rag", "--store", e.db, "-q", "ingest", e.write("a.md", lilyDoc))
	bad := e.write("range.tmpl", "{{range .}}x{{end}}")
	_, _, err := e.run("rag", "--store", e.db, "ask", "-m", e.model, "-z", e.tok, "--mode", "bm25", "--template", bad, "Where does Lily live?")
	want := "prompt template " + bad + ": " + bad + `:1:8: executing "` + bad + `" at <.>: range can't iterate over it (it needs a slice, map, channel or integer)`
	if err == nil || err.Error() != want {
		t.Errorf("template ranging over the data:\n got %v\nwant %s", err, want)
	}
	// Other messages are cut at their first line.
	if got := oneLine("first line\nsecond", 100); got != "first line …" {
		t.Errorf("oneLine cut %q", got)
	}
	if got := oneLine(strings.Repeat("é", 10), 5); got != "éé …" {
		t.Errorf("oneLine cut %q", got)
	}
	// BuildPrompt is what the chat server uses too.
	tmpl, _ := ParseTemplate("t", "{{range .Question}}{{end}}")
	rs := []Result{{Chunk: store.Chunk{Source: "a", Text: "line one\nline two"}}}
	if _, err := BuildPrompt(tmpl, "q", rs); err == nil || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "line one") {
		t.Errorf("BuildPrompt error: %v", err)
	}
}

// TestFailedFirstIngestMakesNoStore: a first ingest that fails after the
// store is opened (here interrupted before its first document) leaves no
// store and no temporary file; one that succeeds puts the store in place.
func TestFailedFirstIngestMakesNoStore(t *testing.T) {
	e := newEnv(t)
	doc := e.write("docs/a.md", lilyDoc)
	root := &cobra.Command{Use: "stories", SilenceErrors: true, SilenceUsage: true}
	root.AddCommand(e.storiesCommands()...)
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"rag", "--store", e.db, "ingest", doc})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := root.ExecuteContext(ctx); err == nil || !strings.Contains(err.Error(), "ingest interrupted, nothing was written") {
		t.Fatalf("interrupted first ingest: %v", err)
	}
	names := func() []string {
		es, _ := os.ReadDir(e.dir)
		var ns []string
		for _, x := range es {
			ns = append(ns, x.Name())
		}
		return ns
	}
	if ns := names(); len(ns) != 1 || ns[0] != "docs" {
		t.Errorf("after an interrupted first ingest the folder holds %v, want only docs", ns)
	}
	out, _ := e.must("rag", "--store", e.db, "ingest", doc)
	if !strings.Contains(out, "ingested 1 files") || !strings.HasSuffix(strings.TrimSpace(out), "into "+e.db) {
		t.Errorf("ingest said %q", out)
	}
	if ns := names(); len(ns) != 2 || ns[0] != "docs" || ns[1] != "rag.db" {
		t.Errorf("after a first ingest the folder holds %v, want docs and rag.db", ns)
	}
	if fi, err := os.Stat(e.db); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o644 {
		t.Errorf("the new store's mode is %v, want 0644 as every written file", fi.Mode())
	}
	if out, _ := e.must("rag", "--store", e.db, "search", "--mode", "bm25", "red", "house"); !strings.Contains(out, "red house") {
		t.Errorf("search of the new store: %q", out)
	}
}
