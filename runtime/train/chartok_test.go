package train

import (
	"fmt"
	"sort"
	"strings"
)

// charTok is a character-level tokenizer for tests: one id per distinct
// rune of a text, plus a mask token after them.
type charTok struct {
	runes []rune
	ids   map[rune]int
	mask  bool
}

func newCharTok(text string, mask bool) *charTok {
	set := map[rune]bool{}
	for _, r := range text {
		set[r] = true
	}
	t := &charTok{ids: map[rune]int{}, mask: mask}
	for r := range set {
		t.runes = append(t.runes, r)
	}
	sort.Slice(t.runes, func(i, j int) bool { return t.runes[i] < t.runes[j] })
	for i, r := range t.runes {
		t.ids[r] = i
	}
	return t
}

func (t *charTok) Encode(text string, bos, eos bool) ([]int, error) {
	ids := make([]int, 0, len(text))
	for _, r := range text {
		id, ok := t.ids[r]
		if !ok {
			return nil, fmt.Errorf("charTok: no token for %q", r)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func (t *charTok) Piece(prev, next int) ([]byte, error) {
	if next < 0 || next >= len(t.runes) {
		return nil, fmt.Errorf("charTok: id %d", next)
	}
	return []byte(string(t.runes[next])), nil
}

func (t *charTok) Decode(ids []int) (string, error) {
	var b strings.Builder
	for _, id := range ids {
		p, err := t.Piece(0, id)
		if err != nil {
			return "", err
		}
		b.Write(p)
	}
	return b.String(), nil
}

func (t *charTok) VocabSize() int {
	if t.mask {
		return len(t.runes) + 1
	}
	return len(t.runes)
}
func (t *charTok) BOS() int { return -1 }
func (t *charTok) EOS() int { return -1 }

// MaskID implements MaskTokenizer when the tokenizer has a mask token.
func (t *charTok) MaskID() (int, bool) { return len(t.runes), t.mask }
