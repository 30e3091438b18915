// Package tasks generates verifiable problems — multi-digit addition and
// comparison word problems with exact integer answers — and from them the
// offline data every post-training stage needs: chat conversations for
// supervised fine-tuning, preference pairs and rankings, and the reward
// function that checks a completion's answer and format.
package tasks

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Markers around the reasoning that precedes the answer.
const (
	ThinkOpen   = "<think>"
	ThinkClose  = "</think>"
	AnswerLabel = "Answer:"
)

// Kinds of problem.
const (
	KindAdd     = "add"     // "What is 47 + 38?"
	KindCompare = "compare" // "Tom has 37 apples. Ann has 52 apples. How many more ..."
)

// Problem is one question with its exact answer.
type Problem struct {
	Kind   string `json:"kind"`
	Prompt string `json:"prompt"`
	Answer int    `json:"answer"`
	// Reasoning is the worked solution put between the think markers.
	Reasoning string `json:"reasoning"`
}

// Solution is the well-formed assistant reply: reasoning between markers,
// then "Answer: N".
func (p Problem) Solution() string { return FormatReply(p.Reasoning, p.Answer) }

// FormatReply writes a reply in the checked format.
func FormatReply(reasoning string, answer int) string {
	return ThinkOpen + reasoning + ThinkClose + "\n" + AnswerLabel + " " + strconv.Itoa(answer)
}

// HeldOut says whether a problem of kind on operands a and b belongs to the
// held-out split. It depends on the kind and the operands as an unordered
// pair alone, so train and held-out sets never share a problem whatever
// seeds made them, nor one with its operands swapped (3 + 4 and 4 + 3, or
// the same two counts under other names), which would be one in all but
// the wording.
func HeldOut(kind string, a, b int) bool {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s %d %d", kind, min(a, b), max(a, b))
	return h.Sum32()%5 == 0
}

// Config says which problems to make.
type Config struct {
	Kinds   []string // default both kinds
	Digits  int      // operand digits for addition (default 2)
	Seed    uint64
	HeldOut bool // draw from the held-out split instead of the training one
}

var names = []string{"Tom", "Ann", "Sam", "Mia", "Ben", "Lily", "Max", "Eva"}
var things = []string{"apples", "books", "coins", "cats", "stars", "balls"}

// Generate returns n problems from the split cfg names, drawn
// deterministically from cfg.Seed.
func Generate(n int, cfg Config) ([]Problem, error) {
	kinds := cfg.Kinds
	if len(kinds) == 0 {
		kinds = []string{KindAdd, KindCompare}
	}
	for _, k := range kinds {
		if k != KindAdd && k != KindCompare {
			return nil, fmt.Errorf("tasks: unknown kind %q (have %s, %s)", k, KindAdd, KindCompare)
		}
	}
	digits := cfg.Digits
	if digits == 0 {
		digits = 2
	}
	if digits < 1 || digits > 9 {
		return nil, fmt.Errorf("tasks: digits must be between 1 and 9, got %d", digits)
	}
	if n < 0 {
		return nil, fmt.Errorf("tasks: count must be ≥ 0, got %d", n)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7461736b)) // "task"
	lim := 1
	for range digits {
		lim *= 10
	}
	out := make([]Problem, 0, n)
	seen := map[string]bool{}
	for tries := 0; len(out) < n; tries++ {
		if tries > 100*n+1000 {
			return out, fmt.Errorf("tasks: only %d distinct problems of %d digits in this split", len(out), digits)
		}
		var p Problem
		kind := kinds[rng.IntN(len(kinds))]
		a, b := rng.IntN(lim), rng.IntN(lim)
		switch kind {
		case KindAdd:
			p = addition(a, b)
		case KindCompare:
			if a == b {
				continue
			}
			i := rng.IntN(len(names))
			j := (i + 1 + rng.IntN(len(names)-1)) % len(names)
			p = compare(names[i], names[j], things[rng.IntN(len(things))], a, b)
		}
		if HeldOut(kind, a, b) != cfg.HeldOut || seen[p.Prompt] {
			continue
		}
		seen[p.Prompt] = true
		out = append(out, p)
	}
	return out, nil
}

// addition works column by column, least significant first, as a person
// would: "7+5=12 c1" for each column with its carry.
func addition(a, b int) Problem {
	var steps []string
	x, y, carry := a, b, 0
	for x > 0 || y > 0 {
		s := x%10 + y%10 + carry
		st := fmt.Sprintf("%d+%d", x%10, y%10)
		if carry > 0 {
			st += "+1"
		}
		carry = s / 10
		steps = append(steps, fmt.Sprintf("%s=%d", st, s))
		x, y = x/10, y/10
	}
	if len(steps) == 0 {
		steps = []string{"0+0=0"}
	}
	return Problem{Kind: KindAdd, Prompt: fmt.Sprintf("What is %d + %d?", a, b), Answer: a + b,
		Reasoning: strings.Join(steps, ", ")}
}

func compare(n1, n2, thing string, a, b int) Problem {
	hi, lo := max(a, b), min(a, b)
	return Problem{Kind: KindCompare,
		Prompt:    fmt.Sprintf("%s has %d %s. %s has %d %s. How many more %s does the one with more have?", n1, a, thing, n2, b, thing, thing),
		Answer:    hi - lo,
		Reasoning: fmt.Sprintf("%d > %d, %d - %d = %d", hi, lo, hi, lo, hi-lo)}
}

// Errors of ParseAnswer.
var (
	ErrNoAnswer = errors.New("no \"Answer:\" followed by an integer")
)

// ParseAnswer returns the integer after the last "Answer:" of a completion.
func ParseAnswer(completion string) (int, error) {
	i := strings.LastIndex(completion, AnswerLabel)
	if i < 0 {
		return 0, ErrNoAnswer
	}
	rest := strings.TrimLeft(completion[i+len(AnswerLabel):], " ")
	j := 0
	if j < len(rest) && rest[j] == '-' {
		j++
	}
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	v, err := strconv.Atoi(rest[:j])
	if err != nil {
		return 0, ErrNoAnswer
	}
	return v, nil
}

// WellFormed says whether a completion is exactly reasoning between the
// markers, a newline, and "Answer: N" (surrounding space aside).
func WellFormed(completion string) bool {
	c := strings.TrimSpace(completion)
	if !strings.HasPrefix(c, ThinkOpen) {
		return false
	}
	end := strings.Index(c, ThinkClose)
	if end < 0 || strings.Contains(c[len(ThinkOpen):end], ThinkOpen) {
		return false
	}
	tail := strings.TrimSpace(c[end+len(ThinkClose):])
	if !strings.HasPrefix(tail, AnswerLabel) {
		return false
	}
	num := strings.TrimSpace(tail[len(AnswerLabel):])
	_, err := strconv.Atoi(num)
	return err == nil
}

// Reward is the verifiable reward of a completion to p: 1 for the exact
// answer, plus FormatBonus when the completion is well formed. Only the
// answer is checked, not the reasoning.
func Reward(completion string, answer int) float64 {
	r := 0.0
	if v, err := ParseAnswer(completion); err == nil && v == answer {
		r = 1
	}
	if WellFormed(completion) {
		r += FormatBonus
	}
	return r
}

// FormatBonus is the reward for the format alone.
const FormatBonus = 0.2

// Message is a chat turn (the JSON shape of tokenizer.Message).
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Conversation is one SFT example: {"messages": [...]}.
type Conversation struct {
	Messages []Message `json:"messages"`
}

// Pair is a preference: the chosen reply is better than the rejected one.
type Pair struct {
	Prompt   string `json:"prompt"`
	Chosen   string `json:"chosen"`
	Rejected string `json:"rejected"`
}

// Ranking orders replies to a prompt from best to worst.
type Ranking struct {
	Prompt  string   `json:"prompt"`
	Ranking []string `json:"ranking"`
}

// SFT returns the conversation that teaches p's solution.
func SFT(p Problem) Conversation {
	return Conversation{Messages: []Message{{Role: "user", Content: p.Prompt}, {Role: "assistant", Content: p.Solution()}}}
}

// wrong returns an answer that is near but not p's.
func wrong(p Problem, rng *rand.Rand) int {
	d := 1 + rng.IntN(9)
	if rng.IntN(2) == 0 && p.Answer-d >= 0 {
		return p.Answer - d
	}
	return p.Answer + d
}

var fillers = []string{
	"Well, let me see, this is a question about numbers and I like numbers a lot.",
	"Hmm, that is interesting. Numbers can be big or small and there are many of them.",
	"Once upon a time there was a number, and it was happy, and then it met another number.",
}

// Rambling is a reply that wanders and never states its answer in the
// format (it may mention the number).
func Rambling(p Problem, rng *rand.Rand) string {
	s := fillers[rng.IntN(len(fillers))]
	if rng.IntN(2) == 0 {
		s += fmt.Sprintf(" Maybe it is %d or so.", p.Answer)
	}
	return s
}

// WrongReply is well formed but gives a wrong answer.
func WrongReply(p Problem, rng *rand.Rand) string {
	return FormatReply(p.Reasoning, wrong(p, rng))
}

// WrongWork is well formed and consistent with its own reasoning, but the
// reasoning's last step has a slip (its result off by 1–3) that is carried
// into the answer: "9 - 6 = 4" and "Answer: 4", or for addition the most
// significant column "4+3+1=9" and an answer off by 10^(columns−1). Telling
// it from the solution takes checking the arithmetic, not only that the
// answer repeats the reasoning's result.
func WrongWork(p Problem, rng *rand.Rand) string {
	i := strings.LastIndex(p.Reasoning, "=")
	if i < 0 {
		return WrongReply(p, rng)
	}
	rest := p.Reasoning[i+1:]
	num := strings.TrimLeft(rest, " ")
	s, err := strconv.Atoi(num)
	if err != nil {
		return WrongReply(p, rng)
	}
	scale := 1
	if p.Kind == KindAdd {
		for range strings.Count(p.Reasoning, ",") {
			scale *= 10
		}
	}
	d := 1 + rng.IntN(3)
	if rng.IntN(2) == 0 && s-d >= 0 {
		d = -d
	}
	work := p.Reasoning[:i+1] + rest[:len(rest)-len(num)] + strconv.Itoa(s+d)
	return FormatReply(work, p.Answer+d*scale)
}

// Kinds of rejected reply in preference data.
const (
	RejectWrongAnswer = "wrong-answer" // WrongReply: the solution's reasoning, a wrong answer
	RejectWrongWork   = "wrong-work"   // WrongWork: a slip in the reasoning, carried into the answer
	RejectRambling    = "rambling"     // Rambling
)

// DefaultRejected are the rejected kinds of Preference and Rank.
var DefaultRejected = []string{RejectWrongAnswer, RejectRambling}

// CheckRejected validates a list of rejected kinds.
func CheckRejected(kinds []string) error {
	if len(kinds) == 0 {
		return errors.New("tasks: no rejected kinds")
	}
	for _, k := range kinds {
		switch k {
		case RejectWrongAnswer, RejectWrongWork, RejectRambling:
		default:
			return fmt.Errorf("tasks: unknown rejected kind %q (have %s, %s, %s)", k, RejectWrongAnswer, RejectWrongWork, RejectRambling)
		}
	}
	return nil
}

func isDefaultRejected(kinds []string) bool {
	return len(kinds) == 2 && kinds[0] == RejectWrongAnswer && kinds[1] == RejectRambling
}

func rejectOf(kind string, p Problem, rng *rand.Rand) string {
	switch kind {
	case RejectWrongWork:
		return WrongWork(p, rng)
	case RejectRambling:
		return Rambling(p, rng)
	}
	return WrongReply(p, rng)
}

// PreferenceOf makes a pair for p: the solution against a rejected reply
// of one of kinds (drawn uniformly). The default kinds give Preference's
// pairs exactly.
func PreferenceOf(p Problem, rng *rand.Rand, kinds []string) Pair {
	if isDefaultRejected(kinds) {
		return Preference(p, rng)
	}
	return Pair{Prompt: p.Prompt, Chosen: p.Solution(), Rejected: rejectOf(kinds[rng.IntN(len(kinds))], p, rng)}
}

// RankOf makes a ranking for p: the solution, a wrong reply of one of the
// wrong kinds among kinds (drawn uniformly), then a rambling reply when
// kinds has it. The default kinds give Rank's rankings exactly.
func RankOf(p Problem, rng *rand.Rand, kinds []string) Ranking {
	if isDefaultRejected(kinds) {
		return Rank(p, rng)
	}
	var wrongs []string
	ramble := false
	for _, k := range kinds {
		if k == RejectRambling {
			ramble = true
		} else {
			wrongs = append(wrongs, k)
		}
	}
	r := Ranking{Prompt: p.Prompt, Ranking: []string{p.Solution()}}
	if len(wrongs) > 0 {
		r.Ranking = append(r.Ranking, rejectOf(wrongs[rng.IntN(len(wrongs))], p, rng))
	}
	if ramble {
		r.Ranking = append(r.Ranking, Rambling(p, rng))
	}
	return r
}

// Preference makes a pair for p: the solution against a wrong answer or a
// rambling reply, alternately.
func Preference(p Problem, rng *rand.Rand) Pair {
	rej := WrongReply(p, rng)
	if rng.IntN(2) == 0 {
		rej = Rambling(p, rng)
	}
	return Pair{Prompt: p.Prompt, Chosen: p.Solution(), Rejected: rej}
}

// Rank makes a ranking for p: solution, wrong answer, rambling.
func Rank(p Problem, rng *rand.Rand) Ranking {
	return Ranking{Prompt: p.Prompt, Ranking: []string{p.Solution(), WrongReply(p, rng), Rambling(p, rng)}}
}

// WriteJSONL writes one JSON value per line.
func WriteJSONL[T any](w io.Writer, items []T) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			return err
		}
	}
	return nil
}
