package tokenizer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/modelc/modelc/gguf"
)

// keyAddSpacePrefix is a key llama.cpp reads that gguf/keys.go does not name.
const keyAddSpacePrefix = "tokenizer.ggml.add_space_prefix"

// spmSpace is how SentencePiece spells a space inside a piece.
const spmSpace = "▁"

// SentencePieceFromGGUF builds a SentencePiece vocabulary from GGUF
// tokenizer.ggml.* metadata with model "llama": "▁" in pieces becomes ' ',
// missing scores are 0, missing types normal (byte tokens still recognised),
// missing ids take llama.cpp's defaults (unk 0, bos 1, eos 2).
func SentencePieceFromGGUF(f *gguf.File) (*SentencePiece, error) {
	model, err := f.String(gguf.KeyTokenizerModel)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if model != "llama" {
		return nil, fmt.Errorf("tokenizer: %s is %q, not a SentencePiece (\"llama\") vocabulary", gguf.KeyTokenizerModel, model)
	}
	raw, err := f.Strings(gguf.KeyTokens)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	n := len(raw)
	v := SPMVocab{Pieces: make([]string, n), Scores: make([]float32, n), Types: make([]TokenType, n)}
	for i, p := range raw {
		v.Pieces[i] = strings.ReplaceAll(p, spmSpace, " ")
	}
	if f.Has(gguf.KeyScores) {
		s, err := f.Float32s(gguf.KeyScores)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		if len(s) != n {
			return nil, fmt.Errorf("tokenizer: %s has %d entries for %d tokens", gguf.KeyScores, len(s), n)
		}
		copy(v.Scores, s)
	}
	if f.Has(gguf.KeyTokenType) {
		ty, err := f.Int32s(gguf.KeyTokenType)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		if len(ty) != n {
			return nil, fmt.Errorf("tokenizer: %s has %d entries for %d tokens", gguf.KeyTokenType, len(ty), n)
		}
		for i, x := range ty {
			if x < int32(TokenUndefined) || x > int32(TokenByte) {
				return nil, fmt.Errorf("tokenizer: %s[%d] = %d is not a token type (0..6)", gguf.KeyTokenType, i, x)
			}
			v.Types[i] = TokenType(x)
			if v.Types[i] == TokenUndefined {
				v.Types[i] = TokenNormal // llama.cpp treats undefined as normal text
			}
		}
	} else {
		for i, p := range v.Pieces {
			v.Types[i] = TokenNormal
			if _, ok := parseBytePiece(p); ok {
				v.Types[i] = TokenByte
			}
		}
	}
	ids := []struct {
		key string
		def int
		dst *int
	}{
		{gguf.KeyUNK, 0, &v.Unknown}, {gguf.KeyBOS, 1, &v.BOS}, {gguf.KeyEOS, 2, &v.EOS}, {gguf.KeyPAD, -1, &v.Pad},
	}
	for _, c := range ids {
		id, err := optInt(f, c.key, c.def)
		if err != nil {
			return nil, err
		}
		if id >= n {
			if f.Has(c.key) {
				return nil, fmt.Errorf("tokenizer: %s = %d is out of range for %d tokens", c.key, id, n)
			}
			id = -1
		}
		*c.dst = id
	}
	if v.AddBOS, err = optBool(f, gguf.KeyAddBOS, true); err != nil {
		return nil, err
	}
	if v.AddEOS, err = optBool(f, gguf.KeyAddEOS, false); err != nil {
		return nil, err
	}
	prefix, err := optBool(f, keyAddSpacePrefix, true)
	if err != nil {
		return nil, err
	}
	v.NoSpacePrefix = !prefix
	t, err := NewSentencePiece(v)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func optInt(f *gguf.File, key string, def int) (int, error) {
	if !f.Has(key) {
		return def, nil
	}
	x, err := f.Int32(key)
	if err != nil {
		// llama.cpp writes ids as uint32; "no token" is sometimes 0xFFFFFFFF.
		if u, uerr := f.Uint32(key); uerr == nil && u == ^uint32(0) {
			return -1, nil
		}
		return 0, fmt.Errorf("tokenizer: %w", err)
	}
	if x < -1 {
		return 0, fmt.Errorf("tokenizer: %s = %d is not a token id", key, x)
	}
	return int(x), nil
}

func optBool(f *gguf.File, key string, def bool) (bool, error) {
	if !f.Has(key) {
		return def, nil
	}
	b, err := f.Bool(key)
	if err != nil {
		return false, fmt.Errorf("tokenizer: %w", err)
	}
	return b, nil
}

// GGUFMetadata returns the tokenizer.ggml.* entries llama.cpp reads for a
// "llama" (SentencePiece) vocabulary, so one GGUF file carries both the model
// and its tokenizer. Spaces are written as "▁"; BOS/EOS spelled "\n<s>\n" by
// llama2.c are written "<s>"/"</s>" as in Llama's tokenizer.model.
func (t *SentencePiece) GGUFMetadata() []gguf.KV {
	n := len(t.pieces)
	tokens := make([]string, n)
	types := make([]int32, n)
	for i, p := range t.pieces {
		switch t.types[i] {
		case TokenControl, TokenUnknown, TokenUserDefined:
			p = specialText(p)
		}
		tokens[i] = strings.ReplaceAll(p, " ", spmSpace)
		types[i] = int32(t.types[i])
	}
	kvs := []gguf.KV{
		{Key: gguf.KeyTokenizerModel, Value: "llama"},
		{Key: gguf.KeyTokenizerPre, Value: "default"},
		{Key: gguf.KeyTokens, Value: tokens},
		{Key: gguf.KeyScores, Value: append([]float32(nil), t.scores...)},
		{Key: gguf.KeyTokenType, Value: types},
	}
	for _, c := range []struct {
		key string
		id  int
	}{{gguf.KeyBOS, t.bos}, {gguf.KeyEOS, t.eos}, {gguf.KeyUNK, t.unk}, {gguf.KeyPAD, t.pad}} {
		if c.id >= 0 {
			kvs = append(kvs, gguf.KV{Key: c.key, Value: uint32(c.id)})
		}
	}
	kvs = append(kvs,
		gguf.KV{Key: gguf.KeyAddBOS, Value: t.addBOS},
		gguf.KV{Key: gguf.KeyAddEOS, Value: t.addEOS},
		gguf.KV{Key: keyAddSpacePrefix, Value: t.prefix},
	)
	return kvs
}

// errNotSupported marks a vocabulary kind this package cannot build.
var errNotSupported = errors.New("not supported")
