package posttrain

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/modelc/modelc/runtime/posttrain/tasks"
	"github.com/modelc/modelc/runtime/train"
	"github.com/modelc/modelc/tokenizer"
)

// TestMask: the targets of a packed row are exactly the assistant tokens
// (content and end of turn); everything else is -1.
func TestMask(t *testing.T) {
	tok := tok512(t)
	tmpl, _ := tokenizer.ChatTemplate("llama2")
	e := &Encoder{Tok: tok, Template: tmpl}
	p := tasks.Problem{Prompt: "What is 3 + 4?", Answer: 7, Reasoning: "3+4=7"}
	ids, trainMask, err := e.Encode(tasks.SFT(p))
	if err != nil {
		t.Fatal(err)
	}
	var trained, other []int
	for i, id := range ids {
		if trainMask[i] {
			trained = append(trained, id)
		} else {
			other = append(other, id)
		}
	}
	if trained[len(trained)-1] != tok.EOS() {
		t.Fatalf("the trained tokens do not end with EOS (</s>): %v", trained)
	}
	// The trained tokens start at the template's space after "[/INST]" (the
	// model learns to emit it) and end with " </s>". Decoded after the last
	// untrained token, so a leading space is kept.
	first := slices.Index(trainMask, true)
	var got []byte
	for i := first; i < len(ids)-1; i++ {
		b, err := tok.Piece(ids[i-1], ids[i])
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b...)
	}
	if string(got) != " "+p.Solution()+" " {
		t.Fatalf("trained tokens decode to %q, want %q", got, " "+p.Solution()+" ")
	}
	if o, _ := tok.Decode(other); !strings.Contains(o, "What is 3 + 4?") || strings.Contains(o, "Answer") {
		t.Fatalf("untrained tokens decode to %q", o)
	}

	// Two examples packed in one row of 128: targets only on trained tokens.
	T := 128
	rows, cut := Pack([]Example{{ids, trainMask}, {ids, trainMask}}, T, 0)
	if cut != 0 || len(rows) != 1 {
		t.Fatalf("%d rows, %d cut; example of %d tokens", len(rows), cut, len(ids))
	}
	r := rows[0]
	all := append(slices.Clone(ids), ids...)
	allMask := append(slices.Clone(trainMask), trainMask...)
	n := 0
	for i := range T {
		want := int32(-1)
		if i+1 < len(all) && allMask[i+1] {
			want = int32(all[i+1])
			n++
		}
		if r.Targets[i] != want {
			t.Fatalf("position %d: target %d, want %d", i, r.Targets[i], want)
		}
		if i < len(all) && r.Tokens[i] != int32(all[i]) {
			t.Fatalf("position %d: token %d, want %d", i, r.Tokens[i], all[i])
		}
	}
	if n != 2*len(trained) {
		t.Fatalf("%d targets, want %d", n, 2*len(trained))
	}
	// A row too short for both: two rows; too short for one: cut.
	if rows, _ := Pack([]Example{{ids, trainMask}, {ids, trainMask}}, len(ids), 0); len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	if _, cut := Pack([]Example{{ids, trainMask}}, 10, 0); cut != 1 {
		t.Fatalf("cut %d", cut)
	}
}

func sftData(t *testing.T, dir string) (string, string) {
	var tr, va []tasks.Conversation
	for _, p := range problems(t, 60, false) {
		tr = append(tr, tasks.SFT(p))
	}
	for _, p := range problems(t, 10, true) {
		va = append(va, tasks.SFT(p))
	}
	return writeJSONL(t, dir, "train.jsonl", tr), writeJSONL(t, dir, "val.jsonl", va)
}

// TestSFTLearnsAndResumes: the held-out loss falls, and a run stopped
// halfway and resumed ends with the same weights bit for bit.
func TestSFTLearnsAndResumes(t *testing.T) {
	dir := t.TempDir()
	data, val := sftData(t, dir)
	cfg := SFTConfig{Common: Common{Spec: tinySpec(), Tok: tok512(t), Hyper: hyper(40), Batch: 4, Seq: 96}, Data: data, Val: val}
	cfg.Hyper.EvalEvery = 20
	cfg.Out = filepath.Join(dir, "a")
	res, err := SFT(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := readMetrics(filepath.Join(cfg.Out, train.MetricsFile), 1000)
	if err != nil || len(ms) != 40 {
		t.Fatalf("%d metrics, %v", len(ms), err)
	}
	first, lastVal := ms[0].Loss, res.Metrics["val_loss"]
	if !(lastVal < first-1) {
		t.Fatalf("validation loss %.3f after 40 steps, first training loss %.3f", lastVal, first)
	}

	b := cfg
	b.Out = filepath.Join(dir, "b")
	b.StopAfter = 15
	if _, err := SFT(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	b.StopAfter, b.Resume = 0, true
	if _, err := SFT(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	wa, _ := os.ReadFile(filepath.Join(cfg.Out, train.ModelFile))
	wb, _ := os.ReadFile(filepath.Join(b.Out, train.ModelFile))
	if len(wa) == 0 || string(wa) != string(wb) {
		t.Fatal("the resumed run's weights differ from the uninterrupted run's")
	}
	mb, _ := readMetrics(filepath.Join(b.Out, train.MetricsFile), 1000)
	if len(mb) != 40 || mb[39].Loss != ms[39].Loss {
		t.Fatalf("resumed metrics: %d lines", len(mb))
	}
	// A fresh run into a used folder is refused.
	if _, err := SFT(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("reused folder: %v", err)
	}
}

func TestBadConversations(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}` + "\n\n" + `{"messages":[{"role":"user"`, "x.jsonl:3: malformed JSON"},
		{`{"messages":[{"role":"user","content":"hi"}]}`, "x.jsonl:1: the conversation has no assistant turn"},
		{`{"messages":[{"role":"bot","content":"hi"}]}`, `x.jsonl:1: message 0: role "bot"`},
		{`{"messages":[]}`, `x.jsonl:1: no "messages"`},
		{`{"msgs":[]}`, `x.jsonl:1: malformed JSON: json: unknown field "msgs"`},
		// Types in the file's terms, not Go's.
		{`{"messages":"hi"}`, `x.jsonl:1: malformed JSON: "messages": want a list, got string`},
		{`{"messages":[{"role":"user","content":7}]}`, `x.jsonl:1: malformed JSON: "messages.content": want a string, got number`},
		{`"hi"`, `x.jsonl:1: malformed JSON: the line: want an object, got string`},
		{``, `x.jsonl: no conversations`},
	} {
		_, err := ParseConversations("x.jsonl", strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.in, err, c.want)
		}
	}
}

func TestBadPreferences(t *testing.T) {
	good := `{"prompt":"p","chosen":"a","rejected":"b"}`
	for _, c := range []struct{ in, want string }{
		{good + "\n" + `{"prompt":"p","chosen":"a"}`, `x:2: need "chosen" and "rejected"`},
		{good + "\n" + `{"prompt":"p","ranking":["a"]}`, `x:2: "ranking" has 1 replies`},
		{`{"chosen":"a","rejected":"b"}`, `x:1: "prompt" is missing`},
		{`[1,2]`, `x:1: malformed JSON`},
		{`{"prompt":"p","ranking":["a","b"],"chosen":"a","rejected":"b"}`, `not both`},
	} {
		_, err := ParsePreferences("x", strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.in, err, c.want)
		}
	}
	ps, err := ParsePreferences("x", strings.NewReader(good+"\n"+`{"prompt":"q","ranking":["a","b","c"]}`))
	if err != nil || len(ps) != 4 || ps[1] != (Pair{Prompt: "q", Chosen: "a", Rejected: "b"}) || ps[2] != (Pair{Prompt: "q", Chosen: "a", Rejected: "c"}) || ps[3] != (Pair{Prompt: "q", Chosen: "b", Rejected: "c"}) {
		t.Fatalf("%v %v", ps, err)
	}
}

func FuzzParsePreferences(f *testing.F) {
	f.Add(`{"prompt":"p","ranking":["a","b","c"]}`)
	f.Add(`{"prompt":"p","chosen":"a","rejected":"b"}`)
	f.Fuzz(func(t *testing.T, s string) {
		ParsePreferences("f", strings.NewReader(s))
		ParseConversations("f", strings.NewReader(s))
		ParseProblems("f", strings.NewReader(s))
	})
}

// TestPromptMatchesTraining: the generation prompt is the training
// sequence's prefix up to its first trained token.
func TestPromptMatchesTraining(t *testing.T) {
	tmpl, _ := tokenizer.ChatTemplate("llama2")
	e := &Encoder{Tok: tok512(t), Template: tmpl}
	p := tasks.Problem{Prompt: "What is 12 + 30?", Answer: 42, Reasoning: "2+0=2, 1+3=4"}
	ids, tr, err := e.Encode(tasks.SFT(p))
	if err != nil {
		t.Fatal(err)
	}
	pr, err := e.Prompt(p.Prompt)
	if err != nil {
		t.Fatal(err)
	}
	if len(pr) >= len(ids) || !slices.Equal(pr, ids[:len(pr)]) || !tr[len(pr)] || tr[len(pr)-1] {
		t.Fatalf("prompt %v is not the untrained prefix of %v", pr, ids)
	}
}

// TestPromptSharedPrefix: whatever a reply begins with — a letter tok512
// merges with the space before it (" T", " B") or one it does not ("K",
// digits) — the untrained prefix of the exchange is the same tokens, and
// they are Prompt's (the template's generation prompt, which the chat
// server also uses).
func TestPromptSharedPrefix(t *testing.T) {
	user := "The capital of Lanolur is Nover.\n\nQuestion: What is the capital of Lanolur?"
	for _, name := range tokenizer.ChatTemplates() {
		tmpl, _ := tokenizer.ChatTemplate(name)
		e := &Encoder{Tok: tok512(t), Template: tmpl}
		pr, err := e.Prompt(user)
		if err != nil {
			t.Fatal(err)
		}
		for _, reply := range []string{"Nover", "The capital is Nover.", "Bovo", "Kalo", "Zeth", "3478", "7", "answer: 42"} {
			ids, tr, err := e.Reply(user, reply)
			if err != nil {
				t.Fatal(err)
			}
			first := slices.Index(tr, true)
			if first < 0 || !slices.Equal(ids[:first], pr) {
				t.Errorf("%s, reply %q: untrained prefix %v, Prompt %v", name, reply, ids[:max(first, 0)], pr)
			}
		}
	}
}

// TestMaskByteLevel: a vocabulary without EncodeChat (GPT-2's byte-level
// BPE) is encoded piece by piece; the trained tokens are the reply's.
func TestMaskByteLevel(t *testing.T) {
	d := filepath.Join(dataDir(t), "tokenizer", "gpt2")
	tok, err := tokenizer.LoadGPT2(filepath.Join(d, "encoder.json"), filepath.Join(d, "vocab.bpe"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, _ := tokenizer.ChatTemplate("chatml")
	e := &Encoder{Tok: tok, Template: tmpl}
	p := tasks.Problem{Prompt: "What is 3 + 4?", Answer: 7, Reasoning: "3+4=7"}
	ids, tr, err := e.Encode(tasks.SFT(p))
	if err != nil {
		t.Fatal(err)
	}
	var trained, all []int
	for i, id := range ids {
		all = append(all, id)
		if tr[i] {
			trained = append(trained, id)
		}
	}
	got, _ := tok.Decode(trained)
	if got != p.Solution()+"<|im_end|>" {
		t.Fatalf("trained tokens decode to %q", got)
	}
	text, _ := tok.Decode(all)
	if !strings.Contains(text, "<|im_start|>user\nWhat is 3 + 4?<|im_end|>") {
		t.Fatalf("conversation decodes to %q", text)
	}
}
