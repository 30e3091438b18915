package tokenizer

import (
	"strings"
	"testing"
)

func TestParseSpecial(t *testing.T) {
	tok := loadTok512(t)
	plain, _ := tok.Encode("Once", false, false)
	got, err := tok.EncodeWith("<s>Once</s>", EncodeOptions{ParseSpecial: true})
	if err != nil {
		t.Fatal(err)
	}
	// After a special the text gets the dummy prefix again (llama.cpp).
	if want := append(append([]int{1}, plain...), 2); !sameIDs(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Off: the marker is plain text and no control id appears.
	off, _ := tok.Encode("<s>Once</s>", false, false)
	for _, id := range off {
		if id == 1 || id == 2 {
			t.Fatalf("plain encoding produced a control id: %v", off)
		}
	}
	if s, _ := tok.Decode(off); s != "<s>Once</s>" {
		t.Fatalf("plain round trip %q", s)
	}
	if id, ok := tok.ID("<s>"); !ok || id != 1 {
		t.Errorf("ID(<s>) = %d, %v", id, ok)
	}
	sp := tok.Specials()
	if sp["<s>"] != 1 || sp["</s>"] != 2 || sp["<unk>"] != 0 || len(sp) != 3 {
		t.Errorf("specials %v", sp)
	}
	// "<unk>" text parses to the unknown id when special parsing is on.
	if ids, _ := tok.EncodeWith("<unk>", EncodeOptions{ParseSpecial: true}); !sameIDs(ids, []int{0}) {
		t.Errorf("<unk> parsed as %v", ids)
	}
}

func TestSpecialLongestMatchAndUserDefined(t *testing.T) {
	v := SPMVocab{
		Pieces: []string{"<unk>", "<s>", "</s>", " ", "a", "b", " a", "<|x|>", "<|x|>y", "@@"},
		Scores: []float32{0, 0, 0, -1, -2, -3, -1, 0, 0, 0},
		Types: []TokenType{TokenUnknown, TokenControl, TokenControl, TokenNormal, TokenNormal, TokenNormal, TokenNormal,
			TokenControl, TokenControl, TokenUserDefined},
		BOS: 1, EOS: 2, Unknown: 0, Pad: -1,
	}
	tok, err := NewSentencePiece(v)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tok.EncodeWith("a<|x|>yb<|x|>a", EncodeOptions{ParseSpecial: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{6, 8, 3, 5, 7, 6}; !sameIDs(ids, want) {
		t.Fatalf("got %v, want %v", ids, want)
	}
	// User-defined pieces split the text even without ParseSpecial, as in
	// SentencePiece; control pieces do not. "c" is not in the vocabulary and
	// there are no byte tokens: <unk>.
	ids, _ = tok.Encode("a@@<|x|>c", false, false)
	if want := []int{6, 9, 0, 0, 0, 0, 0, 0, 0, 0}; len(ids) < 3 || ids[0] != 6 || ids[1] != 9 || !sameIDs(ids[:2], want[:2]) {
		t.Fatalf("got %v", ids)
	}
	for _, id := range ids[2:] {
		if id == 7 || id == 8 {
			t.Fatalf("control piece matched without ParseSpecial: %v", ids)
		}
	}
	if _, err := tok.AddSpecial(""); err == nil {
		t.Error("empty special accepted")
	}
	// A normal piece registered as special stops merging.
	id, _ := tok.AddSpecial(" a")
	if id != 6 {
		t.Fatalf("AddSpecial of existing piece gave %d", id)
	}
	ids, _ = tok.Encode("a", false, false)
	if !sameIDs(ids, []int{3, 4}) {
		t.Fatalf("after AddSpecial: %v", ids)
	}
}

func TestEncodeOffsets(t *testing.T) {
	tok := loadTok512(t)
	text := "Once upon a time, naïve 🙂\x80 x"
	ids, spans, err := tok.EncodeOffsets(text, EncodeOptions{BOS: true, EOS: true})
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := tok.Encode(text, true, true)
	if !sameIDs(ids, plain) || len(spans) != len(ids) {
		t.Fatalf("ids %v vs %v, %d spans", ids, plain, len(spans))
	}
	var sb strings.Builder
	at := 0
	for i, s := range spans {
		if s.Start != at && !(s.Start == s.End && s.Start <= at) {
			t.Fatalf("span %d %v does not continue at %d", i, s, at)
		}
		sb.WriteString(text[s.Start:s.End])
		if s.End > at {
			at = s.End
		}
		p, _ := tok.Piece(-1, ids[i])
		if got := text[s.Start:s.End]; string(p) != got && string(p) != " "+got {
			t.Errorf("token %d (%q) covers %q", i, p, got)
		}
	}
	if sb.String() != text {
		t.Fatalf("spans cover %q", sb.String())
	}
}

// TestEncodeChatUserDefinedMarkers: with the chat markers user-defined (as
// `tokenizer train --special` makes them), EncodeChat places the dummy
// prefix as Encode does (after every special, as llama.cpp does) and decode
// drops it again, so the ids decode to the rendered text exactly.
func TestEncodeChatUserDefinedMarkers(t *testing.T) {
	tm, _ := ChatTemplate("chatml")
	text := strings.Repeat("Be brief. Hi there, how are you? Hello! is a marker.\n", 40)
	v, err := Train(strings.NewReader(text), TrainOptions{VocabSize: 320, Style: StyleSentencePiece, Special: tm.Specials()})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := v.SentencePiece()
	if err != nil {
		t.Fatal(err)
	}
	c, _ := tm.Render(chatConv[:3], false)
	ids, _, err := tok.EncodeChat(c, false)
	if err != nil {
		t.Fatal(err)
	}
	if back, _ := tok.Decode(ids); back != c.Text {
		t.Fatalf("EncodeChat decodes as %q, want %q", back, c.Text)
	}
	// The same ids as Encode where the content holds no marker.
	c, _ = tm.Render([]Message{{Role: RoleUser, Content: "Hi there"}}, false)
	plain, _ := tok.Encode(c.Text, false, false)
	if ids, _, _ = tok.EncodeChat(c, false); !sameIDs(ids, plain) {
		t.Fatalf("EncodeChat %v, Encode %v", ids, plain)
	}
}
