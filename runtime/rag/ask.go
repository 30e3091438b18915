package rag

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"text/template"

	"github.com/modelc/modelc/runtime/generate"
	"github.com/modelc/modelc/runtime/model"
)

// DefaultTemplate builds the prompt: numbered context blocks tagged with
// their source, then the question. Replace it with --template FILE; the
// data is a PromptData.
const DefaultTemplate = `{{range .Contexts}}[{{.N}}] {{.Source}}:{{.Start}}-{{.End}}
{{.Text}}

{{end}}Question: {{.Question}}
Answer:`

// PromptData is what a prompt template sees.
type PromptData struct {
	Question string
	Contexts []Context
}

// Context is one retrieved chunk in a prompt.
type Context struct {
	N          int // 1-based, as cited
	Source     string
	Start, End int64
	Text       string
	Score      float64
}

// ParseTemplate parses a prompt template (text/template syntax).
func ParseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("prompt template %s: %w", name, err)
	}
	return t, nil
}

// BuildPrompt renders tmpl with the question and the results as contexts.
func BuildPrompt(tmpl *template.Template, question string, rs []Result) (string, error) {
	d := PromptData{Question: question}
	for i, r := range rs {
		d.Contexts = append(d.Contexts, Context{N: i + 1, Source: r.Source, Start: r.Start, End: r.End, Text: r.Text, Score: r.Score})
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, d); err != nil {
		msg := strings.TrimPrefix(err.Error(), "template: ")
		// The value a range cannot iterate over is printed whole: for a
		// range over the data, every retrieved chunk. The action, named
		// before it, says enough.
		if i := strings.Index(msg, "range can't iterate over "); i >= 0 {
			msg = msg[:i] + "range can't iterate over it (it needs a slice, map, channel or integer)"
		}
		return "", fmt.Errorf("prompt template %s: %s", tmpl.Name(), oneLine(msg, 200))
	}
	return b.String(), nil
}

// oneLine shortens a message to its first line and at most about n bytes
// (snippet's cut), for the other values text/template may print in an
// error.
func oneLine(msg string, n int) string {
	first, _, more := strings.Cut(msg, "\n")
	s := snippet(first, n)
	if more && !strings.HasSuffix(s, " …") {
		s += " …"
	}
	return s
}

// AskOptions say how to answer.
type AskOptions struct {
	K        int  // chunks to retrieve
	Mode     Mode // how to retrieve
	Template *template.Template
	// Steps bounds the positions run, prompt included (0: the model's max_seq).
	Steps int
	// AnswerTokens is the room kept for the answer when fitting contexts
	// into the context window (default min(64, max_seq/4)).
	AnswerTokens int
}

// Augment retrieves k chunks for question and renders the prompt with tmpl
// (nil: DefaultTemplate): the retrieval half of Ask, for callers that
// generate themselves (a chat server adding context to a request).
func Augment(ctx context.Context, r *Retriever, question string, mode Mode, k int, tmpl *template.Template) (string, []Result, error) {
	if tmpl == nil {
		tmpl = template.Must(ParseTemplate("default", DefaultTemplate))
	}
	rs, err := r.Search(ctx, question, mode, k)
	if err != nil {
		return "", nil, err
	}
	p, err := BuildPrompt(tmpl, question, rs)
	return p, rs, err
}

// Answer is what Ask produced.
type Answer struct {
	Text    string   // the generated answer
	Prompt  string   // the prompt as given to the model
	Sources []Result // the chunks in the prompt, in citation order
	Dropped int      // retrieved chunks left out because the context was full
	// Cut is how many bytes were cut from the end of the one source when
	// not even the best chunk fitted whole (0: none).
	Cut   int
	Stats generate.Stats
}

// Ask retrieves context for question, builds the prompt, and generates the
// answer with m, streaming it to out. Contexts that do not fit the model's
// window are dropped from the last; when not even the best one fits, as
// much of it as fits is kept, cut at a space; a question that does not fit
// even alone is an error.
func Ask(ctx context.Context, r *Retriever, m model.Model, tok generate.Tokenizer, sampler generate.Sampler, question string, o AskOptions, out io.Writer) (*Answer, error) {
	if strings.TrimSpace(question) == "" {
		return nil, fmt.Errorf("the question is empty")
	}
	if o.K < 1 {
		return nil, fmt.Errorf("k must be ≥ 1, got %d", o.K)
	}
	if o.Template == nil {
		o.Template = template.Must(ParseTemplate("default", DefaultTemplate))
	}
	maxSeq := m.Spec().MaxSeq
	if o.Steps > 0 && o.Steps < maxSeq {
		maxSeq = o.Steps
	}
	room := o.AnswerTokens
	if room <= 0 {
		room = min(64, max(maxSeq/4, 1))
	}
	results, err := r.Search(ctx, question, o.Mode, o.K)
	if err != nil {
		return nil, err
	}
	a := &Answer{}
	// fit renders the prompt with rs and reports whether it leaves room.
	fit := func(rs []Result) (string, int, bool, error) {
		prompt, err := BuildPrompt(o.Template, question, rs)
		if err != nil {
			return "", 0, false, err
		}
		ids, err := tok.Encode(prompt, true, false)
		if err != nil {
			return "", 0, false, fmt.Errorf("encode the prompt: %w", err)
		}
		return prompt, len(ids), len(ids)+room <= maxSeq, nil
	}
	var prompt string
	for keep := len(results); keep >= 0; keep-- {
		p, n, ok, err := fit(results[:keep])
		if err != nil {
			return nil, err
		}
		if ok {
			prompt, a.Sources, a.Dropped = p, results[:keep], len(results)-keep
			break
		}
		if keep == 0 {
			return nil, fmt.Errorf("the question alone makes a prompt of %d tokens; the model's context is %d, with %d kept for the answer: ask a shorter question", n, maxSeq, room)
		}
	}
	if len(a.Sources) == 0 && len(results) > 0 {
		// The longest start of the best chunk that fits, cut at a space.
		best := results[0]
		var cuts []int
		for i, c := range best.Text {
			if c == ' ' || c == '\n' {
				cuts = append(cuts, i)
			}
		}
		lo, hi := -1, len(cuts) // cuts[lo] fits (lo = -1: none); cuts[hi] does not
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			r := best
			r.Text = strings.TrimSpace(best.Text[:cuts[mid]])
			_, _, ok, err := fit([]Result{r})
			if err != nil {
				return nil, err
			}
			if ok {
				lo = mid
			} else {
				hi = mid
			}
		}
		if lo >= 0 && strings.TrimSpace(best.Text[:cuts[lo]]) != "" {
			r := best
			r.Text = strings.TrimSpace(best.Text[:cuts[lo]])
			r.End = r.Start + int64(strings.Index(best.Text, r.Text)+len(r.Text))
			if prompt, _, _, err = fit([]Result{r}); err != nil {
				return nil, err
			}
			a.Sources, a.Dropped, a.Cut = []Result{r}, len(results)-1, len(best.Text)-len(r.Text)
		}
	}
	a.Prompt = prompt
	// generate echoes the prompt as it forces it; skip those bytes.
	ids, _ := tok.Encode(prompt, true, false)
	echo := 0
	for p := 0; p+1 < len(ids); p++ {
		b, err := tok.Piece(ids[p], ids[p+1])
		if err != nil {
			return nil, fmt.Errorf("decode the prompt: %w", err)
		}
		if generate.Printable(b) {
			echo += len(b)
		}
	}
	var ans bytes.Buffer
	w := &skipWriter{skip: echo, out: io.MultiWriter(out, &ans)}
	generate.PrepareGreedy(m, sampler)
	st, err := generate.Generate(ctx, m.NewSession(), tok, sampler, generate.Options{Prompt: prompt, Steps: o.Steps, MaxSeq: m.Spec().MaxSeq, Coalesce: generate.DefaultCoalesce}, w)
	a.Stats = st
	a.Text = strings.TrimSpace(ans.String())
	if err != nil {
		return a, err
	}
	return a, nil
}

// skipWriter drops the first skip bytes written to it.
type skipWriter struct {
	skip int
	out  io.Writer
}

func (w *skipWriter) Write(b []byte) (int, error) {
	n := len(b)
	if w.skip > 0 {
		k := min(w.skip, len(b))
		w.skip -= k
		b = b[k:]
	}
	if len(b) > 0 {
		if _, err := w.out.Write(b); err != nil {
			return 0, err
		}
	}
	return n, nil
}
