// Package generate runs the autoregressive loop: encode a prompt, prefill it,
// sample token after token and stream the text, exactly as llama2.c's run.c
// generate() does, so that greedy output matches run.c byte for byte.
package generate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/modelc/modelc/runtime/model"
)

// Tokenizer is the part of tokenizer.Tokenizer generation uses; every
// tokenizer.Tokenizer is one.
type Tokenizer interface {
	Encode(text string, bos, eos bool) ([]int, error)
	Piece(prev, next int) ([]byte, error)
	VocabSize() int
	BOS() int
	EOS() int
}

// Options say what to generate.
type Options struct {
	// Prompt is the text to continue; it is encoded with BOS in front, so an
	// empty prompt starts from BOS alone.
	Prompt string
	// Steps counts positions, prompt included (run.c's -n): the loop runs at
	// most Steps forward passes. 0 or more than MaxSeq means MaxSeq.
	Steps int
	// MaxSeq is the model's context length.
	MaxSeq int
	// Coalesce, when > 0, holds back the text of a piece that comes less
	// than Coalesce after the last write, and writes it with the next piece
	// that comes later, or at the end: a fast model then costs one write
	// (and flush) per Coalesce instead of one per token — a write to a
	// terminal or pipe takes 5–12 µs here, as long as a stories260K token —
	// while a slow one still shows every token as it comes. 0 writes every
	// piece at once.
	Coalesce time.Duration
}

// DefaultCoalesce is what the CLI passes as Options.Coalesce: 50 writes a
// second at most, which the eye cannot tell from one a token.
const DefaultCoalesce = 20 * time.Millisecond

// now is the clock Coalesce reads (tests replace it).
var now = time.Now

// Sampler picks the next token from logits (*sample.Sampler is one).
type Sampler interface {
	Sample(logits []float32) int
}

// PrepareGreedy makes, when sampler is greedy, what m's Greedy needs
// (model.GreedyPreparer), so that Generate's first decoded token does not
// pay for it.
func PrepareGreedy(m model.Model, sampler Sampler) {
	if g, ok := sampler.(interface{ Greedy() bool }); ok && g.Greedy() {
		if gp, ok := m.(model.GreedyPreparer); ok {
			gp.PrepareGreedy()
		}
	}
}

// Stats measure one generation; loading is not included.
type Stats struct {
	// PromptTokens went through Prefill (BOS included).
	PromptTokens  int
	PromptSeconds float64
	// DecodeTokens were sampled (a final BOS/EOS that stopped the loop included).
	DecodeTokens  int
	DecodeSeconds float64
	// PromptCut prompt tokens lay past the steps positions and were not run
	// (run.c cuts the same way).
	PromptCut int
}

// Warning says, when the prompt was longer than the steps positions (so
// nothing was generated), how much of it ran; "" otherwise. maxSeq is the
// model's context length.
func (s Stats) Warning(maxSeq int) string {
	if s.PromptCut == 0 {
		return ""
	}
	head := fmt.Sprintf("warning: the prompt is %d tokens (BOS included), more than", s.PromptTokens+s.PromptCut)
	tail := fmt.Sprintf("its last %d were not run and nothing was generated", s.PromptCut)
	if s.PromptTokens >= maxSeq {
		return fmt.Sprintf("%s the model's context of %d: %s; shorten the prompt", head, maxSeq, tail)
	}
	return fmt.Sprintf("%s the %d positions --steps allows: %s; raise --steps (up to the model's %d) or shorten the prompt", head, s.PromptTokens, tail, maxSeq)
}

// Line is the one-line summary the CLI prints last on stderr.
func (s Stats) Line() string {
	return fmt.Sprintf("prompt: %d tokens, %.1f tok/s; decode: %d tokens, %.1f tok/s",
		s.PromptTokens, rate(s.PromptTokens, s.PromptSeconds), s.DecodeTokens, rate(s.DecodeTokens, s.DecodeSeconds))
}

func rate(n int, sec float64) float64 {
	if sec <= 0 {
		return 0
	}
	return float64(n) / sec
}

type flusher interface{ Flush() error }

// Generate continues opts.Prompt with sess and writes the text to out as it is
// produced, then "\n". The loop follows run.c: positions 0..steps-1, the
// prompt tokens forced (here in one Prefill), then sampled tokens, stopping
// when the sampled token is BOS or EOS, after steps positions, or when ctx is
// done. Every piece is printed the way run.c's safe_printf prints it.
func Generate(ctx context.Context, sess model.Session, tok Tokenizer, sampler Sampler, opts Options, out io.Writer) (st Stats, err error) {
	if opts.MaxSeq <= 0 {
		return st, fmt.Errorf("generate: max_seq must be ≥ 1, got %d", opts.MaxSeq)
	}
	if opts.Steps < 0 {
		return st, fmt.Errorf("generate: steps must be ≥ 0 (0 = max_seq), got %d", opts.Steps)
	}
	steps := opts.Steps
	if steps == 0 || steps > opts.MaxSeq {
		steps = opts.MaxSeq
	}
	prompt, err := tok.Encode(opts.Prompt, true, false)
	if err != nil {
		return st, fmt.Errorf("generate: encode prompt: %w", err)
	}
	if len(prompt) == 0 {
		return st, errors.New("generate: the prompt encoded to no tokens (expected at least BOS)")
	}
	vocab := tok.VocabSize()
	for i, t := range prompt {
		if t < 0 || t >= vocab {
			return st, fmt.Errorf("generate: prompt token %d is %d, outside the vocabulary of %d", i, t, vocab)
		}
	}
	bos, eos := tok.BOS(), tok.EOS()
	w := &writer{out: out, every: opts.Coalesce}
	if f, ok := out.(flusher); ok {
		w.flush = f
	}

	// run.c prints piece(prompt[p], prompt[p+1]) at positions p while it
	// forces the prompt; the text is the same when printed ahead of the batch.
	n := min(len(prompt), steps)
	st.PromptCut = len(prompt) - n
	for p := 0; p+1 < len(prompt) && p < steps; p++ {
		if prompt[p+1] == bos { // run.c stops at BOS even when forced
			return st, w.end()
		}
		if err := w.piece(tok, prompt[p], prompt[p+1]); err != nil {
			return st, err
		}
	}
	// The prompt shows before a prefill that may take a while.
	if err := w.emit(); err != nil {
		return st, err
	}
	if err := ctx.Err(); err != nil {
		return st, w.abort(err)
	}

	t0 := time.Now()
	logits := sess.Prefill(prompt[:n], 0)
	st.PromptTokens = n
	st.PromptSeconds = time.Since(t0).Seconds()
	if n < len(prompt) { // steps ran out inside the prompt
		return st, w.end()
	}

	t0 = time.Now()
	// Named results: the deferred update reaches the caller on every return.
	defer func() { st.DecodeSeconds = time.Since(t0).Seconds() }()
	token, pos := prompt[n-1], n
	// A greedy sampler over a model.Greedy session takes its tokens from
	// Greedy (the classifier screened, the same tokens).
	greedy, _ := sess.(model.Greedy)
	if g, ok := sampler.(interface{ Greedy() bool }); !ok || !g.Greedy() {
		greedy = nil
	}
	known := -1 // the next token, when Greedy gave it
	for {
		if err := ctx.Err(); err != nil {
			return st, w.abort(err)
		}
		next := known
		if next < 0 {
			next = sampler.Sample(logits)
		}
		if next < 0 || next >= vocab {
			w.emit() // the text so far
			return st, fmt.Errorf("generate: sampler returned token %d at position %d, outside the vocabulary of %d (model has %d logits)", next, pos, vocab, len(logits))
		}
		st.DecodeTokens++
		if next == bos || next == eos {
			break
		}
		if err := w.piece(tok, token, next); err != nil {
			return st, err
		}
		token = next
		if pos >= steps {
			break
		}
		if greedy != nil {
			known = greedy.Greedy(token, pos)
		} else {
			logits = sess.Forward(token, pos)
		}
		pos++
	}
	return st, w.end()
}

// writer streams pieces, holding them back while they come faster than
// every (see Options.Coalesce).
type writer struct {
	out   io.Writer
	flush flusher
	every time.Duration
	last  time.Time // of the last write; zero before the first
	buf   []byte
}

func (w *writer) piece(tok Tokenizer, prev, next int) error {
	b, err := tok.Piece(prev, next)
	if err != nil {
		w.emit() // the text so far, as when every piece was written at once
		return fmt.Errorf("generate: decode token %d after %d: %w", next, prev, err)
	}
	if !Printable(b) {
		return nil
	}
	w.buf = append(w.buf, b...)
	if w.every > 0 {
		t := now()
		if !w.last.IsZero() && t.Sub(w.last) < w.every {
			return nil
		}
		w.last = t
	}
	return w.emit()
}

// emit writes and flushes the text held back, if any.
func (w *writer) emit() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.out.Write(w.buf)
	w.buf = w.buf[:0]
	if err != nil {
		return fmt.Errorf("generate: write: %w", err)
	}
	if w.flush != nil {
		if err := w.flush.Flush(); err != nil {
			return fmt.Errorf("generate: write: %w", err)
		}
	}
	return nil
}

// end finishes the text with a newline, as run.c does.
func (w *writer) end() error {
	w.buf = append(w.buf, '\n')
	return w.emit()
}

// abort ends the line and reports why the loop stopped.
func (w *writer) abort(cause error) error {
	w.end()
	return fmt.Errorf("generate: %w", cause)
}

// Printable is run.c's safe_printf filter: an empty piece, or a single byte
// that is neither printable ASCII nor whitespace (a raw control or stray
// high byte), prints nothing; anything else prints as is.
func Printable(piece []byte) bool {
	if len(piece) == 0 {
		return false
	}
	if len(piece) == 1 {
		c := piece[0]
		return (c >= 0x20 && c < 0x7f) || c == ' ' || (c >= '\t' && c <= '\r')
	}
	return true
}
