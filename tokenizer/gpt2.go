package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// GPT2EndOfText is GPT-2's one special token, its BOS and EOS.
const GPT2EndOfText = "<|endoftext|>"

// LoadGPT2 reads GPT-2's encoder.json (token text -> id) and vocab.bpe (a
// "#version" line, then one merge per line, highest priority first).
// "<|endoftext|>", when present, is a control token and both BOS and EOS.
func LoadGPT2(encoderJSON, vocabBPE string) (*ByteLevel, error) {
	ej, err := os.ReadFile(encoderJSON)
	if err != nil {
		return nil, fmt.Errorf("load gpt2: %w", err)
	}
	vb, err := os.ReadFile(vocabBPE)
	if err != nil {
		return nil, fmt.Errorf("load gpt2: %w", err)
	}
	tokens, err := ParseGPT2Encoder(ej)
	if err != nil {
		return nil, fmt.Errorf("load gpt2: %s: %w", encoderJSON, err)
	}
	merges, err := ParseGPT2Merges(vb)
	if err != nil {
		return nil, fmt.Errorf("load gpt2: %s: %w", vocabBPE, err)
	}
	b, err := gpt2FromParts(tokens, merges)
	if err != nil {
		return nil, fmt.Errorf("load gpt2 %s + %s: %w", encoderJSON, vocabBPE, err)
	}
	return b, nil
}

// GPT2FromBytes is LoadGPT2 on the contents of the two files.
func GPT2FromBytes(encoderJSON, vocabBPE []byte) (*ByteLevel, error) {
	tokens, err := ParseGPT2Encoder(encoderJSON)
	if err != nil {
		return nil, fmt.Errorf("gpt2 encoder.json: %w", err)
	}
	merges, err := ParseGPT2Merges(vocabBPE)
	if err != nil {
		return nil, fmt.Errorf("gpt2 vocab.bpe: %w", err)
	}
	return gpt2FromParts(tokens, merges)
}

func gpt2FromParts(tokens, merges []string) (*ByteLevel, error) {
	v := ByteLevelVocab{Tokens: tokens, Merges: merges, BOS: -1, EOS: -1}
	for i, t := range tokens {
		if t == GPT2EndOfText {
			v.Types = make([]int32, len(tokens))
			for j := range v.Types {
				v.Types[j] = int32(TokenNormal)
			}
			v.Types[i] = int32(TokenControl)
			v.BOS, v.EOS = i, i
		}
	}
	return NewByteLevel(v)
}

// jsonTok shows a JSON token in an error: strings quoted, so that one
// holding a newline keeps the message on one line.
func jsonTok(t json.Token) string {
	if s, ok := t.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(t)
}

// ParseGPT2Encoder reads an encoder.json object mapping token text to id and
// returns the tokens by id. The ids must be exactly 0..n-1, each once, and
// no key may repeat.
func ParseGPT2Encoder(data []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("offset %d: %v", dec.InputOffset(), err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("offset 0: want a JSON object of token -> id, found %s", jsonTok(tok))
	}
	byID := map[int]string{}
	seen := map[string]bool{}
	for dec.More() {
		off := dec.InputOffset()
		kt, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("offset %d: %v", off, err)
		}
		key, ok := kt.(string)
		if !ok {
			return nil, fmt.Errorf("offset %d: want a token string, found %s", off, jsonTok(kt))
		}
		off = dec.InputOffset()
		vt, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("offset %d: token %q: %v", off, key, err)
		}
		num, ok := vt.(json.Number)
		if !ok {
			return nil, fmt.Errorf("offset %d: token %q: want an integer id, found %s", off, key, jsonTok(vt))
		}
		id64, err := num.Int64()
		if err != nil || id64 < 0 || id64 >= 1<<31-1 {
			return nil, fmt.Errorf("offset %d: token %q: bad id %s", off, key, num)
		}
		id := int(id64)
		if seen[key] {
			return nil, fmt.Errorf("offset %d: duplicate token %q", off, key)
		}
		seen[key] = true
		if prev, dup := byID[id]; dup {
			return nil, fmt.Errorf("offset %d: tokens %q and %q share id %d", off, prev, key, id)
		}
		byID[id] = key
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("offset %d: %v", dec.InputOffset(), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("offset %d: data after the JSON object", dec.InputOffset())
	}
	tokens := make([]string, len(byID))
	for id, t := range byID {
		if id >= len(tokens) {
			return nil, fmt.Errorf("token %q has id %d but there are only %d tokens (ids must be 0..%d)", t, id, len(tokens), len(tokens)-1)
		}
		tokens[id] = t
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("no tokens")
	}
	return tokens, nil
}

// ParseGPT2Merges reads vocab.bpe: an optional "#version" first line, then
// "left right" per line; blank lines are ignored.
func ParseGPT2Merges(data []byte) ([]string, error) {
	var merges []string
	for ln, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" || (ln == 0 && strings.HasPrefix(line, "#version")) {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 || f[0]+" "+f[1] != line {
			return nil, fmt.Errorf("line %d: %q is not two tokens separated by one space", ln+1, line)
		}
		merges = append(merges, line)
	}
	return merges, nil
}
