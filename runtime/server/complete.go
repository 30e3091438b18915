package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/modelc/modelc/runtime/sample"
	"github.com/modelc/modelc/tokenizer"
)

// maxChoices bounds prompts × n in one request.
const maxChoices = 128

// maxStops bounds the number of stop strings.
const maxStops = 16

// genRequest is what both generation endpoints turn their request into.
type genRequest struct {
	chat         bool
	prompts      [][]int
	n            int
	params       sample.Params
	seeded       bool
	maxTokens    []int // per prompt
	stops        []string
	stopIDs      []int
	maxParam     string // the request's name for max_tokens
	stream       bool
	includeUsage bool
	echo         []string    // per prompt, completions with echo
	sources      []ragSource // chat with retrieval: the chunks in the prompt
}

// common validates the sampling fields and fills g.
func (s *Server) common(f *samplingFields, maxTokens *int, st *state, g *genRequest) *apiError {
	if e := s.checkModel(f.Model); e != nil {
		return e
	}
	d := s.cfg.Defaults
	g.params = sample.Params{Temperature: d.Temperature, TopP: d.TopP, TopK: d.TopK}
	if f.Temperature != nil {
		g.params.Temperature = *f.Temperature
	}
	if f.TopP != nil {
		g.params.TopP = *f.TopP
	}
	if f.TopK != nil {
		g.params.TopK = *f.TopK
	}
	if err := (sample.Params{Temperature: g.params.Temperature, TopP: 1}).Validate(); err != nil {
		return badRequest("temperature", "invalid_value", "temperature: %s", afterColon(err.Error()))
	}
	if p := g.params.TopP; math.IsNaN(p) || p < 0 || p > 1 {
		return badRequest("top_p", "invalid_value", "top_p: must be in [0, 1], got %v", p)
	}
	if g.params.TopP == 0 {
		// OpenAI's range includes 0: only the most probable token is
		// kept, which is greedy decoding.
		g.params.Temperature, g.params.TopP = 0, 1
	}
	if g.params.TopK < 0 {
		return badRequest("top_k", "invalid_value", "top_k: must be ≥ 0 (0 = off), got %d", g.params.TopK)
	}
	if f.Seed != nil {
		g.params.Seed, g.seeded = uint64(*f.Seed), true
	}
	g.n = 1
	if f.N != nil {
		if *f.N < 1 {
			return badRequest("n", "invalid_value", "n: must be ≥ 1, got %d", *f.N)
		}
		g.n = *f.N
	}
	if len(f.Stop) > maxStops {
		return badRequest("stop", "invalid_value", "stop: at most %d strings, got %d", maxStops, len(f.Stop))
	}
	for i, x := range f.Stop {
		if x == "" {
			return badRequest("stop", "invalid_value", "stop[%d]: must not be empty", i)
		}
	}
	g.stops = append(g.stops, f.Stop...)
	if g.maxParam == "" {
		g.maxParam = "max_tokens"
	}
	if maxTokens != nil && *maxTokens < 1 {
		return badRequest(g.maxParam, "invalid_value", "%s: must be ≥ 1, got %d", g.maxParam, *maxTokens)
	}
	for name, v := range map[string]*float64{"presence_penalty": f.PresencePenalty, "frequency_penalty": f.FrequencyPenalty} {
		if v != nil && *v != 0 {
			return badRequest(name, "unsupported_value", "%s: not supported by this server (only 0)", name)
		}
	}
	if len(f.LogitBias) > 0 {
		return badRequest("logit_bias", "unsupported_value", "logit_bias: not supported by this server")
	}
	g.stream = f.Stream
	if f.StreamOptions != nil {
		if !f.Stream {
			return badRequest("stream_options", "invalid_value", "stream_options: only allowed with stream: true")
		}
		g.includeUsage = f.StreamOptions.IncludeUsage
	}
	if bos := st.tok.BOS(); bos >= 0 {
		g.stopIDs = append(g.stopIDs, bos)
	}
	if eos := st.tok.EOS(); eos >= 0 {
		g.stopIDs = append(g.stopIDs, eos)
	}
	return nil
}

func afterColon(s string) string {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == ':' && s[i+1] == ' ' {
			return s[i+2:]
		}
	}
	return s
}

// limits checks each prompt against the context and sets its max_tokens.
func (s *Server) limits(g *genRequest, maxTokens *int, st *state) *apiError {
	ctxLen := st.m.Spec().MaxSeq
	for i, p := range g.prompts {
		which := ""
		if len(g.prompts) > 1 {
			which = fmt.Sprintf(" %d", i)
		}
		if len(p) == 0 {
			return badRequest(g.paramName(), "invalid_value", "prompt%s encodes to no tokens", which)
		}
		if len(p) > ctxLen {
			return badRequest(g.paramName(), "context_length_exceeded", "the prompt%s is %d tokens, longer than the model's context of %d tokens", which, len(p), ctxLen)
		}
		room := ctxLen - len(p)
		var mt int
		if maxTokens != nil {
			mt = *maxTokens
			if mt > room {
				inAll := "" // the sum, unless it would overflow
				if mt <= math.MaxInt-len(p) {
					inAll = fmt.Sprintf(" (%d in all)", len(p)+mt)
				}
				return badRequest(g.maxParam, "context_length_exceeded",
					"the model's context is %d tokens; the prompt%s is %d tokens and %s is %d%s: lower %s to at most %d",
					ctxLen, which, len(p), g.maxParam, mt, inAll, g.maxParam, room)
			}
		} else {
			mt = min(s.cfg.Defaults.MaxTokens, room)
			if mt < 1 {
				return badRequest(g.paramName(), "context_length_exceeded", "the prompt%s is %d tokens and fills the model's context of %d tokens: no room to generate", which, len(p), ctxLen)
			}
		}
		g.maxTokens = append(g.maxTokens, mt)
	}
	return nil
}

func (g *genRequest) paramName() string {
	if g.chat {
		return "messages"
	}
	return "prompt"
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request, st *state) *apiError {
	var req completionRequest
	if e := decode(w, r, s.cfg.MaxBody, &req); e != nil {
		return e
	}
	g := &genRequest{}
	if e := s.common(&req.samplingFields, req.MaxTokens, st, g); e != nil {
		return e
	}
	switch {
	case !req.Prompt.set:
		return badRequest("prompt", "missing_field", "prompt: required (a string, an array of strings, or token ids)")
	case req.Logprobs != nil && *req.Logprobs > 0:
		return badRequest("logprobs", "unsupported_value", "logprobs: not supported by this server")
	case req.BestOf != nil && *req.BestOf != g.n:
		return badRequest("best_of", "unsupported_value", "best_of: not supported by this server (only equal to n)")
	case req.Suffix != nil && *req.Suffix != "":
		return badRequest("suffix", "unsupported_value", "suffix: not supported by this server")
	}
	vocab := st.tok.VocabSize()
	for i, text := range req.Prompt.texts {
		ids, err := st.tok.Encode(text, true, false)
		if err != nil {
			return badRequest("prompt", "invalid_value", "prompt %d: %v", i, err)
		}
		g.prompts = append(g.prompts, ids)
	}
	for i, ids := range req.Prompt.tokens {
		if e := checkTokens(fmt.Sprintf("prompt[%d]", i), ids, vocab); e != nil {
			return e
		}
		g.prompts = append(g.prompts, ids)
	}
	if req.Echo {
		for _, p := range g.prompts {
			g.echo = append(g.echo, echoText(st.tok, p))
		}
	}
	if e := s.limits(g, req.MaxTokens, st); e != nil {
		return e
	}
	return s.generate(w, r, st, g)
}

// echoText is the prompt as generate prints it: each token's piece after
// the one before it (BOS prints nothing).
func echoText(tok textDecoder, ids []int) string {
	ts := newTextStream(nil)
	var out []byte
	prev := -1
	if b, ok := tok.(interface{ BOS() int }); ok {
		prev = b.BOS()
	}
	for i, id := range ids {
		if i == 0 && id == prev {
			continue
		}
		piece, err := tok.Piece(prev, id)
		if err == nil {
			d, _ := ts.add(piece)
			out = append(out, d...)
		}
		prev = id
	}
	return string(append(out, ts.flush()...))
}

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request, st *state) *apiError {
	var req chatRequest
	if e := decode(w, r, s.cfg.MaxBody, &req); e != nil {
		return e
	}
	maxTokens := req.MaxTokens
	g := &genRequest{chat: true}
	if req.MaxCompletionTokens != nil {
		maxTokens, g.maxParam = req.MaxCompletionTokens, "max_completion_tokens"
	}
	if e := s.common(&req.samplingFields, maxTokens, st, g); e != nil {
		return e
	}
	switch {
	case len(req.Messages) == 0:
		return badRequest("messages", "missing_field", "messages: required, at least one message")
	case req.Logprobs != nil && *req.Logprobs:
		return badRequest("logprobs", "unsupported_value", "logprobs: not supported by this server")
	case req.TopLogprobs != nil:
		return badRequest("top_logprobs", "unsupported_value", "top_logprobs: not supported by this server")
	}
	if req.ResponseFormat != nil {
		var rf struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(*req.ResponseFormat, &rf) != nil || rf.Type != "text" {
			return badRequest("response_format", "unsupported_value", "response_format: only {\"type\": \"text\"} is supported")
		}
	}
	msgs := make([]tokenizer.Message, len(req.Messages))
	for i, m := range req.Messages {
		role := m.Role
		switch role {
		case tokenizer.RoleSystem, tokenizer.RoleUser, tokenizer.RoleAssistant:
		case "developer":
			role = tokenizer.RoleSystem
		default:
			return badRequest(fmt.Sprintf("messages[%d].role", i), "invalid_value",
				"messages[%d].role: %q is not supported (system, developer, user or assistant)", i, m.Role)
		}
		content := string(m.Content)
		for _, f := range []struct {
			name string
			raw  json.RawMessage
		}{{"tool_calls", m.ToolCalls}, {"function_call", m.FunctionCall}, {"audio", m.Audio}, {"annotations", m.Annotations}, {"parsed", m.Parsed}} {
			if !emptyJSON(f.raw) {
				return badRequest(fmt.Sprintf("messages[%d].%s", i, f.name), "unsupported_value",
					"messages[%d].%s: not supported by this server (only null or empty)", i, f.name)
			}
		}
		if m.Refusal != nil && *m.Refusal != "" {
			if role != tokenizer.RoleAssistant || content != "" {
				return badRequest(fmt.Sprintf("messages[%d].refusal", i), "invalid_value",
					"messages[%d].refusal: only an assistant message without content may carry a refusal", i)
			}
			content = *m.Refusal
		}
		msgs[i] = tokenizer.Message{Role: role, Content: content}
	}
	var e *apiError
	if g.sources, e = s.augment(r.Context(), req.RAG, msgs, st); e != nil {
		return e
	}
	ids, err := st.chat.Encode(msgs)
	if err != nil {
		return badRequest("messages", "invalid_value", "messages: %v", err)
	}
	g.prompts = [][]int{ids}
	g.stops = append(g.stops, st.chat.Stops()...)
	g.stopIDs = append(g.stopIDs, st.chat.StopIDs()...)
	if e := s.limits(g, maxTokens, st); e != nil {
		return e
	}
	return s.generate(w, r, st, g)
}

func randomSeed() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// generate runs g's sequences and writes the response, whole or streamed.
func (s *Server) generate(w http.ResponseWriter, r *http.Request, st *state, g *genRequest) *apiError {
	if s.shuttingDown.Load() {
		return shuttingDownError()
	}
	// n and the prompts are bounded before their product, which a huge n
	// would overflow (to a negative capacity below, or to none at all).
	limit := min(maxChoices, st.engine.capacity())
	if g.n > limit || len(g.prompts) > limit || len(g.prompts)*g.n > limit {
		return badRequest("n", "invalid_value", "%d prompts × n %d sequences; this server takes at most %d in one request",
			len(g.prompts), g.n, limit)
	}
	total := len(g.prompts) * g.n
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	notify := make(chan struct{}, 1)
	jobs := make([]*job, 0, total)
	for pi, p := range g.prompts {
		for c := range g.n {
			sp := g.params
			if g.seeded {
				sp.Seed += uint64(c) // choices of one prompt differ, reproducibly
			} else {
				sp.Seed = randomSeed()
			}
			smp, err := sample.New(sp)
			if err != nil {
				return badRequest("", "invalid_value", "%v", err)
			}
			jobs = append(jobs, &job{
				ctx: ctx, prompt: p, maxTokens: g.maxTokens[pi], sampler: smp,
				stopIDs: g.stopIDs, text: newTextStream(g.stops), notify: notify,
			})
		}
	}
	if err := st.engine.submit(jobs); err != nil {
		if errors.Is(err, errShuttingDown) {
			return shuttingDownError()
		}
		s.metrics.rejected.WithLabelValues("queue_full").Inc()
		busy, queued := st.engine.state()
		return &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: strp("queue_full"), RetryAfter: 1,
			Message: fmt.Sprintf("server busy: %d of %d slots in use and %d sequences queued (limit %d); retry later", busy, s.cfg.Slots, queued, s.cfg.MaxQueue)}
	}
	// Whatever happens below, sequences nobody will read are dropped.
	defer func() {
		var open []*job
		for _, j := range jobs {
			if _, done, _, _ := j.peek(); !done {
				open = append(open, j)
			}
		}
		if len(open) > 0 {
			st.engine.abandon(open)
		}
	}()
	out := &output{s: s, st: st, g: g, jobs: jobs, id: newID("cmpl-"), created: time.Now().Unix()}
	if g.chat {
		out.id = newID("chatcmpl-")
	}
	if g.stream {
		return out.stream(ctx, w)
	}
	return out.whole(ctx, w)
}

func shuttingDownError() *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: strp("shutting_down"), Message: errShuttingDown.Error()}
}

// peek reports whether the job has finished, without taking its text.
func (j *job) peek() (string, bool, string, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return "", j.finished, j.finish, j.err
}

// output writes the response for a request's jobs.
type output struct {
	s       *Server
	st      *state
	g       *genRequest
	jobs    []*job
	id      string
	created int64
}

func (o *output) usage() *usage {
	u := &usage{}
	for _, p := range o.g.prompts {
		u.PromptTokens += len(p)
	}
	for _, j := range o.jobs {
		u.CompletionTokens += j.completionTokens()
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

func jobError(err error) *apiError {
	if errors.Is(err, errShuttingDown) {
		return shuttingDownError()
	}
	return &apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: "generation failed: " + err.Error()}
}

// whole waits for every sequence and writes one response.
func (o *output) whole(ctx context.Context, w http.ResponseWriter) *apiError {
	texts := make([]string, len(o.jobs))
	finishes := make([]string, len(o.jobs))
	left := len(o.jobs)
	doneJ := make([]bool, len(o.jobs))
	notify := o.jobs[0].notify
	for left > 0 {
		for i, j := range o.jobs {
			if doneJ[i] {
				continue
			}
			delta, done, finish, err := j.take()
			texts[i] += delta
			if done {
				if err != nil {
					return jobError(err)
				}
				doneJ[i], finishes[i] = true, finish
				left--
			}
		}
		if left == 0 {
			break
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return nil // the client is gone; nothing to write
		}
	}
	u := o.usage()
	if o.g.chat {
		resp := chatResponse{ID: o.id, Object: "chat.completion", Created: o.created, Model: o.s.cfg.ModelName, Usage: u, Sources: o.g.sources}
		for i := range o.jobs {
			resp.Choices = append(resp.Choices, chatChoice{Index: i, Message: &chatMessageOut{Role: "assistant", Content: texts[i]}, FinishReason: &finishes[i]})
		}
		writeJSON(w, http.StatusOK, resp)
		return nil
	}
	resp := completionResponse{ID: o.id, Object: "text_completion", Created: o.created, Model: o.s.cfg.ModelName, Usage: u}
	for i := range o.jobs {
		text := texts[i]
		if o.g.echo != nil {
			text = o.g.echo[i/o.g.n] + text
		}
		resp.Choices = append(resp.Choices, completionChoice{Text: text, Index: i, FinishReason: &finishes[i]})
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// stream writes server-sent events: one chunk per piece of text per choice,
// a chunk with each choice's finish reason, the usage when asked, [DONE].
func (o *output) stream(ctx context.Context, w http.ResponseWriter) *apiError {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		return true
	}
	flush := func() bool { return rc.Flush() == nil }

	if o.g.chat { // the role comes first, as OpenAI sends it
		for i := range o.jobs {
			empty := ""
			c := o.chatChunk(i, &chatDelta{Role: "assistant", Content: &empty}, nil)
			if i == 0 {
				c.Sources = o.g.sources
			}
			if !send(c) {
				return nil
			}
		}
	} else if o.g.echo != nil {
		for i := range o.jobs {
			if e := o.g.echo[i/o.g.n]; e != "" && !send(o.textChunk(i, e, nil)) {
				return nil
			}
		}
	}
	if !flush() {
		return nil
	}
	reported := make([]bool, len(o.jobs))
	left := len(o.jobs)
	notify := o.jobs[0].notify
	for left > 0 {
		wrote := false
		for i, j := range o.jobs {
			if reported[i] {
				continue
			}
			delta, done, finish, err := j.take()
			if delta != "" {
				var ok bool
				if o.g.chat {
					ok = send(o.chatChunk(i, &chatDelta{Content: &delta}, nil))
				} else {
					ok = send(o.textChunk(i, delta, nil))
				}
				if !ok {
					return nil
				}
				wrote = true
			}
			if done {
				if err != nil {
					send(map[string]*apiError{"error": jobError(err)})
					flush()
					return nil
				}
				reported[i] = true
				left--
				f := finish
				var ok bool
				if o.g.chat {
					ok = send(o.chatChunk(i, &chatDelta{}, &f))
				} else {
					ok = send(o.textChunk(i, "", &f))
				}
				if !ok {
					return nil
				}
				wrote = true
			}
		}
		if wrote && !flush() {
			return nil
		}
		if left == 0 {
			break
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return nil
		}
	}
	if o.g.includeUsage {
		u := o.usage()
		var ok bool
		if o.g.chat {
			ok = send(chatResponse{ID: o.id, Object: "chat.completion.chunk", Created: o.created, Model: o.s.cfg.ModelName, Choices: []chatChoice{}, Usage: u})
		} else {
			ok = send(completionResponse{ID: o.id, Object: "text_completion", Created: o.created, Model: o.s.cfg.ModelName, Choices: []completionChoice{}, Usage: u})
		}
		if !ok {
			return nil
		}
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	flush()
	return nil
}

func (o *output) chatChunk(i int, d *chatDelta, finish *string) chatResponse {
	return chatResponse{ID: o.id, Object: "chat.completion.chunk", Created: o.created, Model: o.s.cfg.ModelName,
		Choices: []chatChoice{{Index: i, Delta: d, FinishReason: finish}}}
}

func (o *output) textChunk(i int, text string, finish *string) completionResponse {
	return completionResponse{ID: o.id, Object: "text_completion", Created: o.created, Model: o.s.cfg.ModelName,
		Choices: []completionChoice{{Text: text, Index: i, FinishReason: finish}}}
}
