package spec_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/spec"
)

// ggufTestData finds the shared data directory above the package directory.
func ggufTestData(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "shared", "data")
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("shared/data not found above the package directory")
		}
		dir = filepath.Dir(dir)
	}
}

func TestFromGGUFRealFile(t *testing.T) {
	s, err := spec.FromGGUF(filepath.Join(ggufTestData(t), "tokenizer", "ggml-vocab-llama-spm.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	// The metadata of Llama 2 7B, as the file carries it.
	if s.Name != "llama_spm" || s.Vocab != 32000 || s.Dim != 4096 || s.Layers != 32 || s.Heads != 32 ||
		s.KVHeads != 32 || s.FFNDim != 11008 || s.MaxSeq != 4096 {
		t.Errorf("shape: %+v", s)
	}
	if s.NormEps != 1e-5 || s.RopeTheta != 10000 || !s.TieEmbeddings || s.Quant != "f32" {
		t.Errorf("eps %v theta %v tied %v quant %q", s.NormEps, s.RopeTheta, s.TieEmbeddings, s.Quant)
	}
	if s.Tokenizer != (spec.Tokenizer{Kind: "gguf", BOS: 1, EOS: 2}) {
		t.Errorf("tokenizer %+v", s.Tokenizer)
	}

	_, err = spec.FromGGUF(filepath.Join(ggufTestData(t), "tokenizer", "ggml-vocab-gpt-2.gguf"))
	if err == nil || !strings.Contains(err.Error(), `"gpt2"`) || !strings.Contains(err.Error(), "ggml-vocab-gpt-2.gguf") {
		t.Errorf("gpt2 file: %v", err)
	}
}

func baseKVs() []gguf.KV {
	return []gguf.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.name", Value: "Tiny Llama 1.1B"},
		{Key: "llama.context_length", Value: uint32(128)},
		{Key: "llama.embedding_length", Value: uint32(16)},
		{Key: "llama.block_count", Value: uint32(2)},
		{Key: "llama.feed_forward_length", Value: uint32(40)},
		{Key: "llama.attention.head_count", Value: uint32(4)},
		{Key: "llama.attention.head_count_kv", Value: uint32(2)},
		{Key: "llama.attention.layer_norm_rms_epsilon", Value: float32(1e-6)},
		{Key: "llama.rope.freq_base", Value: float32(500000)},
		{Key: "llama.rope.dimension_count", Value: uint32(4)},
		{Key: "tokenizer.ggml.tokens", Value: []string{"a", "b", "c", "d", "e"}},
		{Key: "tokenizer.ggml.bos_token_id", Value: uint32(3)},
		{Key: "tokenizer.ggml.eos_token_id", Value: int32(4)},
	}
}

func with(kvs []gguf.KV, key string, v any) []gguf.KV {
	out := append([]gguf.KV(nil), kvs...)
	for i := range out {
		if out[i].Key == key {
			if v == nil {
				return append(out[:i], out[i+1:]...)
			}
			out[i].Value = v
			return out
		}
	}
	return append(out, gguf.KV{Key: key, Value: v})
}

func writeGGUF(t *testing.T, kvs []gguf.KV, ts []gguf.WriteTensor) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := gguf.WriteFile(path, kvs, ts); err != nil {
		t.Fatal(err)
	}
	return path
}

func matrix(name string, ty gguf.GGMLType, cols, rows uint64) gguf.WriteTensor {
	n, _ := ty.RowBytes(cols)
	return gguf.WriteTensor{Name: name, Dims: []uint64{cols, rows}, Type: ty, Data: make([]byte, n*rows)}
}

func TestFromGGUFMetadata(t *testing.T) {
	s, err := spec.FromGGUF(writeGGUF(t, baseKVs(), []gguf.WriteTensor{matrix("output.weight", gguf.TypeF32, 16, 5)}))
	if err != nil {
		t.Fatal(err)
	}
	want := spec.Spec{Name: "tiny_llama_1_1b", Vocab: 5, Dim: 16, Layers: 2, Heads: 4, KVHeads: 2, FFNDim: 40, MaxSeq: 128,
		NormEps: 1e-6, RopeTheta: 500000, TieEmbeddings: false, Quant: "f32"}
	got := s
	got.Objective, got.Train, got.Tokenizer = "", spec.Train{}, spec.Tokenizer{}
	if got.Name != want.Name || got.Vocab != want.Vocab || got.Dim != want.Dim || got.Layers != want.Layers ||
		got.Heads != want.Heads || got.KVHeads != want.KVHeads || got.FFNDim != want.FFNDim || got.MaxSeq != want.MaxSeq ||
		got.NormEps != want.NormEps || got.RopeTheta != want.RopeTheta || got.TieEmbeddings || got.Quant != want.Quant {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if s.Tokenizer != (spec.Tokenizer{Kind: "gguf", BOS: 3, EOS: 4}) {
		t.Errorf("tokenizer %+v", s.Tokenizer)
	}

	// llama.vocab_size wins over a missing token list; no general.name means
	// the file's name; no kv head count means as many as heads.
	kvs := with(with(with(with(baseKVs(), "tokenizer.ggml.tokens", nil), "llama.vocab_size", uint32(9)), "general.name", nil), "llama.attention.head_count_kv", nil)
	s, err = spec.FromGGUF(writeGGUF(t, kvs, nil))
	if err != nil {
		t.Fatal(err)
	}
	if s.Vocab != 9 || s.Name != "m" || s.KVHeads != 4 || !s.TieEmbeddings {
		t.Errorf("vocab %d name %q kv %d tied %v", s.Vocab, s.Name, s.KVHeads, s.TieEmbeddings)
	}

	// Quant follows the layer matrices.
	s, err = spec.FromGGUF(writeGGUF(t, baseKVs(), []gguf.WriteTensor{matrix("blk.0.attn_q.weight", gguf.TypeQ8_0, 32, 16), matrix("token_embd.weight", gguf.TypeF16, 16, 5)}))
	if err != nil || s.Quant != "q8_0" {
		t.Errorf("quant %q, %v", s.Quant, err)
	}
}

func TestFromGGUFRejects(t *testing.T) {
	cases := []struct {
		name string
		kvs  []gguf.KV
		ts   []gguf.WriteTensor
		want string
	}{
		{"no arch", with(baseKVs(), "general.architecture", nil), nil, `"general.architecture": not found`},
		{"missing", with(baseKVs(), "llama.block_count", nil), nil, `"llama.block_count": not found`},
		{"wrong type", with(baseKVs(), "llama.block_count", "two"), nil, `"llama.block_count": want an integer`},
		{"negative", with(baseKVs(), "llama.embedding_length", int32(-16)), nil, `"llama.embedding_length"`},
		{"eps type", with(baseKVs(), "llama.attention.layer_norm_rms_epsilon", uint32(1)), nil, `"llama.attention.layer_norm_rms_epsilon": want float32`},
		{"vocab mismatch", with(baseKVs(), "llama.vocab_size", uint32(6)), nil, "llama.vocab_size is 6 but tokenizer.ggml.tokens has 5"},
		{"no vocab", with(baseKVs(), "tokenizer.ggml.tokens", nil), nil, "vocabulary size unknown"},
		{"moe without used count", with(baseKVs(), "llama.expert_count", uint32(8)), nil, `"llama.expert_used_count": not found (llama.expert_count is 8)`},
		{"moe top_k", with(with(baseKVs(), "llama.expert_count", uint32(4)), "llama.expert_used_count", uint32(5)), nil, "moe.top_k: must be ≤ moe.experts (4), got 5"},
		{"moe shared", with(with(with(baseKVs(), "llama.expert_count", uint32(4)), "llama.expert_used_count", uint32(2)), "llama.expert_shared_count", uint32(2)), nil, "only one shared expert"},
		{"partial rope", with(baseKVs(), "llama.rope.dimension_count", uint32(2)), nil, "partial RoPE"},
		{"heads", with(baseKVs(), "llama.attention.head_count", uint32(3)), nil, "dim: must be a multiple of heads"},
		{"kv heads", with(baseKVs(), "llama.attention.head_count_kv", uint32(3)), nil, "kv_heads"},
		{"bos", with(baseKVs(), "tokenizer.ggml.bos_token_id", uint32(7)), nil, "tokenizer.bos"},
		{"k-quant", baseKVs(), []gguf.WriteTensor{matrix("blk.0.attn_q.weight", gguf.TypeQ4_K, 256, 16)}, "has type Q4_K: not supported"},
		{"mixed", baseKVs(), []gguf.WriteTensor{matrix("blk.0.attn_q.weight", gguf.TypeQ8_0, 32, 16), matrix("blk.0.attn_k.weight", gguf.TypeQ4_0, 32, 8)}, "mixed weight formats"},
	}
	for _, c := range cases {
		path := writeGGUF(t, c.kvs, c.ts)
		_, err := spec.FromGGUF(path)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v, want one line naming the file and %q", c.name, err, c.want)
		}
	}
	if _, err := spec.FromGGUF(filepath.Join(t.TempDir(), "missing.gguf")); err == nil {
		t.Error("missing file accepted")
	}
}
