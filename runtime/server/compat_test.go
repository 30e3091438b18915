package server

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// TestResponseMessageSentBack: an assistant message as the SDKs send a
// response's message back in the next turn (openai-node's stream helper adds
// "refusal": null and "parsed": null, openai-python's model_dump() every
// field as null) is the same conversation as the bare message; a refusal
// stands for missing content; tool calls are refused.
func TestResponseMessageSentBack(t *testing.T) {
	ts := startServer(t, testConfig(), randomModel(t, tinySpec(128), 5), tok512(t))
	chat := func(assistant string) (int, string) {
		code, _, body := ts.post(t, "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"},`+assistant+
			`,{"role":"user","content":"more"}],"max_tokens":4,"temperature":0}`)
		return code, body
	}
	code, plain := chat(`{"role":"assistant","content":"hello there"}`)
	if code != 200 {
		t.Fatalf("plain conversation: %d %s", code, plain)
	}
	want := usageOf(t, plain)
	for _, m := range []string{
		`{"role":"assistant","content":"hello there","refusal":null,"parsed":null}`,
		`{"content":"hello there","refusal":null,"role":"assistant","annotations":null,"audio":null,"function_call":null,"tool_calls":null}`,
		`{"role":"assistant","content":"hello there","tool_calls":[],"annotations":[]}`,
		`{"role":"assistant","content":null,"refusal":"hello there"}`,
	} {
		code, body := chat(m)
		if code != 200 || usageOf(t, body) != want {
			t.Errorf("%s: %d %s, want the plain conversation's prompt (%s)", m, code, body, plain)
		}
	}
	for _, c := range []struct{ msg, param string }{
		{`{"role":"assistant","content":null,"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}]}`, "messages[1].tool_calls"},
		{`{"role":"assistant","content":"x","refusal":"no"}`, "messages[1].refusal"},
	} {
		code, body := chat(c.msg)
		if _, _, param, _ := errorBody(t, body); code != 400 || param != c.param {
			t.Errorf("%s: %d %s, want 400 naming %s", c.msg, code, body, c.param)
		}
	}
}

func usageOf(t *testing.T, body string) int {
	t.Helper()
	var r struct {
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return r.Usage.PromptTokens
}

// TestTopPZero: top_p 0 is in OpenAI's range [0, 1] and keeps only the most
// probable token, which is greedy decoding.
func TestTopPZero(t *testing.T) {
	ts := startServer(t, testConfig(), randomModel(t, tinySpec(128), 6), tok512(t))
	_, _, greedy := ts.post(t, "/v1/completions", `{"prompt":"Once upon a time","max_tokens":12,"temperature":0}`)
	greedyText := choiceText(t, greedy)
	for seed := range 3 {
		code, _, body := ts.post(t, "/v1/completions", `{"prompt":"Once upon a time","max_tokens":12,"temperature":1.5,"top_p":0,"seed":`+strconv.Itoa(seed)+`}`)
		if code != 200 || choiceText(t, body) != greedyText {
			t.Errorf("top_p 0, seed %d: %d %s, want the greedy text %q", seed, code, body, greedyText)
		}
	}
	for _, v := range []string{"-0.1", "1.5"} {
		code, _, body := ts.post(t, "/v1/completions", `{"prompt":"x","top_p":`+v+`}`)
		if msg, _, param, _ := errorBody(t, body); code != 400 || param != "top_p" || !strings.Contains(msg, "[0, 1]") {
			t.Errorf("top_p %s: %d %s", v, code, body)
		}
	}
}

func choiceText(t *testing.T, body string) string {
	t.Helper()
	var r struct {
		Choices []struct {
			Text string `json:"text"`
		} `json:"choices"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || len(r.Choices) != 1 {
		t.Fatalf("%s: %v", body, err)
	}
	return r.Choices[0].Text
}

// TestMaxCompletionTokensErrors: errors about max_completion_tokens name it,
// not max_tokens, which the request did not send.
func TestMaxCompletionTokensErrors(t *testing.T) {
	ts := startServer(t, testConfig(), randomModel(t, tinySpec(64), 7), tok512(t))
	for _, c := range []struct {
		value, code, msg string
	}{
		{"0", "invalid_value", "max_completion_tokens: must be ≥ 1"},
		{"64", "context_length_exceeded", "lower max_completion_tokens to at most"},
	} {
		code, _, body := ts.post(t, "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":`+c.value+`}`)
		msg, _, param, ecode := errorBody(t, body)
		if code != 400 || param != "max_completion_tokens" || ecode != c.code || !strings.Contains(msg, c.msg) {
			t.Errorf("max_completion_tokens %s: %d %s", c.value, code, body)
		}
	}
}

// TestModelIDWithSlash: a model named org/name is found at
// /v1/models/org/name, the path openai-python requests (unescaped).
func TestModelIDWithSlash(t *testing.T) {
	cfg := testConfig()
	cfg.ModelName = "org/tiny"
	ts := startServer(t, cfg, randomModel(t, tinySpec(64), 8), tok512(t))
	for _, path := range []string{"/v1/models/org/tiny", "/v1/models/org%2Ftiny"} {
		code, body := ts.get(t, path)
		if code != 200 || !strings.Contains(body, `"id":"org/tiny"`) {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
	if code, body := ts.get(t, "/v1/models/org/other"); code != 404 || !strings.Contains(body, "model_not_found") {
		t.Errorf("GET /v1/models/org/other: %d %s", code, body)
	}
}
