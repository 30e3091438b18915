// Package openbook is the open-book experiment of runtime/rag: a synthetic
// set of invented facts ("The capital of Zorvia is Plentu."), one document
// per fact, and questions about them whose answers are single words or
// numbers. The facts are split by entity: the held-out entities, and every
// answer value they use, never occur in the training conversations, so a
// model can answer them only from retrieved context.
//
// Training conversations are built the way `rag ask` prompts: the question
// is searched in a store of the training documents, the top chunks become
// context blocks of rag.DefaultTemplate, and the reply is the answer. Eval
// answers the held-out questions greedily with retrieval (the same pipeline
// over a store of all documents) and without it (the template with no
// context blocks), and counts exact matches.
package openbook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/posttrain"
	"github.com/modelc/modelc/runtime/rag"
	"github.com/modelc/modelc/runtime/rag/bm25"
	"github.com/modelc/modelc/runtime/rag/chunk"
	"github.com/modelc/modelc/runtime/rag/embed"
	"github.com/modelc/modelc/runtime/rag/store"
)

// Fact is one invented fact and the question that asks for it.
type Fact struct {
	Entity   string `json:"entity"`
	Attr     string `json:"attr"`
	Answer   string `json:"answer"`
	Source   string `json:"source"`   // the document's name in the store
	Text     string `json:"text"`     // the document: one sentence
	Question string `json:"question"` // asks for Answer
}

// attr is a kind of fact: how it is stated and asked; numeric answers are
// numbers, others invented words.
type attr struct {
	name, stmt, q string
	number        bool
}

var attrs = []attr{
	{"capital", "The capital of %s is %s.", "What is the capital of %s?", false},
	{"river", "The longest river of %s is the %s.", "What is the longest river of %s?", false},
	{"ruler", "The ruler of %s is called %s.", "Who is the ruler of %s?", false},
	{"year", "%s was founded in the year %s.", "In what year was %s founded?", true},
	{"animal", "The national animal of %s is the %s.", "What is the national animal of %s?", false},
}

// Attrs is the number of facts per entity.
var Attrs = len(attrs)

// Set is a generated fact set.
type Set struct {
	Train, Test []Fact
}

// Generate invents nTrain + nTest entities with one fact of each kind
// (Attrs facts per entity) from seed. Entity names, answer words and (up
// to 9,000 entities) years are all distinct, so nothing a test question
// asks for is seen in training. The first entities of a seed do not depend
// on nTrain and nTest.
func Generate(seed uint64, nTrain, nTest int) Set {
	rng := rand.New(rand.NewPCG(seed, 0x6f70656e626f6f6b))
	used := map[string]bool{}
	word := func(syll int) string {
		const cons, vows = "bdfgklmnprstvz", "aeiou"
		for {
			var b strings.Builder
			for range syll {
				b.WriteByte(cons[rng.IntN(len(cons))])
				b.WriteByte(vows[rng.IntN(len(vows))])
				if rng.IntN(3) == 0 {
					b.WriteByte("lnrs"[rng.IntN(4)])
				}
			}
			w := strings.ToUpper(b.String()[:1]) + b.String()[1:]
			if !used[strings.ToLower(w)] {
				used[strings.ToLower(w)] = true
				return w
			}
		}
	}
	// Years come from their own stream, all distinct: 1000–9999. (The
	// names' stream skips a draw that earlier versions used for years, so
	// that the names of a seed stay those of the sets RESULTS.md used.)
	rng.Perm(900)
	years := rand.New(rand.NewPCG(seed, 0x79656172)).Perm(9000)
	yi := 0
	var s Set
	n := 0
	for e := range nTrain + nTest {
		ent := word(3)
		for _, a := range attrs {
			var ans string
			if a.number {
				ans = fmt.Sprint(1000 + years[yi%len(years)])
				yi++
			} else {
				ans = word(2)
			}
			n++
			f := Fact{Entity: ent, Attr: a.name, Answer: ans, Source: fmt.Sprintf("doc%d", n),
				Text: fmt.Sprintf(a.stmt, ent, ans), Question: fmt.Sprintf(a.q, ent)}
			if e < nTrain {
				s.Train = append(s.Train, f)
			} else {
				s.Test = append(s.Test, f)
			}
		}
	}
	return s
}

// Texts are the facts as documents for rag.IngestTexts.
func Texts(fs ...[]Fact) []rag.Text {
	var out []rag.Text
	for _, l := range fs {
		for _, f := range l {
			out = append(out, rag.Text{Source: f.Source, Body: f.Text + "\n"})
		}
	}
	return out
}

// IngestOptions index the fact documents: each is one chunk, analysed by
// the default analyzer, with hash-baseline vectors (as `rag ingest`
// without --model).
func IngestOptions() rag.IngestOptions {
	return rag.IngestOptions{Chunk: chunk.Options{Size: 200, Overlap: 40}, Analyzer: bm25.Default, Embedder: embed.NewHash(256)}
}

// Index ingests docs into s and returns a retriever over it.
func Index(ctx context.Context, s store.Store, docs []rag.Text) (*rag.Retriever, error) {
	o := IngestOptions()
	if _, err := rag.IngestTexts(ctx, s, docs, o); err != nil {
		return nil, err
	}
	return &rag.Retriever{Store: s, Analyzer: o.Analyzer, Embedder: o.Embedder}, nil
}

// Conversation is one SFT example in posttrain's JSON lines format.
type Conversation struct {
	Messages []Message `json:"messages"`
}

// Message is one turn.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// TrainOptions say how training conversations are built.
type TrainOptions struct {
	Mode   rag.Mode
	MinK   int // contexts per prompt are drawn from [MinK, MaxK]
	MaxK   int
	Copies int // conversations per fact (different k and context order)
	Seed   uint64
}

// Conversations builds SFT conversations for facts from retrieval over r
// (a store of the training documents): for each fact, Copies prompts with
// k in [MinK, MaxK] retrieved contexts, the fact's own document put in if
// retrieval missed it, in shuffled order, rendered by rag.DefaultTemplate;
// the reply is the answer.
func Conversations(ctx context.Context, r *rag.Retriever, facts []Fact, o TrainOptions) ([]Conversation, error) {
	if o.MinK < 1 || o.MaxK < o.MinK {
		return nil, fmt.Errorf("openbook: k range [%d, %d]", o.MinK, o.MaxK)
	}
	if o.Copies < 1 {
		o.Copies = 1
	}
	tmpl, err := rag.ParseTemplate("default", rag.DefaultTemplate)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x636f6e76))
	var out []Conversation
	for _, f := range facts {
		rs, err := r.Search(ctx, f.Question, o.Mode, o.MaxK)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Question, err)
		}
		for range o.Copies {
			k := o.MinK + rng.IntN(o.MaxK-o.MinK+1)
			ctxs := append([]rag.Result(nil), rs[:min(k, len(rs))]...)
			has := false
			for _, c := range ctxs {
				has = has || c.Source == f.Source
			}
			if !has {
				gold := rag.Result{Chunk: store.Chunk{Source: f.Source, Start: 0, End: int64(len(f.Text) + 1), Text: f.Text + "\n"}}
				ctxs[len(ctxs)-1] = gold
			}
			rng.Shuffle(len(ctxs), func(i, j int) { ctxs[i], ctxs[j] = ctxs[j], ctxs[i] })
			p, err := rag.BuildPrompt(tmpl, f.Question, ctxs)
			if err != nil {
				return nil, err
			}
			out = append(out, Conversation{Messages: []Message{{"user", p}, {"assistant", f.Answer}}})
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out, nil
}

// WriteJSONL writes values one per line.
func WriteJSONL[T any](path string, vs []T) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	enc.SetEscapeHTML(false)
	for _, v := range vs {
		if err := enc.Encode(v); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// ReadFacts reads a facts JSON lines file.
func ReadFacts(path string) ([]Fact, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Fact
	for i, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var f Fact
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// EvalOptions say how to answer.
type EvalOptions struct {
	K      int
	Mode   rag.Mode
	MaxNew int       // reply tokens (default 16)
	Show   io.Writer // per-question lines (nil: none)
}

// Result counts exact matches over N questions.
type Result struct {
	N         int
	RAG       int // right with retrieval
	Closed    int // right without retrieval (the question alone)
	Retrieved int // questions whose own document was among the top k
	// ClosedSameKind counts replies without retrieval that are the answer
	// of some other fact of the same kind in the training set: the model
	// guessing from memory.
	ClosedSameKind int
}

func (r Result) String() string {
	f := func(n int) float64 { return float64(n) / float64(max(r.N, 1)) }
	return fmt.Sprintf("n %d  exact match with retrieval %.3f  without %.3f  (recall@k %.3f, closed-book replies that are a training answer of the kind %.3f)",
		r.N, f(r.RAG), f(r.Closed), f(r.Retrieved), f(r.ClosedSameKind))
}

// Eval answers each fact's question greedily with m: once with the top-k
// chunks r retrieves in the prompt, once with none. known maps attribute to
// the training answers of that kind (may be nil).
func Eval(ctx context.Context, r *rag.Retriever, m model.Model, e *posttrain.Encoder, facts []Fact, known map[string]map[string]bool, o EvalOptions) (Result, error) {
	if o.MaxNew <= 0 {
		o.MaxNew = 16
	}
	tmpl, err := rag.ParseTemplate("default", rag.DefaultTemplate)
	if err != nil {
		return Result{}, err
	}
	var res Result
	for _, f := range facts {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		open, rs, err := rag.Augment(ctx, r, f.Question, o.Mode, o.K, tmpl)
		if err != nil {
			return res, err
		}
		for _, x := range rs {
			if x.Source == f.Source {
				res.Retrieved++
				break
			}
		}
		closed, err := rag.BuildPrompt(tmpl, f.Question, nil)
		if err != nil {
			return res, err
		}
		a1, err := Reply(m, e, open, o.MaxNew)
		if err != nil {
			return res, err
		}
		a2, err := Reply(m, e, closed, o.MaxNew)
		if err != nil {
			return res, err
		}
		res.N++
		if Match(a1, f.Answer) {
			res.RAG++
		}
		if Match(a2, f.Answer) {
			res.Closed++
		}
		if known[f.Attr][Normalize(a2)] {
			res.ClosedSameKind++
		}
		if o.Show != nil {
			fmt.Fprintf(o.Show, "%-45s want %-10s rag %-12q closed %q\n", f.Question, f.Answer, a1, a2)
		}
	}
	return res, nil
}

// Known maps each attribute to the (normalized) answers facts give it.
func Known(facts []Fact) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, f := range facts {
		if out[f.Attr] == nil {
			out[f.Attr] = map[string]bool{}
		}
		out[f.Attr][Normalize(f.Answer)] = true
	}
	return out
}

// Normalize lowercases and trims spaces and a final full stop.
func Normalize(s string) string {
	return strings.ToLower(strings.TrimRight(strings.TrimSpace(s), ". "))
}

// Match is exact match after Normalize.
func Match(reply, answer string) bool { return Normalize(reply) == Normalize(answer) }

// Reply generates m's greedy reply (at most maxNew tokens, to the end of
// turn) to a user message, prompted exactly as SFT trained it and as the
// chat server prompts: posttrain.Encoder.Prompt, the template's generation
// prompt, which is the untrained prefix of every trained reply whatever it
// begins with (the template's space before the reply is trained, so the
// model emits it, merged with the first letter or not).
func Reply(m model.Model, e *posttrain.Encoder, user string, maxNew int) (string, error) {
	prompt, err := e.Prompt(user)
	if err != nil {
		return "", err
	}
	return greedy(m, e, prompt, maxNew)
}

// greedy decodes from prompt and returns the reply's text.
func greedy(m model.Model, e *posttrain.Encoder, prompt []int, maxNew int) (string, error) {
	maxSeq := m.Spec().MaxSeq
	if len(prompt) >= maxSeq {
		return "", fmt.Errorf("prompt of %d tokens does not fit the context of %d", len(prompt), maxSeq)
	}
	s := m.NewSession()
	logits := s.Prefill(prompt, 0)
	eos := e.Tok.EOS()
	var out []int
	for len(out) < maxNew && len(prompt)+len(out) < maxSeq {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		if best == eos {
			break
		}
		out = append(out, best)
		logits = s.Forward(best, len(prompt)+len(out)-1)
	}
	text, err := e.Tok.Decode(out)
	if err != nil {
		return "", err
	}
	for _, st := range e.Template.Stop() {
		if i := strings.Index(text, st); i >= 0 {
			text = text[:i]
		}
	}
	return strings.TrimSpace(text), nil
}
