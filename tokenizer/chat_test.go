package tokenizer

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var chatConv = []Message{
	{Role: RoleSystem, Content: "Be brief."},
	{Role: RoleUser, Content: "Hi"},
	{Role: RoleAssistant, Content: "Hello! <|im_end|> is a marker."},
	{Role: RoleUser, Content: " Again "},
}

func TestChatML(t *testing.T) {
	tm, err := ChatTemplate("chatml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := tm.Render(chatConv, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n" +
		"<|im_start|>assistant\nHello! <|im_end|> is a marker.<|im_end|>\n<|im_start|>user\n Again <|im_end|>\n<|im_start|>assistant\n"
	if c.Text != want {
		t.Fatalf("text\n%q\nwant\n%q", c.Text, want)
	}
	if len(c.Content) != 1 || c.Text[c.Content[0].Start:c.Content[0].End] != chatConv[2].Content {
		t.Fatalf("content spans %v", c.Content)
	}
	if len(c.Train) != 1 || c.Text[c.Train[0].Start:c.Train[0].End] != chatConv[2].Content+"<|im_end|>" {
		t.Fatalf("train spans %v", c.Train)
	}
	if len(c.Markers) != 9 {
		t.Fatalf("%d markers", len(c.Markers))
	}
	for _, m := range c.Markers {
		if s := c.Text[m.Start:m.End]; s != "<|im_start|>" && s != "<|im_end|>" {
			t.Fatalf("marker %q", s)
		}
	}
	if _, err := tm.Render(chatConv[:3], true); err == nil {
		t.Error("prompting after an assistant message gave no error")
	}
	if p, _ := tm.Prompt(chatConv[1:2]); p != "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n" {
		t.Errorf("prompt %q", p)
	}
	if _, err := tm.Render([]Message{{Role: "us\ner", Content: "x"}}, false); err == nil {
		t.Error("bad role accepted")
	}
}

func TestLlama2Template(t *testing.T) {
	tm, err := ChatTemplate("LLAMA2")
	if err != nil {
		t.Fatal(err)
	}
	c, err := tm.Render(chatConv, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! <|im_end|> is a marker. </s><s>[INST] Again [/INST]"
	if c.Text != want {
		t.Fatalf("text\n%q\nwant\n%q", c.Text, want)
	}
	// The training span starts at the space after "[/INST]", where the
	// generation prompt ends.
	if got := c.Text[c.Train[0].Start:c.Train[0].End]; got != " Hello! <|im_end|> is a marker. </s>" {
		t.Fatalf("train span %q", got)
	}
	for _, bad := range [][]Message{
		{{Role: RoleAssistant, Content: "x"}},
		{{Role: RoleUser, Content: "x"}, {Role: RoleUser, Content: "y"}},
		{{Role: RoleSystem, Content: "x"}},
	} {
		if _, err := tm.Render(bad, false); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	if _, err := tm.Render(chatConv[:2], false); err == nil {
		t.Error("unanswered user message rendered for training")
	}
	if _, err := ChatTemplate("nope"); err == nil || !strings.Contains(err.Error(), "chatml") {
		t.Errorf("unknown template error %v", err)
	}
	if d, ok := DetectChatTemplate("{% for m in messages %}<|im_start|>{{ m.role }}"); !ok || d.Name() != "chatml" {
		t.Error("chatml not detected")
	}
	if d, ok := DetectChatTemplate("{{ bos_token + '[INST] ' }}"); !ok || d.Name() != "llama2" {
		t.Error("llama2 not detected")
	}
}

// TestEncodeChatLlama2 checks EncodeChat against Meta's recipe: each
// exchange encoded on its own with BOS and EOS, the open turn with BOS.
func TestEncodeChatLlama2(t *testing.T) {
	tok := loadLlama32000(t)
	tm, _ := ChatTemplate("llama2")
	c, err := tm.Render(chatConv, true)
	if err != nil {
		t.Fatal(err)
	}
	ids, train, err := tok.EncodeChat(c, true)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := tok.Encode("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! <|im_end|> is a marker. ", true, true)
	b, _ := tok.Encode("[INST] Again [/INST]", true, false)
	if want := append(a, b...); !sameIDs(ids, want) {
		t.Fatalf("ids %v\nwant %v", ids, want)
	}
	var trained []int
	for i, on := range train {
		if on {
			trained = append(trained, ids[i])
		}
	}
	if trained[len(trained)-1] != tok.EOS() {
		t.Fatalf("training tokens do not end with EOS: %v", trained)
	}
	if s, _ := tok.Decode(trained); s != "Hello! <|im_end|> is a marker. " {
		t.Fatalf("training tokens decode to %q", s)
	}
}

func TestEncodeChatMLAddedSpecials(t *testing.T) {
	tok := loadTok512(t)
	tm, _ := ChatTemplate("chatml")
	var sp []int
	for _, s := range tm.Specials() {
		id, err := tok.AddSpecial(s)
		if err != nil {
			t.Fatal(err)
		}
		sp = append(sp, id)
	}
	if sp[0] != 512 || sp[1] != 513 || tok.VocabSize() != 514 {
		t.Fatalf("added ids %v, vocab %d", sp, tok.VocabSize())
	}
	if again, _ := tok.AddSpecial("<|im_start|>"); again != 512 || tok.VocabSize() != 514 {
		t.Fatalf("re-adding gave %d", again)
	}
	c, _ := tm.Render(chatConv[:3], false)
	ids, train, err := tok.EncodeChat(c, true)
	if err != nil {
		t.Fatal(err)
	}
	if ids[0] != 1 {
		t.Fatalf("no BOS: %v", ids)
	}
	count := map[int]int{}
	for _, id := range ids {
		count[id]++
	}
	// The "<|im_end|>" inside the assistant's text stays plain text.
	if count[512] != 3 || count[513] != 3 {
		t.Fatalf("marker counts %d, %d in %v", count[512], count[513], ids)
	}
	if s, _ := tok.DecodeSpecial(ids); s != "<s>"+c.Text {
		t.Fatalf("DecodeSpecial %q, want %q", s, c.Text)
	}
	var trained []int
	for i, on := range train {
		if on {
			trained = append(trained, ids[i])
		}
	}
	if s, _ := tok.DecodeSpecial(trained); s != chatConv[2].Content+"<|im_end|>" {
		t.Fatalf("trained tokens %q", s)
	}
	// Whereas special parsing of the whole text would split the content's marker.
	all, _ := tok.EncodeWith(c.Text, EncodeOptions{ParseSpecial: true})
	n := 0
	for _, id := range all {
		if id == 513 {
			n++
		}
	}
	if n != 4 {
		t.Fatalf("ParseSpecial found %d <|im_end|>, want 4", n)
	}
}

// TestChatJinjaMatchesRender renders each template's Jinja source with
// jinja2 (as Hugging Face and GGUF consumers do) and compares with Render.
func TestChatJinjaMatchesRender(t *testing.T) {
	py := pythonWith(t, "jinja2", "python3-jinja2")
	convs := [][]Message{
		chatConv,
		chatConv[:3],
		chatConv[1:],
		{{Role: RoleUser, Content: "one"}, {Role: RoleAssistant, Content: " two "}, {Role: RoleUser, Content: "three"}, {Role: RoleAssistant, Content: "four"}},
	}
	type job struct {
		name string
		conv int
		gen  bool
		want string
	}
	var jobs []job
	var reqs []map[string]any
	for _, name := range ChatTemplates() {
		tm, _ := ChatTemplate(name)
		for i, conv := range convs {
			for _, gen := range []bool{false, true} {
				c, err := tm.Render(conv, gen)
				if err != nil {
					continue // e.g. llama2 needs a reply when not prompting
				}
				jobs = append(jobs, job{name, i, gen, c.Text})
				reqs = append(reqs, map[string]any{
					"template": tm.Jinja(), "messages": conv, "add_generation_prompt": gen,
					"bos_token": "<s>", "eos_token": "</s>",
				})
			}
		}
		if d, ok := DetectChatTemplate(tm.Jinja()); !ok || d.Name() != name {
			t.Errorf("%s: its own Jinja is not detected", name)
		}
	}
	in, _ := json.Marshal(reqs)
	cmd := exec.Command(py, filepath.Join("testdata", "spm_chat_jinja.py"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("jinja: %v: %s", err, stderr.String())
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil || len(got) != len(jobs) {
		t.Fatalf("jinja output: %v, %d results for %d", err, len(got), len(jobs))
	}
	for i, j := range jobs {
		if got[i] != j.want {
			t.Errorf("%s conv %d gen %v:\njinja  %q\nRender %q", j.name, j.conv, j.gen, got[i], j.want)
		}
	}
}

// replyStarts are replies whose first letters tok512 merges with a leading
// space (" T", " B") and ones it does not ("K", "Z", digits).
var replyStarts = []string{"The capital is Nover.", "Bovo", "Kalo", "Zeth", "3478", "42 is it", "a", "Lanolur"}

// TestChatPromptPrefix: whatever the reply begins with, the untrained
// tokens before it are the same, and are the tokens of the template's
// generation prompt — so a model is prompted exactly as it was trained.
func TestChatPromptPrefix(t *testing.T) {
	sp := loadTok512(t)
	spChatML := loadTok512(t)
	for _, s := range []string{"<|im_start|>", "<|im_end|>"} {
		if _, err := spChatML.AddSpecial(s); err != nil {
			t.Fatal(err)
		}
	}
	toks := []struct {
		name string
		tok  Tokenizer
	}{{"tok512", sp}, {"tok512+chatml", spChatML}, {"gpt2", blLoadGPT2(t)}}
	user := []Message{{Role: RoleSystem, Content: "Answer briefly."}, {Role: RoleUser, Content: "What is the capital of Lanolur?"}}
	for _, name := range ChatTemplates() {
		tm, _ := ChatTemplate(name)
		for _, tk := range toks {
			gen, err := tm.Render(user, true)
			if err != nil {
				t.Fatal(err)
			}
			prompt, _, err := EncodeChat(tk.tok, gen, true)
			if err != nil {
				t.Fatalf("%s %s: %v", name, tk.name, err)
			}
			for _, reply := range replyStarts {
				c, err := tm.Render(append(append([]Message(nil), user...), Message{Role: RoleAssistant, Content: reply}), false)
				if err != nil {
					t.Fatal(err)
				}
				ids, train, err := EncodeChat(tk.tok, c, true)
				if err != nil {
					t.Fatal(err)
				}
				first := -1
				for i, on := range train {
					if on {
						first = i
						break
					}
				}
				if first < 0 || !sameIDs(ids[:first], prompt) {
					t.Errorf("%s %s reply %q: untrained prefix %v, generation prompt %v", name, tk.name, reply, ids[:max(first, 0)], prompt)
					continue
				}
				// The trained tokens are one run: the reply (with the
				// template's space before it) and the end of turn.
				last := first
				for last+1 < len(ids) && train[last+1] {
					last++
				}
				for i := last + 1; i < len(ids); i++ {
					if train[i] {
						t.Fatalf("%s %s reply %q: trained tokens not one run: %v", name, tk.name, reply, train)
					}
				}
				if sp, ok := tk.tok.(*SentencePiece); ok {
					pre, _ := sp.DecodeSpecial(ids[:first])
					upto, _ := sp.DecodeSpecial(ids[:last+1])
					bos := "<s>" // BOS, unless the template's text begins with it
					if strings.HasPrefix(c.Text, bos) {
						bos = ""
					}
					if pre != bos+c.Text[:c.Train[0].Start] || upto != bos+c.Text[:c.Train[0].End] {
						t.Errorf("%s %s: the prefix decodes to %q, with the trained tokens to %q; text %q, train span %v", name, tk.name, pre, upto, c.Text, c.Train[0])
					}
				}
			}
		}
	}
}

// TestChatPromptPrefixMultiTurn: in a longer chat the tokens before the
// last reply's trained span are the generation prompt of the chat so far
// (earlier replies included), for each template and reply.
func TestChatPromptPrefixMultiTurn(t *testing.T) {
	tok := loadTok512(t)
	hist := []Message{{Role: RoleUser, Content: "Who rules Lanolur?"}, {Role: RoleAssistant, Content: "Kalo"}, {Role: RoleUser, Content: "And Bovo?"}}
	for _, name := range ChatTemplates() {
		tm, _ := ChatTemplate(name)
		gen, _ := tm.Render(hist, true)
		prompt, _, err := EncodeChat(tok, gen, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, reply := range replyStarts {
			c, err := tm.Render(append(append([]Message(nil), hist...), Message{Role: RoleAssistant, Content: reply}), false)
			if err != nil {
				t.Fatal(err)
			}
			ids, train, err := EncodeChat(tok, c, true)
			if err != nil {
				t.Fatal(err)
			}
			// The start of the last trained run.
			last := len(train) - 1
			for last >= 0 && !train[last] {
				last--
			}
			first := last
			for first > 0 && train[first-1] {
				first--
			}
			if first <= 0 || !sameIDs(ids[:first], prompt) {
				t.Errorf("%s reply %q: tokens before the last reply %v, generation prompt %v", name, reply, ids[:max(first, 0)], prompt)
			}
		}
	}
}
