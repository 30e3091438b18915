package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/template"

	"github.com/spf13/pflag"

	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/rag"
	"github.com/modelc/modelc/tokenizer"
)

// Retrieval-augmented chat: with a RAG store configured (serve --rag-store),
// a chat request's last user message is searched in the store, and the top
// chunks go into that message as context blocks (rag's prompt template,
// as `rag ask` builds it) before the chat template renders the
// conversation. The response carries the chunks used in a top-level
// "sources" array (on the first chunk of a stream). A request tunes or
// declines it with the extension field
//
//	"rag": {"k": 2, "mode": "bm25"}    or    "rag": false

// RAG is the retrieval a server adds to chat requests.
type RAG struct {
	// Retriever searches the store. It may be set after New, up to Ready.
	Retriever *rag.Retriever
	K         int                // chunks per request (default 4)
	Mode      rag.Mode           // default hybrid
	Template  *template.Template // nil: rag.DefaultTemplate
}

// ragField is the request's "rag": false, true, null or {"k", "mode"}.
type ragField struct {
	off  bool
	K    *int    `json:"k"`
	Mode *string `json:"mode"`
}

func (f *ragField) UnmarshalJSON(b []byte) error {
	var on bool
	if json.Unmarshal(b, &on) == nil {
		f.off = !on
		return nil
	}
	type plain ragField
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return &fieldError{"rag", `expected false, true or {"k": N, "mode": "bm25|dense|hybrid|fts"}`}
	}
	*f = ragField(p)
	return nil
}

// ragSource is one retrieved chunk as the response reports it.
type ragSource struct {
	N      int     `json:"n"` // its [n] in the prompt
	Source string  `json:"source"`
	Start  int64   `json:"start"`
	End    int64   `json:"end"`
	Score  float64 `json:"score"`
	Text   string  `json:"text"`
}

// augment puts retrieved context into the last user message of msgs (in
// place) and returns the sources used; nil when the request declines or the
// server has no store.
func (s *Server) augment(ctx context.Context, f *ragField, msgs []tokenizer.Message, st *state) ([]ragSource, *apiError) {
	cfg := s.cfg.RAG
	if f != nil && f.off {
		return nil, nil
	}
	if cfg == nil || cfg.Retriever == nil {
		if f != nil {
			return nil, badRequest("rag", "unsupported_value", `rag: this server has no retrieval store (start it with --rag-store); send "rag": false or leave it out`)
		}
		return nil, nil
	}
	k, mode := cfg.K, cfg.Mode
	if k <= 0 {
		k = 4
	}
	if mode == "" {
		mode = rag.Hybrid
	}
	if f != nil && f.K != nil {
		if *f.K < 1 || *f.K > 64 {
			return nil, badRequest("rag.k", "invalid_value", "rag.k: must be in [1, 64], got %d", *f.K)
		}
		k = *f.K
	}
	if f != nil && f.Mode != nil {
		m, err := rag.ParseMode(*f.Mode)
		if err != nil {
			return nil, badRequest("rag.mode", "invalid_value", "rag.mode: %v", err)
		}
		mode = m
	}
	last := -1
	for i, m := range msgs {
		if m.Role == tokenizer.RoleUser {
			last = i
		}
	}
	if last < 0 {
		return nil, badRequest("messages", "invalid_value", "messages: retrieval needs a user message to search for")
	}
	question := msgs[last].Content
	tmpl := cfg.Template
	if tmpl == nil {
		tmpl = defaultRAGTemplate
	}
	rs, err := cfg.Retriever.Search(ctx, question, mode, k)
	switch {
	case errors.Is(err, rag.ErrNoFTS): // the request's mode, not the server, is wrong
		return nil, badRequest("rag.mode", "invalid_value", "rag.mode: %v", err)
	case errors.Is(err, rag.ErrNoTerms):
		rs = nil // nothing to search for: answer without context
	case err != nil:
		return nil, &apiError{Status: http.StatusInternalServerError, Type: "server_error", Code: strp("retrieval_failed"), Message: "retrieval failed: " + err.Error()}
	}
	// Drop contexts from the last until the prompt leaves room for a reply.
	maxSeq := st.m.Spec().MaxSeq
	room := min(64, max(maxSeq/4, 1))
	orig := msgs[last].Content
	for keep := len(rs); keep >= 0; keep-- {
		p, err := rag.BuildPrompt(tmpl, question, rs[:keep])
		if err != nil {
			return nil, &apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: err.Error()}
		}
		msgs[last].Content = p
		ids, err := st.chat.Encode(msgs)
		if err != nil {
			return nil, badRequest("messages", "invalid_value", "messages: %v", err)
		}
		if len(ids)+room <= maxSeq || keep == 0 {
			if len(ids)+room > maxSeq { // not even the bare question fits: leave it to the length check
				msgs[last].Content = orig
			}
			rs = rs[:keep]
			break
		}
	}
	out := make([]ragSource, len(rs))
	for i, r := range rs {
		out[i] = ragSource{N: i + 1, Source: r.Source, Start: r.Start, End: r.End, Score: r.Score, Text: r.Text}
	}
	return out, nil
}

// defaultRAGTemplate is rag ask's prompt template, parsed once.
var defaultRAGTemplate = template.Must(rag.ParseTemplate("default", rag.DefaultTemplate))

// ragOptions are serve's retrieval flags.
type ragOptions struct {
	store, mode, template string
	k                     int
}

// ragEnv are the flags' names for the help text's list of variables.
var ragEnv = []string{"rag-store", "rag-k", "rag-mode", "rag-template"}

func (o *ragOptions) flags(fl *pflag.FlagSet) {
	fl.StringVar(&o.store, "rag-store", "", "answer chat requests from this RAG store (a file from rag ingest, or a postgres:// URL); empty: no retrieval")
	fl.IntVar(&o.k, "rag-k", 4, "chunks retrieved per chat request (a request's \"rag\": {\"k\": N} overrides)")
	fl.StringVar(&o.mode, "rag-mode", string(rag.Hybrid), "retrieval mode: bm25, dense, hybrid or fts")
	fl.StringVar(&o.template, "rag-template", "", "prompt template file for the augmented user message (Go text/template, as for rag ask --template)")
}

// config checks the flags and returns the server's RAG (nil without a store).
func (o *ragOptions) config() (*RAG, error) {
	if o.store == "" {
		return nil, nil
	}
	mode, err := rag.ParseMode(o.mode)
	if err != nil {
		return nil, fmt.Errorf("--rag-mode: %w", err)
	}
	if o.k < 1 || o.k > 64 {
		return nil, fmt.Errorf("--rag-k: must be in [1, 64], got %d", o.k)
	}
	if !strings.Contains(o.store, "://") {
		// Checked before the server listens; the store opens after the model.
		if _, err := os.Stat(o.store); err != nil {
			return nil, fmt.Errorf("--rag-store: %w (make one with rag ingest)", err)
		}
	}
	r := &RAG{K: o.k, Mode: mode}
	if o.template != "" {
		b, err := os.ReadFile(o.template)
		if err != nil {
			return nil, fmt.Errorf("--rag-template: %w", err)
		}
		if r.Template, err = rag.ParseTemplate(o.template, string(b)); err != nil {
			return nil, fmt.Errorf("--rag-template: %w", err)
		}
	}
	return r, nil
}

// open opens the store for r once the model is loaded (its pooled states
// may be the store's embedder).
func (o *ragOptions) open(ctx context.Context, r *RAG, m model.Model, tok tokenizer.Tokenizer) (io.Closer, error) {
	ret, err := rag.OpenRetriever(ctx, o.store, r.Mode, m, tok)
	if err != nil {
		return nil, fmt.Errorf("--rag-store: %w", err)
	}
	r.Retriever = ret
	return ret.Store, nil
}

// joinClosers closes b, then a (either may be nil).
func joinClosers(a, b io.Closer) io.Closer {
	return closerFunc(func() error {
		err := b.Close()
		if a != nil {
			err = errors.Join(err, a.Close())
		}
		return err
	})
}
