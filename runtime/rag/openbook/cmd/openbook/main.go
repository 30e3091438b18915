// Command openbook runs the open-book experiment (runtime/rag/RESULTS.md):
//
//	openbook gen  --dir D [--train 400 --val 20 --test 60 --seed 1 --copies 2 --kmin 2 --kmax 4]
//	  writes D/facts_{train,val,test}.jsonl, D/docs/*.txt (every fact as a
//	  document), D/sft_train.jsonl and D/sft_val.jsonl (prompts built from
//	  retrieval over the training documents) for `posttrain … sft`.
//	openbook eval --dir D --model M [--tokenizer T] [--store LOC] [--k 3 --mode hybrid]
//	  ingests every document into LOC (a fresh bbolt file by default, or a
//	  postgres:// URL, or with --postgres a throwaway server) and answers the held-out questions with and without
//	  retrieval.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/posttrain"
	"github.com/modelc/modelc/runtime/rag"
	"github.com/modelc/modelc/runtime/rag/internal/pgtest"
	"github.com/modelc/modelc/runtime/rag/openbook"
	"github.com/modelc/modelc/runtime/rag/store"
	"github.com/modelc/modelc/tokenizer"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: openbook gen|eval [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(ctx, os.Args[2:])
	case "eval":
		err = eval(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (gen or eval)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "openbook:", err)
		os.Exit(1)
	}
}

func gen(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	dir := fs.String("dir", "openbook", "output folder")
	nTrain := fs.Int("train", 400, "training entities (5 facts each)")
	nVal := fs.Int("val", 20, "validation entities (SFT validation loss)")
	nTest := fs.Int("test", 60, "held-out entities")
	seed := fs.Uint64("seed", 1, "seed")
	copies := fs.Int("copies", 2, "training conversations per fact")
	kmin := fs.Int("kmin", 2, "fewest contexts in a training prompt")
	kmax := fs.Int("kmax", 4, "most contexts in a training prompt")
	mode := fs.String("mode", "hybrid", "retrieval mode for the training prompts")
	fs.Parse(args)
	md, err := rag.ParseMode(*mode)
	if err != nil {
		return err
	}
	set := openbook.Generate(*seed, *nTrain+*nVal, *nTest)
	cut := *nTrain * openbook.Attrs
	train, val := set.Train[:cut], set.Train[cut:]
	if err := os.MkdirAll(filepath.Join(*dir, "docs"), 0o755); err != nil {
		return err
	}
	for _, t := range openbook.Texts(set.Train, set.Test) {
		if err := os.WriteFile(filepath.Join(*dir, "docs", t.Source+".txt"), []byte(t.Body), 0o644); err != nil {
			return err
		}
	}
	for name, fs := range map[string][]openbook.Fact{"facts_train.jsonl": train, "facts_val.jsonl": val, "facts_test.jsonl": set.Test} {
		if err := openbook.WriteJSONL(filepath.Join(*dir, name), fs); err != nil {
			return err
		}
	}
	// Training prompts come from a store of the training (and validation)
	// documents only.
	tmp, err := os.MkdirTemp("", "openbook")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	s, err := store.OpenBolt(filepath.Join(tmp, "train.db"), store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	r, err := openbook.Index(ctx, s, openbook.Texts(set.Train))
	if err != nil {
		return err
	}
	o := openbook.TrainOptions{Mode: md, MinK: *kmin, MaxK: *kmax, Copies: *copies, Seed: *seed}
	cs, err := openbook.Conversations(ctx, r, train, o)
	if err != nil {
		return err
	}
	o.Copies = 1
	vs, err := openbook.Conversations(ctx, r, val, o)
	if err != nil {
		return err
	}
	if err := openbook.WriteJSONL(filepath.Join(*dir, "sft_train.jsonl"), cs); err != nil {
		return err
	}
	if err := openbook.WriteJSONL(filepath.Join(*dir, "sft_val.jsonl"), vs); err != nil {
		return err
	}
	fmt.Printf("%d training facts (%d conversations), %d validation, %d held-out facts in %s\n", len(train), len(cs), len(val), len(set.Test), *dir)
	return nil
}

func eval(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("eval", flag.ExitOnError)
	dir := fs.String("dir", "openbook", "folder written by gen")
	modelPath := fs.String("model", "", "model file (required)")
	tokPath := fs.String("tokenizer", "", "tokenizer (default: the one inside a GGUF model)")
	loc := fs.String("store", "", "store to ingest every document into (default: a fresh bbolt file in a temporary folder)")
	k := fs.Int("k", 3, "chunks to retrieve")
	mode := fs.String("mode", "hybrid", "bm25, dense, hybrid or fts")
	tmplName := fs.String("template", "llama2", "chat template SFT used")
	n := fs.Int("n", 0, "evaluate the first n held-out facts (0: all)")
	split := fs.String("split", "test", "facts to ask: test, val or train")
	show := fs.Bool("show", false, "print every question and reply")
	pg := fs.Bool("postgres", false, "start a throwaway PostgreSQL (Debian's postgresql package, as the tests do) and use it as the store")
	fs.Parse(args)
	md, err := rag.ParseMode(*mode)
	if err != nil {
		return err
	}
	if *modelPath == "" {
		return fmt.Errorf("--model is required")
	}
	p, gf, err := checkpoint.Load(*modelPath)
	if err != nil {
		return err
	}
	m, err := generic.New(p)
	if err != nil {
		return err
	}
	var tok tokenizer.Tokenizer
	if *tokPath != "" {
		tok, err = tokenizer.Load(*tokPath, p.Spec.Vocab)
	} else if gf != nil {
		tok, err = tokenizer.FromGGUF(gf)
	} else {
		err = fmt.Errorf("pass --tokenizer")
	}
	if err != nil {
		return err
	}
	t, err := tokenizer.ChatTemplate(*tmplName)
	if err != nil {
		return err
	}
	e := &posttrain.Encoder{Tok: tok, Template: t}

	train, err := openbook.ReadFacts(filepath.Join(*dir, "facts_train.jsonl"))
	if err != nil {
		return err
	}
	val, err := openbook.ReadFacts(filepath.Join(*dir, "facts_val.jsonl"))
	if err != nil {
		return err
	}
	test, err := openbook.ReadFacts(filepath.Join(*dir, "facts_test.jsonl"))
	if err != nil {
		return err
	}
	ask := map[string][]openbook.Fact{"test": test, "val": val, "train": train}[*split]
	if ask == nil {
		return fmt.Errorf("--split: test, val or train")
	}
	if *n > 0 && *n < len(ask) {
		ask = ask[:*n]
	}
	if *pg {
		srv, err := pgtest.Start()
		if err != nil {
			return err
		}
		defer srv.Stop()
		if *loc, err = srv.NewDB(); err != nil {
			return err
		}
	}
	if *loc == "" {
		tmp, err := os.MkdirTemp("", "openbook")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*loc = filepath.Join(tmp, "rag.db")
	}
	s, err := store.Open(ctx, *loc, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	r, err := openbook.Index(ctx, s, openbook.Texts(train, val, test))
	if err != nil {
		return err
	}
	o := openbook.EvalOptions{K: *k, Mode: md}
	if *show {
		o.Show = os.Stdout
	}
	res, err := openbook.Eval(ctx, r, m, e, ask, openbook.Known(train), o)
	if err != nil {
		return err
	}
	fmt.Printf("store %s, %s k %d: %v\n", s.Location(), md, *k, res)
	return nil
}
