package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/modelc/modelc/generated/stories260k"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generate"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/sample"
	"github.com/modelc/modelc/runtime/server"
	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

// countedGreedy serves the compiled model, counting its Greedy calls and
// whether its screen was made before the first request.
type countedGreedy struct {
	m        model.Model
	greedy   atomic.Int64
	prepared atomic.Int64
}

func (c *countedGreedy) Spec() *spec.Spec      { return c.m.Spec() }
func (c *countedGreedy) Params() *model.Params { return c.m.Params() }
func (c *countedGreedy) NewSession() model.Session {
	return &countedSession{Session: c.m.NewSession(), c: c}
}
func (c *countedGreedy) PrepareGreedy() {
	c.prepared.Add(1)
	c.m.(model.GreedyPreparer).PrepareGreedy()
}

type countedSession struct {
	model.Session
	c *countedGreedy
}

func (s *countedSession) Greedy(token, pos int) int {
	s.c.greedy.Add(1)
	return s.Session.(model.Greedy).Greedy(token, pos)
}

// TestServeGreedyCompiled: the server decodes a lone temperature-0 request
// of the compiled stories260K through its Greedy (the classifier screen
// where this machine has one), with the text runtime/generate prints.
func TestServeGreedyCompiled(t *testing.T) {
	data := sharedData(t)
	p, _, err := checkpoint.Load(filepath.Join(data, "models", "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := stories260k.New(p)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(filepath.Join(data, "models", "tok512.bin"), 512)
	if err != nil {
		t.Fatal(err)
	}
	const prompt, maxTokens = "Once upon a time", 120
	ids, err := tok.Encode(prompt, true, false)
	if err != nil {
		t.Fatal(err)
	}
	smp, err := sample.New(sample.Params{Temperature: 0, TopP: 1})
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if _, err := generate.Generate(context.Background(), m.NewSession(), tok, smp,
		generate.Options{Prompt: prompt, Steps: len(ids) + maxTokens - 1, MaxSeq: m.Spec().MaxSeq}, &want); err != nil {
		t.Fatal(err)
	}

	cm := &countedGreedy{m: m}
	s, err := server.New(server.Config{ModelName: "stories260k", Slots: 2, MaxQueue: 4, MaxBody: 1 << 16, Batch: true,
		Defaults: server.Defaults{Temperature: 1, TopP: 0.9, MaxTokens: 32},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ready(cm, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	if cm.prepared.Load() != 1 {
		t.Errorf("Ready made the greedy screen %d times; want once", cm.prepared.Load())
	}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	body, _ := json.Marshal(map[string]any{"model": "stories260k", "prompt": prompt, "max_tokens": maxTokens,
		"temperature": 0, "echo": true})
	resp, err := http.Post(hs.URL+"/v1/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Choices []struct{ Text string } `json:"choices"`
		Usage   struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || len(out.Choices) != 1 {
		t.Fatalf("status %d, %v, %+v", resp.StatusCode, err, out)
	}
	if got := out.Choices[0].Text + "\n"; got != want.String() {
		t.Errorf("served greedy text\n got %q\nwant %q", got, want.String())
	}
	if n := out.Usage.CompletionTokens; cm.greedy.Load() != int64(n-1) {
		t.Errorf("%d completion tokens took %d Greedy calls; want %d", n, cm.greedy.Load(), n-1)
	}
}
