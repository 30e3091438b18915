package tokenizer

import (
	"fmt"
	"sort"
	"strings"

	"github.com/modelc/modelc/gguf"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"` // RoleSystem, RoleUser or RoleAssistant
	Content string `json:"content"`
}

// Roles the templates know.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Chat is a conversation rendered by a Template.
type Chat struct {
	Text string
	// Markers are the spans of the template's own special-token text
	// ("<|im_start|>", "<s>"): EncodeChat maps exactly these to special
	// ids, so the same text inside a message stays plain text.
	Markers []Span
	// Content holds the span of each assistant message's content.
	Content []Span
	// Train holds, per assistant message, what fine-tuning computes the
	// loss on: its content and the marker that ends the turn (so the model
	// also learns to stop), from any separator the template puts between
	// the generation prompt and the content (llama2's space after
	// "[/INST]"). The text before a Train span is therefore exactly what
	// Render(…, true) gives for the messages before it, and EncodeChat
	// cuts the text at Train edges, so the untrained prefix of a reply is
	// the generation prompt's tokens whatever the reply begins with (a
	// vocabulary may merge the separator with some first letters and not
	// others; the model learns to emit it).
	Train []Span
}

// Template renders messages into the text a chat model is trained and
// prompted with.
type Template struct {
	name     string
	specials []string
	stop     []string
	jinja    string
	render   func(b *chatBuilder, msgs []Message, generate bool) error
}

// Jinja is the template in the Jinja form Hugging Face and GGUF's
// tokenizer.chat_template use (with bos_token, eos_token and
// add_generation_prompt), so llama.cpp and ollama pick the same format.
func (t *Template) Jinja() string { return t.jinja }

// Name is the template's name ("chatml", "llama2").
func (t *Template) Name() string { return t.name }

// Specials lists the marker texts the template uses; a vocabulary should
// have them as special tokens (SentencePiece.AddSpecial), otherwise they
// are tokenized as plain text.
func (t *Template) Specials() []string { return append([]string(nil), t.specials...) }

// Stop lists the texts that end an assistant turn (generation stops there).
func (t *Template) Stop() []string { return append([]string(nil), t.stop...) }

// Render renders a conversation. With generate set the text ends with the
// prefix of a new assistant turn, for prompting; the last message must then
// not be the assistant's.
func (t *Template) Render(msgs []Message, generate bool) (Chat, error) {
	if len(msgs) == 0 {
		return Chat{}, fmt.Errorf("chat template %s: no messages", t.name)
	}
	if generate && msgs[len(msgs)-1].Role == RoleAssistant {
		return Chat{}, fmt.Errorf("chat template %s: the last message is the assistant's; nothing to prompt for", t.name)
	}
	var b chatBuilder
	if err := t.render(&b, msgs, generate); err != nil {
		return Chat{}, fmt.Errorf("chat template %s: %w", t.name, err)
	}
	return b.chat(), nil
}

// Prompt is the text of Render(msgs, true).
func (t *Template) Prompt(msgs []Message) (string, error) {
	c, err := t.Render(msgs, true)
	return c.Text, err
}

var templates = map[string]*Template{
	"chatml": {
		name:     "chatml",
		specials: []string{"<|im_start|>", "<|im_end|>"},
		stop:     []string{"<|im_end|>"},
		jinja: "{% for message in messages %}" +
			"{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}" +
			"{% endfor %}" +
			"{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
		render: renderChatML,
	},
	"llama2": {
		name:     "llama2",
		specials: []string{"<s>", "</s>"},
		stop:     []string{"</s>"},
		jinja: "{% if messages[0]['role'] == 'system' %}" +
			"{% set sys = '<<SYS>>\\n' + messages[0]['content'] | trim + '\\n<</SYS>>\\n\\n' %}{% set msgs = messages[1:] %}" +
			"{% else %}{% set sys = '' %}{% set msgs = messages %}{% endif %}" +
			"{% for message in msgs %}" +
			"{% if message['role'] == 'user' %}" +
			"{{ bos_token + '[INST] ' + (sys if loop.first else '') + message['content'] | trim + ' [/INST]' }}" +
			"{% elif message['role'] == 'assistant' %}" +
			"{{ ' ' + message['content'] | trim + ' ' + eos_token }}" +
			"{% endif %}{% endfor %}",
		render: renderLlama2,
	},
}

// ChatTemplate returns the template called name: "chatml" or "llama2".
func ChatTemplate(name string) (*Template, error) {
	if t, ok := templates[strings.ToLower(name)]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("chat template %q unknown (have %s)", name, strings.Join(ChatTemplates(), ", "))
}

// ChatTemplates lists the template names.
func ChatTemplates() []string {
	var names []string
	for n := range templates {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DetectChatTemplate picks the template a GGUF tokenizer.chat_template
// (Jinja source, which this package does not execute) describes, from the
// markers it uses.
func DetectChatTemplate(jinja string) (*Template, bool) {
	switch {
	case strings.Contains(jinja, "<|im_start|>"):
		return templates["chatml"], true
	case strings.Contains(jinja, "[INST]"):
		return templates["llama2"], true
	}
	return nil, false
}

// GGUFChatTemplate returns the template a GGUF file's
// tokenizer.chat_template describes, if any and if known.
func GGUFChatTemplate(f *gguf.File) (*Template, bool) {
	src, err := f.String(gguf.KeyChatTemplate)
	if err != nil {
		return nil, false
	}
	return DetectChatTemplate(src)
}

// chatBuilder accumulates text and spans.
type chatBuilder struct {
	sb      strings.Builder
	markers []Span
	content []Span
	train   []Span
	trainAt int // start of the open training span, -1 if none
}

func (b *chatBuilder) lit(s string) { b.sb.WriteString(s) }

func (b *chatBuilder) mark(s string) {
	start := b.sb.Len()
	b.sb.WriteString(s)
	b.markers = append(b.markers, Span{start, b.sb.Len()})
}

// assistant writes the separator the template puts after the generation
// prompt and the assistant content, and opens the training span at the
// separator.
func (b *chatBuilder) assistant(sep, s string) {
	b.trainAt = b.sb.Len()
	b.sb.WriteString(sep)
	start := b.sb.Len()
	b.sb.WriteString(s)
	b.content = append(b.content, Span{start, b.sb.Len()})
}

// endTurn writes the end-of-turn marker, closing an open training span.
func (b *chatBuilder) endTurn(s string, isAssistant bool) {
	b.mark(s)
	if isAssistant {
		b.train = append(b.train, Span{b.trainAt, b.sb.Len()})
	}
}

func (b *chatBuilder) chat() Chat {
	return Chat{Text: b.sb.String(), Markers: b.markers, Content: b.content, Train: b.train}
}

// renderChatML: "<|im_start|>{role}\n{content}<|im_end|>\n" per message.
func renderChatML(b *chatBuilder, msgs []Message, generate bool) error {
	for i, m := range msgs {
		if m.Role == "" || strings.ContainsAny(m.Role, "\n") || strings.Contains(m.Role, "<|") {
			return fmt.Errorf("message %d: bad role %q", i, m.Role)
		}
		b.mark("<|im_start|>")
		b.lit(m.Role + "\n")
		if m.Role == RoleAssistant {
			b.assistant("", m.Content)
		} else {
			b.lit(m.Content)
		}
		b.endTurn("<|im_end|>", m.Role == RoleAssistant)
		b.lit("\n")
	}
	if generate {
		b.mark("<|im_start|>")
		b.lit(RoleAssistant + "\n")
	}
	return nil
}

// renderLlama2 follows Meta's Llama 2 chat format: each user/assistant
// exchange is "<s>[INST] {user} [/INST] {assistant} </s>", contents
// stripped of surrounding space, a system prompt folded into the first user
// message as "<<SYS>>\n{system}\n<</SYS>>\n\n".
func renderLlama2(b *chatBuilder, msgs []Message, generate bool) error {
	sys := ""
	if msgs[0].Role == RoleSystem {
		sys = msgs[0].Content
		msgs = msgs[1:]
		if len(msgs) == 0 {
			return fmt.Errorf("a system message alone: llama2 needs a user message after it")
		}
	}
	for i := 0; i < len(msgs); i += 2 {
		u := msgs[i]
		if u.Role != RoleUser {
			return fmt.Errorf("message %d: role %q where llama2 expects %q (user and assistant alternate)", i, u.Role, RoleUser)
		}
		b.mark("<s>")
		b.lit("[INST] ")
		if i == 0 && sys != "" {
			b.lit("<<SYS>>\n" + strings.TrimSpace(sys) + "\n<</SYS>>\n\n")
		}
		b.lit(strings.TrimSpace(u.Content) + " [/INST]")
		if i+1 == len(msgs) {
			if !generate {
				return fmt.Errorf("message %d: the user message has no assistant reply (render with generate to prompt)", i)
			}
			return nil
		}
		a := msgs[i+1]
		if a.Role != RoleAssistant {
			return fmt.Errorf("message %d: role %q where llama2 expects %q (user and assistant alternate)", i+1, a.Role, RoleAssistant)
		}
		b.assistant(" ", strings.TrimSpace(a.Content))
		b.lit(" ")
		b.endTurn("</s>", true)
	}
	return nil
}

// EncodeChat tokenizes a rendered chat with any vocabulary, BOS first when
// bos is set and the vocabulary has one. A SentencePiece vocabulary uses
// its EncodeChat (markers as special ids); any other encodes the text piece
// by piece, cut at the edges of the training spans, so each token lies in
// one piece. train[i] reports whether token i is trained on.
func EncodeChat(tok Tokenizer, c Chat, bos bool) (ids []int, train []bool, err error) {
	if sp, ok := tok.(*SentencePiece); ok {
		return sp.EncodeChat(c, bos && sp.BOS() >= 0)
	}
	cuts := []int{0, len(c.Text)}
	for _, s := range c.Train {
		cuts = append(cuts, s.Start, s.End)
	}
	sort.Ints(cuts)
	for i := 0; i+1 < len(cuts); i++ {
		lo, hi := cuts[i], cuts[i+1]
		if lo == hi {
			continue
		}
		piece, err := tok.Encode(c.Text[lo:hi], false, false)
		if err != nil {
			return nil, nil, err
		}
		in := false
		for _, s := range c.Train {
			if lo >= s.Start && hi <= s.End {
				in = true
			}
		}
		ids = append(ids, piece...)
		for range piece {
			train = append(train, in)
		}
	}
	if b := tok.BOS(); bos && b >= 0 && (len(ids) == 0 || ids[0] != b) {
		ids = append([]int{b}, ids...)
		train = append([]bool{false}, train...)
	}
	return ids, train, nil
}

// EncodeChat tokenizes a rendered chat: the template's markers become their
// special ids (or plain text when the vocabulary lacks them), everything
// else — message contents included — is plain text, so a message cannot
// inject a marker. The plain text is also cut at the edges of the Train
// spans, so no token straddles one: train[i] reports whether token i lies
// in a Train span, and the tokens before a span are those of the
// generation prompt for the messages before it.
// With bos set a BOS comes first unless the chat already starts with one.
func (t *SentencePiece) EncodeChat(c Chat, bos bool) (ids []int, train []bool, err error) {
	var spans []Span
	var m merger
	prevSpecial := true
	var cuts []int
	for _, tr := range c.Train {
		cuts = append(cuts, tr.Start, tr.End)
	}
	sort.Ints(cuts)
	run := func(from, to int) error {
		if from >= to {
			return nil
		}
		var err error
		ids, spans, err = m.run(t, c.Text, from, to, t.prefix && prevSpecial, ids, spans, true)
		prevSpecial = false
		return err
	}
	plain := func(from, to int) error {
		for _, x := range cuts {
			if x > from && x < to {
				if err := run(from, x); err != nil {
					return err
				}
				from = x
			}
		}
		return run(from, to)
	}
	at := 0
	for _, mk := range c.Markers {
		if mk.Start < at || mk.End > len(c.Text) || mk.End < mk.Start {
			return nil, nil, fmt.Errorf("tokenizer: chat marker span %v out of order or range", mk)
		}
		id, ok := t.specials.byText[c.Text[mk.Start:mk.End]]
		if !ok {
			continue // not a special of this vocabulary: plain template text
		}
		if err := plain(at, mk.Start); err != nil {
			return nil, nil, err
		}
		ids = append(ids, id)
		spans = append(spans, mk)
		prevSpecial = true
		at = mk.End
	}
	if err := plain(at, len(c.Text)); err != nil {
		return nil, nil, err
	}
	if bos && (len(ids) == 0 || ids[0] != t.bos) {
		if t.bos < 0 {
			return nil, nil, fmt.Errorf("tokenizer: BOS requested but the vocabulary has no BOS token")
		}
		ids = append([]int{t.bos}, ids...)
		spans = append([]Span{{0, 0}}, spans...)
	}
	train = make([]bool, len(ids))
	for i, s := range spans {
		for _, tr := range c.Train {
			if s.Start < tr.End && (s.End > tr.Start || (s.Start == s.End && s.Start >= tr.Start)) {
				train[i] = true
				break
			}
		}
	}
	return ids, train, nil
}
