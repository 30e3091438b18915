package generate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeTok has ids 0 <unk>, 1 BOS, 2 EOS, 3..5 raw bytes <0x07>, <0x0A>,
// <0xC3>, then words; Piece drops a leading space after BOS like run.c.
type fakeTok struct {
	vocab   []string
	prompts map[string][]int
	failOn  int // Piece fails for this id when > 0
}

func newFakeTok() *fakeTok {
	return &fakeTok{
		vocab: []string{"<unk>", "<s>", "</s>", "<0x07>", "<0x0A>", "<0xC3>", " Once", " upon", " a", " time", ",", " there", " was", "é", " "},
		prompts: map[string][]int{
			"":                  {1},
			"Once":              {1, 6},
			"Once upon a time":  {1, 6, 7, 8, 9},
			"with bos inside":   {1, 6, 1, 7},
			"out of vocabulary": {1, 99},
		},
	}
}

func (f *fakeTok) Encode(text string, bos, eos bool) ([]int, error) {
	ids, ok := f.prompts[text]
	if !ok {
		return nil, fmt.Errorf("fake tokenizer: no encoding for %q", text)
	}
	if !bos || eos {
		return nil, errors.New("fake tokenizer: generate must ask for BOS and no EOS")
	}
	return slices.Clone(ids), nil
}

func (f *fakeTok) Piece(prev, next int) ([]byte, error) {
	if next < 0 || next >= len(f.vocab) || (f.failOn > 0 && next == f.failOn) {
		return nil, fmt.Errorf("fake tokenizer: no token %d", next)
	}
	s := f.vocab[next]
	if prev == 1 && strings.HasPrefix(s, " ") {
		s = s[1:]
	}
	var b byte
	if _, err := fmt.Sscanf(s, "<0x%02X>", &b); err == nil && len(s) == 6 {
		return []byte{b}, nil
	}
	return []byte(s), nil
}

func (f *fakeTok) Decode(ids []int) (string, error) { return "", errors.New("unused") }
func (f *fakeTok) VocabSize() int                   { return len(f.vocab) }
func (f *fakeTok) BOS() int                         { return 1 }
func (f *fakeTok) EOS() int                         { return 2 }

// fakeSession returns, at position p, logits whose argmax is script[p]
// (token 0 past the end of the script), and records every call.
type fakeSession struct {
	vocab  int
	script []int
	calls  []string
	seen   []int // token at each position, -1 when never run
}

func newFakeSession(vocab int, script ...int) *fakeSession {
	return &fakeSession{vocab: vocab, script: script}
}

func (s *fakeSession) logits(pos int) []float32 {
	l := make([]float32, s.vocab)
	if pos < len(s.script) {
		l[s.script[pos]] = 1
	}
	return l
}

func (s *fakeSession) run(token, pos int) {
	for len(s.seen) <= pos {
		s.seen = append(s.seen, -1)
	}
	if s.seen[pos] != -1 {
		panic(fmt.Sprintf("position %d run twice", pos))
	}
	s.seen[pos] = token
}

func (s *fakeSession) Forward(token, pos int) []float32 {
	s.calls = append(s.calls, fmt.Sprintf("F%d@%d", token, pos))
	s.run(token, pos)
	return s.logits(pos)
}

func (s *fakeSession) Prefill(tokens []int, pos int) []float32 {
	s.calls = append(s.calls, fmt.Sprintf("P%v@%d", tokens, pos))
	for i, t := range tokens {
		s.run(t, pos+i)
	}
	return s.logits(pos + len(tokens) - 1)
}

type argmax struct{}

func (argmax) Sample(l []float32) int {
	best := 0
	for i, v := range l {
		if v > l[best] {
			best = i
		}
	}
	return best
}

// runC is run.c's generate() written out plainly: one forward per position,
// forced prompt tokens, sampled ones after, stop at BOS, print through
// safe_printf. (This fake adds the EOS stop the runtime also makes.)
func runC(tok *fakeTok, script []int, vocab int, prompt string, steps, maxSeq int) (string, []int) {
	ids, _ := tok.Encode(prompt, true, false)
	if steps == 0 || steps > maxSeq {
		steps = maxSeq
	}
	sess := newFakeSession(vocab, script...)
	var out bytes.Buffer
	token := ids[0]
	for pos := 0; pos < steps; {
		logits := sess.Forward(token, pos)
		var next int
		if pos < len(ids)-1 {
			next = ids[pos+1]
		} else {
			next = argmax{}.Sample(logits)
			if next == 2 {
				break
			}
		}
		pos++
		if next == 1 {
			break
		}
		p, _ := tok.Piece(token, next)
		if Printable(p) {
			out.Write(p)
		}
		token = next
	}
	out.WriteByte('\n')
	return out.String(), sess.seen
}

func TestGenerateBasic(t *testing.T) {
	tok := newFakeTok()
	// Positions 0..4 hold BOS Once upon a time; the logits at 4 pick ",".
	sess := newFakeSession(tok.VocabSize(), 0, 0, 0, 0, 10, 11, 12, 8, 9)
	var out bytes.Buffer
	st, err := Generate(context.Background(), sess, tok, argmax{}, Options{Prompt: "Once upon a time", Steps: 8, MaxSeq: 32}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "Once upon a time, there was a\n"; got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
	wantCalls := []string{"P[1 6 7 8 9]@0", "F10@5", "F11@6", "F12@7"}
	if !slices.Equal(sess.calls, wantCalls) {
		t.Fatalf("calls %v, want %v", sess.calls, wantCalls)
	}
	if st.PromptTokens != 5 || st.DecodeTokens != 4 {
		t.Fatalf("stats %+v, want 5 prompt and 4 decode tokens", st)
	}
}

// TestGenerateMatchesRunC compares against the plain per-token loop over many
// prompt lengths, step counts and scripts with BOS, EOS and byte tokens.
func TestGenerateMatchesRunC(t *testing.T) {
	tok := newFakeTok()
	v := tok.VocabSize()
	scripts := [][]int{
		{6, 7, 8, 9, 10, 11, 12, 8, 9, 10, 11, 12, 13, 14, 6},
		{6, 7, 8, 9, 10, 11, 2, 8, 9},  // EOS
		{6, 7, 8, 9, 10, 11, 1, 8, 9},  // BOS
		{6, 7, 8, 9, 3, 4, 5, 13, 14},  // bell (dropped), newline (kept), lone 0xC3 (dropped)
		{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, // BOS right after the prompt
	}
	for _, prompt := range []string{"", "Once", "Once upon a time", "with bos inside"} {
		for _, script := range scripts {
			for _, steps := range []int{0, 1, 2, 3, 4, 5, 6, 7, 9, 12, 40} {
				const maxSeq = 12
				want, wantSeen := runC(tok, script, v, prompt, steps, maxSeq)
				sess := newFakeSession(v, script...)
				var out bytes.Buffer
				_, err := Generate(context.Background(), sess, tok, argmax{}, Options{Prompt: prompt, Steps: steps, MaxSeq: maxSeq}, &out)
				if err != nil {
					t.Fatalf("prompt %q steps %d script %v: %v", prompt, steps, script, err)
				}
				if out.String() != want {
					t.Fatalf("prompt %q steps %d script %v: output %q, run.c loop prints %q", prompt, steps, script, out.String(), want)
				}
				// The same tokens run at the same positions (a prompt with a
				// forced BOS stops before any forward pass here).
				if !strings.Contains(prompt, "bos") && !slices.Equal(sess.seen, wantSeen) {
					t.Fatalf("prompt %q steps %d script %v: ran %v, run.c ran %v", prompt, steps, script, sess.seen, wantSeen)
				}
			}
		}
	}
}

func TestGenerateStopsAndClamps(t *testing.T) {
	tok := newFakeTok()
	v := tok.VocabSize()
	cases := []struct {
		name   string
		prompt string
		steps  int
		script []int
		want   string
		decode int
	}{
		{"EOS stops", "Once", 10, []int{0, 7, 8, 2, 9}, "Once upon a\n", 3},
		{"BOS stops", "Once", 10, []int{0, 7, 1, 8}, "Once upon\n", 2},
		{"steps inside prompt", "Once upon a time", 2, []int{0, 0, 0, 0, 10}, "Once upon\n", 0},
		{"steps = prompt length samples once", "Once upon a time", 5, []int{0, 0, 0, 0, 10, 11}, "Once upon a time,\n", 1},
		{"steps 0 means max_seq", "Once", 0, []int{0, 7, 8, 9, 10, 11, 12, 8, 9, 10}, "Once upon a time, there\n", 5},
		{"steps clamp to max_seq", "Once", 100, []int{0, 7, 8, 9, 10, 11, 12, 8, 9, 10}, "Once upon a time, there\n", 5},
		{"empty prompt", "", 3, []int{6, 7, 8, 9}, "Once upon a\n", 3},
		{"space token after BOS prints nothing", "", 2, []int{14, 6}, " Once\n", 2},
	}
	for _, c := range cases {
		sess := newFakeSession(v, c.script...)
		var out bytes.Buffer
		st, err := Generate(context.Background(), sess, tok, argmax{}, Options{Prompt: c.prompt, Steps: c.steps, MaxSeq: 6}, &out)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if out.String() != c.want || st.DecodeTokens != c.decode {
			t.Errorf("%s: output %q (%d decoded), want %q (%d)", c.name, out.String(), st.DecodeTokens, c.want, c.decode)
		}
	}
}

func TestPrintable(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want bool
	}{
		{nil, false}, {[]byte{}, false},
		{[]byte("a"), true}, {[]byte(" "), true}, {[]byte("\n"), true}, {[]byte("\t"), true}, {[]byte("\r"), true},
		{[]byte("\v"), true}, {[]byte("\f"), true}, {[]byte("~"), true},
		{[]byte{7}, false}, {[]byte{0}, false}, {[]byte{0x7f}, false}, {[]byte{0xC3}, false}, {[]byte{0x1b}, false},
		{[]byte("é"), true}, {[]byte{0xC3, 0x00}, true}, {[]byte("ab"), true},
	} {
		if got := Printable(c.b); got != c.want {
			t.Errorf("Printable(%q) = %v, want %v", c.b, got, c.want)
		}
	}
}

type countingWriter struct {
	bytes.Buffer
	flushes  int
	failNext bool
}

func (w *countingWriter) Flush() error { w.flushes++; return nil }

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.failNext {
		return 0, errors.New("broken pipe")
	}
	return w.Buffer.Write(p)
}

func TestGenerateFlushesEachPiece(t *testing.T) {
	tok := newFakeTok()
	sess := newFakeSession(tok.VocabSize(), 0, 7, 8, 9)
	w := &countingWriter{}
	if _, err := Generate(context.Background(), sess, tok, argmax{}, Options{Prompt: "Once", Steps: 4, MaxSeq: 8}, w); err != nil {
		t.Fatal(err)
	}
	// Four pieces and the final newline.
	if w.String() != "Once upon a time\n" || w.flushes != 5 {
		t.Fatalf("wrote %q with %d flushes, want 5", w.String(), w.flushes)
	}
}

// writeLog records each write's text.
type writeLog struct{ writes []string }

func (w *writeLog) Write(p []byte) (int, error) {
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

// withClock makes now advance by step at every reading, for one test.
func withClock(t *testing.T, step time.Duration) {
	t.Helper()
	c := time.Unix(1e9, 0)
	now = func() time.Time { c = c.Add(step); return c }
	t.Cleanup(func() { now = time.Now })
}

func TestGenerateCoalesces(t *testing.T) {
	tok := newFakeTok()
	script := []int{0, 0, 0, 0, 7, 8, 9, 10, 11, 12, 8, 9, 6, 7, 8, 9}
	run := func(coalesce time.Duration) []string {
		var w writeLog
		sess := newFakeSession(tok.VocabSize(), script...)
		if _, err := Generate(context.Background(), sess, tok, argmax{}, Options{Prompt: "Once upon a time", Steps: 16, MaxSeq: 16, Coalesce: coalesce}, &w); err != nil {
			t.Fatal(err)
		}
		return w.writes
	}
	each := run(0)
	if len(each) != 17 { // sixteen pieces and the newline
		t.Fatalf("Coalesce 0 wrote %d times, want 17: %q", len(each), each)
	}
	text := strings.Join(each, "")
	// Tokens 1 ms apart, held back for 5 ms: the first piece at once, then a
	// write when 5 ms have passed, the prompt before the prefill, the rest
	// at the end.
	withClock(t, time.Millisecond)
	fast := run(5 * time.Millisecond)
	if got := strings.Join(fast, ""); got != text {
		t.Fatalf("coalesced text %q, want %q", got, text)
	}
	if len(fast) < 3 || len(fast) > 6 {
		t.Fatalf("tokens 1 ms apart, coalesced over 5 ms: %d writes %q, want 3–6", len(fast), fast)
	}
	if fast[0] != "Once" || fast[1] != " upon a time" {
		t.Fatalf("first writes %q, want the first piece alone, then the rest of the prompt", fast[:2])
	}
	// Tokens slower than the interval: every piece as it comes.
	withClock(t, 10*time.Millisecond)
	if slow := run(5 * time.Millisecond); !slices.Equal(slow, each) {
		t.Fatalf("tokens 10 ms apart, coalesced over 5 ms: writes %q, want %q", slow, each)
	}
}

func TestGenerateCoalescedTextSurvivesErrors(t *testing.T) {
	withClock(t, time.Millisecond)
	tok := newFakeTok()
	var out bytes.Buffer
	sess := newFakeSession(tok.VocabSize(), 0, 7, 8)
	_, err := Generate(context.Background(), sess, tok, &afterN{n: 2}, Options{Prompt: "Once", Steps: 8, MaxSeq: 8, Coalesce: time.Hour}, &out)
	if err == nil || out.String() != "Once upon a" {
		t.Fatalf("bad sample after two tokens: wrote %q (error %v), want %q and an error", out.String(), err, "Once upon a")
	}
	tok.failOn = 9
	out.Reset()
	sess = newFakeSession(tok.VocabSize(), 0, 7, 8, 9)
	_, err = Generate(context.Background(), sess, tok, argmax{}, Options{Prompt: "Once", Steps: 8, MaxSeq: 8, Coalesce: time.Hour}, &out)
	if err == nil || out.String() != "Once upon a" {
		t.Fatalf("piece failing at the third token: wrote %q (error %v), want %q and an error", out.String(), err, "Once upon a")
	}
}

// afterN samples by argmax n times, then returns an id outside any vocabulary.
type afterN struct{ n int }

func (a *afterN) Sample(l []float32) int {
	if a.n == 0 {
		return 1000
	}
	a.n--
	return argmax{}.Sample(l)
}

type cancelAfter struct {
	argmax
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Sample(l []float32) int {
	c.n--
	if c.n == 0 {
		c.cancel()
	}
	return c.argmax.Sample(l)
}

func TestGenerateCancel(t *testing.T) {
	tok := newFakeTok()
	sess := newFakeSession(tok.VocabSize(), 0, 7, 8, 9, 10, 11, 12)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	st, err := Generate(ctx, sess, tok, &cancelAfter{n: 2, cancel: cancel}, Options{Prompt: "Once", Steps: 7, MaxSeq: 8}, &out)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if out.String() != "Once upon a\n" || st.DecodeTokens != 2 {
		t.Fatalf("output %q, %d decoded; want %q, 2", out.String(), st.DecodeTokens, "Once upon a\n")
	}
}

func TestGenerateErrors(t *testing.T) {
	tok := newFakeTok()
	v := tok.VocabSize()
	run := func(prompt string, steps, maxSeq int, tk *fakeTok, out *countingWriter) error {
		sess := newFakeSession(v, 0, 7, 8, 9)
		_, err := Generate(context.Background(), sess, tk, argmax{}, Options{Prompt: prompt, Steps: steps, MaxSeq: maxSeq}, out)
		return err
	}
	failing := newFakeTok()
	failing.failOn = 8
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"negative steps", run("Once", -1, 8, tok, &countingWriter{}), "steps must be ≥ 0 (0 = max_seq), got -1"},
		{"no max_seq", run("Once", 4, 0, tok, &countingWriter{}), "max_seq must be ≥ 1, got 0"},
		{"encode", run("unknown text", 4, 8, tok, &countingWriter{}), `encode prompt: fake tokenizer: no encoding for "unknown text"`},
		{"prompt token out of range", run("out of vocabulary", 4, 8, tok, &countingWriter{}), "prompt token 1 is 99, outside the vocabulary of 15"},
		{"piece", run("Once", 4, 8, failing, &countingWriter{}), "decode token 8 after 7: fake tokenizer: no token 8"},
		{"write", run("Once", 4, 8, tok, &countingWriter{failNext: true}), "write: broken pipe"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.name, c.err, c.want)
		}
	}
}

type badSampler struct{}

func (badSampler) Sample([]float32) int { return 1000 }

func TestGenerateBadSample(t *testing.T) {
	tok := newFakeTok()
	sess := newFakeSession(tok.VocabSize(), 0, 7)
	_, err := Generate(context.Background(), sess, tok, badSampler{}, Options{Prompt: "Once", Steps: 4, MaxSeq: 8}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "sampler returned token 1000 at position 2") {
		t.Fatalf("error %v", err)
	}
}

func TestStatsLine(t *testing.T) {
	s := Stats{PromptTokens: 5, PromptSeconds: 0.5, DecodeTokens: 252, DecodeSeconds: 0.25}
	if got, want := s.Line(), "prompt: 5 tokens, 10.0 tok/s; decode: 252 tokens, 1008.0 tok/s"; got != want {
		t.Fatalf("Line() = %q, want %q", got, want)
	}
	if got, want := (Stats{}).Line(), "prompt: 0 tokens, 0.0 tok/s; decode: 0 tokens, 0.0 tok/s"; got != want {
		t.Fatalf("Line() = %q, want %q", got, want)
	}
}

// FuzzGenerate: for any scripted model, prompt and step count, the batched
// loop prints what the plain run.c loop prints and runs the same positions.
func FuzzGenerate(f *testing.F) {
	f.Add([]byte{6, 7, 8, 9, 2}, uint8(2), 8, 12)
	f.Add([]byte{3, 4, 5, 1}, uint8(0), 0, 5)
	f.Fuzz(func(t *testing.T, raw []byte, which uint8, steps, maxSeq int) {
		tok := newFakeTok()
		v := tok.VocabSize()
		prompts := []string{"", "Once", "Once upon a time", "with bos inside"}
		prompt := prompts[int(which)%len(prompts)]
		if maxSeq < 1 || maxSeq > 64 || steps < 0 || steps > 100 {
			return
		}
		script := make([]int, len(raw))
		for i, b := range raw {
			script[i] = int(b) % v
		}
		want, wantSeen := runC(tok, script, v, prompt, steps, maxSeq)
		sess := newFakeSession(v, script...)
		var out bytes.Buffer
		if _, err := Generate(context.Background(), sess, tok, argmax{}, Options{Prompt: prompt, Steps: steps, MaxSeq: maxSeq}, &out); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Fatalf("output %q, run.c loop prints %q", out.String(), want)
		}
		if prompt != "with bos inside" && !slices.Equal(sess.seen, wantSeen) {
			t.Fatalf("ran %v, run.c ran %v", sess.seen, wantSeen)
		}
	})
}

// greedySession is a fakeSession that is a model.Greedy.
type greedySession struct{ *fakeSession }

func (s greedySession) Greedy(token, pos int) int {
	s.calls = append(s.calls, fmt.Sprintf("G%d@%d", token, pos))
	s.run(token, pos)
	return argmax{}.Sample(s.logits(pos))
}

// greedyArgmax is argmax saying that it is greedy.
type greedyArgmax struct{ argmax }

func (greedyArgmax) Greedy() bool { return true }

// TestGenerateGreedy: a greedy sampler over a model.Greedy session takes
// every decoded token from Greedy, with run.c's output and positions; a
// sampler that does not say it is greedy gets logits from Forward.
func TestGenerateGreedy(t *testing.T) {
	tok := newFakeTok()
	v := tok.VocabSize()
	script := []int{6, 7, 8, 9, 10, 11, 12, 8, 9, 10, 11, 2, 13, 14, 6}
	for _, prompt := range []string{"", "Once", "Once upon a time"} {
		for _, steps := range []int{1, 3, 5, 7, 12} {
			const maxSeq = 12
			want, wantSeen := runC(tok, script, v, prompt, steps, maxSeq)
			for _, sampler := range []Sampler{greedyArgmax{}, argmax{}} {
				fs := newFakeSession(v, script...)
				var out bytes.Buffer
				if _, err := Generate(context.Background(), greedySession{fs}, tok, sampler, Options{Prompt: prompt, Steps: steps, MaxSeq: maxSeq}, &out); err != nil {
					t.Fatal(err)
				}
				if out.String() != want || !slices.Equal(fs.seen, wantSeen) {
					t.Fatalf("prompt %q steps %d %T: output %q ran %v; run.c prints %q ran %v", prompt, steps, sampler, out.String(), fs.seen, want, wantSeen)
				}
				_, isGreedy := sampler.(greedyArgmax)
				for _, c := range fs.calls {
					if c[0] == 'F' && isGreedy || c[0] == 'G' && !isGreedy {
						t.Fatalf("prompt %q steps %d %T: calls %v", prompt, steps, sampler, fs.calls)
					}
				}
			}
		}
	}
}
