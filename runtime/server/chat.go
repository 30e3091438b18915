package server

import (
	"fmt"

	"github.com/modelc/modelc/tokenizer"
)

// ChatFormat turns a conversation into prompt tokens and says where the
// model's turn ends.
type ChatFormat interface {
	// Name names the format (shown by /v1/models and in errors).
	Name() string
	// Encode renders msgs followed by the opening of an assistant turn and
	// tokenizes the result, BOS first.
	Encode(msgs []tokenizer.Message) ([]int, error)
	// Stops are texts that end the assistant's turn.
	Stops() []string
	// StopIDs are token ids that end the assistant's turn.
	StopIDs() []int
}

type specialer interface {
	Specials() map[string]int
}

// TemplateFormat is a ChatFormat from one of the tokenizer package's chat
// templates. When the tokenizer knows the template's markers as special
// tokens they are encoded as those ids (so message text cannot forge them)
// and generating the end-of-turn id stops the turn.
func TemplateFormat(t *tokenizer.Template, tok tokenizer.Tokenizer) ChatFormat {
	f := &templateFormat{t: t, tok: tok, stops: t.Stop()}
	if sp, ok := tok.(specialer); ok {
		specials := sp.Specials()
		for _, s := range f.stops {
			if id, ok := specials[s]; ok {
				f.stopIDs = append(f.stopIDs, id)
			}
		}
	}
	return f
}

type templateFormat struct {
	t       *tokenizer.Template
	tok     tokenizer.Tokenizer
	stops   []string
	stopIDs []int
}

func (f *templateFormat) Name() string    { return f.t.Name() }
func (f *templateFormat) Stops() []string { return f.stops }
func (f *templateFormat) StopIDs() []int  { return f.stopIDs }

// Encode is the template's generation prompt tokenized as fine-tuning
// tokenizes conversations (tokenizer.EncodeChat): the same tokens as the
// untrained prefix of a trained reply to msgs (posttrain.Encoder).
func (f *templateFormat) Encode(msgs []tokenizer.Message) ([]int, error) {
	c, err := f.t.Render(msgs, true)
	if err != nil {
		return nil, err
	}
	ids, _, err := tokenizer.EncodeChat(f.tok, c, true)
	if err != nil {
		return nil, fmt.Errorf("chat template %s: %w", f.t.Name(), err)
	}
	return ids, nil
}
