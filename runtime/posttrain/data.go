// Package posttrain turns a pretrained base model into an assistant:
// supervised fine-tuning on chat data with the loss on assistant tokens
// only, reward models trained from preferences with the Bradley–Terry loss,
// direct preference optimisation, group relative policy optimisation with
// verifiable rewards, and distillation from a teacher. Every stage trains
// through model.GradTrainer and writes the same run folder as pretraining
// (model.gguf, state.bin, metrics.jsonl, run.json) and resumes from it.
package posttrain

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"github.com/modelc/modelc/runtime/posttrain/tasks"
	"github.com/modelc/modelc/tokenizer"
)

// Conversation is one chat example.
type Conversation = tasks.Conversation

// Pair is one preference (prompt, chosen, rejected).
type Pair = tasks.Pair

// maxLine bounds one JSON line.
const maxLine = 16 << 20

// eachLine calls f with every non-blank line of r and its 1-based number.
func eachLine(name string, r io.Reader, f func(line int, b []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, maxLine)
	n := 0
	for sc.Scan() {
		n++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if err := f(n, b); err != nil {
			return fmt.Errorf("%s:%d: %w", name, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s:%d: %w", name, n+1, err)
	}
	return nil
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// Said in the file's terms, not Go's ("Go value of type
		// tasks.Conversation").
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			where := "the line"
			if te.Field != "" {
				where = fmt.Sprintf("%q", te.Field)
			}
			return fmt.Errorf("malformed JSON: %s: want %s, got %s", where, jsonKind(te.Type), te.Value)
		}
		return fmt.Errorf("malformed JSON: %w", err)
	}
	if dec.More() {
		return errors.New("malformed JSON: more than one value on the line")
	}
	return nil
}

// jsonKind names the JSON value a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.Kind().String()
}

// ParseConversations reads JSON lines {"messages":[{"role","content"}...]}.
// Every conversation needs at least one assistant turn (what SFT learns).
func ParseConversations(name string, r io.Reader) ([]Conversation, error) {
	var out []Conversation
	err := eachLine(name, r, func(line int, b []byte) error {
		var c Conversation
		if err := strictUnmarshal(b, &c); err != nil {
			return err
		}
		if len(c.Messages) == 0 {
			return errors.New(`no "messages"`)
		}
		hasAssistant := false
		for i, m := range c.Messages {
			switch m.Role {
			case tokenizer.RoleAssistant:
				hasAssistant = true
			case tokenizer.RoleUser, tokenizer.RoleSystem:
			default:
				return fmt.Errorf("message %d: role %q (want system, user or assistant)", i, m.Role)
			}
		}
		if !hasAssistant {
			return errors.New("the conversation has no assistant turn: nothing to learn")
		}
		out = append(out, c)
		return nil
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("%s: no conversations", name)
	}
	return out, err
}

// prefLine is a line of a preference file: a pair, or a ranking.
type prefLine struct {
	Prompt   string   `json:"prompt"`
	Chosen   *string  `json:"chosen"`
	Rejected *string  `json:"rejected"`
	Ranking  []string `json:"ranking"`
}

// ParsePreferences reads JSON lines of pairs {"prompt","chosen","rejected"}
// and rankings {"prompt","ranking":[best, …, worst]}; a ranking of k
// replies becomes its k(k−1)/2 ordered pairs.
func ParsePreferences(name string, r io.Reader) ([]Pair, error) {
	var out []Pair
	err := eachLine(name, r, func(line int, b []byte) error {
		var p prefLine
		if err := strictUnmarshal(b, &p); err != nil {
			return err
		}
		if strings.TrimSpace(p.Prompt) == "" {
			return errors.New(`"prompt" is missing or empty`)
		}
		switch {
		case p.Ranking != nil:
			if p.Chosen != nil || p.Rejected != nil {
				return errors.New(`a line has either "ranking" or "chosen"/"rejected", not both`)
			}
			if len(p.Ranking) < 2 {
				return fmt.Errorf(`"ranking" has %d replies: at least 2 are needed`, len(p.Ranking))
			}
			for i := range p.Ranking {
				for j := i + 1; j < len(p.Ranking); j++ {
					out = append(out, Pair{Prompt: p.Prompt, Chosen: p.Ranking[i], Rejected: p.Ranking[j]})
				}
			}
		case p.Chosen != nil && p.Rejected != nil:
			out = append(out, Pair{Prompt: p.Prompt, Chosen: *p.Chosen, Rejected: *p.Rejected})
		default:
			return errors.New(`need "chosen" and "rejected", or "ranking"`)
		}
		return nil
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("%s: no preference pairs", name)
	}
	return out, err
}

// ParseProblems reads JSON lines of tasks.Problem (prompt and answer).
func ParseProblems(name string, r io.Reader) ([]tasks.Problem, error) {
	var out []tasks.Problem
	err := eachLine(name, r, func(line int, b []byte) error {
		var p tasks.Problem
		if err := strictUnmarshal(b, &p); err != nil {
			return err
		}
		if strings.TrimSpace(p.Prompt) == "" {
			return errors.New(`"prompt" is missing or empty`)
		}
		// An absent answer would read as 0 and be trained and scored as one.
		var has struct {
			Answer json.RawMessage `json:"answer"`
		}
		if json.Unmarshal(b, &has); has.Answer == nil || string(has.Answer) == "null" {
			return errors.New(`"answer" is missing`)
		}
		out = append(out, p)
		return nil
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("%s: no problems", name)
	}
	return out, err
}

func readFile[T any](path string, parse func(string, io.Reader) ([]T, error)) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parse(path, f)
}

// ReadConversations reads a conversations file.
func ReadConversations(path string) ([]Conversation, error) {
	return readFile(path, ParseConversations)
}

// ReadPreferences reads a preferences file.
func ReadPreferences(path string) ([]Pair, error) { return readFile(path, ParsePreferences) }

// ReadProblems reads a problems file.
func ReadProblems(path string) ([]tasks.Problem, error) { return readFile(path, ParseProblems) }
