package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

var fuzzSeeds = []string{
	`{"model":"tiny","prompt":"Once upon a time","max_tokens":5,"temperature":0.5,"top_p":0.9,"top_k":3,"seed":1,"n":2,"stop":["\n","."],"stream":true,"stream_options":{"include_usage":true},"echo":true}`,
	`{"prompt":[1,2,3]}`,
	`{"prompt":[[1,2],[3]]}`,
	`{"prompt":["a","b"],"stop":"x"}`,
	`{"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"}]}],"max_completion_tokens":3,"response_format":{"type":"text"}}`,
	`{"input":["a",""],"encoding_format":"base64"}`,
	`{"input":[[1,2]],"dimensions":32}`,
	`{"content":"abc","add_special":false}`,
	`{"tokens":[1,2,3]}`,
	`{"prompt":"x","max_tokens":1e400}`,
	`{"prompt":"x","logit_bias":{"1":2}}`,
	`{"prompt":"\ud800"}`,
	`{"prompt":null}`,
	`[]`, `null`, `"x"`, `{`, ``,
}

// FuzzDecode: any body gives a request value or a 400 naming the problem,
// never a panic, for every request type.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range []any{&completionRequest{}, &chatRequest{}, &embeddingRequest{}, &tokenizeRequest{}, &detokenizeRequest{}} {
			e := decodeBytes(body, v)
			if e == nil {
				continue
			}
			if e.Status != http.StatusBadRequest || e.Message == "" || e.Type != "invalid_request_error" {
				t.Fatalf("%T from %q: %+v", v, body, e)
			}
			if _, err := json.Marshal(map[string]*apiError{"error": e}); err != nil {
				t.Fatalf("error does not encode: %v", err)
			}
		}
	})
}

// FuzzHandler: any body posted to any endpoint gets a well-formed answer —
// 200 with JSON or an event stream, or an OpenAI error object with a 4xx
// status — and leaves no slot busy.
func FuzzHandler(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(0, []byte(s))
		f.Add(1, []byte(s))
	}
	cfg := testConfig()
	cfg.MaxBody = 4096
	cfg.Defaults.MaxTokens = 8
	s, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Ready(randomModel(f, tinySpec(64), 1), tok512(f), nil, nil); err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	paths := []string{"/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/tokenize", "/detokenize"}
	f.Fuzz(func(t *testing.T, which int, body []byte) {
		path := paths[uint(which)%uint(len(paths))]
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("POST", path, bytes.NewReader(body)))
		out := rec.Body.String()
		switch {
		case rec.Code == 200 && strings.HasPrefix(rec.Header().Get("Content-Type"), "text/event-stream"):
			if !strings.HasSuffix(out, "data: [DONE]\n\n") {
				t.Fatalf("%s %q: stream ends %q", path, body, out[max(0, len(out)-80):])
			}
		case rec.Code == 200:
			if !json.Valid([]byte(out)) {
				t.Fatalf("%s %q: invalid JSON %q", path, body, out)
			}
		case rec.Code >= 400 && rec.Code < 500:
			var e struct {
				Error *apiError `json:"error"`
			}
			if json.Unmarshal([]byte(out), &e) != nil || e.Error == nil || e.Error.Message == "" {
				t.Fatalf("%s %q: %d with body %q", path, body, rec.Code, out)
			}
		default:
			t.Fatalf("%s %q: status %d %q", path, body, rec.Code, out)
		}
		if b, q := s.SlotsInUse(); b != 0 || q != 0 {
			t.Fatalf("%s %q: %d slots busy, %d queued after the response", path, body, b, q)
		}
	})
}
