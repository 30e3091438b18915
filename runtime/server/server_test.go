package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	dto "github.com/prometheus/client_model/go"

	"github.com/modelc/modelc/runtime/generate"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/sample"
)

func completionParams(prompt string, maxTokens int, temp float64, seed int64) openai.CompletionNewParams {
	return openai.CompletionNewParams{
		Model:       "tiny",
		Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
		MaxTokens:   openai.Int(int64(maxTokens)),
		Temperature: openai.Float(temp),
		Seed:        openai.Int(seed),
	}
}

// TestGenerateEquivalence: what the server returns for a prompt is what
// runtime/generate prints for it — greedy, and sampled with the same seed —
// with sequences decoded together (batched and per slot) or alone.
func TestGenerateEquivalence(t *testing.T) {
	m := stories(t)
	tok := tok512(t)
	prompts := []string{"Once upon a time", "The little dog", "", "Lily wanted to play"}
	const maxTokens = 60
	type setting struct {
		temp, topP float64
		seed       uint64
	}
	settings := []setting{{0, 1, 1}, {0.8, 0.9, 42}}
	want := map[string]string{}
	for _, st := range settings {
		for _, p := range prompts {
			ids, err := tok.Encode(p, true, false)
			if err != nil {
				t.Fatal(err)
			}
			smp, err := sample.New(sample.Params{Temperature: st.temp, TopP: st.topP, Seed: st.seed})
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if _, err := generate.Generate(context.Background(), m.NewSession(), tok, smp,
				generate.Options{Prompt: p, Steps: len(ids) + maxTokens - 1, MaxSeq: m.Spec().MaxSeq}, &buf); err != nil {
				t.Fatal(err)
			}
			want[fmt.Sprint(st, p)] = buf.String()
		}
	}
	for _, c := range []struct {
		batch bool
		chunk int
		model model.Model
	}{
		{true, 0, m}, // prompts inside the batched steps (ForwardSpans)
		{true, 3, m}, // … three prompt tokens per step
		{true, 2, &countingModel{m: m, b: m.(model.Batcher)}}, // ForwardBatch, prompts by Prefill
		{false, 0, m}, // one Forward per slot
	} {
		batch := c.batch
		cfg := testConfig()
		cfg.Batch, cfg.PrefillChunk = c.batch, c.chunk
		ts := startServer(t, cfg, c.model, tok)
		if ts.Batching() != batch {
			t.Fatalf("Batching() = %v with Batch %v", ts.Batching(), batch)
		}
		var wg sync.WaitGroup
		for _, st := range settings {
			for _, p := range prompts {
				wg.Go(func() {
					params := completionParams(p, maxTokens, st.temp, int64(st.seed))
					params.TopP = openai.Float(st.topP)
					params.Echo = openai.Bool(true)
					resp, err := ts.client.Completions.New(context.Background(), params)
					if err != nil {
						t.Error(err)
						return
					}
					got := resp.Choices[0].Text + "\n"
					if w := want[fmt.Sprint(st, p)]; got != w {
						t.Errorf("batch %v chunk %d %T, %+v, prompt %q:\nserver   %q\ngenerate %q", batch, c.chunk, c.model, st, p, got, w)
					}
				})
			}
		}
		wg.Wait()
	}
}

// TestStreamingEqualsWhole: for the same seed the streamed chunks add up to
// the non-streamed response, for completions and chat, n = 1 and 2.
func TestStreamingEqualsWhole(t *testing.T) {
	ts := startServer(t, testConfig(), randomModel(t, tinySpec(256), 1), tok512(t))
	ctx := context.Background()
	for _, n := range []int64{1, 2} {
		for _, prompt := range []string{"Once upon a time", "A cat sat"} {
			p := completionParams(prompt, 40, 0.9, 7)
			p.N = openai.Int(n)
			whole, err := ts.client.Completions.New(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			stream := ts.client.Completions.NewStreaming(ctx, p)
			texts := make([]string, n)
			finish := make([]string, n)
			var u openai.CompletionUsage
			for stream.Next() {
				c := stream.Current()
				if len(c.Choices) == 0 {
					u = c.Usage
					continue
				}
				ch := c.Choices[0]
				texts[ch.Index] += ch.Text
				if ch.FinishReason != "" {
					finish[ch.Index] = string(ch.FinishReason)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if len(whole.Choices) != int(n) {
				t.Fatalf("%d choices, want %d", len(whole.Choices), n)
			}
			for i, c := range whole.Choices {
				if c.Text == "" {
					t.Errorf("choice %d is empty", i)
				}
				if texts[i] != c.Text || finish[i] != string(c.FinishReason) {
					t.Errorf("n=%d prompt %q choice %d: streamed %q (%s), whole %q (%s)", n, prompt, i, texts[i], finish[i], c.Text, c.FinishReason)
				}
			}
			if n == 2 && whole.Choices[0].Text == whole.Choices[1].Text {
				t.Errorf("both choices are %q: choice seeds should differ", whole.Choices[0].Text)
			}
			if u.PromptTokens != whole.Usage.PromptTokens || u.CompletionTokens != whole.Usage.CompletionTokens || u.TotalTokens != u.PromptTokens+u.CompletionTokens || u.PromptTokens == 0 {
				t.Errorf("streamed usage %+v, whole %+v", u, whole.Usage)
			}
		}
	}

	// Chat: the same, and the first chunk carries the role.
	cp := openai.ChatCompletionNewParams{
		Model:       "tiny",
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("Tell me a story.")},
		MaxTokens:   openai.Int(30),
		Temperature: openai.Float(1),
		Seed:        openai.Int(3),
	}
	whole, err := ts.client.Chat.Completions.New(ctx, cp)
	if err != nil {
		t.Fatal(err)
	}
	cp.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := ts.client.Chat.Completions.NewStreaming(ctx, cp)
	acc := openai.ChatCompletionAccumulator{}
	first := true
	for stream.Next() {
		c := stream.Current()
		if first {
			if len(c.Choices) != 1 || c.Choices[0].Delta.Role != "assistant" {
				t.Errorf("first chunk %s, want the assistant role", c.RawJSON())
			}
			first = false
		}
		acc.AddChunk(c)
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got, want := acc.Choices[0].Message.Content, whole.Choices[0].Message.Content; got != want || want == "" {
		t.Errorf("chat streamed %q, whole %q", got, want)
	}
	if acc.Choices[0].FinishReason != whole.Choices[0].FinishReason {
		t.Errorf("chat finish streamed %q, whole %q", acc.Choices[0].FinishReason, whole.Choices[0].FinishReason)
	}
	if acc.Usage.CompletionTokens != whole.Usage.CompletionTokens || acc.Usage.PromptTokens != whole.Usage.PromptTokens {
		t.Errorf("chat usage streamed %+v, whole %+v", acc.Usage, whole.Usage)
	}
	if whole.Choices[0].Message.Role != "assistant" || whole.Object != "chat.completion" {
		t.Errorf("chat response %s", whole.RawJSON())
	}
}

// TestChatPrompt: a chat is rendered with the template, so its prompt is
// the template's text tokenized; max_completion_tokens is honoured.
func TestChatPrompt(t *testing.T) {
	tok := tok512(t)
	ts := startServer(t, testConfig(), randomModel(t, tinySpec(128), 2), tok)
	msgs := []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hi there")}
	resp, err := ts.client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "tiny", Messages: msgs, MaxCompletionTokens: openai.Int(5), Temperature: openai.Float(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := tok.Encode("<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n", true, false)
	if int(resp.Usage.PromptTokens) != len(want) {
		t.Errorf("prompt tokens %d, the rendered chatml prompt has %d", resp.Usage.PromptTokens, len(want))
	}
	if resp.Usage.CompletionTokens > 5 {
		t.Errorf("%d completion tokens with max_completion_tokens 5", resp.Usage.CompletionTokens)
	}
	if resp.Usage.CompletionTokens == 5 && resp.Choices[0].FinishReason != "length" {
		t.Errorf("finish %q after 5 of 5 tokens", resp.Choices[0].FinishReason)
	}
	// The same conversation through the raw endpoint with content parts.
	code, _, body := ts.post(t, "/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":[{"type":"text","text":"Hi "},{"type":"text","text":"there"}]}],"max_tokens":5,"temperature":0}`)
	if code != 200 || !strings.Contains(body, fmt.Sprintf(`"prompt_tokens":%d`, len(want))) {
		t.Errorf("content parts: %d %s", code, body)
	}
	if !strings.Contains(body, jsonString(resp.Choices[0].Message.Content)) {
		t.Errorf("content parts answer %s, string content answered %q", body, resp.Choices[0].Message.Content)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestStopStrings: generation stops at the first stop string, which is not
// returned, with finish_reason stop; streamed the same.
func TestStopStrings(t *testing.T) {
	m := stories(t)
	ts := startServer(t, testConfig(), m, tok512(t))
	ctx := context.Background()
	p := completionParams("Once upon a time", 60, 0, 1)
	free, err := ts.client.Completions.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	text := free.Choices[0].Text
	// Stop at the second word boundary that is followed by text.
	words := strings.Fields(text)
	if len(words) < 4 {
		t.Fatalf("greedy story too short to cut: %q", text)
	}
	stop := " " + words[2]
	cut := strings.Index(text, stop)
	p.Stop = openai.CompletionNewParamsStopUnion{OfStringArray: []string{"zzzz", stop}}
	resp, err := ts.client.Completions.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Text; got != text[:cut] || resp.Choices[0].FinishReason != "stop" {
		t.Errorf("stop %q: got %q (%s), want %q (stop)", stop, got, resp.Choices[0].FinishReason, text[:cut])
	}
	stream := ts.client.Completions.NewStreaming(ctx, p)
	var streamed string
	for stream.Next() {
		if c := stream.Current(); len(c.Choices) > 0 {
			streamed += c.Choices[0].Text
		}
	}
	if err := stream.Err(); err != nil || streamed != text[:cut] {
		t.Errorf("streamed with stop: %q (%v), want %q", streamed, err, text[:cut])
	}
}

// TestEmbeddings: unit vectors of the model's width, equal to the generic
// model's mean-pooled hidden state normalised, float or base64.
func TestEmbeddings(t *testing.T) {
	m := randomModel(t, tinySpec(64), 3)
	tok := tok512(t)
	ts := startServer(t, testConfig(), m, tok)
	ctx := context.Background()
	inputs := []string{"a cat sat", "a cat sat", "the dog ran away"}
	resp, err := ts.client.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "tiny", Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: inputs},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != 3 {
		t.Fatalf("%d embeddings for 3 inputs", len(resp.Data))
	}
	ids, _ := tok.Encode("a cat sat", true, false)
	ref, err := m.(*generic.Model).Embed(ids)
	if err != nil {
		t.Fatal(err)
	}
	normalize(ref)
	for i, d := range resp.Data {
		if int(d.Index) != i || len(d.Embedding) != 32 {
			t.Fatalf("embedding %d: index %d, %d values", i, d.Index, len(d.Embedding))
		}
		var ss float64
		for _, v := range d.Embedding {
			ss += v * v
		}
		if math.Abs(ss-1) > 1e-4 {
			t.Errorf("embedding %d has squared norm %v", i, ss)
		}
	}
	for j, v := range ref {
		if math.Abs(resp.Data[0].Embedding[j]-float64(v)) > 1e-6 || resp.Data[1].Embedding[j] != resp.Data[0].Embedding[j] {
			t.Fatalf("embedding[%d] = %v / %v, generic gives %v", j, resp.Data[0].Embedding[j], resp.Data[1].Embedding[j], v)
		}
	}
	var dot float64
	for j := range ref {
		dot += resp.Data[0].Embedding[j] * resp.Data[2].Embedding[j]
	}
	if dot > 0.99999 {
		t.Errorf("different texts embed alike (cosine %v)", dot)
	}
	if int(resp.Usage.PromptTokens) != 2*len(ids)+len(must(tok.Encode("the dog ran away", true, false))) {
		t.Errorf("usage %+v", resp.Usage)
	}
	// base64 carries the same floats.
	b64, err := ts.client.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "tiny", Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("a cat sat")},
		EncodingFormat: openai.EmbeddingNewParamsEncodingFormatBase64,
	})
	if err != nil {
		t.Fatal(err)
	}
	for j := range ref {
		if float32(b64.Data[0].Embedding[j]) != float32(resp.Data[0].Embedding[j]) {
			t.Fatalf("base64 embedding[%d] = %v, float gives %v", j, b64.Data[0].Embedding[j], resp.Data[0].Embedding[j])
		}
	}
	// Token ids work too.
	code, _, body := ts.post(t, "/v1/embeddings", fmt.Sprintf(`{"input": %s}`, mustJSON(ids)))
	if code != 200 || !strings.Contains(body, fmt.Sprintf("%v", float32(resp.Data[0].Embedding[0]))) {
		t.Errorf("token input: %d %.200s", code, body)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func mustJSON(v any) string { return string(must(json.Marshal(v))) }

// apiErr unpacks the client's error.
func apiErr(t *testing.T, err error) *openai.Error {
	t.Helper()
	var e *openai.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an API error", err)
	}
	return e
}

// errorBody checks OpenAI's error shape and returns its fields.
func errorBody(t *testing.T, body string) (msg, typ, param, code string) {
	t.Helper()
	var e struct {
		Error map[string]*string `json:"error"`
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Error == nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := e.Error[k]; !ok {
			t.Fatalf("error body %s lacks %q", body, k)
		}
	}
	get := func(k string) string {
		if v := e.Error[k]; v != nil {
			return *v
		}
		return ""
	}
	return get("message"), get("type"), get("param"), get("code")
}

func TestErrors(t *testing.T) {
	tok := tok512(t)
	cfg := testConfig()
	cfg.MaxBody = 2000
	ts := startServer(t, cfg, randomModel(t, tinySpec(64), 4), tok)
	long := strings.Repeat("a b c d ", 40) // far more than 64 tokens
	cases := []struct {
		name, path, body string
		status           int
		param, code      string
		msg              []string
	}{
		{"malformed", "/v1/completions", `{"prompt": "x",`, 400, "", "invalid_json", []string{"malformed JSON"}},
		{"not an object", "/v1/completions", `[1,2]`, 400, "", "invalid_json", []string{"JSON object"}},
		{"trailing", "/v1/completions", `{"prompt": "x"} {}`, 400, "", "invalid_json", []string{"after the request object"}},
		{"empty", "/v1/completions", ``, 400, "", "invalid_json", []string{"empty"}},
		{"unknown field", "/v1/completions", `{"prompt": "x", "temprature": 1}`, 400, "temprature", "unknown_field", []string{`"temprature"`}},
		{"unknown chat field", "/v1/chat/completions", `{"messages": [{"role":"user","content":"x","extra":1}]}`, 400, "extra", "unknown_field", nil},
		{"wrong type", "/v1/completions", `{"prompt": "x", "max_tokens": "ten"}`, 400, "max_tokens", "invalid_type", []string{"max_tokens", "integer"}},
		{"bad prompt type", "/v1/completions", `{"prompt": {"a":1}}`, 400, "prompt", "invalid_type", []string{"prompt"}},
		{"no prompt", "/v1/completions", `{"max_tokens": 3}`, 400, "prompt", "missing_field", nil},
		{"no messages", "/v1/chat/completions", `{"messages": []}`, 400, "messages", "missing_field", nil},
		{"bad role", "/v1/chat/completions", `{"messages": [{"role":"tool","content":"x"}]}`, 400, "messages[0].role", "invalid_value", []string{`"tool"`}},
		{"image part", "/v1/chat/completions", `{"messages": [{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}`, 400, "messages.content", "invalid_type", nil},
		{"prompt too long", "/v1/completions", `{"prompt": "` + long + `"}`, 400, "prompt", "context_length_exceeded", []string{"longer than the model's context of 64 tokens"}},
		{"chat too long", "/v1/chat/completions", `{"messages": [{"role":"user","content":"` + long + `"}]}`, 400, "messages", "context_length_exceeded", []string{"context of 64 tokens"}},
		{"max_tokens zero", "/v1/completions", `{"prompt": "x", "max_tokens": 0}`, 400, "max_tokens", "invalid_value", []string{"≥ 1, got 0"}},
		{"max_tokens over", "/v1/completions", `{"prompt": "a cat", "max_tokens": 64}`, 400, "max_tokens", "context_length_exceeded", []string{"context is 64 tokens", "max_tokens is 64", "at most"}},
		{"token out of vocab", "/v1/completions", `{"prompt": [1, 999]}`, 400, "prompt[0]", "invalid_token", []string{"999", "vocabulary of 512"}},
		{"temperature", "/v1/completions", `{"prompt": "x", "temperature": -1}`, 400, "temperature", "invalid_value", nil},
		{"top_p", "/v1/completions", `{"prompt": "x", "top_p": 1.5}`, 400, "top_p", "invalid_value", nil},
		{"n", "/v1/completions", `{"prompt": "x", "n": 0}`, 400, "n", "invalid_value", nil},
		{"n too many", "/v1/completions", `{"prompt": "x", "n": 1000}`, 400, "n", "invalid_value", []string{"at most 20"}},
		// prompts × n would overflow to -2 (a panic) and to 0 (no bound on the jobs made).
		{"n overflows to negative", "/v1/completions", `{"prompt": ["a", "b"], "n": 9223372036854775807}`, 400, "n", "invalid_value", []string{"at most 20"}},
		{"n overflows to zero", "/v1/completions", `{"prompt": ["a", "b", "c", "d"], "n": 4611686018427387904}`, 400, "n", "invalid_value", []string{"at most 20"}},
		{"max_tokens huge", "/v1/completions", `{"prompt": "a cat", "max_tokens": 9223372036854775806}`, 400, "max_tokens", "context_length_exceeded", []string{"max_tokens is 9223372036854775806: lower"}},
		{"penalty", "/v1/completions", `{"prompt": "x", "presence_penalty": 0.5}`, 400, "presence_penalty", "unsupported_value", nil},
		{"logprobs", "/v1/chat/completions", `{"messages": [{"role":"user","content":"x"}], "logprobs": true}`, 400, "logprobs", "unsupported_value", nil},
		{"stream_options alone", "/v1/completions", `{"prompt": "x", "stream_options": {"include_usage": true}}`, 400, "stream_options", "invalid_value", nil},
		{"empty stop", "/v1/completions", `{"prompt": "x", "stop": [""]}`, 400, "stop", "invalid_value", nil},
		{"wrong model", "/v1/completions", `{"model": "gpt-4", "prompt": "x"}`, 404, "model", "model_not_found", []string{`"gpt-4"`, `"tiny"`}},
		{"too big", "/v1/completions", `{"prompt": "` + strings.Repeat("x", 3000) + `"}`, 413, "", "request_too_large", []string{"2000 bytes"}},
		{"embedding dims", "/v1/embeddings", `{"input": "x", "dimensions": 8}`, 400, "dimensions", "unsupported_value", []string{"32"}},
		{"embedding input type", "/v1/embeddings", `{"input": {"a": 1}}`, 400, "input", "invalid_type", []string{"input: expected a string"}},
		{"detokenize range", "/detokenize", `{"tokens": [1, -4]}`, 400, "tokens", "invalid_token", []string{"tokens[1] is -4"}},
		{"no endpoint", "/v1/nothing", `{}`, 404, "", "not_found", nil},
	}
	for _, c := range cases {
		code, _, body := ts.post(t, c.path, c.body)
		if code != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.name, code, c.status, body)
			continue
		}
		msg, typ, param, ecode := errorBody(t, body)
		if param != c.param || ecode != c.code || typ != "invalid_request_error" {
			t.Errorf("%s: type %q param %q code %q, want invalid_request_error %q %q (%s)", c.name, typ, param, ecode, c.param, c.code, msg)
		}
		for _, m := range c.msg {
			if !strings.Contains(msg, m) {
				t.Errorf("%s: message %q lacks %q", c.name, msg, m)
			}
		}
	}

	// A known path with the wrong method: 405 and the method it takes.
	code, body := ts.get(t, "/v1/completions")
	if msg, _, _, ecode := errorBody(t, body); code != 405 || ecode != "method_not_allowed" || !strings.Contains(msg, "takes POST") {
		t.Errorf("GET /v1/completions: %d %s", code, body)
	}
	// The client sees the status and message.
	_, err := ts.client.Completions.New(context.Background(), completionParams("a cat", 64, 0, 1))
	if e := apiErr(t, err); e.StatusCode != 400 || e.Code != "context_length_exceeded" || e.Param != "max_tokens" {
		t.Errorf("client error %d %q %q: %s", e.StatusCode, e.Code, e.Param, e.Message)
	}
}

func TestAPIKey(t *testing.T) {
	cfg := testConfig()
	cfg.APIKey = "sekrit"
	ts := startServer(t, cfg, randomModel(t, tinySpec(64), 4), tok512(t))
	if _, err := ts.client.Completions.New(context.Background(), completionParams("x", 2, 0, 1)); err != nil {
		t.Fatalf("right key: %v", err)
	}
	bad := openai.NewClient(option.WithBaseURL(ts.URL+"/v1/"), option.WithAPIKey("wrong"), option.WithMaxRetries(0))
	_, err := bad.Models.List(context.Background())
	if e := apiErr(t, err); e.StatusCode != 401 || e.Code != "invalid_api_key" {
		t.Errorf("wrong key: %d %q", e.StatusCode, e.Code)
	}
	for _, hdr := range []string{"bearer sekrit", "BEARER  sekrit"} {
		if code, _, body := ts.post(t, "/tokenize", `{"content":"x"}`, "Authorization", hdr); code != 200 {
			t.Errorf("header %q: %d %s", hdr, code, body)
		}
	}
	for _, hdr := range [][]string{nil, {"Authorization", "sekrit"}, {"Authorization", "Bearer sekrit2"}, {"Authorization", "Basic sekrit"}} {
		code, _, body := ts.post(t, "/tokenize", `{"content":"x"}`, hdr...)
		if code != 401 {
			t.Errorf("header %v: %d %s", hdr, code, body)
		}
		errorBody(t, body)
	}
	// Health and metrics stay open.
	if code, _ := ts.get(t, "/health"); code != 200 {
		t.Errorf("/health with a key set: %d", code)
	}
	if code, _ := ts.get(t, "/metrics"); code != 200 {
		t.Errorf("/metrics with a key set: %d", code)
	}
}

// TestLoading: before Ready, /health says 503 and so does the API, with
// Retry-After; afterwards 200.
func TestLoading(t *testing.T) {
	ts := startServer(t, testConfig(), nil, nil)
	if code, body := ts.get(t, "/health"); code != 503 || !strings.Contains(body, "loading") {
		t.Errorf("/health while loading: %d %s", code, body)
	}
	code, hdr, body := ts.post(t, "/v1/completions", `{"prompt":"x"}`)
	if code != 503 || hdr.Get("Retry-After") == "" {
		t.Errorf("completion while loading: %d %v %s", code, hdr, body)
	}
	if _, typ, _, c := errorBody(t, body); typ != "server_error" || c != "model_loading" {
		t.Errorf("loading error %s", body)
	}
	if err := ts.Ready(randomModel(t, tinySpec(64), 4), tok512(t), nil, nil); err != nil {
		t.Fatal(err)
	}
	if code, body := ts.get(t, "/health"); code != 200 || !strings.Contains(body, `"status":"ok"`) {
		t.Errorf("/health when ready: %d %s", code, body)
	}
	if err := ts.Ready(randomModel(t, tinySpec(64), 4), tok512(t), nil, nil); err == nil {
		t.Error("Ready twice succeeded")
	}
	models, err := ts.client.Models.List(context.Background())
	if err != nil || len(models.Data) != 1 || models.Data[0].ID != "tiny" || models.Data[0].OwnedBy != "modelc" {
		t.Fatalf("models: %+v %v", models, err)
	}
	mdl, err := ts.client.Models.Get(context.Background(), "tiny")
	if err != nil || mdl.ID != "tiny" {
		t.Errorf("model tiny: %+v %v", mdl, err)
	}
	_, err = ts.client.Models.Get(context.Background(), "other")
	if e := apiErr(t, err); e.StatusCode != 404 {
		t.Errorf("unknown model: %d", e.StatusCode)
	}
}

// TestQueueFull: with every slot busy and the queue full, a request gets
// 503 with Retry-After, and nothing leaks.
func TestQueueFull(t *testing.T) {
	cfg := testConfig()
	cfg.Slots, cfg.MaxQueue = 1, 1
	gate := newGatedModel(randomModel(t, tinySpec(64), 4))
	ts := startServer(t, cfg, gate, tok512(t))
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 { // one runs (blocked in the model), one waits in the queue
		wg.Go(func() {
			_, err := ts.client.Completions.New(ctx, completionParams("x", 3, 0, 1))
			errs <- err
		})
	}
	waitFor(t, func() bool { b, q := ts.SlotsInUse(); return b == 1 && q == 1 })
	code, hdr, body := ts.post(t, "/v1/completions", `{"prompt":"x","max_tokens":3}`)
	if code != 503 || hdr.Get("Retry-After") != "1" {
		t.Errorf("queue full: %d Retry-After %q %s", code, hdr.Get("Retry-After"), body)
	}
	if _, typ, _, c := errorBody(t, body); typ != "server_error" || c != "queue_full" {
		t.Errorf("queue full error %s", body)
	}
	_, err := ts.client.Completions.New(ctx, completionParams("x", 3, 0, 1))
	if e := apiErr(t, err); e.StatusCode != 503 {
		t.Errorf("client saw %d", e.StatusCode)
	}
	gate.open()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if b, q := ts.SlotsInUse(); b != 0 || q != 0 {
		t.Errorf("after the requests: %d busy, %d queued", b, q)
	}
}

func TestTokenize(t *testing.T) {
	tok := tok512(t)
	ts := startServer(t, testConfig(), randomModel(t, tinySpec(64), 4), tok)
	want, _ := tok.Encode("Once upon a time", true, false)
	// As llama.cpp's server: no BOS unless add_special asks for it.
	code, _, body := ts.post(t, "/tokenize", `{"content":"Once upon a time","add_special":true}`)
	if code != 200 || body != fmt.Sprintf(`{"tokens":%s}`+"\n", mustJSON(want)) {
		t.Errorf("tokenize with BOS: %d %s, want %v", code, body, want)
	}
	code, _, body = ts.post(t, "/tokenize", `{"content":"Once upon a time"}`)
	if code != 200 || body != fmt.Sprintf(`{"tokens":%s}`+"\n", mustJSON(want[1:])) {
		t.Errorf("tokenize: %d %s, want %v", code, body, want[1:])
	}
	code, _, body = ts.post(t, "/detokenize", fmt.Sprintf(`{"tokens":%s}`, mustJSON(want)))
	if code != 200 || body != `{"content":"Once upon a time"}`+"\n" {
		t.Errorf("detokenize: %d %s", code, body)
	}
}

// TestMetrics: the Prometheus text carries requests, tokens, queue and
// latency series with values that follow what was served.
func TestMetrics(t *testing.T) {
	ts := startServer(t, testConfig(), randomModel(t, tinySpec(64), 4), tok512(t))
	resp, err := ts.client.Completions.New(context.Background(), completionParams("x", 7, 0.5, 1))
	if err != nil {
		t.Fatal(err)
	}
	ts.post(t, "/v1/completions", `{"prompt":"x","bogus":1}`)
	code, body := ts.get(t, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`modelc_http_requests_total{code="200",endpoint="/v1/completions"} 1`,
		`modelc_http_requests_total{code="400",endpoint="/v1/completions"} 1`,
		fmt.Sprintf("modelc_generated_tokens_total %d", resp.Usage.CompletionTokens),
		fmt.Sprintf("modelc_prompt_tokens_total %d", resp.Usage.PromptTokens),
		"modelc_queue_depth 0",
		"modelc_slots_busy 0",
		"modelc_slots 4",
		"modelc_time_to_first_token_seconds_count 1",
		fmt.Sprintf("modelc_time_per_output_token_seconds_count %d", resp.Usage.CompletionTokens-1),
		"modelc_http_request_duration_seconds_bucket{endpoint=\"/v1/completions\",le=",
		"modelc_decode_batch_size_count",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		sleep()
	}
	t.Fatal("condition not reached in time")
}

// TestPrefixReuse: a slot keeps its cache between requests; a prompt that
// starts like the previous one runs only the rest, with the same result as
// on a fresh server.
func TestPrefixReuse(t *testing.T) {
	m := stories(t)
	tok := tok512(t)
	for _, batch := range []bool{true, false} {
		cfg := testConfig()
		cfg.Slots, cfg.Batch = 1, batch
		warm := startServer(t, cfg, m, tok)
		ctx := context.Background()
		prompts := []string{"Once upon a time, there was a little girl", "Once upon a time, there was a little dog", "Once upon a time, there was a little dog"}
		var cached float64
		for i, p := range prompts {
			fresh := startServer(t, cfg, m, tok)
			want, err := fresh.client.Completions.New(ctx, completionParams(p, 30, 0, 1))
			if err != nil {
				t.Fatal(err)
			}
			got, err := warm.client.Completions.New(ctx, completionParams(p, 30, 0, 1))
			if err != nil {
				t.Fatal(err)
			}
			if got.Choices[0].Text != want.Choices[0].Text {
				t.Errorf("batch %v prompt %d: warm slot gave %q, fresh %q", batch, i, got.Choices[0].Text, want.Choices[0].Text)
			}
			var mm dto.Metric
			warm.metrics.cachedTokens.Write(&mm)
			now := mm.GetCounter().GetValue()
			ids, _ := tok.Encode(p, true, false)
			switch i {
			case 0:
				if now != 0 {
					t.Errorf("first prompt found %v tokens cached", now)
				}
			case 2: // the same prompt again: all but its last token
				if now-cached != float64(len(ids)-1) {
					t.Errorf("repeated prompt of %d tokens reused %v", len(ids), now-cached)
				}
			default:
				if now-cached < 5 || now-cached >= float64(len(ids)) {
					t.Errorf("prompt %d of %d tokens reused %v", i, len(ids), now-cached)
				}
			}
			cached = now
		}
	}
}

// TestSlowBody: a client that stops sending in the middle of its body gets
// 408 once the body's time is up, instead of holding the connection.
func TestSlowBody(t *testing.T) {
	defer func(d time.Duration) { bodyTimeout = d }(bodyTimeout)
	bodyTimeout = 200 * time.Millisecond
	ts := startServer(t, testConfig(), randomModel(t, tinySpec(64), 4), tok512(t))
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\":")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d, want 408", resp.StatusCode)
	}
}

func TestSlotsBound(t *testing.T) {
	cfg := testConfig()
	cfg.Slots = MaxSlots + 1
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "slots: must be between 1 and 1024") {
		t.Errorf("slots %d: %v", cfg.Slots, err)
	}
}
