package rag

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/internal/atomicfile"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/cpu"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/rag/bm25"
	"github.com/modelc/modelc/runtime/rag/chunk"
	"github.com/modelc/modelc/runtime/rag/embed"
	"github.com/modelc/modelc/runtime/rag/store"
	"github.com/modelc/modelc/runtime/sample"
	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

// Option adjusts the commands.
type Option func(*app)

// WithThreads registers f to be called with --threads before a model is
// built, so that compiled code can size its worker pool.
func WithThreads(f func(n int)) Option {
	return func(a *app) { a.threads = append(a.threads, f) }
}

type app struct {
	name    string
	spec    *spec.Spec
	factory model.Factory
	threads []func(int)
}

// Commands returns `rag` (ingest, search, ask) and `embed` for a binary
// compiled for s whose models factory builds (nil: the generic model).
func Commands(name string, s *spec.Spec, factory model.Factory, opts ...Option) []*cobra.Command {
	a := newApp(name, s, factory, opts)
	return []*cobra.Command{a.ragCmd(), a.embedCmd()}
}

// Command returns `rag` alone.
func Command(name string, s *spec.Spec, factory model.Factory, opts ...Option) *cobra.Command {
	return newApp(name, s, factory, opts).ragCmd()
}

// EmbedCommand returns `embed` alone.
func EmbedCommand(name string, s *spec.Spec, factory model.Factory, opts ...Option) *cobra.Command {
	return newApp(name, s, factory, opts).embedCmd()
}

func newApp(name string, s *spec.Spec, factory model.Factory, opts []Option) *app {
	a := &app{name: name, spec: s, factory: factory}
	for _, o := range opts {
		o(a)
	}
	return a
}

// DefaultStore is the store used without --store: $MODELC_RAG_STORE, or
// rag.db in the working directory.
func DefaultStore() string {
	if s := os.Getenv("MODELC_RAG_STORE"); s != "" {
		return s
	}
	return "rag.db"
}

// modelFlags are the flags that load a model.
type modelFlags struct {
	model, tokenizer string
	generic          bool
	threads          int
}

func (f *modelFlags) add(cmd *cobra.Command, required bool) {
	fl := cmd.Flags()
	what := "model file (llama2.c .bin or GGUF)"
	if !required {
		what += " for token counts and model embeddings"
	}
	fl.StringVarP(&f.model, "model", "m", "", what)
	fl.StringVarP(&f.tokenizer, "tokenizer", "z", "", "tokenizer file; default: the one inside a GGUF model")
	fl.BoolVar(&f.generic, "generic", false, "run the generic model instead of the compiled one")
	fl.IntVar(&f.threads, "threads", runtime.NumCPU(), "worker threads")
}

type loaded struct {
	m    model.Model
	tok  tokenizer.Tokenizer
	file *gguf.File
}

func (l *loaded) close() {
	if l != nil && l.file != nil {
		l.file.Close()
	}
}

// load reads the model and tokenizer the flags name (nil, nil without --model).
func (a *app) load(f *modelFlags) (*loaded, error) {
	if f.model == "" {
		if f.tokenizer != "" {
			return nil, errors.New("--tokenizer needs --model (the tokenizer must match a model's vocabulary)")
		}
		return nil, nil
	}
	if err := cpu.CheckThreads(f.threads); err != nil {
		return nil, err
	}
	for _, t := range a.threads {
		t(f.threads)
	}
	p, gf, err := checkpoint.Load(f.model)
	if err != nil {
		return nil, err
	}
	l := &loaded{file: gf}
	fail := func(err error) (*loaded, error) { l.close(); return nil, err }
	factory := a.factory
	if f.generic || factory == nil {
		factory = generic.New
	} else if err := model.CheckShape(&p.Spec, a.spec); err != nil {
		return fail(fmt.Errorf("%s: %w (use --generic to run it anyway)", f.model, err))
	}
	if l.m, err = factory(p); err != nil {
		return fail(fmt.Errorf("%s: %w", f.model, err))
	}
	switch {
	case f.tokenizer != "":
		l.tok, err = tokenizer.Load(f.tokenizer, p.Spec.Vocab)
	case gf != nil:
		l.tok, err = tokenizer.FromGGUF(gf)
		if err != nil {
			err = fmt.Errorf("%s: %w (pass --tokenizer FILE)", f.model, err)
		}
	default:
		err = fmt.Errorf("no tokenizer: %s carries none, pass --tokenizer FILE", f.model)
	}
	if err != nil {
		return fail(err)
	}
	src := f.tokenizer
	if src == "" {
		src = f.model
	}
	if err := tokenizer.CheckVocab(src, l.tok, p.Spec.Vocab); err != nil {
		return fail(err)
	}
	return l, nil
}

// embedderFor returns the embedder a store's vectors were made with.
func embedderFor(name string, l *loaded) (embed.Embedder, error) {
	if d, ok := strings.CutPrefix(name, "hash-v1/"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || embed.CheckHashDim(n) != nil {
			return nil, fmt.Errorf("store names embedder %q: bad dimension", name)
		}
		return embed.NewHash(n), nil
	}
	if l == nil {
		return nil, fmt.Errorf("the store holds %s vectors: pass --model (and --tokenizer) to embed the query the same way", name)
	}
	e, err := embed.NewPooled(l.m, l.tok)
	if err != nil {
		return nil, err
	}
	if e.Name() != name {
		return nil, fmt.Errorf("the store holds %s vectors, --model gives %s (other weights): pass the model it was ingested with, ingest again, or search with --mode bm25", name, e.Name())
	}
	return e, nil
}

func (a *app) ragCmd() *cobra.Command {
	var loc string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "rag",
		Short: "Retrieval-augmented generation: ingest files, search them, answer from them",
		Long: `rag indexes text and Markdown files into a store (one local file by default,
or PostgreSQL with --store postgres://...), retrieves chunks by keywords
(BM25), by meaning (embeddings) or both (hybrid, reciprocal rank fusion),
and answers questions with the model from what it found.

Without --model, dense vectors come from a hashing BASELINE embedder (shared
word pieces, no learned meaning); with --model, from the model's pooled
hidden states.`,
		Example: fmt.Sprintf(`  %[1]s rag ingest docs/ notes.md
  %[1]s rag search "boundary layer transition" -k 5
  %[1]s rag ask --model model.gguf "Who wrote the report?"
  %[1]s rag --store postgres://user@localhost/db ingest docs/`, a.name),
	}
	cmd.PersistentFlags().StringVar(&loc, "store", DefaultStore(), "the store: a file path, or a postgres:// URL ($MODELC_RAG_STORE)")
	cmd.PersistentFlags().BoolVarP(&quiet, "quiet", "q", false, "no progress on stderr")
	progress := func(c *cobra.Command) io.Writer {
		if quiet {
			return nil
		}
		return c.ErrOrStderr()
	}
	cmd.AddCommand(a.ingestCmd(&loc, progress), a.searchCmd(&loc), a.askCmd(&loc, progress))
	return cmd
}

func (a *app) ingestCmd(loc *string, progress func(*cobra.Command) io.Writer) *cobra.Command {
	var (
		mf               modelFlags
		size, overlap    int
		embedder         string
		hashDim, hnswMin int
		force            bool
	)
	cmd := &cobra.Command{
		Use:   "ingest PATH...",
		Short: "Index text and Markdown files (directories are walked)",
		Long: `ingest splits files into chunks of at most --chunk-tokens tokens (the
model's tokenizer with --model, else words) overlapping by --overlap, and
indexes each chunk for BM25 and with a vector. A changed file replaces its
chunks; an unchanged one is skipped. Binary and unreadable files are skipped
with a warning. All of it is one transaction: interrupted, the store stays
as it was.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Before the store is opened: a bad flag must not leave a new,
			// empty store behind.
			if err := (chunk.Options{Size: size, Overlap: overlap}).Validate(); err != nil {
				return fmt.Errorf("--chunk-tokens %d --overlap %d: %w", size, overlap, err)
			}
			l, err := a.load(&mf)
			if err != nil {
				return err
			}
			defer l.close()
			o := IngestOptions{Chunk: chunk.Options{Size: size, Overlap: overlap}, Analyzer: bm25.Default, Force: force, Progress: progress(cmd)}
			if l != nil {
				o.Chunk.Counter = chunk.Tokens{Enc: l.tok}
				if size > l.m.Spec().MaxSeq {
					return fmt.Errorf("--chunk-tokens %d exceeds the model's context of %d", size, l.m.Spec().MaxSeq)
				}
			}
			if embedder == "" {
				embedder = "hash"
				if l != nil {
					embedder = "model"
				}
			}
			switch embedder {
			case "hash":
				if err := embed.CheckHashDim(hashDim); err != nil {
					return fmt.Errorf("--hash-dim: %w", err)
				}
				o.Embedder = embed.NewHash(hashDim)
			case "model":
				if l == nil {
					return errors.New("--embedder model needs --model")
				}
				if o.Embedder, err = embed.NewPooled(l.m, l.tok); err != nil {
					return err
				}
			default:
				return fmt.Errorf("--embedder: want hash or model, got %q", embedder)
			}
			// Before the store is opened (and a new one made): no empty
			// store for a mistyped path.
			if _, err := CollectFiles(args); err != nil {
				return err
			}
			openLoc, commit, err := newStoreTemp(*loc)
			if err != nil {
				return err
			}
			s, err := store.Open(cmd.Context(), openLoc, store.Options{HNSWMin: hnswMin})
			if err != nil {
				commit(false)
				return err
			}
			st, err := Ingest(cmd.Context(), s, args, o)
			if cerr := s.Close(); err == nil {
				err = cerr
			}
			if err := commit(err == nil); err != nil {
				return err
			}
			if err != nil {
				return err
			}
			where := *loc
			if store.IsPostgres(where) {
				where = s.Location() // without the password
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ingested %d files (%d unchanged, %d skipped): %d chunks in %.2fs (%.0f chunks/s) into %s\n",
				st.Files, st.Unchanged, st.Skipped, st.Chunks, st.Seconds, st.ChunksPerSecond(), where)
			return nil
		},
	}
	mf.add(cmd, false)
	fl := cmd.Flags()
	fl.IntVar(&size, "chunk-tokens", 200, "maximum tokens per chunk")
	fl.IntVar(&overlap, "overlap", 40, "tokens shared by neighbouring chunks")
	fl.StringVar(&embedder, "embedder", "", "hash (the baseline) or model (pooled hidden states); default: model with --model, else hash")
	fl.IntVar(&hashDim, "hash-dim", 256, "dimension of the hash embedder")
	fl.IntVar(&hnswMin, "hnsw-min", 20000, "collections this large get an HNSW graph for dense search (negative: never)")
	fl.BoolVar(&force, "force", false, "re-index files that did not change")
	return cmd
}

// openRetriever opens a store for searching and matches its embedder.
func openRetriever(ctx context.Context, loc string, l *loaded, needDense bool) (*Retriever, error) {
	s, err := store.Open(ctx, loc, store.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	m, ok, err := s.Meta(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	if !ok {
		s.Close()
		return nil, fmt.Errorf("store %s: %w", loc, store.ErrEmpty)
	}
	r := &Retriever{Store: s, Analyzer: bm25.Default}
	if needDense {
		if r.Embedder, err = embedderFor(m.Embedder, l); err != nil {
			s.Close()
			return nil, err
		}
	}
	return r, nil
}

func (a *app) searchCmd(loc *string) *cobra.Command {
	var (
		mf   modelFlags
		k    int
		mode string
		full bool
	)
	cmd := &cobra.Command{
		Use:   "search QUERY...",
		Short: "Show the chunks that best match a query, with scores and sources",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			md, err := ParseMode(mode)
			if err != nil {
				return err
			}
			l, err := a.load(&mf)
			if err != nil {
				return err
			}
			defer l.close()
			r, err := openRetriever(cmd.Context(), *loc, l, md == Dense || md == Hybrid)
			if err != nil {
				return err
			}
			defer r.Store.Close()
			t0 := time.Now()
			rs, err := r.Search(cmd.Context(), strings.Join(args, " "), md, k)
			if err != nil {
				return err
			}
			el := time.Since(t0)
			w := cmd.OutOrStdout()
			if len(rs) == 0 {
				fmt.Fprintln(w, "no matches")
			}
			for i, x := range rs {
				fmt.Fprintf(w, "%d. %.4f  %s:%d-%d%s\n", i+1, x.Score, x.Source, x.Start, x.End, rankNote(md, x))
				text := x.Text
				if !full {
					text = snippet(text, 240)
				}
				fmt.Fprintf(w, "   %s\n", strings.ReplaceAll(text, "\n", "\n   "))
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s search: %d results in %.1f ms\n", md, len(rs), float64(el.Microseconds())/1000)
			return nil
		},
	}
	mf.add(cmd, false)
	cmd.Flags().IntVarP(&k, "k", "k", 5, "how many chunks to show")
	cmd.Flags().StringVar(&mode, "mode", string(Hybrid), "bm25, dense, hybrid, or fts (PostgreSQL's full-text search)")
	cmd.Flags().BoolVar(&full, "full", false, "print whole chunks, not snippets")
	return cmd
}

func rankNote(md Mode, x Result) string {
	if md != Hybrid {
		return ""
	}
	f := func(r int) string {
		if r == 0 {
			return "-"
		}
		return "#" + strconv.Itoa(r)
	}
	return fmt.Sprintf("  [bm25 %s, dense %s]", f(x.KeywordRank), f(x.DenseRank))
}

// snippet shortens text to about n bytes on a word boundary, one line.
func snippet(text string, n int) string {
	s := strings.Join(strings.Fields(text), " ")
	if len(s) <= n {
		return s
	}
	cut := strings.LastIndexByte(s[:n], ' ')
	if cut < n/2 {
		cut = n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
	}
	return s[:cut] + " …"
}

func (a *app) askCmd(loc *string, progress func(*cobra.Command) io.Writer) *cobra.Command {
	var (
		mf       modelFlags
		k, steps int
		mode     string
		tmplPath string
		sp       = sample.Params{Temperature: 0, TopP: 0.9}
		showPr   bool
	)
	cmd := &cobra.Command{
		Use:   "ask --model FILE QUESTION...",
		Short: "Answer a question from the retrieved chunks and print the sources",
		Long: `ask retrieves the top -k chunks, builds a prompt from them and the question
with a Go text/template (the default below; replace it with --template FILE,
whose data has .Question and .Contexts with .N .Source .Start .End .Text
.Score), generates the answer with the model, and lists the sources. Chunks
that do not fit the model's context are left out, last first.

Default template:
` + DefaultTemplate,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			md, err := ParseMode(mode)
			if err != nil {
				return err
			}
			if mf.model == "" {
				return errors.New("--model FILE is required to answer")
			}
			if !cmd.Flags().Changed("seed") {
				sp.Seed = uint64(time.Now().UnixNano())
			}
			if err := sp.Validate(); err != nil {
				return err
			}
			tmpl := template.Must(ParseTemplate("default", DefaultTemplate))
			if tmplPath != "" {
				b, err := os.ReadFile(tmplPath)
				if err != nil {
					return fmt.Errorf("--template: %w", err)
				}
				if tmpl, err = ParseTemplate(tmplPath, string(b)); err != nil {
					return err
				}
			}
			l, err := a.load(&mf)
			if err != nil {
				return err
			}
			defer l.close()
			r, err := openRetriever(cmd.Context(), *loc, l, md == Dense || md == Hybrid)
			if err != nil {
				return err
			}
			defer r.Store.Close()
			sampler, err := sample.New(sp)
			if err != nil {
				return err
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			ans, err := Ask(cmd.Context(), r, l.m, l.tok, sampler, strings.Join(args, " "), AskOptions{K: k, Mode: md, Template: tmpl, Steps: steps}, w)
			if err != nil {
				return err
			}
			if pw := progress(cmd); pw != nil {
				if showPr {
					fmt.Fprintf(pw, "--- prompt ---\n%s\n--- end of prompt ---\n", ans.Prompt)
				}
				if ans.Cut > 0 {
					fmt.Fprintf(pw, "note: the best chunk was cut by %d bytes to fit the model's context (ingest with --model to bound chunks by the model's tokens)\n", ans.Cut)
				}
				if ans.Dropped > 0 {
					fmt.Fprintf(pw, "note: %d retrieved chunks did not fit the model's context\n", ans.Dropped)
				}
				if w := ans.Stats.Warning(l.m.Spec().MaxSeq); w != "" {
					fmt.Fprintln(pw, w)
				}
				fmt.Fprintln(pw, ans.Stats.Line())
			}
			fmt.Fprintln(w, "\nSources:")
			for i, s := range ans.Sources {
				fmt.Fprintf(w, "[%d] %s:%d-%d (score %.4f)\n", i+1, s.Source, s.Start, s.End, s.Score)
			}
			return nil
		},
	}
	mf.add(cmd, true)
	fl := cmd.Flags()
	fl.IntVarP(&k, "k", "k", 3, "chunks to retrieve")
	fl.StringVar(&mode, "mode", string(Hybrid), "bm25, dense, hybrid or fts")
	fl.StringVar(&tmplPath, "template", "", "prompt template file (Go text/template)")
	fl.IntVarP(&steps, "steps", "n", 0, "positions to run, prompt included; 0 = max_seq")
	fl.Float64VarP(&sp.Temperature, "temperature", "t", 0, "sampling temperature; 0 = greedy")
	fl.Float64VarP(&sp.TopP, "top-p", "p", 0.9, "nucleus sampling mass in (0, 1]")
	fl.Uint64VarP(&sp.Seed, "seed", "s", 0, "random seed (default: from the clock)")
	fl.BoolVar(&showPr, "show-prompt", false, "print the prompt on stderr")
	return cmd
}

func (a *app) embedCmd() *cobra.Command {
	var (
		mf      modelFlags
		hashDim int
	)
	cmd := &cobra.Command{
		Use:   "embed [TEXT...]",
		Short: "Print the embedding of each text (or of each stdin line) as a JSON array",
		Long: `embed prints one JSON array per text: the model's pooled hidden state with
--model, else the hashing baseline (--hash-dim values). Without arguments it
embeds each line of standard input.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := a.load(&mf)
			if err != nil {
				return err
			}
			defer l.close()
			var e embed.Embedder
			if l != nil {
				if e, err = embed.NewPooled(l.m, l.tok); err != nil {
					return err
				}
			} else {
				if err := embed.CheckHashDim(hashDim); err != nil {
					return fmt.Errorf("--hash-dim: %w", err)
				}
				e = embed.NewHash(hashDim)
			}
			texts := args
			if len(texts) == 0 {
				sc := bufio.NewScanner(cmd.InOrStdin())
				sc.Buffer(make([]byte, 1<<16), 1<<24)
				for sc.Scan() {
					texts = append(texts, sc.Text())
				}
				if err := sc.Err(); err != nil {
					return fmt.Errorf("read stdin: %w", err)
				}
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			for lo := 0; lo < len(texts); lo += 64 {
				vs, err := e.Embed(cmd.Context(), texts[lo:min(lo+64, len(texts))])
				if err != nil {
					return err
				}
				for _, v := range vs {
					b, _ := json.Marshal(v)
					w.Write(b)
					w.WriteByte('\n')
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "embedder %s: %d texts\n", e.Name(), len(texts))
			return nil
		},
	}
	mf.add(cmd, false)
	cmd.Flags().IntVar(&hashDim, "hash-dim", 256, "dimension of the hash embedder (without --model)")
	return cmd
}

// newStoreTemp returns where ingest opens the store at loc: loc itself
// when it exists or is a PostgreSQL URL, else a temporary file beside it
// that commit(true) puts in place, so that a failed or interrupted first
// ingest leaves no new, empty store. commit(false) removes the temporary
// file; a store another ingest made at loc meanwhile is kept, not replaced.
func newStoreTemp(loc string) (string, func(ok bool) error, error) {
	nop := func(bool) error { return nil }
	if loc == "" || store.IsPostgres(loc) {
		return loc, nop, nil
	}
	if _, err := os.Stat(loc); !errors.Is(err, fs.ErrNotExist) {
		return loc, nop, nil
	}
	f, err := os.CreateTemp(filepath.Dir(loc), "."+filepath.Base(loc)+".tmp*")
	if err != nil {
		return "", nil, fmt.Errorf("store %s: %w", loc, err)
	}
	f.Close()
	tmp := f.Name()
	untrack := atomicfile.Track(tmp)
	os.Chmod(tmp, 0o644) // as a store bbolt creates itself
	return tmp, func(ok bool) error {
		defer untrack()
		defer os.Remove(tmp)
		if !ok {
			return nil
		}
		// A link, unlike a rename, never replaces a store made meanwhile.
		if err := os.Link(tmp, loc); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("store %s was created by another ingest while this one ran; nothing of this one was kept, run it again", loc)
			}
			return fmt.Errorf("store %s: %w", loc, err)
		}
		return nil
	}, nil
}
