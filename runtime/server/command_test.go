package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/spf13/pflag"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

func storiesSpec(t testing.TB) *spec.Spec {
	t.Helper()
	p, f, err := checkpoint.Load(filepath.Join(dataDir(t), "models", "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if f != nil {
		f.Close()
	}
	s := p.Spec
	return &s
}

func TestHelpListsEnv(t *testing.T) {
	cmd := Command("tiny", tinySpec(64), generic.New)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	for _, want := range []string{"MODELC_ADDR", "MODELC_SLOTS", "MODELC_MAX_QUEUE", "MODELC_API_KEY", "MODELC_MAX_BODY",
		"MODELC_GRACE", "MODELC_TEMPERATURE", "MODELC_TOP_P", "MODELC_TOP_K", "MODELC_MAX_TOKENS", "MODELC_BATCH",
		"--addr string", "[$MODELC_ADDR]", "/v1/chat/completions", "Retry-After"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	// Every flag has its variable in the list.
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" && !strings.Contains(envList(), envName(f.Name)) {
			t.Errorf("flag --%s: %s missing from the help's list", f.Name, envName(f.Name))
		}
	})
}

func TestApplyEnv(t *testing.T) {
	cmd := Command("tiny", tinySpec(64), generic.New)
	fl := cmd.Flags()
	if err := fl.Parse([]string{"--slots", "7"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MODELC_SLOTS": "3", "MODELC_ADDR": "0.0.0.0:9", "MODELC_GRACE": "3s", "MODELC_BATCH": "off", "MODELC_TOP_P": "0.5"}
	if err := applyEnv(fl, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"slots": "7", "addr": "0.0.0.0:9", "grace": "3s", "batch": "off", "top-p": "0.5", "max-queue": "64"} {
		if got := fl.Lookup(name).Value.String(); got != want {
			t.Errorf("--%s = %s, want %s", name, got, want)
		}
	}
	env = map[string]string{"MODELC_MAX_QUEUE": "lots"}
	err := applyEnv(fl, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil || !strings.Contains(err.Error(), "$MODELC_MAX_QUEUE") {
		t.Errorf("bad variable: %v", err)
	}
}

func TestCommandErrors(t *testing.T) {
	d := dataDir(t)
	stories := filepath.Join(d, "models", "stories260K.bin")
	busy := listen(t)
	defer busy.Close()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{}, "--model FILE is required"},
		{[]string{"--model", stories, "--batch", "maybe"}, "--batch: must be on or off"},
		{[]string{"--model", stories, "--slots", "0"}, "--slots: must be between 1 and 1024, got 0"},
		{[]string{"--model", stories, "--temperature", "-1"}, "--temperature"},
		{[]string{"--model", stories, "--chat-template", "nope"}, "--chat-template"},
		{[]string{"--model", stories, "--log-level", "loud"}, "--log-level"},
		{[]string{"--model", stories, "--addr", busy.Addr().String()}, "--addr"},
		{[]string{"--model", filepath.Join(t.TempDir(), "none.bin"), "--addr", busy.Addr().String()}, "--model: stat"},
		{[]string{"--model", stories, "--rag-store", filepath.Join(t.TempDir(), "none.db"), "--addr", busy.Addr().String()}, "--rag-store: stat"},
		{[]string{"--model", stories, "--addr", "127.0.0.1:0"}, "pass --tokenizer"},
		{[]string{"--model", stories, "--tokenizer", filepath.Join(d, "models", "llama2c_tokenizer32000.bin"), "--addr", "127.0.0.1:0"}, "32000 tokens"},
	}
	for _, c := range cases {
		cmd := Command("stories", storiesSpec(t), generic.New)
		cmd.SetArgs(append([]string{"--log-level=error"}, c.args...))
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
	// Slots whose KV caches would take more than half the memory are refused
	// before anything is allocated (4 GiB a slot here).
	big := &spec.Spec{Name: "big", Vocab: 32000, Dim: 4096, Layers: 32, Heads: 32, KVHeads: 32, FFNDim: 11008, MaxSeq: 4096}
	big.SetDefaults()
	cmd0 := Command("big", big, generic.New)
	cmd0.SetArgs([]string{"--model", stories, "--slots", "1024", "--addr", busy.Addr().String(), "--log-level=error"})
	cmd0.SetErr(io.Discard)
	if err := cmd0.Execute(); err == nil || !strings.Contains(err.Error(), "--slots 1024 needs 4.0 TiB of KV cache (4.0 GiB a slot)") {
		t.Errorf("slots beyond memory: %v", err)
	}
	// A compiled shape that differs from the file's is refused without --generic.
	cmd := Command("tiny", tinySpec(64), generic.New)
	cmd.SetArgs([]string{"--model", stories, "--tokenizer", filepath.Join(d, "models", "tok512.bin"), "--addr", "127.0.0.1:0", "--log-level=error"})
	cmd.SetErr(io.Discard)
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "--generic") {
		t.Errorf("shape mismatch: %v", err)
	}
}

// TestServeInProcess: the command serves the real model until its context
// ends, then returns nil; the environment configures it.
func TestServeInProcess(t *testing.T) {
	d := dataDir(t)
	addr := make(chan string, 1)
	o := &serveOptions{name: "stories", spec: storiesSpec(t), factory: generic.New, onListen: func(a string) { addr <- a }}
	var threads []int
	o.setters = []func(int){func(n int) { threads = append(threads, n) }}
	cmd := command(o)
	cmd.SetArgs([]string{"--model", filepath.Join(d, "models", "stories260K.bin"), "--tokenizer", filepath.Join(d, "models", "tok512.bin"),
		"--addr", "127.0.0.1:0", "--threads", "3", "--log-level", "error"})
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("MODELC_API_KEY", "k")
	t.Setenv("MODELC_SLOTS", "2")
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
	c := openai.NewClient(option.WithBaseURL("http://"+a+"/v1/"), option.WithAPIKey("k"), option.WithMaxRetries(0))
	waitFor(t, func() bool {
		resp, err := http.Get("http://" + a + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	resp, err := c.Completions.New(ctx, openai.CompletionNewParams{
		Model: "stories", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
		MaxTokens: openai.Int(20), Temperature: openai.Float(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Usage.CompletionTokens != 20 || !strings.Contains(resp.Choices[0].Text, " ") {
		t.Errorf("completion %+v", resp)
	}
	body, _ := http.Get("http://" + a + "/health")
	h, _ := io.ReadAll(body.Body)
	body.Body.Close()
	if !strings.Contains(string(h), `"slots":2`) {
		t.Errorf("MODELC_SLOTS=2 not applied: %s", h)
	}
	if len(threads) != 1 || threads[0] != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Errorf("thread setters saw %v, GOMAXPROCS %d", threads, runtime.GOMAXPROCS(0))
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

// The shutdown tests run the command in a child process (this test binary)
// and send it SIGTERM.
const helperEnv = "MODELC_SERVER_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

// helperMain serves stories260K slowed to 5 ms per decode step.
func helperMain() int {
	args := strings.Fields(os.Getenv(helperEnv + "_ARGS"))
	p, f, err := checkpoint.Load(args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if f != nil {
		f.Close()
	}
	sp := p.Spec
	slow := func(p *model.Params) (model.Model, error) {
		m, err := generic.New(p)
		if err != nil {
			return nil, err
		}
		return &countingModel{m: m, b: m.(model.Batcher), delay: 5 * time.Millisecond}, nil
	}
	cmd := Command("stories", &sp, slow)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	return 0
}

type child struct {
	cmd    *exec.Cmd
	addr   string
	stderr *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startChild(t *testing.T, grace string) *child {
	d := dataDir(t)
	args := []string{"--model", filepath.Join(d, "models", "stories260K.bin"), "--tokenizer", filepath.Join(d, "models", "tok512.bin"),
		"--addr", "127.0.0.1:0", "--grace", grace, "--slots", "2"}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperEnv+"_ARGS="+strings.Join(args, " "))
	pr, pw := io.Pipe()
	sb := &syncBuffer{}
	cmd.Stderr = io.MultiWriter(pw, sb)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stderr: sb}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if _, a, ok := strings.Cut(sc.Text(), "addr=http://"); ok {
				found <- strings.Fields(a)[0]
			}
		}
	}()
	select {
	case c.addr = <-found:
	case <-time.After(20 * time.Second):
		t.Fatalf("child did not start: %s", sb.String())
	}
	waitFor(t, func() bool {
		resp, err := http.Get("http://" + c.addr + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return c
}

func (c *child) wait(t *testing.T) (int, time.Duration) {
	t0 := time.Now()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("child did not exit: %s", c.stderr.String())
	}
	return c.cmd.ProcessState.ExitCode(), time.Since(t0)
}

// streamAfterTerm starts a streamed completion, sends SIGTERM once text
// arrives, and returns the text, finish reason and stream error.
func streamAfterTerm(t *testing.T, c *child, maxTokens int) (string, string, error) {
	cl := openai.NewClient(option.WithBaseURL("http://"+c.addr+"/v1/"), option.WithAPIKey("x"), option.WithMaxRetries(0))
	p := openai.CompletionNewParams{Model: "stories", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
		MaxTokens: openai.Int(int64(maxTokens)), Temperature: openai.Float(0)}
	s := cl.Completions.NewStreaming(context.Background(), p)
	var text, finish string
	sent := false
	for s.Next() {
		ch := s.Current()
		if len(ch.Choices) > 0 {
			text += ch.Choices[0].Text
			if ch.Choices[0].FinishReason != "" {
				finish = string(ch.Choices[0].FinishReason)
			}
		}
		if !sent && text != "" {
			if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			sent = true
			// New connections are refused once the listener closes.
			waitFor(t, func() bool {
				conn, err := net.DialTimeout("tcp", c.addr, time.Second)
				if err != nil {
					return true
				}
				conn.Close()
				return false
			})
		}
	}
	return text, finish, s.Err()
}

// TestSIGTERMFinishes: a request running when SIGTERM arrives completes
// within the grace period; the process exits 0.
func TestSIGTERMFinishes(t *testing.T) {
	c := startChild(t, "10s")
	text, finish, err := streamAfterTerm(t, c, 60) // 60 steps × 5 ms
	if err != nil || finish != "length" || len(text) < 60 {
		t.Errorf("in-flight request: %q finish %q error %v", text, finish, err)
	}
	if code, _ := c.wait(t); code != 0 {
		t.Errorf("exit code %d: %s", code, c.stderr.String())
	}
	if !strings.Contains(c.stderr.String(), "stopped") {
		t.Errorf("log: %s", c.stderr.String())
	}
}

// TestSIGTERMGraceExpires: a request that would outlast the grace period
// is cancelled with an error event; the process still exits 0, promptly.
func TestSIGTERMGraceExpires(t *testing.T) {
	c := startChild(t, "300ms")
	t0 := time.Now()
	text, finish, err := streamAfterTerm(t, c, 500) // 500 steps × 5 ms
	if err == nil || !strings.Contains(err.Error(), "shutting down") || finish != "" || text == "" {
		t.Errorf("cancelled request: %q finish %q error %v", text, finish, err)
	}
	code, _ := c.wait(t)
	if code != 0 {
		t.Errorf("exit code %d: %s", code, c.stderr.String())
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("shutdown took %v with a 300 ms grace", d)
	}
	if !strings.Contains(c.stderr.String(), "cancelling requests") {
		t.Errorf("log: %s", c.stderr.String())
	}
}

// TestServeGGUF: a GGUF model brings its tokenizer and chat template; the
// chat prompt is rendered with that template.
func TestServeGGUF(t *testing.T) {
	d := dataDir(t)
	p, _, err := checkpoint.Load(filepath.Join(d, "models", "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	tok := tok512(t)
	meta, ok := tok.(interface{ GGUFMetadata() []gguf.KV })
	if !ok {
		t.Fatalf("%T has no GGUF metadata", tok)
	}
	tmpl, err := tokenizer.ChatTemplate("llama2")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "stories.gguf")
	if err := checkpoint.SaveGGUF(path, p, append(meta.GGUFMetadata(), gguf.KV{Key: gguf.KeyChatTemplate, Value: tmpl.Jinja()}), false); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	o := &serveOptions{name: "stories", spec: storiesSpec(t), factory: generic.New, onListen: func(a string) { addr <- a }}
	cmd := command(o)
	cmd.SetArgs([]string{"--model", path, "--addr", "127.0.0.1:0", "--log-level", "error", "--model-name", "st"})
	cmd.SetErr(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
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
	msgs := []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Tell stories."), openai.UserMessage("A story about a cat")}
	resp, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "st", Messages: msgs, MaxTokens: openai.Int(8), Temperature: openai.Float(0)})
	if err != nil {
		t.Fatal(err)
	}
	chat, err := tmpl.Render([]tokenizer.Message{{Role: "system", Content: "Tell stories."}, {Role: "user", Content: "A story about a cat"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := tokenizer.EncodeChat(tok, chat, true)
	if err != nil {
		t.Fatal(err)
	}
	if int(resp.Usage.PromptTokens) != len(want) || resp.Model != "st" {
		t.Errorf("prompt tokens %d, the llama2 rendering has %d; model %q", resp.Usage.PromptTokens, len(want), resp.Model)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
