package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	dto "github.com/prometheus/client_model/go"

	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/tokenizer"
)

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func cancelledCount(t testing.TB, s *Server) float64 {
	var m dto.Metric
	if err := s.metrics.sequences.WithLabelValues(finishCancelled).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

type loadReq struct {
	prompt    string
	maxTokens int
	seed      int64
	chat      bool
}

type loadResult struct {
	text         string
	finish       string
	completion   int64
	disconnected bool
}

func loadRequests(n int) []loadReq {
	words := []string{"Once upon a time", "The dog", "A little girl named Lily", "He", "They went to the park and", "Sun"}
	reqs := make([]loadReq, n)
	for i := range reqs {
		reqs[i] = loadReq{
			prompt:    fmt.Sprintf("%s %d", words[i%len(words)], i),
			maxTokens: 4 + (i*37)%57, // 4 … 60
			seed:      int64(1000 + i),
			chat:      i%4 == 3,
		}
	}
	return reqs
}

// run sends r (streaming) and returns what arrived; with cut set, it hangs
// up after the first piece of text.
func (r loadReq) run(ctx context.Context, c openai.Client, cut bool) (loadResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var res loadResult
	usage := openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	if r.chat {
		s := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
			Model: "tiny", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(r.prompt)},
			MaxTokens: openai.Int(int64(r.maxTokens)), Temperature: openai.Float(0.9), Seed: openai.Int(r.seed), StreamOptions: usage,
		})
		defer s.Close()
		for s.Next() {
			ch := s.Current()
			if len(ch.Choices) == 0 {
				res.completion = ch.Usage.CompletionTokens
				continue
			}
			res.text += ch.Choices[0].Delta.Content
			if ch.Choices[0].FinishReason != "" {
				res.finish = ch.Choices[0].FinishReason
			}
			if cut && res.text != "" {
				res.disconnected = true
				return res, nil
			}
		}
		return res, s.Err()
	}
	p := completionParams(r.prompt, r.maxTokens, 0.9, r.seed)
	p.StreamOptions = usage
	s := c.Completions.NewStreaming(ctx, p)
	defer s.Close()
	for s.Next() {
		ch := s.Current()
		if len(ch.Choices) == 0 {
			res.completion = ch.Usage.CompletionTokens
			continue
		}
		res.text += ch.Choices[0].Text
		if ch.Choices[0].FinishReason != "" {
			res.finish = string(ch.Choices[0].FinishReason)
		}
		if cut && res.text != "" {
			res.disconnected = true
			return res, nil
		}
	}
	return res, s.Err()
}

func heapMB() float64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

// TestConcurrentClients: 64 streaming clients with mixed lengths, every
// fifth hanging up after its first text, against 8 batched slots. Every
// finished response equals the one a single-slot unbatched server gives
// alone; afterwards no slot, queue entry or goroutine is left, and a second
// wave does not grow the heap.
func TestConcurrentClients(t *testing.T) {
	tok := tok512(t)
	m := randomModel(t, tinySpec(128), 11)
	reqs := loadRequests(64)

	// The reference: one request at a time, one slot, no batching.
	refCfg := testConfig()
	refCfg.Slots, refCfg.Batch = 1, false
	ref := startServer(t, refCfg, m, tok)
	want := make([]loadResult, len(reqs))
	for i, r := range reqs {
		res, err := r.run(context.Background(), ref.client, false)
		if err != nil {
			t.Fatal(err)
		}
		if res.finish == "" || res.completion == 0 {
			t.Fatalf("reference %d: %+v", i, res)
		}
		want[i] = res
	}

	cm := &countingModel{m: m, b: m.(model.Batcher), delay: time.Millisecond}
	// Prompts inside the batched steps (two waves: the heap must not grow),
	// then prompts by Session.Prefill beside one-token batches.
	t.Run("spans", func(t *testing.T) {
		concurrentWaves(t, &spanCountingModel{countingModel: cm, s: m.(SpanBatcher)}, cm, tok, reqs, want, 2)
	})
	cm2 := &countingModel{m: m, b: m.(model.Batcher), delay: time.Millisecond}
	t.Run("batch", func(t *testing.T) { concurrentWaves(t, cm2, cm2, tok, reqs, want, 1) })
}

func concurrentWaves(t *testing.T, m model.Model, cm *countingModel, tok tokenizer.Tokenizer, reqs []loadReq, want []loadResult, waves int) {
	// The generic model's worker pool lives as long as the process: start
	// it before counting goroutines.
	warm := cm.m.NewSession()
	cm.m.(SpanBatcher).ForwardSpans([]model.Session{warm}, [][]int{make([]int, 64)}, []int{0})
	g0 := runtime.NumGoroutine()
	heap0 := heapMB()
	cfg := testConfig()
	cfg.Slots, cfg.MaxQueue, cfg.PrefillChunk = 8, 64, 16
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(m, tok, nil, nil); err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s.Handler()}
	ln := listen(t)
	go hs.Serve(ln)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	client := openai.NewClient(option.WithBaseURL("http://"+ln.Addr().String()+"/v1/"), option.WithAPIKey("x"),
		option.WithMaxRetries(0), option.WithHTTPClient(&http.Client{Transport: tr}))

	var heaps []float64
	for wave := range waves {
		var wg sync.WaitGroup
		got := make([]loadResult, len(reqs))
		errs := make([]error, len(reqs))
		for i, r := range reqs {
			wg.Go(func() { got[i], errs[i] = r.run(context.Background(), client, i%5 == 2) })
		}
		wg.Wait()
		cut := 0
		for i := range reqs {
			if errs[i] != nil {
				t.Errorf("wave %d client %d: %v", wave, i, errs[i])
				continue
			}
			if got[i].disconnected {
				cut++
				if !strings.HasPrefix(want[i].text, got[i].text) {
					t.Errorf("client %d hung up after %q, not a prefix of %q", i, got[i].text, want[i].text)
				}
				continue
			}
			if got[i] != want[i] {
				t.Errorf("wave %d client %d: got %+v\nwant %+v", wave, i, got[i], want[i])
			}
		}
		if cut == 0 {
			t.Error("no client hung up")
		}
		waitFor(t, func() bool { b, q := s.SlotsInUse(); return b == 0 && q == 0 })
		heaps = append(heaps, heapMB())
	}
	if mb := cm.maxBatch.Load(); mb < 4 {
		t.Errorf("largest decode batch %d: requests were not decoded together", mb)
	}
	if f := cm.forwards.Load(); f != 0 {
		t.Errorf("%d one-token Forward calls with batching on", f)
	}
	if _, spans := m.(SpanBatcher); (cm.prefills.Load() == 0) != spans {
		t.Errorf("%d Session.Prefill calls (model runs spans: %v)", cm.prefills.Load(), spans)
	}
	if heaps[len(heaps)-1] > heaps[0]+8 || heaps[0] > heap0+64 {
		t.Errorf("heap %.1f MB before, %v MB after the waves", heap0, heaps)
	}
	if c := cancelledCount(t, s); c == 0 {
		t.Error("no sequence was cancelled by a hang-up")
	}
	hs.Close()
	tr.CloseIdleConnections()
	s.Close()
	for i := 0; runtime.NumGoroutine() > g0; i++ {
		if i == 400 {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", g0, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		sleep()
	}
}

// TestDisconnectFreesSlot: a client that gives up on a non-streamed request
// cancels its generation; the slot is free long before max_tokens.
func TestDisconnectFreesSlot(t *testing.T) {
	m := randomModel(t, tinySpec(128), 12)
	cm := &countingModel{m: m, b: m.(model.Batcher), delay: 20 * time.Millisecond}
	cfg := testConfig()
	cfg.Slots = 2
	ts := startServer(t, cfg, cm, tok512(t))
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	p := completionParams("x", 100, 0.9, 1) // 100 steps × 20 ms if never cancelled
	_, err := ts.client.Completions.New(ctx, p)
	if err == nil {
		t.Fatal("request finished despite the client's deadline")
	}
	waitFor(t, func() bool { b, q := ts.SlotsInUse(); return b == 0 && q == 0 })
	if d := time.Since(t0); d > time.Second {
		t.Errorf("slot freed after %v", d)
	}
	if c := cancelledCount(t, ts.Server); c != 1 {
		t.Errorf("cancelled sequences: %v, want 1", c)
	}
	if b := cm.batches.Load(); b >= 100 {
		t.Errorf("%d decode steps ran for a request cancelled early", b)
	}
}
