package tokenizer

import (
	"fmt"
	"sort"
	"strings"
)

// specialSet finds the text of special tokens in input. Control and unknown
// tokens are recognised only when special parsing is on; user-defined
// tokens always are (as SentencePiece and llama.cpp do).
type specialSet struct {
	byText map[string]int
	first  [256][]specialEntry // by first byte, longest text first
	always bool                // some entry is matched even without ParseSpecial
}

type specialEntry struct {
	text   string
	id     int
	always bool
}

// specialText is the text a special token is written as in input. llama2.c's
// tokenizer.bin spells BOS and EOS "\n<s>\n" and "\n</s>\n"; the newlines
// are export artefacts, so the token is matched as "<s>".
func specialText(piece string) string {
	if len(piece) > 2 && piece[0] == '\n' && piece[len(piece)-1] == '\n' {
		if in := strings.Trim(piece, "\n"); in != "" {
			return in
		}
	}
	return piece
}

func buildSpecials(t *SentencePiece) specialSet {
	s := specialSet{byText: map[string]int{}}
	for id, p := range t.pieces {
		typ := t.types[id]
		if typ != TokenControl && typ != TokenUnknown && typ != TokenUserDefined {
			continue
		}
		text := specialText(p)
		if text == "" {
			continue
		}
		if _, dup := s.byText[text]; dup {
			continue
		}
		s.byText[text] = id
		e := specialEntry{text: text, id: id, always: typ == TokenUserDefined}
		s.always = s.always || e.always
		s.first[text[0]] = append(s.first[text[0]], e)
	}
	for i := range s.first {
		sort.SliceStable(s.first[i], func(a, b int) bool { return len(s.first[i][a].text) > len(s.first[i][b].text) })
	}
	return s
}

// split calls fn for each plain fragment (special == -1) and each special
// token of text, in order; a special is the longest entry matching at the
// earliest position.
func (s *specialSet) split(text string, parse bool, fn func(start, end, special int) error) error {
	if !parse && !s.always {
		if text == "" {
			return nil
		}
		return fn(0, len(text), -1)
	}
	last := 0
	for i := 0; i < len(text); {
		var hit *specialEntry
		for k := range s.first[text[i]] {
			e := &s.first[text[i]][k]
			if (parse || e.always) && strings.HasPrefix(text[i:], e.text) {
				hit = e
				break
			}
		}
		if hit == nil {
			i++
			continue
		}
		if last < i {
			if err := fn(last, i, -1); err != nil {
				return err
			}
		}
		if err := fn(i, i+len(hit.text), hit.id); err != nil {
			return err
		}
		i += len(hit.text)
		last = i
	}
	if last < len(text) {
		return fn(last, len(text), -1)
	}
	return nil
}

// Specials lists the special tokens' input texts and ids, by id.
func (t *SentencePiece) Specials() map[string]int {
	m := make(map[string]int, len(t.specials.byText))
	for k, v := range t.specials.byText {
		m[k] = v
	}
	return m
}

// AddSpecial registers text as a control token and returns its id: the
// existing token if the vocabulary already has that text (a normal piece
// then becomes a control token), else a new token appended with score 0
// (which grows VocabSize, so the model's embedding must grow with it).
// It must not run concurrently with Encode.
func (t *SentencePiece) AddSpecial(text string) (int, error) {
	if text == "" {
		return 0, fmt.Errorf("tokenizer: empty special token")
	}
	if id, ok := t.specials.byText[text]; ok {
		return id, nil
	}
	for id, p := range t.pieces {
		if p == text && t.types[id] != TokenByte {
			t.types[id] = TokenControl
			t.rebuild()
			return id, nil
		}
	}
	t.pieces = append(t.pieces, text)
	t.scores = append(t.scores, 0)
	t.types = append(t.types, TokenControl)
	t.rebuild()
	return len(t.pieces) - 1, nil
}
