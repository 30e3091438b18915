// Package server is the OpenAI-compatible HTTP server every model binary
// carries (`serve`): completions and chat completions with server-sent-event
// streaming, embeddings, models, tokenize/detokenize, health and Prometheus
// metrics, over a scheduler that decodes all running requests together.
//
// Requests become sequences ("jobs"); N slots each own a Session (a KV
// cache). One loop admits queued sequences into free slots between steps,
// prefills their prompts in chunks, samples one token for every running
// sequence and runs them all one position further with a single
// model.Batcher.ForwardBatch call when the model has one (continuous
// batching), else with one Forward per slot spread over the cores.
package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/sample"
	"github.com/modelc/modelc/tokenizer"
)

// Config holds what the server needs besides the model.
type Config struct {
	// ModelName is the id /v1/models lists and responses carry.
	ModelName string
	// Slots is how many sequences are decoded together (each owns a KV cache).
	Slots int
	// MaxQueue is how many sequences may wait for a slot; beyond it requests
	// get 503 with Retry-After.
	MaxQueue int
	// APIKey, when set, must come as "Authorization: Bearer KEY" on every
	// endpoint but /health and /metrics.
	APIKey string
	// MaxBody limits request bodies (bytes); larger ones get 413.
	MaxBody int64
	// Defaults apply to fields a request leaves out.
	Defaults Defaults
	// Batch uses the model's batched decode step when it has one.
	Batch bool
	// PrefillChunk bounds the prompt tokens run per decode step, so that long
	// prompts do not stall the running sequences (0: 64). With a SpanBatcher
	// model it is the budget of all joining prompts together, which then run
	// inside the batched step; otherwise each joining prompt runs that many
	// tokens through Session.Prefill before the step.
	PrefillChunk int
	// Logger receives one line per request at debug level and errors at
	// error level (nil: slog.Default()).
	Logger *slog.Logger
	// RAG, when set, adds retrieved context to chat requests (rag.go).
	RAG *RAG
}

// Defaults are the sampling settings a request gets for fields it omits.
type Defaults struct {
	Temperature float64
	TopP        float64
	TopK        int
	// MaxTokens caps a completion (further capped by the context left).
	MaxTokens int
}

// Embedder is implemented by models that can embed a text: the mean of the
// final-normed hidden states over the tokens (runtime/generic.Model is one).
type Embedder interface {
	Embed(tokens []int) ([]float32, error)
}

// Server answers the HTTP API. It serves /health (503) and /metrics from the
// start; the rest answers 503 until Ready has been called.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	mux     *http.ServeMux
	created int64

	st           atomic.Pointer[state]
	shuttingDown atomic.Bool
	embedSem     chan struct{}
}

// state is everything that exists once the model is loaded.
type state struct {
	m      model.Model
	tok    tokenizer.Tokenizer
	chat   ChatFormat
	embed  Embedder
	engine *engine
}

// MaxSlots bounds --slots: each slot holds a KV cache of the whole context.
const MaxSlots = 1024

// New checks cfg and returns a server that is still loading.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Slots < 1 || cfg.Slots > MaxSlots:
		return nil, fmt.Errorf("slots: must be between 1 and %d, got %d", MaxSlots, cfg.Slots)
	case cfg.MaxQueue < 0:
		return nil, fmt.Errorf("max-queue: must be ≥ 0, got %d", cfg.MaxQueue)
	case cfg.MaxBody < 1:
		return nil, fmt.Errorf("max-body: must be ≥ 1 byte, got %d", cfg.MaxBody)
	case cfg.Defaults.MaxTokens < 1:
		return nil, fmt.Errorf("max-tokens: must be ≥ 1, got %d", cfg.Defaults.MaxTokens)
	case cfg.PrefillChunk < 0:
		return nil, fmt.Errorf("prefill-chunk: must be ≥ 0, got %d", cfg.PrefillChunk)
	}
	if err := (sample.Params{Temperature: cfg.Defaults.Temperature, TopP: cfg.Defaults.TopP, TopK: cfg.Defaults.TopK}).Validate(); err != nil {
		return nil, err
	}
	if cfg.ModelName == "" {
		cfg.ModelName = "model"
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		metrics:  newMetrics(),
		mux:      http.NewServeMux(),
		created:  time.Now().Unix(),
		embedSem: make(chan struct{}, cfg.Slots),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.route("GET /health", "/health", false, s.health)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	s.route("GET /v1/models", "/v1/models", true, s.loaded(s.models))
	// {id...}: a model name may hold slashes (org/name), which
	// openai-python sends unescaped.
	s.route("GET /v1/models/{id...}", "/v1/models/{id}", true, s.loaded(s.modelByID))
	s.route("POST /v1/completions", "/v1/completions", true, s.loaded(s.completions))
	s.route("POST /v1/chat/completions", "/v1/chat/completions", true, s.loaded(s.chatCompletions))
	s.route("POST /v1/embeddings", "/v1/embeddings", true, s.loaded(s.embeddings))
	s.route("POST /tokenize", "/tokenize", true, s.loaded(s.tokenize))
	s.route("POST /detokenize", "/detokenize", true, s.loaded(s.detokenize))
	// The catch-all below would answer a known path with the wrong method
	// before the mux's own 405: say which method it takes.
	methods := map[string]string{"/health": "GET", "/metrics": "GET", "/v1/models": "GET",
		"/v1/completions": "POST", "/v1/chat/completions": "POST", "/v1/embeddings": "POST",
		"/tokenize": "POST", "/detokenize": "POST"}
	s.route("/", "other", false, func(w http.ResponseWriter, r *http.Request) *apiError {
		if m, ok := methods[r.URL.Path]; ok {
			w.Header().Set("Allow", m)
			return &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Code: strp("method_not_allowed"),
				Message: fmt.Sprintf("%s takes %s, not %s", r.URL.Path, m, r.Method)}
		}
		return &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: strp("not_found"),
			Message: fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path)}
	})
	return s, nil
}

// Ready binds the loaded model and starts the decode loop. chat may be nil
// (then the chatml template is used). When the model is no Embedder,
// embeddings come from the generic model over the same weights when that
// can run them.
func (s *Server) Ready(m model.Model, tok tokenizer.Tokenizer, chat ChatFormat, embed Embedder) error {
	if err := tokenizer.CheckVocab("", tok, m.Spec().Vocab); err != nil {
		return err
	}
	if chat == nil {
		t, err := tokenizer.ChatTemplate("chatml")
		if err != nil {
			return err
		}
		chat = TemplateFormat(t, tok)
	}
	if embed == nil {
		embed, _ = m.(Embedder)
	}
	if embed == nil { // the generic model reads the same weights
		if p := m.Params(); len(p.Undecoded) > 0 {
			// A quantised compiled model's blocks: floats for the generic
			// model are decoded on the first request that needs them.
			embed = &lazyEmbedder{p: p}
		} else if g, err := generic.New(p); err == nil {
			embed, _ = g.(Embedder)
		}
	}
	if gp, ok := m.(model.GreedyPreparer); ok {
		// The classifier screen greedy requests decode with, made now
		// rather than inside the decode loop on the first such token (a
		// 32000-row classifier takes 0.1–0.2 s, every running sequence
		// would wait).
		gp.PrepareGreedy()
	}
	st := &state{m: m, tok: tok, chat: chat, embed: embed}
	st.engine = newEngine(m, tok, engineConfig{Slots: s.cfg.Slots, MaxQueue: s.cfg.MaxQueue, Batch: s.cfg.Batch, PrefillChunk: s.cfg.PrefillChunk}, s.metrics)
	if !s.st.CompareAndSwap(nil, st) {
		st.engine.stop()
		return errors.New("server: Ready called twice")
	}
	return nil
}

// lazyEmbedder is the generic model's Embedder over parameters whose
// quantised tensors stayed in the file's blocks: the first Embed decodes
// them (checkpoint.DecodeKept), so that a server that never embeds keeps
// only the blocks in memory.
type lazyEmbedder struct {
	p    *model.Params
	once sync.Once
	e    Embedder
	err  error
}

func (l *lazyEmbedder) Embed(tokens []int) ([]float32, error) {
	l.once.Do(func() {
		var p *model.Params
		if p, l.err = checkpoint.DecodeKept(l.p); l.err != nil {
			return
		}
		var g model.Model
		if g, l.err = generic.New(p); l.err == nil {
			var ok bool
			if l.e, ok = g.(Embedder); !ok {
				l.err = errors.New("server: the generic model cannot embed")
			}
		}
	})
	if l.err != nil {
		return nil, l.err
	}
	return l.e.Embed(tokens)
}

// Batching reports whether decode steps run batched (false before Ready).
func (s *Server) Batching() bool {
	st := s.st.Load()
	return st != nil && (st.engine.batcher != nil || st.engine.spans != nil)
}

// Handler is the HTTP API.
func (s *Server) Handler() http.Handler { return s.mux }

// Drain refuses new generation requests (503) and waits until running and
// queued ones have finished, or ctx is done.
func (s *Server) Drain(ctx context.Context) error {
	s.shuttingDown.Store(true)
	st := s.st.Load()
	if st == nil {
		return nil
	}
	return st.engine.drain(ctx)
}

// Close ends the decode loop: sequences still running or queued end with an
// error. The handler must not be used for generation afterwards.
func (s *Server) Close() {
	s.shuttingDown.Store(true)
	if st := s.st.Load(); st != nil {
		st.engine.stop()
	}
}

// SlotsInUse reports the slots holding a sequence and the sequences queued.
func (s *Server) SlotsInUse() (busy, queued int) {
	st := s.st.Load()
	if st == nil {
		return 0, 0
	}
	return st.engine.state()
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) *apiError

// statusWriter remembers the status for the metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// route registers h under pattern with authentication (when auth is set),
// error rendering and metrics labelled endpoint.
func (s *Server) route(pattern, endpoint string, auth bool, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		var err *apiError
		if auth && s.cfg.APIKey != "" && !s.authorized(r) {
			err = &apiError{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: strp("invalid_api_key"),
				Message: "missing or incorrect API key: send it as the header \"Authorization: Bearer KEY\""}
			s.metrics.rejected.WithLabelValues("auth").Inc()
		} else {
			err = h(sw, r)
		}
		if err != nil {
			writeError(sw, err)
			if err.Status >= 500 {
				s.log.Warn("request failed", "endpoint", endpoint, "status", err.Status, "error", err.Message)
			}
		}
		code := sw.status
		switch {
		case code == 0 && r.Context().Err() != nil:
			code = 499 // the client went away before an answer (nginx's code)
		case code == 0:
			code = http.StatusOK
		}
		s.metrics.requests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
		s.metrics.requestSeconds.WithLabelValues(endpoint).Observe(time.Since(t0).Seconds())
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", code, "seconds", time.Since(t0).Seconds())
	})
}

func (s *Server) authorized(r *http.Request) bool {
	// The scheme is case-insensitive (RFC 9110 §11.1): some clients send "bearer".
	scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(key)), []byte(s.cfg.APIKey)) == 1
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, e.Status, map[string]*apiError{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only our own types are marshalled
		http.Error(w, `{"error":{"message":"internal error encoding the response","type":"server_error","param":null,"code":null}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// loaded answers 503 until the model is ready, and while shutting down.
func (s *Server) loaded(h func(w http.ResponseWriter, r *http.Request, st *state) *apiError) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) *apiError {
		st := s.st.Load()
		if st == nil {
			s.metrics.rejected.WithLabelValues("loading").Inc()
			return &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: strp("model_loading"),
				Message: "the model is still loading; retry shortly", RetryAfter: 1}
		}
		return h(w, r, st)
	}
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) *apiError {
	st := s.st.Load()
	switch {
	case st == nil:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "loading"})
	case s.shuttingDown.Load():
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
	default:
		busy, queued := st.engine.state()
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "slots": s.cfg.Slots, "slots_busy": busy, "queued": queued})
	}
	return nil
}

func (s *Server) modelObject(st *state) modelObject {
	sp := st.m.Spec()
	return modelObject{ID: s.cfg.ModelName, Object: "model", Created: s.created, OwnedBy: "modelc", ContextLength: sp.MaxSeq, Vocab: sp.Vocab}
}

func (s *Server) models(w http.ResponseWriter, r *http.Request, st *state) *apiError {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []modelObject{s.modelObject(st)}})
	return nil
}

func (s *Server) modelByID(w http.ResponseWriter, r *http.Request, st *state) *apiError {
	if id := r.PathValue("id"); id != s.cfg.ModelName {
		return &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Param: strp("model"), Code: strp("model_not_found"),
			Message: fmt.Sprintf("model %q does not exist; this server has %q", id, s.cfg.ModelName)}
	}
	writeJSON(w, http.StatusOK, s.modelObject(st))
	return nil
}

// checkModel accepts the served model's name or none.
func (s *Server) checkModel(name string) *apiError {
	if name != "" && name != s.cfg.ModelName {
		return &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Param: strp("model"), Code: strp("model_not_found"),
			Message: fmt.Sprintf("model %q does not exist; this server has %q", name, s.cfg.ModelName)}
	}
	return nil
}

func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// tokenize answers llama.cpp's /tokenize: {"content", "add_special"} →
// {"tokens"}; as there, BOS only with "add_special": true.
func (s *Server) tokenize(w http.ResponseWriter, r *http.Request, st *state) *apiError {
	var req tokenizeRequest
	if e := decode(w, r, s.cfg.MaxBody, &req); e != nil {
		return e
	}
	bos := req.AddSpecial != nil && *req.AddSpecial
	ids, err := st.tok.Encode(req.Content, bos, false)
	if err != nil {
		return badRequest("content", "", "content: %v", err)
	}
	if ids == nil {
		ids = []int{}
	}
	writeJSON(w, http.StatusOK, map[string][]int{"tokens": ids})
	return nil
}

func (s *Server) detokenize(w http.ResponseWriter, r *http.Request, st *state) *apiError {
	var req detokenizeRequest
	if e := decode(w, r, s.cfg.MaxBody, &req); e != nil {
		return e
	}
	if e := checkTokens("tokens", req.Tokens, st.tok.VocabSize()); e != nil {
		return e
	}
	text, err := st.tok.Decode(req.Tokens)
	if err != nil {
		return badRequest("tokens", "", "tokens: %v", err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"content": text})
	return nil
}

func checkTokens(param string, ids []int, vocab int) *apiError {
	for i, t := range ids {
		if t < 0 || t >= vocab {
			return badRequest(param, "invalid_token", "%s[%d] is %d, outside the vocabulary of %d", param, i, t, vocab)
		}
	}
	return nil
}
