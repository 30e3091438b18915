// Command loadgen measures the server under concurrent streaming clients:
// aggregate generated tokens/s, time to first token and time per output
// token, at several client counts, with batched decoding on and off.
//
// By default it serves a random-weight model of the 15M shape (dim 288,
// 6 layers, 6 heads, ffn 768, vocab 32000, seq 256) in process with the
// generic model; --url points it at running servers instead (one per
// comma-separated URL, named by --batch), e.g. a compiled binary's serve with
// batching on and another with it off, as `make bench-serve` does.
//
//	go run ./runtime/server/loadgen --tokenizer /work/shared/data/models/llama2c_tokenizer32000.bin
//	go run ./runtime/server/loadgen --url http://127.0.0.1:18089,http://127.0.0.1:18090 --batch on,off
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modelc/modelc/runtime/cli"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/server"
	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

type options struct {
	url, tokPath, modes, clients string
	slots, maxTokens, perClient  int
	minRequests                  int
	temperature                  float64
	topK                         int
	wait                         time.Duration
}

func run() error {
	var o options
	flag.StringVar(&o.url, "url", "", "servers to load, comma-separated (default: serve the 15M shape in process); CPU s is then the server's")
	flag.StringVar(&o.tokPath, "tokenizer", "", "32000-token vocabulary for the in-process server (llama2c_tokenizer32000.bin)")
	flag.StringVar(&o.modes, "batch", "on,off", "in-process: batched decoding modes to measure; with --url, the servers' names (one per URL)")
	flag.StringVar(&o.clients, "clients", "1,4,16,64", "concurrent client counts")
	flag.IntVar(&o.slots, "slots", 64, "in-process: slots")
	flag.IntVar(&o.maxTokens, "max-tokens", 64, "tokens per request")
	flag.IntVar(&o.perClient, "requests", 2, "requests per client")
	flag.IntVar(&o.minRequests, "min-requests", 8, "at least this many requests per level (for the percentiles)")
	flag.Float64Var(&o.temperature, "temperature", 0.8, "sampling temperature")
	flag.IntVar(&o.topK, "top-k", 40, "sampling top-k")
	flag.DurationVar(&o.wait, "wait", 0, "with --url: wait up to this long for every server's /health to answer 200")
	flag.Parse()

	levels, err := ints(o.clients)
	if err != nil {
		return fmt.Errorf("--clients: %w", err)
	}
	fmt.Printf("max_tokens %d, temperature %g, top_k %d, %d requests per client (at least %d per level), GOMAXPROCS %d, %s/%s\n\n",
		o.maxTokens, o.temperature, o.topK, o.perClient, o.minRequests, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)
	if o.url != "" {
		fmt.Println("CPU s: the server process's user+system time during the level (process_cpu_seconds_total in its /metrics)")
		fmt.Println()
	}
	fmt.Println("| batch | clients | requests | tokens | seconds | tokens/s | × 1 client | CPU s | tokens/CPU s | TTFT p50 ms | TTFT p99 ms | TPOT p50 ms | TPOT p99 ms |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	if o.url != "" {
		// Servers of their own (e.g. one with --batch on, one with off):
		// each level runs against each in turn, as in process.
		urls := strings.Split(o.url, ",")
		names := strings.Split(o.modes, ",")
		var targets []target
		for i, u := range urls {
			name := fmt.Sprintf("server %d", i+1)
			if len(names) == len(urls) {
				name = names[i]
			}
			targets = append(targets, target{url: strings.TrimRight(u, "/"), name: name, remote: true})
		}
		return measureLevels(o, targets, levels)
	}
	if o.tokPath == "" {
		return errors.New("--tokenizer FILE is required to serve in process")
	}
	s := shape15M()
	tok, err := tokenizer.Load(o.tokPath, s.Vocab)
	if err != nil {
		return err
	}
	m, err := generic.New(cli.RandomParams(s, 1))
	if err != nil {
		return err
	}
	// Both servers stay up and each level runs once per mode, one after
	// the other, so that both see the same conditions on a shared machine.
	var targets []target
	for _, mode := range strings.Split(o.modes, ",") {
		url, stop, err := serve(m, tok, o.slots, mode == "on")
		if err != nil {
			return err
		}
		defer stop()
		targets = append(targets, target{url: url, name: mode})
	}
	return measureLevels(o, targets, levels)
}

type target struct {
	url, name string
	remote    bool    // CPU time is the server process's, from its /metrics
	base      float64 // tokens/s at the first level
}

func measureLevels(o options, targets []target, levels []int) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	for _, t := range targets {
		if err := waitReady(client, t.url, o.wait); err != nil {
			return err
		}
	}
	for _, t := range targets {
		// Warm up: caches, page faults, the first allocation of every buffer.
		if _, err := request(client, t.url, o, 0); err != nil {
			return err
		}
	}
	for _, c := range levels {
		for i := range targets {
			if err := measure(o, client, &targets[i], c); err != nil {
				return err
			}
		}
	}
	return nil
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// waitReady polls url's /health until it answers 200 or wait has passed
// (no wait: one try is not even made; the first request will tell).
func waitReady(client *http.Client, url string, wait time.Duration) error {
	if wait <= 0 {
		return nil
	}
	deadline := time.Now().Add(wait)
	for {
		resp, err := client.Get(url + "/health")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			return fmt.Errorf("%s not ready after %v: %w", url, wait, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// serverCPU reads process_cpu_seconds_total from the server's /metrics.
func serverCPU(client *http.Client, url string) (float64, error) {
	resp, err := client.Get(url + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_cpu_seconds_total "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s/metrics has no process_cpu_seconds_total", url)
}

func shape15M() *spec.Spec {
	return &spec.Spec{Name: "llama15m", Vocab: 32000, Dim: 288, Layers: 6, Heads: 6, KVHeads: 6, FFNDim: 768, MaxSeq: 256,
		NormEps: 1e-5, RopeTheta: 10000, TieEmbeddings: true, Objective: model.ObjectiveCausal}
}

func serve(m model.Model, tok tokenizer.Tokenizer, slots int, batch bool) (string, func(), error) {
	srv, err := server.New(server.Config{
		ModelName: "llama15m", Slots: slots, MaxQueue: 256, MaxBody: 1 << 20, Batch: batch,
		Defaults: server.Defaults{Temperature: 1, TopP: 0.9, MaxTokens: 64},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return "", nil, err
	}
	if err := srv.Ready(m, tok, nil, nil); err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	return "http://" + ln.Addr().String(), func() { hs.Close(); srv.Close() }, nil
}

type sampleT struct {
	ttft, tpot time.Duration
	tokens     int
}

func measure(o options, client *http.Client, t *target, c int) error {
	per := max(o.perClient, (o.minRequests+c-1)/c)
	var (
		mu      sync.Mutex
		samples []sampleT
		firstE  error
		wg      sync.WaitGroup
	)
	cpuOf := func() (float64, error) { return cpuSeconds(), nil }
	if t.remote {
		cpuOf = func() (float64, error) { return serverCPU(client, t.url) }
	}
	cpu0, err := cpuOf()
	if err != nil {
		return err
	}
	t0 := time.Now()
	for i := range c {
		wg.Go(func() {
			for r := range per {
				s, err := request(client, t.url, o, i*per+r)
				mu.Lock()
				if err != nil && firstE == nil {
					firstE = err
				}
				samples = append(samples, s)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	wall := time.Since(t0).Seconds()
	if firstE != nil {
		return firstE
	}
	cpu1, err := cpuOf()
	if err != nil {
		return err
	}
	cpu := cpu1 - cpu0
	tokens := 0
	var ttft, tpot []time.Duration
	for _, s := range samples {
		tokens += s.tokens
		ttft = append(ttft, s.ttft)
		tpot = append(tpot, s.tpot)
	}
	rate := float64(tokens) / wall
	if t.base == 0 {
		t.base = rate
	}
	fmt.Printf("| %s | %d | %d | %d | %.1f | %.0f | %.2f | %.1f | %.0f | %.0f | %.0f | %.1f | %.1f |\n",
		t.name, c, len(samples), tokens, wall, rate, rate/t.base, cpu, float64(tokens)/cpu,
		ms(pct(ttft, 50)), ms(pct(ttft, 99)), ms(pct(tpot, 50)), ms(pct(tpot, 99)))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// pct is the p-th percentile (nearest rank).
func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(k, 0), len(s)-1)]
}

var prompts = []string{
	"Once upon a time, there was a little girl who",
	"The old man walked down to the river and",
	"In a small village by the sea, the children",
	"Tom found a shiny red ball in the garden. He",
}

// request streams one completion; TTFT is the time to the first text,
// TPOT the time per token after it.
func request(client *http.Client, url string, o options, i int) (sampleT, error) {
	body, _ := json.Marshal(map[string]any{
		// A distinct start defeats the server's prefix reuse: every prompt is
		// prefilled in full, as unrelated requests would be.
		"prompt": fmt.Sprintf("Story %d. %s", i, prompts[i%len(prompts)]), "max_tokens": o.maxTokens, "temperature": o.temperature, "top_k": o.topK,
		"seed": i + 1, "stream": true, "stream_options": map[string]bool{"include_usage": true},
	})
	t0 := time.Now()
	req, _ := http.NewRequestWithContext(context.Background(), "POST", url+"/v1/completions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return sampleT{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return sampleT{}, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	var first, last time.Time
	tokens := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if line == "[DONE]" {
			break
		}
		var chunk struct {
			Choices []struct {
				Text string `json:"text"`
			} `json:"choices"`
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &chunk); err != nil {
			return sampleT{}, err
		}
		if chunk.Error != nil {
			return sampleT{}, fmt.Errorf("stream error: %s", chunk.Error)
		}
		if chunk.Usage != nil {
			tokens = chunk.Usage.CompletionTokens
		}
		if len(chunk.Choices) > 0 && chunk.Choices[0].Text != "" {
			if first.IsZero() {
				first = time.Now()
			}
			last = time.Now()
		}
	}
	if err := sc.Err(); err != nil {
		return sampleT{}, err
	}
	if first.IsZero() {
		first, last = time.Now(), time.Now()
	}
	s := sampleT{ttft: first.Sub(t0), tokens: tokens}
	if tokens > 1 {
		s.tpot = last.Sub(first) / time.Duration(tokens-1)
	}
	return s, nil
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}
