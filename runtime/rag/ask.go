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
		return "", fmt.Errorf("prompt template %s: %w", tmpl.Name(), err)
	}
	return b.String(), nil
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
	Stats   generate.Stats
}

// Ask retrieves context for question, builds the prompt, and generates the
// answer with m, streaming it to out. Contexts that do not fit the model's
// window are dropped from the last; a question that does not fit even
// alone is an error.
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
	var prompt string
	var n int
	for keep := len(results); keep >= 0; keep-- {
		prompt, err = BuildPrompt(o.Template, question, results[:keep])
		if err != nil {
			return nil, err
		}
		ids, err := tok.Encode(prompt, true, false)
		if err != nil {
			return nil, fmt.Errorf("encode the prompt: %w", err)
		}
		n = len(ids)
		if n+room <= maxSeq {
			a.Sources, a.Dropped = results[:keep], len(results)-keep
			break
		}
		if keep == 0 {
			return nil, fmt.Errorf("the question alone makes a prompt of %d tokens; the model's context is %d, with %d kept for the answer: ask a shorter question", n, maxSeq, room)
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
