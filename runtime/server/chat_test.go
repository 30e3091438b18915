package server

import (
	"slices"
	"testing"

	"github.com/modelc/modelc/runtime/posttrain"
	"github.com/modelc/modelc/runtime/posttrain/tasks"
	"github.com/modelc/modelc/tokenizer"
)

// TestChatPromptIsTrainingPrefix: the tokens the server prompts a chat
// with are the untrained prefix SFT (posttrain.Encoder) trains a reply
// after, for replies whose first letter tok512 merges with the template's
// space before it (" T", " B") and ones it does not ("K", digits) alike.
func TestChatPromptIsTrainingPrefix(t *testing.T) {
	tok := tok512(t)
	convs := [][]tasks.Message{
		{{Role: tokenizer.RoleUser, Content: "The capital of Lanolur is Nover.\n\nQuestion: What is the capital of Lanolur?"}},
		{{Role: tokenizer.RoleSystem, Content: "Answer briefly."}, {Role: tokenizer.RoleUser, Content: "In which year was Lanolur founded?"}},
	}
	for _, name := range tokenizer.ChatTemplates() {
		tmpl, _ := tokenizer.ChatTemplate(name)
		f := TemplateFormat(tmpl, tok)
		e := &posttrain.Encoder{Tok: tok, Template: tmpl}
		for ci, conv := range convs {
			var msgs []tokenizer.Message
			for _, m := range conv {
				msgs = append(msgs, tokenizer.Message{Role: m.Role, Content: m.Content})
			}
			served, err := f.Encode(msgs)
			if err != nil {
				t.Fatal(err)
			}
			if len(conv) == 1 {
				if pr, err := e.Prompt(conv[0].Content); err != nil || !slices.Equal(pr, served) {
					t.Errorf("%s: Encoder.Prompt %v (%v), the server prompts with %v", name, pr, err, served)
				}
			}
			for _, reply := range []string{"Nover", "The capital is Nover.", "Bovo", "Kalo", "Zeth", "3478", "42"} {
				c := posttrain.Conversation{Messages: append(slices.Clone(conv), tasks.Message{Role: tokenizer.RoleAssistant, Content: reply})}
				ids, train, err := e.Encode(c)
				if err != nil {
					t.Fatal(err)
				}
				first := slices.Index(train, true)
				if first < 0 || !slices.Equal(ids[:first], served) {
					t.Errorf("%s conv %d reply %q: trained after %v, the server prompts with %v", name, ci, reply, ids[:max(first, 0)], served)
				}
			}
		}
	}
}
