package openbook

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/posttrain"
	"github.com/modelc/modelc/runtime/rag"
	"github.com/modelc/modelc/runtime/rag/internal/pgtest"
	"github.com/modelc/modelc/runtime/rag/internal/ragtest"
	"github.com/modelc/modelc/runtime/rag/store"
	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

var (
	pgOnce sync.Once
	pgSrv  *pgtest.Server
	pgErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pgSrv != nil {
		pgSrv.Stop()
	}
	os.Exit(code)
}

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

// TestSplit: nothing a held-out question asks for — its entity or its
// answer — occurs in a training conversation.
func TestSplit(t *testing.T) {
	ctx := context.Background()
	set := Generate(3, 60, 10)
	if len(set.Train) != 60*Attrs || len(set.Test) != 10*Attrs {
		t.Fatalf("%d train, %d test facts", len(set.Train), len(set.Test))
	}
	seen := map[string]bool{}
	for _, f := range append(append([]Fact(nil), set.Train...), set.Test...) {
		if seen[f.Answer] {
			t.Fatalf("answer %q given twice", f.Answer)
		}
		seen[f.Answer] = true
	}
	// The first entities of a seed do not depend on the sizes.
	if small := Generate(3, 10, 1); small.Train[7] != set.Train[7] {
		t.Errorf("fact 7: %+v with 10 entities, %+v with 70", small.Train[7], set.Train[7])
	}
	s, err := store.OpenBolt(filepath.Join(t.TempDir(), "train.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := Index(ctx, s, Texts(set.Train))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := Conversations(ctx, r, set.Train, TrainOptions{Mode: rag.Hybrid, MinK: 1, MaxK: 3, Copies: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2*len(set.Train) {
		t.Fatalf("%d conversations", len(cs))
	}
	var all strings.Builder
	for _, c := range cs {
		all.WriteString(c.Messages[0].Content)
		all.WriteString(c.Messages[1].Content + "\n")
	}
	text := all.String()
	for _, f := range set.Test {
		if strings.Contains(text, f.Entity) || strings.Contains(text, " "+f.Answer+".") || strings.Contains(text, "\n"+f.Answer+"\n") {
			t.Fatalf("held-out fact %q leaks into training", f.Text)
		}
	}
	// Every training prompt holds its fact (the reply is copied, not recalled).
	answers := map[string]bool{}
	for _, f := range set.Train {
		answers[f.Answer] = true
	}
	for _, c := range cs {
		u, a := c.Messages[0].Content, c.Messages[1].Content
		if !answers[a] || !strings.Contains(u, " "+a+".") || !strings.HasSuffix(u, "\nAnswer:") || !strings.HasPrefix(u, "[1] doc") {
			t.Fatalf("conversation %q → %q", u, a)
		}
	}
}

// TestStoresAgree: retrieval for every held-out question finds its document
// and returns the same chunks and scores from bbolt and from PostgreSQL.
func TestStoresAgree(t *testing.T) {
	ctx := context.Background()
	set := Generate(5, 80, 20)
	docs := Texts(set.Train, set.Test)
	bolt, err := store.OpenBolt(filepath.Join(t.TempDir(), "rag.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	pg, err := store.Open(ctx, postgresURL(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	rb, err := Index(ctx, bolt, docs)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := Index(ctx, pg, docs)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []rag.Mode{rag.BM25, rag.Dense, rag.Hybrid} {
		found := 0
		for _, f := range set.Test {
			a, err := rb.Search(ctx, f.Question, mode, 3)
			if err != nil {
				t.Fatal(err)
			}
			b, err := rp.Search(ctx, f.Question, mode, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(a) != len(b) {
				t.Fatalf("%s %q: %d vs %d results", mode, f.Question, len(a), len(b))
			}
			for i := range a {
				if a[i].Source != b[i].Source || a[i].Score-b[i].Score > 1e-6 || b[i].Score-a[i].Score > 1e-6 {
					t.Fatalf("%s %q: result %d: bolt %s %.6f, postgres %s %.6f", mode, f.Question, i, a[i].Source, a[i].Score, b[i].Source, b[i].Score)
				}
			}
			for _, x := range a {
				if x.Source == f.Source {
					found++
				}
			}
		}
		recall := float64(found) / float64(len(set.Test))
		t.Logf("%s recall@3 %.3f", mode, recall)
		if mode != rag.Dense && recall < 0.99 {
			t.Errorf("%s: recall@3 %.3f on held-out questions", mode, recall)
		}
	}
}

// TestPipeline runs the experiment at toy size: SFT (posttrain) of a tiny
// fresh model for a few steps on conversations built from retrieval, then
// Eval with both stores. A few steps teach nothing, so it checks the
// plumbing and that the two stores give the same answers, not accuracy
// (the real run is in RESULTS.md).
func TestPipeline(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	set := Generate(7, 30, 2)
	s, err := store.OpenBolt(filepath.Join(dir, "train.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Index(ctx, s, Texts(set.Train))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := Conversations(ctx, r, set.Train, TrainOptions{Mode: rag.Hybrid, MinK: 1, MaxK: 2, Copies: 1, Seed: 1})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "sft.jsonl")
	if err := WriteJSONL(data, cs); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(filepath.Join(ragtest.DataDir(t), "models", "tok512.bin"), 512)
	if err != nil {
		t.Fatal(err)
	}
	sp := &spec.Spec{Name: "tiny", Vocab: 512, Dim: 32, Layers: 2, Heads: 4, KVHeads: 2, FFNDim: 64, MaxSeq: 256,
		NormEps: 1e-5, RopeTheta: 10000, TieEmbeddings: true, Objective: model.ObjectiveCausal}
	cfg := posttrain.SFTConfig{Data: data}
	cfg.Spec, cfg.Tok, cfg.Template = sp, tok, "llama2"
	cfg.Batch, cfg.Seq, cfg.Out = 2, 160, filepath.Join(dir, "sft")
	cfg.Hyper.Steps, cfg.Hyper.LR, cfg.Hyper.MinLR, cfg.Hyper.Seed = 3, 1e-3, 1e-4, 1
	cfg.Hyper.EvalEvery, cfg.Hyper.CkptEvery = 3, 3
	if _, err := posttrain.SFT(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	p, gf, err := checkpoint.Load(filepath.Join(dir, "sft", "model.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if gf != nil {
		defer gf.Close()
	}
	m, err := generic.New(p)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, _ := tokenizer.ChatTemplate("llama2")
	e := &posttrain.Encoder{Tok: tok, Template: tmpl}
	var results []Result
	for _, loc := range []string{filepath.Join(dir, "all.db"), postgresURL(t)} {
		st, err := store.Open(ctx, loc, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := Index(ctx, st, Texts(set.Train, set.Test))
		if err != nil {
			t.Fatal(err)
		}
		var show strings.Builder
		res, err := Eval(ctx, r, m, e, set.Test, Known(set.Train), EvalOptions{K: 2, Mode: rag.Hybrid, MaxNew: 4, Show: &show})
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %v\n%s", st.Location(), res, show.String())
		if res.N != len(set.Test) || res.Retrieved != res.N {
			t.Errorf("%s: %v", loc, res)
		}
		results = append(results, res)
	}
	if results[0] != results[1] {
		t.Errorf("bolt %v, postgres %v", results[0], results[1])
	}
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		reply, answer string
		want          bool
	}{{"Plentu", "Plentu", true}, {" plentu.", "Plentu", true}, {"Plentu is", "Plentu", false}, {"", "Plentu", false}, {"421", "421", true}} {
		if got := Match(c.reply, c.answer); got != c.want {
			t.Errorf("Match(%q, %q) = %v", c.reply, c.answer, got)
		}
	}
}
