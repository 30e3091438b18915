package spec

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/modelc/modelc/gguf"
)

// FromGGUF reads the llama.* metadata of a GGUF model file and returns the
// spec it describes, with defaults set and validated. See FromGGUFFile for
// the rules; when the file has no general.name the spec is named after the file.
func FromGGUF(path string) (Spec, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return Spec{}, err
	}
	defer f.Close()
	s, err := fromGGUF(f, SanitizeName(filepath.Base(path)))
	if err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// FromGGUFFile builds a spec from an open GGUF file of architecture llama, the
// way llama.cpp reads it:
//
//   - shape from llama.embedding_length, block_count, feed_forward_length,
//     attention.head_count, attention.head_count_kv (default: head_count) and
//     context_length;
//
//   - vocab from llama.vocab_size, else the length of tokenizer.ggml.tokens
//     (when both are present they must agree);
//
//   - norm_eps from llama.attention.layer_norm_rms_epsilon and rope_theta from
//     llama.rope.freq_base, each defaulted when absent;
//
//   - tie_embeddings when the file has no output.weight tensor;
//
//   - quant from the block format of the per-layer matrices (Q8_0 is q8_0,
//     Q4_0 is q4_0; matrices left in F32, F16 or BF16 do not count, since a
//     quantiser keeps rows that are not whole blocks), f32 when none is;
//
//   - tokenizer kind gguf with bos and eos from tokenizer.ggml.*_token_id;
//
//   - name from general.name, made a valid name, or "model".
//
//   - a mixture of experts when llama.expert_count > 0: top_k from
//     llama.expert_used_count (then required), the experts' ffn_dim from
//     feed_forward_length (as llama.cpp sizes ffn_*_exps), a shared expert
//     when llama.expert_shared_count is 1, aux_loss_coef defaulted.
//
// Partial RoPE (rope.dimension_count other than the head size) is refused.
func FromGGUFFile(f *gguf.File) (Spec, error) {
	return fromGGUF(f, "model")
}

func fromGGUF(f *gguf.File, fallbackName string) (Spec, error) {
	arch, err := f.String(gguf.KeyArchitecture)
	if err != nil {
		return Spec{}, err
	}
	if arch != "llama" {
		return Spec{}, fmt.Errorf("gguf: %s is %q, only \"llama\" is supported", gguf.KeyArchitecture, arch)
	}
	s := Spec{Name: fallbackName}
	if n, err := f.String(gguf.KeyName); err == nil {
		// The suffix protects a name like "tiny 1.1B" from losing ".1B" as
		// if it were a file extension.
		s.Name = SanitizeName(n + ".gguf")
	}

	required := []struct {
		key string
		dst *int
	}{
		{gguf.KeyLlamaEmbeddingLength, &s.Dim},
		{gguf.KeyLlamaBlockCount, &s.Layers},
		{gguf.KeyLlamaFeedForward, &s.FFNDim},
		{gguf.KeyLlamaHeadCount, &s.Heads},
		{gguf.KeyLlamaContextLength, &s.MaxSeq},
	}
	for _, r := range required {
		v, err := f.Uint32(r.key)
		if err != nil {
			return Spec{}, err
		}
		*r.dst = int(v)
	}
	s.KVHeads = s.Heads
	if err := ggufOptionalInt(f, gguf.KeyLlamaHeadCountKV, &s.KVHeads); err != nil {
		return Spec{}, err
	}

	// Vocabulary size: the explicit key, else the token list.
	nTokens, tokErr := f.ArrayLen(gguf.KeyTokens)
	if tokErr != nil && !errors.Is(tokErr, gguf.ErrNotFound) {
		return Spec{}, tokErr
	}
	switch {
	case f.Has(gguf.KeyLlamaVocabSize):
		if err := ggufOptionalInt(f, gguf.KeyLlamaVocabSize, &s.Vocab); err != nil {
			return Spec{}, err
		}
		if tokErr == nil && nTokens != s.Vocab {
			return Spec{}, fmt.Errorf("gguf: %s is %d but %s has %d tokens", gguf.KeyLlamaVocabSize, s.Vocab, gguf.KeyTokens, nTokens)
		}
	case tokErr == nil:
		s.Vocab = nTokens
	default:
		return Spec{}, fmt.Errorf("gguf: vocabulary size unknown: neither %s nor %s is present", gguf.KeyLlamaVocabSize, gguf.KeyTokens)
	}

	if s.NormEps, err = ggufOptionalFloat(f, gguf.KeyLlamaRMSEps, DefaultNormEps); err != nil {
		return Spec{}, err
	}
	if s.RopeTheta, err = ggufOptionalFloat(f, gguf.KeyLlamaRopeFreqBase, DefaultRopeTheta); err != nil {
		return Spec{}, err
	}
	if f.Has(gguf.KeyLlamaExpertCount) {
		n, err := f.Uint32(gguf.KeyLlamaExpertCount)
		if err != nil {
			return Spec{}, err
		}
		if n > 0 {
			used, err := f.Uint32(gguf.KeyLlamaExpertUsedCount)
			if err != nil {
				return Spec{}, fmt.Errorf("%w (%s is %d)", err, gguf.KeyLlamaExpertCount, n)
			}
			s.MoE = &MoE{Experts: int(n), TopK: int(used), FFNDim: s.FFNDim}
			shared := 0
			if err := ggufOptionalInt(f, KeyLlamaExpertSharedCount, &shared); err != nil {
				return Spec{}, err
			}
			switch shared {
			case 0:
			case 1:
				s.MoE.SharedExpert = true
			default:
				return Spec{}, fmt.Errorf("gguf: %s is %d: only one shared expert is supported", KeyLlamaExpertSharedCount, shared)
			}
		}
	}
	_, hasOutput := f.Tensor("output.weight")
	s.TieEmbeddings = !hasOutput

	if s.Quant, err = ggufQuant(f); err != nil {
		return Spec{}, err
	}

	s.Tokenizer = Tokenizer{Kind: "gguf", BOS: DefaultBOS, EOS: DefaultEOS}
	if err := ggufOptionalInt(f, gguf.KeyBOS, &s.Tokenizer.BOS); err != nil {
		return Spec{}, err
	}
	if err := ggufOptionalInt(f, gguf.KeyEOS, &s.Tokenizer.EOS); err != nil {
		return Spec{}, err
	}

	s.SetDefaults()
	if err := s.Validate(); err != nil {
		return Spec{}, fmt.Errorf("gguf metadata: %w", err)
	}
	// Checked after Validate so that heads is known to be positive.
	if f.Has(gguf.KeyLlamaRopeDimCount) {
		n, err := f.Uint32(gguf.KeyLlamaRopeDimCount)
		if err != nil {
			return Spec{}, err
		}
		if int(n) != s.HeadDim() {
			return Spec{}, fmt.Errorf("gguf: %s is %d, but the head size is %d: partial RoPE is not supported", gguf.KeyLlamaRopeDimCount, n, s.HeadDim())
		}
	}
	return s, nil
}

// KeyLlamaExpertSharedCount is llama.cpp's key for the number of shared
// (always-on) experts.
const KeyLlamaExpertSharedCount = "llama.expert_shared_count"

// ggufOptionalInt sets *dst from key when the key is present.
func ggufOptionalInt(f *gguf.File, key string, dst *int) error {
	if !f.Has(key) {
		return nil
	}
	v, err := f.Uint32(key)
	if err != nil {
		return err
	}
	*dst = int(v)
	return nil
}

// ggufOptionalFloat reads a float32 key as the float64 with the same shortest
// decimal form, so that 1e-5 stays 1e-05 rather than 9.999999747378752e-06.
func ggufOptionalFloat(f *gguf.File, key string, def float64) (float64, error) {
	if !f.Has(key) {
		return def, nil
	}
	v, err := f.Float32(key)
	if err != nil {
		return 0, err
	}
	d, _ := strconv.ParseFloat(strconv.FormatFloat(float64(v), 'g', -1, 32), 64)
	return d, nil
}

// ggufQuant names the weight format of the per-layer matrices: the block
// format they use (q8_0, q4_0), else f32. Matrices a quantiser left in a
// float format (rows not whole 32-blocks, as llama.cpp and modelc quantize
// do) do not make a file mixed; two different block formats do.
func ggufQuant(f *gguf.File) (string, error) {
	quant, from := "", ""
	for _, t := range f.Tensors {
		if !strings.HasPrefix(t.Name, "blk.") || len(t.Dims) < 2 {
			continue
		}
		var q string
		switch t.Type {
		case gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16:
			continue
		case gguf.TypeQ8_0:
			q = "q8_0"
		case gguf.TypeQ4_0:
			q = "q4_0"
		default:
			return "", fmt.Errorf("gguf: tensor %s has type %s: not supported (F32, F16, BF16, Q8_0, Q4_0)", t.Name, t.Type)
		}
		if quant != "" && q != quant {
			return "", fmt.Errorf("gguf: tensor %s is %s but %s is %s: mixed weight formats are not supported", t.Name, t.Type, from, quantOf(f, from))
		}
		quant, from = q, t.Name
	}
	if quant == "" {
		quant = DefaultQuant
	}
	return quant, nil
}

func quantOf(f *gguf.File, name string) gguf.GGMLType {
	t, _ := f.Tensor(name)
	return t.Type
}
