package posttrain

import (
	"fmt"

	"github.com/modelc/modelc/runtime/posttrain/tasks"
	"github.com/modelc/modelc/tokenizer"
)

// Encoder renders conversations with a chat template and tokenizes them,
// marking the tokens fine-tuning learns (assistant content and the marker
// that ends its turn).
type Encoder struct {
	Tok      tokenizer.Tokenizer
	Template *tokenizer.Template
}

func toMessages(ms []tasks.Message) []tokenizer.Message {
	out := make([]tokenizer.Message, len(ms))
	for i, m := range ms {
		out[i] = tokenizer.Message{Role: m.Role, Content: m.Content}
	}
	return out
}

// Encode returns the tokens of a conversation and, per token, whether it
// is trained on.
func (e *Encoder) Encode(c Conversation) (ids []int, train []bool, err error) {
	chat, err := e.Template.Render(toMessages(c.Messages), false)
	if err != nil {
		return nil, nil, err
	}
	return e.encodeChat(chat)
}

// Prompt returns the tokens that prompt the model for a reply to a user
// message: the template's generation prompt, BOS first — the tokens the chat
// server prompts with, and exactly the untrained prefix of any encoded
// exchange with that message, whatever the reply begins with (the template's
// separator before the reply is trained, tokenizer.Chat.Train).
func (e *Encoder) Prompt(user string) ([]int, error) {
	chat, err := e.Template.Render([]tokenizer.Message{{Role: tokenizer.RoleUser, Content: user}}, true)
	if err != nil {
		return nil, err
	}
	ids, _, err := e.encodeChat(chat)
	return ids, err
}

// Reply encodes prompt and reply as one exchange; train marks the reply's
// tokens.
func (e *Encoder) Reply(prompt, reply string) (ids []int, train []bool, err error) {
	return e.Encode(Conversation{Messages: []tasks.Message{{Role: tokenizer.RoleUser, Content: prompt}, {Role: tokenizer.RoleAssistant, Content: reply}}})
}

func (e *Encoder) encodeChat(chat tokenizer.Chat) ([]int, []bool, error) {
	return tokenizer.EncodeChat(e.Tok, chat, true)
}

// Example is an encoded conversation.
type Example struct {
	IDs   []int
	Train []bool
}

// EncodeAll encodes conversations; errors name the conversation.
func (e *Encoder) EncodeAll(cs []Conversation) ([]Example, error) {
	out := make([]Example, len(cs))
	for i, c := range cs {
		ids, tr, err := e.Encode(c)
		if err != nil {
			return nil, fmt.Errorf("conversation %d: %w", i+1, err)
		}
		n := 0
		for _, t := range tr {
			if t {
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("conversation %d: no assistant token after encoding", i+1)
		}
		out[i] = Example{ids, tr}
	}
	return out, nil
}

// Row is one packed training sequence of T tokens.
type Row struct {
	Tokens, Targets []int32
}

// Pack packs examples greedily, in order, into rows of T input tokens:
// an example goes into the current row when it fits, else starts a new
// one. Position i's target is token i+1 when that token is trained on,
// IgnoreTarget (-1) otherwise, so the loss falls on assistant tokens only.
// Examples longer than T+1 tokens are cut to T+1; the count of cut ones is
// returned. Packed examples see earlier ones in the row through causal
// attention: harmless for short independent chats, and far cheaper than
// one padded row each.
func Pack(exs []Example, T int, pad int32) (rows []Row, cut int) {
	var cur []int
	var curTrain []bool
	flush := func() {
		if len(cur) == 0 {
			return
		}
		r := Row{Tokens: make([]int32, T), Targets: make([]int32, T)}
		for i := range T {
			r.Tokens[i], r.Targets[i] = pad, -1
			if i < len(cur) {
				r.Tokens[i] = int32(cur[i])
			}
			if i+1 < len(cur) && curTrain[i+1] {
				r.Targets[i] = int32(cur[i+1])
			}
		}
		rows = append(rows, r)
		cur, curTrain = cur[:0], curTrain[:0]
	}
	for _, ex := range exs {
		ids, tr := ex.IDs, ex.Train
		if len(ids) > T+1 {
			ids, tr = ids[:T+1], tr[:T+1]
			cut++
		}
		// A row holds T inputs and the target of the last: T+1 tokens, and
		// an example continuing the row's last token keeps its own first.
		if len(cur)+len(ids) > T+1 {
			flush()
		}
		cur = append(cur, ids...)
		curTrain = append(curTrain, tr...)
	}
	flush()
	return rows, cut
}
