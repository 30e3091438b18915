package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/rag"
	"github.com/modelc/modelc/runtime/rag/bm25"
	"github.com/modelc/modelc/runtime/rag/chunk"
	"github.com/modelc/modelc/runtime/rag/embed"
	"github.com/modelc/modelc/runtime/rag/store"
)

var ragDocs = []rag.Text{
	{Source: "zorvia.md", Body: "The capital of Zorvia is Plentu. Zorvia lies by the sea.\n"},
	{Source: "marn.md", Body: "The capital of Marn is Oskel. Marn has three rivers.\n"},
	{Source: "cats.md", Body: "Cats sleep for most of the day and hunt at night.\n"},
}

// ragStore ingests ragDocs into a fresh bbolt store and returns its path.
func ragStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rag.db")
	s, err := store.OpenBolt(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := rag.IngestOptions{Chunk: chunk.Options{Size: 200, Overlap: 40}, Analyzer: bm25.Default, Embedder: embed.NewHash(64)}
	if _, err := rag.IngestTexts(context.Background(), s, ragDocs, o); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

type sourceOut struct {
	N      int     `json:"n"`
	Source string  `json:"source"`
	Score  float64 `json:"score"`
	Text   string  `json:"text"`
}

func sourcesOf(t *testing.T, raw string) []sourceOut {
	t.Helper()
	if raw == "" {
		return nil
	}
	var out []sourceOut
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("sources %s: %v", raw, err)
	}
	return out
}

// TestChatRAG: a chat request on a server with a store is answered from the
// prompt `rag ask` would build — the same reply and prompt size as a plain
// request whose user message is that prompt — and reports its sources.
func TestChatRAG(t *testing.T) {
	ctx := context.Background()
	path := ragStore(t)
	r, err := rag.OpenRetriever(ctx, path, rag.Hybrid, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Store.Close()
	cfg := testConfig()
	cfg.RAG = &RAG{Retriever: r, K: 2, Mode: rag.Hybrid}
	m := randomModel(t, tinySpec(256), 7)
	ts := startServer(t, cfg, m, tok512(t))

	q := "What is the capital of Zorvia?"
	params := openai.ChatCompletionNewParams{
		Model: "tiny", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(q)},
		MaxCompletionTokens: openai.Int(12), Temperature: openai.Float(0),
	}
	resp, err := ts.client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	srcs := sourcesOf(t, resp.JSON.ExtraFields["sources"].Raw())
	if len(srcs) != 2 || srcs[0].Source != "zorvia.md" || srcs[0].N != 1 || !strings.Contains(srcs[0].Text, "Plentu") {
		t.Fatalf("sources %+v, want zorvia.md first of 2", srcs)
	}

	// The same conversation with the augmented message sent by hand.
	want, rs, err := rag.Augment(ctx, r, q, rag.Hybrid, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("augment gave %d results", len(rs))
	}
	plain := params
	plain.Messages = []openai.ChatCompletionMessageParamUnion{openai.UserMessage(want)}
	ref, err := ts.client.Chat.Completions.New(ctx, plain, option.WithJSONSet("rag", false))
	if err != nil {
		t.Fatal(err)
	}
	if ref.JSON.ExtraFields["sources"].Raw() != "" {
		t.Errorf(`"rag": false still reports sources`)
	}
	if resp.Choices[0].Message.Content != ref.Choices[0].Message.Content || resp.Usage.PromptTokens != ref.Usage.PromptTokens {
		t.Errorf("with retrieval: %q (%d prompt tokens); by hand: %q (%d)", resp.Choices[0].Message.Content, resp.Usage.PromptTokens,
			ref.Choices[0].Message.Content, ref.Usage.PromptTokens)
	}

	// Declined: the bare question.
	off, err := ts.client.Chat.Completions.New(ctx, params, option.WithJSONSet("rag", false))
	if err != nil {
		t.Fatal(err)
	}
	if off.Usage.PromptTokens >= resp.Usage.PromptTokens {
		t.Errorf(`"rag": false prompt %d tokens, with retrieval %d`, off.Usage.PromptTokens, resp.Usage.PromptTokens)
	}

	// Per request k and mode.
	one, err := ts.client.Chat.Completions.New(ctx, params, option.WithJSONSet("rag", map[string]any{"k": 1, "mode": "bm25"}))
	if err != nil {
		t.Fatal(err)
	}
	if s := sourcesOf(t, one.JSON.ExtraFields["sources"].Raw()); len(s) != 1 || s[0].Source != "zorvia.md" {
		t.Errorf("k 1 bm25: sources %+v", s)
	}

	// fts on a file store is the client's mistake: 400, not 500.
	_, err = ts.client.Chat.Completions.New(ctx, params, option.WithJSONSet("rag", map[string]any{"mode": "fts"}))
	if e := apiErr(t, err); e.StatusCode != 400 || e.Param != "rag.mode" {
		t.Errorf("fts on a file store: %d %q %s", e.StatusCode, e.Param, e.Message)
	}

	// Streamed: the first chunk carries the sources, the text is the same.
	stream := ts.client.Chat.Completions.NewStreaming(ctx, params)
	var text strings.Builder
	var first []sourceOut
	n := 0
	for stream.Next() {
		c := stream.Current()
		if n == 0 {
			first = sourcesOf(t, c.JSON.ExtraFields["sources"].Raw())
		} else if c.JSON.ExtraFields["sources"].Raw() != "" {
			t.Errorf("chunk %d repeats the sources", n)
		}
		if len(c.Choices) > 0 {
			text.WriteString(c.Choices[0].Delta.Content)
		}
		n++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 || first[0].Source != "zorvia.md" || text.String() != resp.Choices[0].Message.Content {
		t.Errorf("stream: sources %+v, text %q (whole: %q)", first, text.String(), resp.Choices[0].Message.Content)
	}

	// Bad values.
	for _, body := range []string{
		`{"messages":[{"role":"user","content":"hi"}],"rag":{"k":0}}`,
		`{"messages":[{"role":"user","content":"hi"}],"rag":{"mode":"magic"}}`,
		`{"messages":[{"role":"user","content":"hi"}],"rag":{"top":3}}`,
		`{"messages":[{"role":"user","content":"hi"}],"rag":"yes"}`,
		`{"messages":[{"role":"system","content":"hi"}]}`,
	} {
		if code, _, b := ts.post(t, "/v1/chat/completions", body); code != http.StatusBadRequest || !strings.Contains(b, "invalid_request_error") {
			t.Errorf("%s: %d %s", body, code, b)
		}
	}
}

// TestChatRAGFits: retrieved chunks that would overflow the context are
// left out, last first.
func TestChatRAGFits(t *testing.T) {
	ctx := context.Background()
	path := ragStore(t)
	r, err := rag.OpenRetriever(ctx, path, rag.BM25, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Store.Close()
	cfg := testConfig()
	cfg.RAG = &RAG{Retriever: r, K: 3, Mode: rag.BM25, Template: template.Must(rag.ParseTemplate("t", rag.DefaultTemplate))}
	const ctxLen = 200
	ts := startServer(t, cfg, randomModel(t, tinySpec(ctxLen), 7), tok512(t))
	resp, err := ts.client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "tiny", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("capital of Zorvia and Marn")},
		MaxCompletionTokens: openai.Int(4), Temperature: openai.Float(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	s := sourcesOf(t, resp.JSON.ExtraFields["sources"].Raw())
	// The bare question takes about 70 tokens, each chunk about 55: one of
	// the two BM25 finds fits with the 50 kept for the reply.
	t.Logf("%d sources, %d prompt tokens", len(s), resp.Usage.PromptTokens)
	if len(s) != 1 {
		t.Errorf("%d sources %+v in a context of %d", len(s), s, ctxLen)
	}
	if resp.Usage.PromptTokens+min(64, ctxLen/4) > ctxLen {
		t.Errorf("prompt of %d tokens leaves no room in %d", resp.Usage.PromptTokens, ctxLen)
	}
}

// TestChatRAGNoStore: asking for retrieval from a server without a store is
// a 400; "rag": false is accepted.
func TestChatRAGNoStore(t *testing.T) {
	ts := startServer(t, testConfig(), randomModel(t, tinySpec(64), 1), tok512(t))
	code, _, b := ts.post(t, "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"rag":{"k":2}}`)
	if code != http.StatusBadRequest || !strings.Contains(b, "--rag-store") {
		t.Errorf("%d %s", code, b)
	}
	if code, _, b := ts.post(t, "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"rag":false}`); code != 200 || strings.Contains(b, "sources") {
		t.Errorf("%d %s", code, b)
	}
}

// TestServeRAGStore runs `serve --rag-store` (with $MODELC_RAG_K) and asks
// with the OpenAI client.
func TestServeRAGStore(t *testing.T) {
	d := dataDir(t)
	path := ragStore(t)
	addr := make(chan string, 1)
	o := &serveOptions{name: "stories", spec: storiesSpec(t), factory: generic.New, onListen: func(a string) { addr <- a }}
	cmd := command(o)
	cmd.SetArgs([]string{"--model", filepath.Join(d, "models", "stories260K.bin"), "--tokenizer", filepath.Join(d, "models", "tok512.bin"),
		"--addr", "127.0.0.1:0", "--log-level", "error", "--rag-store", path, "--rag-mode", "bm25"})
	t.Setenv("MODELC_RAG_K", "1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var stderr bytes.Buffer
	cmd.SetErr(&stderr)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	var a string
	select {
	case a = <-addr:
	case err := <-done:
		t.Fatalf("serve ended: %v", err)
	}
	waitFor(t, func() bool {
		resp, err := http.Get("http://" + a + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	c := openai.NewClient(option.WithBaseURL("http://"+a+"/v1/"), option.WithAPIKey("x"), option.WithMaxRetries(0))
	resp, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "stories", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Where do cats hunt?")},
		MaxCompletionTokens: openai.Int(8), Temperature: openai.Float(0),
	})
	if err != nil {
		t.Fatalf("%v (%s)", err, stderr.String())
	}
	if s := sourcesOf(t, resp.JSON.ExtraFields["sources"].Raw()); len(s) != 1 || s[0].Source != "cats.md" {
		t.Errorf("sources %+v, want cats.md alone ($MODELC_RAG_K=1)", s)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func TestServeRAGStoreErrors(t *testing.T) {
	d := dataDir(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--rag-store", filepath.Join(t.TempDir(), "none.db")}, "--rag-store"},
		{[]string{"--rag-store", "x.db", "--rag-mode", "fuzzy"}, "--rag-mode"},
		{[]string{"--rag-store", "x.db", "--rag-k", "0"}, "--rag-k"},
	} {
		o := &serveOptions{name: "stories", spec: storiesSpec(t), factory: generic.New}
		cmd := command(o)
		cmd.SetArgs(append([]string{"--model", filepath.Join(d, "models", "stories260K.bin"), "--tokenizer", filepath.Join(d, "models", "tok512.bin"),
			"--addr", "127.0.0.1:0", "--log-level", "error"}, tc.args...))
		cmd.SetErr(&bytes.Buffer{})
		err := cmd.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}
