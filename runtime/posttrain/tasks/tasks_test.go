package tasks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func TestAddition(t *testing.T) {
	p := addition(478, 56)
	if p.Answer != 534 || p.Prompt != "What is 478 + 56?" {
		t.Fatalf("got %+v", p)
	}
	if p.Reasoning != "8+6=14, 7+5+1=13, 4+0+1=5" {
		t.Fatalf("reasoning %q", p.Reasoning)
	}
	if got := p.Solution(); got != "<think>8+6=14, 7+5+1=13, 4+0+1=5</think>\nAnswer: 534" {
		t.Fatalf("solution %q", got)
	}
}

func TestCompare(t *testing.T) {
	p := compare("Tom", "Ann", "apples", 37, 52)
	if p.Answer != 15 || !strings.Contains(p.Prompt, "Tom has 37 apples. Ann has 52 apples.") || p.Reasoning != "52 > 37, 52 - 37 = 15" {
		t.Fatalf("got %+v", p)
	}
}

func TestGenerateSplits(t *testing.T) {
	train, err := Generate(300, Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	held, err := Generate(100, Config{Seed: 1, HeldOut: true})
	if err != nil {
		t.Fatal(err)
	}
	inTrain := map[string]bool{}
	kinds := map[string]int{}
	for _, p := range train {
		inTrain[p.Prompt] = true
		kinds[p.Kind]++
		if v, err := ParseAnswer(p.Solution()); err != nil || v != p.Answer || !WellFormed(p.Solution()) {
			t.Fatalf("%q: solution %q parses to %d, %v", p.Prompt, p.Solution(), v, err)
		}
	}
	if len(inTrain) != 300 || kinds[KindAdd] < 100 || kinds[KindCompare] < 100 {
		t.Fatalf("%d distinct, kinds %v", len(inTrain), kinds)
	}
	for _, p := range held {
		if inTrain[p.Prompt] {
			t.Fatalf("held-out %q is in the training split", p.Prompt)
		}
	}
	// Nor is a held-out problem a training one with its operands swapped
	// (3 + 4 against 4 + 3; the same two counts under other names): with 1
	// digit, where swaps abound, 14 of 18 held-out additions once were.
	operands := func(p Problem) [2]int {
		var ns []int
		for _, f := range strings.FieldsFunc(p.Prompt, func(r rune) bool { return r < '0' || r > '9' }) {
			n, _ := strconv.Atoi(f)
			ns = append(ns, n)
		}
		return [2]int{min(ns[0], ns[1]), max(ns[0], ns[1])}
	}
	for _, d := range []int{1, 2} {
		tr, _ := Generate(40, Config{Seed: 3, Digits: d})
		he, _ := Generate(15, Config{Seed: 3, Digits: d, HeldOut: true})
		pairs := map[string]bool{}
		for _, p := range tr {
			pairs[p.Kind+fmt.Sprint(operands(p))] = true
		}
		for _, p := range he {
			if pairs[p.Kind+fmt.Sprint(operands(p))] {
				t.Errorf("%d digits: held-out %q has a training problem's operands", d, p.Prompt)
			}
		}
	}
	again, _ := Generate(300, Config{Seed: 1})
	if again[299] != train[299] {
		t.Fatal("not deterministic")
	}
	other, _ := Generate(300, Config{Seed: 2})
	if other[0] == train[0] && other[1] == train[1] {
		t.Fatal("seed ignored")
	}
}

func TestGenerateErrors(t *testing.T) {
	if _, err := Generate(1, Config{Kinds: []string{"mul"}}); err == nil || !strings.Contains(err.Error(), `"mul"`) {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, err := Generate(1, Config{Digits: 12}); err == nil {
		t.Fatal("12 digits accepted")
	}
	// One-digit additions: 100 problems, a fifth held out: 200 cannot be found.
	if _, err := Generate(200, Config{Kinds: []string{KindAdd}, Digits: 1}); err == nil {
		t.Fatal("impossible count accepted")
	}
}

func TestParseAnswerAndFormat(t *testing.T) {
	for _, c := range []struct {
		s      string
		v      int
		ok, wf bool
	}{
		{"<think>2+2=4</think>\nAnswer: 4", 4, true, true},
		{"Answer: 12 and more", 12, true, false},
		{"Answer:-3", -3, true, false},
		{"<think>x</think> Answer: 7", 7, true, true},
		{"<think>x</think>\nAnswer: 7 because", 7, true, false},
		{"the answer is 5", 0, false, false},
		{"Answer: five", 0, false, false},
		{"<think>x\nAnswer: 5", 5, true, false},
		{"Answer: 1 Answer: 2", 2, true, false},
	} {
		v, err := ParseAnswer(c.s)
		if (err == nil) != c.ok || (c.ok && v != c.v) {
			t.Errorf("ParseAnswer(%q) = %d, %v", c.s, v, err)
		}
		if WellFormed(c.s) != c.wf {
			t.Errorf("WellFormed(%q) = %v", c.s, !c.wf)
		}
	}
	if r := Reward("<think>2+2=4</think>\nAnswer: 4", 4); r != 1+FormatBonus {
		t.Errorf("reward %g", r)
	}
	if r := Reward("<think>2+2=4</think>\nAnswer: 5", 4); r != FormatBonus {
		t.Errorf("reward %g", r)
	}
	if r := Reward("it is 4. Answer: 4!", 4); r != 1 {
		t.Errorf("reward %g", r)
	}
}

func TestPreferences(t *testing.T) {
	ps, _ := Generate(50, Config{Seed: 3})
	rng := rand.New(rand.NewPCG(1, 1))
	var buf bytes.Buffer
	var pairs []Pair
	for _, p := range ps {
		pr := Preference(p, rng)
		if Reward(pr.Chosen, p.Answer) <= Reward(pr.Rejected, p.Answer) {
			t.Fatalf("chosen %q not better than rejected %q", pr.Chosen, pr.Rejected)
		}
		pairs = append(pairs, pr)
		rk := Rank(p, rng)
		for i := 1; i < len(rk.Ranking); i++ {
			if Reward(rk.Ranking[i-1], p.Answer) <= Reward(rk.Ranking[i], p.Answer) {
				t.Fatalf("ranking out of order: %q", rk.Ranking)
			}
		}
	}
	if err := WriteJSONL(&buf, pairs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var back Pair
	if len(lines) != 50 || json.Unmarshal([]byte(lines[7]), &back) != nil || back != pairs[7] {
		t.Fatalf("JSON lines round trip: %d lines, %+v", len(lines), back)
	}
}

func FuzzParseAnswer(f *testing.F) {
	f.Add("<think>1+1=2</think>\nAnswer: 2")
	f.Add("Answer: -")
	f.Add("Answer:")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseAnswer(s)
		if WellFormed(s) {
			if err != nil {
				t.Fatalf("well formed %q has no answer", s)
			}
		}
		_ = v
		_ = Reward(s, v)
	})
}

// TestWrongWork: the reply is well formed and wrong, its reasoning differs
// from the solution's only in the last result, and its answer follows from
// that result (for one-digit addition and comparisons the answer is that
// result; for more columns it moves by the slip times 10^(columns−1)).
func TestWrongWork(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, digits := range []int{1, 2, 3} {
		ps, err := Generate(200, Config{Seed: 5, Digits: digits})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			w := WrongWork(p, rng)
			if !WellFormed(w) || Reward(w, p.Answer) != FormatBonus {
				t.Fatalf("%q: wrong work %q is not well formed and wrong", p.Prompt, w)
			}
			work := w[len(ThinkOpen):strings.Index(w, ThinkClose)]
			i, j := strings.LastIndex(work, "="), strings.LastIndex(p.Reasoning, "=")
			if i != j || work[:i] != p.Reasoning[:j] {
				t.Fatalf("%q: reasoning %q, solution's %q: not only the last result differs", p.Prompt, work, p.Reasoning)
			}
			got, _ := strconv.Atoi(strings.TrimSpace(work[i+1:]))
			sol, _ := strconv.Atoi(strings.TrimSpace(p.Reasoning[j+1:]))
			ans, _ := ParseAnswer(w)
			scale := 1
			if p.Kind == KindAdd {
				for range strings.Count(p.Reasoning, ",") {
					scale *= 10
				}
			}
			if d := got - sol; d == 0 || d < -3 || d > 3 || got < 0 || ans-p.Answer != d*scale {
				t.Fatalf("%q: solution %q (answer %d), wrong work %q", p.Prompt, p.Reasoning, p.Answer, w)
			}
			if (p.Kind == KindCompare || digits == 1) && ans != got {
				t.Fatalf("%q: answer %d is not the reasoning's result %d", p.Prompt, ans, got)
			}
		}
	}
	if w := WrongWork(Problem{Kind: KindCompare, Prompt: "x", Answer: 3, Reasoning: "9 > 6, 9 - 6 = 3"}, rng); w == FormatReply("9 > 6, 9 - 6 = 3", 3) {
		t.Fatal("wrong work equals the solution")
	}
}

// TestPreferenceOf: the default kinds give Preference's and Rank's data
// byte for byte; other kinds give only rejected replies of those kinds,
// and rankings in order.
func TestPreferenceOf(t *testing.T) {
	ps, _ := Generate(60, Config{Seed: 3, Digits: 1})
	a, b := rand.New(rand.NewPCG(1, 1)), rand.New(rand.NewPCG(1, 1))
	for _, p := range ps {
		if x, y := Preference(p, a), PreferenceOf(p, b, DefaultRejected); x != y {
			t.Fatalf("default kinds: %+v, Preference: %+v", y, x)
		}
		x, y := Rank(p, a), RankOf(p, b, DefaultRejected)
		if strings.Join(x.Ranking, "|") != strings.Join(y.Ranking, "|") {
			t.Fatalf("default kinds: %q, Rank: %q", y.Ranking, x.Ranking)
		}
	}
	kinds := []string{RejectWrongWork, RejectWrongAnswer, RejectRambling}
	seen := map[string]bool{}
	for _, p := range ps {
		pr := PreferenceOf(p, a, kinds)
		if pr.Chosen != p.Solution() || Reward(pr.Rejected, p.Answer) >= 1 {
			t.Fatalf("pair %+v", pr)
		}
		switch {
		case !WellFormed(pr.Rejected):
			seen[RejectRambling] = true
		case strings.Contains(pr.Rejected, p.Reasoning+ThinkClose):
			seen[RejectWrongAnswer] = true
		default:
			seen[RejectWrongWork] = true
		}
		rk := RankOf(p, a, kinds)
		if len(rk.Ranking) != 3 || rk.Ranking[0] != p.Solution() || !WellFormed(rk.Ranking[1]) || WellFormed(rk.Ranking[2]) {
			t.Fatalf("ranking %q", rk.Ranking)
		}
		only := PreferenceOf(p, a, []string{RejectWrongWork})
		if strings.Contains(only.Rejected, p.Reasoning+ThinkClose) || !WellFormed(only.Rejected) {
			t.Fatalf("wrong-work only: %+v", only)
		}
		if rk := RankOf(p, a, []string{RejectWrongWork}); len(rk.Ranking) != 2 {
			t.Fatalf("wrong-work only ranking %q", rk.Ranking)
		}
	}
	if len(seen) != 3 {
		t.Fatalf("rejected kinds drawn: %v", seen)
	}
	if CheckRejected([]string{"wrong"}) == nil || CheckRejected(nil) == nil || CheckRejected(kinds) != nil {
		t.Fatal("CheckRejected")
	}
}
