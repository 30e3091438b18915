package tokenizer

import (
	"errors"
	"fmt"

	"github.com/modelc/modelc/gguf"
)

// ByteLevelFromGGUF builds the tokenizer of a GGUF file whose
// tokenizer.ggml.model is "gpt2": tokens, merges, token types (optional)
// and BOS/EOS ids (optional). Only GPT-2's own pre-tokenizer is supported
// (tokenizer.ggml.pre absent or "gpt-2"); other pre-tokenizers split text
// differently and would give different ids.
func ByteLevelFromGGUF(f *gguf.File) (*ByteLevel, error) {
	b, err := blFromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("gguf gpt2 vocab: %w", err)
	}
	return b, nil
}

func blFromGGUF(f *gguf.File) (*ByteLevel, error) {
	model, err := f.String(gguf.KeyTokenizerModel)
	if err != nil {
		return nil, err
	}
	if model != "gpt2" {
		return nil, fmt.Errorf("%s is %q, want \"gpt2\"", gguf.KeyTokenizerModel, model)
	}
	if f.Has(gguf.KeyTokenizerPre) {
		pre, err := f.String(gguf.KeyTokenizerPre)
		if err != nil {
			return nil, err
		}
		if pre != "gpt-2" {
			return nil, fmt.Errorf("%s %q is not supported (only \"gpt-2\")", gguf.KeyTokenizerPre, pre)
		}
	}
	v := ByteLevelVocab{BOS: -1, EOS: -1}
	if v.Tokens, err = f.Strings(gguf.KeyTokens); err != nil {
		return nil, err
	}
	if v.Merges, err = f.Strings(gguf.KeyMerges); err != nil {
		return nil, err
	}
	if f.Has(gguf.KeyTokenType) {
		if v.Types, err = f.Int32s(gguf.KeyTokenType); err != nil {
			return nil, err
		}
	}
	for _, x := range []struct {
		key string
		id  *int
	}{{gguf.KeyBOS, &v.BOS}, {gguf.KeyEOS, &v.EOS}} {
		if !f.Has(x.key) {
			continue
		}
		id, err := f.Uint32(x.key)
		if err != nil {
			return nil, err
		}
		if int64(id) >= int64(len(v.Tokens)) {
			return nil, fmt.Errorf("%s %d out of range [0,%d)", x.key, id, len(v.Tokens))
		}
		*x.id = int(id)
	}
	return NewByteLevel(v)
}

// GGUFMetadata returns the tokenizer.ggml.* entries that describe this
// vocabulary, ready for gguf.Write.
func (b *ByteLevel) GGUFMetadata() []gguf.KV {
	v := b.vocab
	types := v.Types
	if types == nil {
		types = make([]int32, len(v.Tokens))
		for i := range types {
			types[i] = int32(TokenNormal)
		}
	}
	kvs := []gguf.KV{
		{Key: gguf.KeyTokenizerModel, Value: "gpt2"},
		{Key: gguf.KeyTokenizerPre, Value: "gpt-2"},
		{Key: gguf.KeyTokens, Value: append([]string(nil), v.Tokens...)},
		{Key: gguf.KeyTokenType, Value: append([]int32(nil), types...)},
		{Key: gguf.KeyMerges, Value: append([]string(nil), v.Merges...)},
	}
	if v.BOS >= 0 {
		kvs = append(kvs, gguf.KV{Key: gguf.KeyBOS, Value: uint32(v.BOS)})
	}
	if v.EOS >= 0 {
		kvs = append(kvs, gguf.KV{Key: gguf.KeyEOS, Value: uint32(v.EOS)})
	}
	return kvs
}

// SaveGGUF writes a vocabulary-only GGUF file (no tensors) atomically.
func (b *ByteLevel) SaveGGUF(path string) error {
	return blSaveVocabGGUF(path, b.GGUFMetadata())
}

func blSaveVocabGGUF(path string, kvs []gguf.KV) error {
	if path == "" {
		return errors.New("save vocab: empty path")
	}
	all := append([]gguf.KV{
		{Key: gguf.KeyArchitecture, Value: "llama"},
		{Key: gguf.KeyName, Value: "modelc-vocab"},
	}, kvs...)
	return gguf.WriteFile(path, all, nil)
}
