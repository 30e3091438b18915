package tokenizer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/modelc/modelc/gguf"
)

// FromGGUF builds the tokenizer stored in a GGUF file's tokenizer.ggml.*
// metadata: model "llama" gives a *SentencePiece, "gpt2" a *ByteLevel.
func FromGGUF(f *gguf.File) (Tokenizer, error) {
	model, err := f.String(gguf.KeyTokenizerModel)
	if err != nil {
		if !hasVocabKeys(f) {
			// A model GGUF written without its vocabulary: say so rather
			// than name the first key looked for.
			return nil, fmt.Errorf("tokenizer: the GGUF file holds no vocabulary (no tokenizer.ggml.* metadata)")
		}
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	switch model {
	case "llama":
		return SentencePieceFromGGUF(f)
	case "gpt2":
		return ByteLevelFromGGUF(f) // the byte-level side (bytelevel_gguf.go)
	}
	return nil, fmt.Errorf("tokenizer: %s %q: %w (only \"llama\" and \"gpt2\")", gguf.KeyTokenizerModel, model, errNotSupported)
}

func hasVocabKeys(f *gguf.File) bool {
	for _, kv := range f.KV {
		if strings.HasPrefix(kv.Key, "tokenizer.ggml.") {
			return true
		}
	}
	return false
}

// LoadGGUF opens a GGUF file and builds its tokenizer.
func LoadGGUF(path string) (Tokenizer, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	defer f.Close()
	t, err := FromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Load reads a vocabulary, telling the format from the file itself:
//   - GGUF (magic "GGUF"): its tokenizer.ggml.* metadata;
//   - GPT-2 encoder.json (JSON), with vocab.bpe in the same directory;
//   - a SentencePiece tokenizer.model (BPE), by content or ".model";
//   - a directory holding encoder.json + vocab.bpe, tokenizer.bin or
//     tokenizer.model;
//   - otherwise a llama2.c tokenizer.bin of vocabSize tokens.
//
// vocabSize is the model's vocabulary size; it must match when given
// (> 0). A llama2.c file needs it unless it is read to the end (0).
func Load(path string, vocabSize int) (Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if st.IsDir() {
		enc, bpe := filepath.Join(path, "encoder.json"), filepath.Join(path, "vocab.bpe")
		switch {
		case exists(enc) && exists(bpe):
			return checkSize(LoadGPT2(enc, bpe))(path, vocabSize)
		case exists(filepath.Join(path, "tokenizer.bin")):
			path = filepath.Join(path, "tokenizer.bin")
		case exists(filepath.Join(path, "tokenizer.model")):
			path = filepath.Join(path, "tokenizer.model")
		default:
			return nil, fmt.Errorf("tokenizer: %s: directory holds none of encoder.json + vocab.bpe, tokenizer.bin, tokenizer.model", path)
		}
	}
	head, err := readHead(path, 512)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, []byte(gguf.Magic)):
		return checkSize(LoadGGUF(path))(path, vocabSize)
	case bytes.HasPrefix(bytes.TrimLeft(head, " \t\r\n\xef\xbb\xbf"), []byte("{")):
		bpe := filepath.Join(filepath.Dir(path), "vocab.bpe")
		if !exists(bpe) {
			return nil, fmt.Errorf("tokenizer: %s looks like GPT-2's encoder.json but %s is missing", path, bpe)
		}
		return checkSize(LoadGPT2(path, bpe))(path, vocabSize)
	}
	if strings.HasSuffix(path, ".model") || looksLikeModelProto(head) {
		t, err := LoadSentencePieceModel(path)
		if err == nil || strings.HasSuffix(path, ".model") {
			return checkSize(t, err)(path, vocabSize)
		}
		// Not a ModelProto after all: a tokenizer.bin can start alike.
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := ParseLlama2C(data, vocabSize)
	switch {
	case err == nil:
		return t, nil
	case looksLikeLlama2C(data):
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	// A tokenizer.bin has no magic, so every other file ends up here; when
	// it does not even start like one, the parse error alone ("length
	// 1702521204 out of range" for a text file) hides what went wrong.
	return nil, fmt.Errorf("tokenizer: %s is not a recognised tokenizer file (GGUF vocabulary, GPT-2 encoder.json + vocab.bpe or their directory, SentencePiece tokenizer.model, llama2.c tokenizer.bin); read as tokenizer.bin: %w", path, err)
}

// looksLikeLlama2C: a tokenizer.bin starts with max_token_length (1 to
// maxLlama2CPiece), then records of a finite score and a text no longer
// than that; the first eight (or all, if fewer) are checked, enough to
// tell a text file or a checkpoint header apart.
func looksLikeLlama2C(b []byte) bool {
	le := binary.LittleEndian
	if len(b) < 4 {
		return false
	}
	maxLen := int64(int32(le.Uint32(b)))
	if maxLen < 1 || maxLen > maxLlama2CPiece {
		return false
	}
	off := 4
	for i := 0; i < 8 && off < len(b); i++ {
		if len(b)-off < 8 {
			return false
		}
		score := float64(math.Float32frombits(le.Uint32(b[off:])))
		ln := int64(int32(le.Uint32(b[off+4:])))
		if math.IsNaN(score) || math.IsInf(score, 0) || ln < 0 || ln > maxLen || int64(len(b)-off-8) < ln {
			return false
		}
		off += 8 + int(ln)
	}
	return true
}

// looksLikeModelProto: a SentencePiece ModelProto starts with field 1
// (pieces, length-delimited: 0x0A, a non-zero length) holding field 1 (the
// piece text, 0x0A again).
func looksLikeModelProto(b []byte) bool {
	if len(b) < 3 || b[0] != 0x0A || b[1] == 0 {
		return false
	}
	i := 1
	for i < len(b) && b[i]&0x80 != 0 {
		i++
	}
	return i+1 < len(b) && b[i+1] == 0x0A
}

// CheckVocab returns nil when t has the model's vocab tokens, else the one
// error every command gives for it, naming the tokenizer's source src (the
// tokenizer file, or the model file that carries it; "" when unknown).
func CheckVocab(src string, t interface{ VocabSize() int }, vocab int) error {
	if n := t.VocabSize(); n != vocab {
		if src == "" {
			return fmt.Errorf("the tokenizer holds %d tokens but the model's vocab size is %d", n, vocab)
		}
		return fmt.Errorf("tokenizer: %s holds %d tokens but the model's vocab size is %d", src, n, vocab)
	}
	return nil
}

// checkSize wraps a loader's result with the vocabulary size check.
func checkSize[T Tokenizer](t T, err error) func(path string, n int) (Tokenizer, error) {
	return func(path string, n int) (Tokenizer, error) {
		if err != nil {
			return nil, err
		}
		if n > 0 {
			if err := CheckVocab(path, t, n); err != nil {
				return nil, err
			}
		}
		return t, nil
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := io.ReadFull(f, b)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b[:k], nil
}
