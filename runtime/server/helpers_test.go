package server

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

// dataDir finds the "shared/data" beside the repository root.
func dataDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(filepath.Dir(dir), "shared", "data")
			if _, err := os.Stat(d); err == nil {
				return d
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("shared/data not found beside the repository root")
		}
		dir = parent
	}
}

func tok512(t testing.TB) tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.Load(filepath.Join(dataDir(t), "models", "tok512.bin"), 512)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tinySpec speaks tok512's vocabulary with a small, fast shape.
func tinySpec(maxSeq int) *spec.Spec {
	return &spec.Spec{Name: "tiny", Vocab: 512, Dim: 32, Layers: 2, Heads: 4, KVHeads: 2, FFNDim: 48, MaxSeq: maxSeq,
		NormEps: 1e-5, RopeTheta: 10000, TieEmbeddings: true, Objective: model.ObjectiveCausal}
}

// randomModel draws weights large enough that the next-token distribution
// is far from uniform, so greedy and sampled text vary with the prompt.
func randomModel(t testing.TB, s *spec.Spec, seed uint64) model.Model {
	t.Helper()
	p := model.NewParams(s)
	r := rand.New(rand.NewPCG(seed, 1))
	for _, ts := range p.Tensors {
		d := p.T(ts.Name)
		for i := range d {
			if len(ts.Shape) == 1 {
				d[i] = 1
			} else {
				d[i] = float32(r.NormFloat64() * 0.15)
			}
		}
	}
	m, err := generic.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func stories(t testing.TB) model.Model {
	t.Helper()
	p, f, err := checkpoint.Load(filepath.Join(dataDir(t), "models", "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if f != nil {
		t.Cleanup(func() { f.Close() })
	}
	m, err := generic.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// testServer is a Server behind httptest with an OpenAI client.
type testServer struct {
	*Server
	URL    string
	client openai.Client
	hs     *httptest.Server
}

func testConfig() Config {
	return Config{
		ModelName: "tiny", Slots: 4, MaxQueue: 16, MaxBody: 1 << 16, Batch: true,
		Defaults: Defaults{Temperature: 1, TopP: 0.9, MaxTokens: 32},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func startServer(t testing.TB, cfg Config, m model.Model, tok tokenizer.Tokenizer) *testServer {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if m != nil {
		if err := s.Ready(m, tok, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		s.Close()
	})
	ts := &testServer{Server: s, URL: hs.URL, hs: hs}
	opts := []option.RequestOption{option.WithBaseURL(hs.URL + "/v1/"), option.WithMaxRetries(0)}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	} else {
		opts = append(opts, option.WithAPIKey("unused"))
	}
	ts.client = openai.NewClient(opts...)
	return ts
}

// post sends a raw JSON body and returns the status, headers and body.
func (ts *testServer) post(t testing.TB, path, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), "POST", ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func (ts *testServer) get(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
