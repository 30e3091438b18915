package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/cpu"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/sample"
	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

// envPrefix starts every environment variable the command reads.
const envPrefix = "MODELC_"

// Command returns the `serve` command of a model binary called name compiled
// for s, whose models factory builds; threads are called with --threads
// before the model is built (as cli.WithThreads). Wire it with
//
//	root.AddCommand(server.Command(name, spec, factory, threadFuncs...))
func Command(name string, s *spec.Spec, factory model.Factory, threads ...func(n int)) *cobra.Command {
	return command(&serveOptions{name: name, spec: s, factory: factory, setters: threads})
}

func command(o *serveOptions) *cobra.Command {
	name := o.name
	d := sample.Defaults()
	cmd := &cobra.Command{
		Use:   "serve --model FILE [--tokenizer FILE] [--addr HOST:PORT]",
		Short: "Serve the model over an OpenAI-compatible HTTP API",
		Long: fmt.Sprintf(`Serve answers the OpenAI HTTP API for this model:

  POST /v1/completions        POST /v1/chat/completions   (stream: true → server-sent events)
  POST /v1/embeddings         GET  /v1/models
  POST /tokenize              POST /detokenize
  GET  /health                (503 while loading, 200 when ready; a server shutting down stops listening)
  GET  /metrics               (Prometheus text format)

Up to --slots requests are decoded together, each with its own KV cache; with
--batch on, one decode step runs them all in one batched pass when the model
supports it. Further requests wait in a queue of --max-queue, beyond which the
server answers 503 with Retry-After. With --api-key set, every endpoint but
/health and /metrics needs "Authorization: Bearer KEY".

On SIGTERM or SIGINT the server stops accepting connections, lets running
requests finish for up to --grace, cancels what is left, and exits 0.

Every flag can also be set by an environment variable, named after it:
%s
A flag given on the command line wins over the environment.`, envList()),
		Example: fmt.Sprintf(`  %[1]s serve --model stories260K.bin --tokenizer tok512.bin
  MODELC_ADDR=0.0.0.0:8080 MODELC_SLOTS=16 %[1]s serve --model model.gguf
  curl -s localhost:8080/v1/completions -d '{"prompt": "Once upon a time", "max_tokens": 64}'`, name),
		Args:          cobra.NoArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), os.LookupEnv); err != nil {
				return err
			}
			return o.run(cmd.Context(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.modelPath, "model", "m", "", "model file: llama2.c .bin or GGUF (required)")
	fl.StringVarP(&o.tokPath, "tokenizer", "z", "", "tokenizer file (llama2.c .bin, GGUF, …); default: the one inside a GGUF model")
	fl.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address to listen on (host:port)")
	fl.IntVar(&o.cfg.Slots, "slots", 4, "requests decoded together, each with its own KV cache")
	fl.IntVar(&o.cfg.MaxQueue, "max-queue", 64, "requests that may wait for a slot; beyond it 503")
	fl.StringVar(&o.cfg.APIKey, "api-key", "", "require \"Authorization: Bearer KEY\" (empty: no key)")
	fl.Int64Var(&o.cfg.MaxBody, "max-body", 1<<20, "largest request body in bytes; larger ones get 413")
	fl.DurationVar(&o.grace, "grace", 10*time.Second, "on SIGTERM, how long running requests may take to finish")
	fl.Float64Var(&o.cfg.Defaults.Temperature, "temperature", d.Temperature, "default sampling temperature; 0 = greedy")
	fl.Float64Var(&o.cfg.Defaults.TopP, "top-p", d.TopP, "default nucleus sampling mass in (0, 1]")
	fl.IntVar(&o.cfg.Defaults.TopK, "top-k", d.TopK, "default top-k; 0 = off")
	fl.IntVar(&o.cfg.Defaults.MaxTokens, "max-tokens", 256, "default max_tokens (further capped by the context left)")
	fl.StringVar(&o.batch, "batch", "on", "batched decoding: on or off (off: one forward pass per request per step)")
	fl.IntVar(&o.cfg.PrefillChunk, "prefill-chunk", 64, "prompt tokens a joining request runs per decode step")
	fl.StringVar(&o.chat, "chat-template", "", "chat template: "+strings.Join(tokenizer.ChatTemplates(), ", ")+" (default: the GGUF file's, else chatml)")
	fl.StringVar(&o.cfg.ModelName, "model-name", name, "model id reported by /v1/models and in responses")
	fl.IntVar(&o.threads, "threads", runtime.NumCPU(), "worker threads")
	fl.BoolVar(&o.useGeneric, "generic", false, "run the generic model instead of the compiled one")
	fl.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	o.rag.flags(fl)
	fl.VisitAll(func(f *pflag.Flag) {
		f.Usage += fmt.Sprintf(" [$%s]", envName(f.Name))
	})
	return cmd
}

type serveOptions struct {
	name    string
	spec    *spec.Spec
	factory model.Factory
	setters []func(n int)

	cfg                      Config
	modelPath, tokPath, addr string
	batch, chat, logLevel    string
	grace                    time.Duration
	threads                  int
	useGeneric               bool
	rag                      ragOptions

	// Tests: learn the listening address, replace the signals.
	onListen func(addr string)
	signals  []os.Signal
}

// envName is the environment variable of a flag: --max-queue → MODELC_MAX_QUEUE.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// envList lists the variables for the help text.
func envList() string {
	names := []string{"model", "tokenizer", "addr", "slots", "max-queue", "api-key", "max-body", "grace",
		"temperature", "top-p", "top-k", "max-tokens", "batch", "prefill-chunk", "chat-template", "model-name",
		"threads", "generic", "log-level"}
	names = append(names, ragEnv...)
	sort.Strings(names)
	var b strings.Builder
	for i, n := range names {
		if i%3 == 0 {
			b.WriteString("  ")
		}
		fmt.Fprintf(&b, "%-24s", envName(n))
		if i%3 == 2 || i == len(names)-1 {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// applyEnv sets every flag not given on the command line from its variable.
func applyEnv(fl *pflag.FlagSet, lookup func(string) (string, bool)) error {
	var err error
	fl.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		v, ok := lookup(envName(f.Name))
		if !ok {
			return
		}
		if e := fl.Set(f.Name, v); e != nil {
			err = fmt.Errorf("$%s: %w", envName(f.Name), e)
		}
	})
	return err
}

func (o *serveOptions) run(ctx context.Context, stderr io.Writer) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %q is not debug, info, warn or error", o.logLevel)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	o.cfg.Logger = log
	switch o.batch {
	case "on":
		o.cfg.Batch = true
	case "off":
		o.cfg.Batch = false
	default:
		return fmt.Errorf("--batch: must be on or off, got %q", o.batch)
	}
	if o.grace < 0 {
		return fmt.Errorf("--grace: must be ≥ 0, got %v", o.grace)
	}
	if err := cpu.CheckThreads(o.threads); err != nil {
		return err
	}
	if o.modelPath == "" {
		return errors.New("--model FILE is required")
	}
	// Loading runs after the server listens (/health says 503 meanwhile);
	// a missing file is worth saying before that.
	if _, err := os.Stat(o.modelPath); err != nil {
		return fmt.Errorf("--model: %w", err)
	}
	if o.chat != "" {
		if _, err := tokenizer.ChatTemplate(o.chat); err != nil {
			return fmt.Errorf("--chat-template: %w", err)
		}
	}
	if o.spec != nil && o.cfg.Slots > 0 {
		// Every slot's KV cache is allocated at load: say so before that
		// runs the machine out of memory.
		kv := uint64(o.spec.Figures().KVCacheBytes)
		if ram := totalRAM(); ram > 0 && uint64(o.cfg.Slots)*kv > ram/2 {
			return fmt.Errorf("--slots %d needs %s of KV cache (%s a slot), more than half this machine's %s of memory",
				o.cfg.Slots, spec.Bytes(int64(uint64(o.cfg.Slots)*kv)), spec.Bytes(int64(kv)), spec.Bytes(int64(ram)))
		}
	}
	var err error
	if o.cfg.RAG, err = o.rag.config(); err != nil {
		return err
	}
	srv, err := New(o.cfg)
	if err != nil {
		return fmt.Errorf("--%w", err)
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("listening", "addr", "http://"+ln.Addr().String())
	if o.onListen != nil {
		o.onListen(ln.Addr().String())
	}

	sigs := o.signals
	if sigs == nil {
		sigs = []os.Signal{syscall.SIGTERM, os.Interrupt}
	}
	ctx, stop := signal.NotifyContext(ctx, sigs...)
	defer stop()

	closer, err := o.load(srv, log)
	if closer != nil {
		defer closer.Close()
	}
	if err != nil {
		hs.Close()
		srv.Close()
		return err
	}
	select {
	case err := <-served:
		srv.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	return o.shutdown(hs, srv, log)
}

// shutdown stops accepting, lets running requests finish within the grace
// period, then cancels what is left.
func (o *serveOptions) shutdown(hs *http.Server, srv *Server, log *slog.Logger) error {
	busy, queued := srv.SlotsInUse()
	log.Info("shutting down", "running", busy, "queued", queued, "grace", o.grace)
	grace, cancel := context.WithTimeout(context.Background(), o.grace)
	defer cancel()
	srv.shuttingDown.Store(true)
	done := make(chan error, 1)
	go func() { done <- hs.Shutdown(grace) }()
	drained := srv.Drain(grace)
	if drained != nil {
		busy, queued := srv.SlotsInUse()
		log.Warn("grace period over: cancelling requests", "running", busy, "queued", queued)
	}
	srv.Close() // ends whatever is left; handlers then return
	if err := <-done; err != nil {
		// Handlers got their cancellation; give them a moment to write it.
		last, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := hs.Shutdown(last); err != nil {
			hs.Close()
		}
	}
	log.Info("stopped")
	return nil
}

// closerFunc adapts a func to io.Closer.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// load reads the model and tokenizer and makes the server ready. The returned
// closer (possibly nil) releases the model file.
func (o *serveOptions) load(srv *Server, log *slog.Logger) (io.Closer, error) {
	t0 := time.Now()
	// The generic model's worker pool follows GOMAXPROCS; compiled code
	// learns the count through the setters.
	runtime.GOMAXPROCS(o.threads)
	for _, f := range o.setters {
		f(o.threads)
	}
	// A quantised compiled model reads the file's blocks in place; they are
	// decoded to floats only if /v1/embeddings asks for the generic model
	// (lazyEmbedder). The retrieval index embeds at once: it gets floats.
	q := "f32"
	if !o.useGeneric && o.factory != nil && o.spec != nil && o.cfg.RAG == nil {
		q = o.spec.Quant
	}
	p, f, err := checkpoint.LoadFor(o.modelPath, q)
	if err != nil {
		return nil, err
	}
	var closer io.Closer
	if f != nil {
		closer = closerFunc(f.Close)
	}
	if !o.useGeneric {
		if err := model.CheckShape(&p.Spec, o.spec); err != nil {
			return closer, fmt.Errorf("%s: %w (use --generic to run it anyway)", o.modelPath, err)
		}
	}
	factory := o.factory
	if o.useGeneric || factory == nil {
		factory = generic.New
	}
	m, err := factory(p)
	if err != nil {
		return closer, err
	}
	tok, err := loadTokenizer(o.tokPath, f, o.modelPath, p.Spec.Vocab)
	if err != nil {
		return closer, err
	}
	tmpl, err := o.template(f)
	if err != nil {
		return closer, err
	}
	if o.cfg.RAG != nil {
		c, err := o.rag.open(context.Background(), o.cfg.RAG, m, tok)
		if err != nil {
			return closer, err
		}
		closer = joinClosers(closer, c)
	}
	if err := srv.Ready(m, tok, TemplateFormat(tmpl, tok), nil); err != nil {
		return closer, err
	}
	log.Info("ready", "model", o.modelPath, "seconds", fmt.Sprintf("%.2f", time.Since(t0).Seconds()),
		"slots", o.cfg.Slots, "batched", srv.Batching(), "chat_template", tmpl.Name(), "context", p.Spec.MaxSeq)
	return closer, nil
}

func (o *serveOptions) template(f *gguf.File) (*tokenizer.Template, error) {
	if o.chat != "" {
		return tokenizer.ChatTemplate(o.chat)
	}
	if f != nil {
		if t, ok := tokenizer.GGUFChatTemplate(f); ok {
			return t, nil
		}
	}
	return tokenizer.ChatTemplate("chatml")
}

// loadTokenizer reads path, or the vocabulary inside a GGUF model, and checks
// that it speaks the model's vocabulary.
func loadTokenizer(path string, f *gguf.File, modelPath string, vocab int) (tokenizer.Tokenizer, error) {
	var (
		tok tokenizer.Tokenizer
		err error
		src = path
	)
	switch {
	case path != "":
		if tok, err = tokenizer.Load(path, vocab); err != nil {
			return nil, err
		}
	case f != nil:
		src = modelPath
		if tok, err = tokenizer.FromGGUF(f); err != nil {
			return nil, fmt.Errorf("%s: %w (pass --tokenizer FILE)", modelPath, err)
		}
	default:
		return nil, fmt.Errorf("no tokenizer: %s carries none, pass --tokenizer FILE", modelPath)
	}
	if err := tokenizer.CheckVocab(src, tok, vocab); err != nil {
		return nil, err
	}
	return tok, nil
}
