package spec

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// repoRoot is the directory holding go.mod, found by walking up.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = up
	}
}

// dataDir is the shared test data: "shared/data" beside the repository root.
func dataDir(t testing.TB) string {
	t.Helper()
	d := filepath.Join(filepath.Dir(repoRoot(t)), "shared", "data")
	if _, err := os.Stat(d); err != nil {
		t.Fatalf("test data: %v", err)
	}
	return d
}

// valid is the stories260K shape with every default set.
func valid() Spec {
	s := Spec{Name: "stories260k", Vocab: 512, Dim: 64, Layers: 5, Heads: 8, KVHeads: 4, FFNDim: 172, MaxSeq: 512, TieEmbeddings: true}
	s.SetDefaults()
	return s
}

func TestValidSpecValidates(t *testing.T) {
	s := valid()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	moe := func(e, k, f int) *MoE { return &MoE{Experts: e, TopK: k, FFNDim: f} }
	cases := []struct {
		name string
		mod  func(*Spec)
		want string
	}{
		{"empty name", func(s *Spec) { s.Name = "" }, "name: must not be empty"},
		{"upper name", func(s *Spec) { s.Name = "Stories" }, `name: must match ^[a-z][a-z0-9_]*$, got "Stories"`},
		{"digit first", func(s *Spec) { s.Name = "1x" }, `name: must match ^[a-z][a-z0-9_]*$, got "1x"`},
		{"dash", func(s *Spec) { s.Name = "a-b" }, `name: must match ^[a-z][a-z0-9_]*$, got "a-b"`},
		{"keyword", func(s *Spec) { s.Name = "func" }, `name: must not be a Go keyword, got "func"`},
		{"name main", func(s *Spec) { s.Name = "main" }, `name: must not be main or init (names Go cannot import a package by), got "main"`},
		{"name init", func(s *Spec) { s.Name = "init" }, `name: must not be main or init (names Go cannot import a package by), got "init"`},
		{"long name", func(s *Spec) { s.Name = strings.Repeat("a", 65) }, "name: must be at most 64 characters, got 65"},
		{"vocab 0", func(s *Spec) { s.Vocab = 0 }, "vocab: must be ≥ 1, got 0"},
		{"vocab big", func(s *Spec) { s.Vocab = 1<<24 + 1 }, "vocab: must be ≤ 16777216, got 16777217"},
		{"dim 0", func(s *Spec) { s.Dim = 0 }, "dim: must be ≥ 1, got 0"},
		{"dim big", func(s *Spec) { s.Dim = 65537 }, "dim: must be ≤ 65536, got 65537"},
		{"layers 0", func(s *Spec) { s.Layers = 0 }, "layers: must be ≥ 1, got 0"},
		{"layers big", func(s *Spec) { s.Layers = 1025 }, "layers: must be ≤ 1024, got 1025"},
		{"heads neg", func(s *Spec) { s.Heads = -1 }, "heads: must be ≥ 1, got -1"},
		{"heads big", func(s *Spec) { s.Heads = 1025 }, "heads: must be ≤ 1024, got 1025"},
		{"kv_heads 0", func(s *Spec) { s.KVHeads = 0 }, "kv_heads: must be ≥ 1, got 0"},
		{"ffn 0", func(s *Spec) { s.FFNDim = 0 }, "ffn_dim: must be ≥ 1, got 0"},
		{"ffn big", func(s *Spec) { s.FFNDim = 1<<20 + 1 }, "ffn_dim: must be ≤ 1048576, got 1048577"},
		{"max_seq 0", func(s *Spec) { s.MaxSeq = 0 }, "max_seq: must be ≥ 1, got 0"},
		{"max_seq big", func(s *Spec) { s.MaxSeq = 1<<20 + 1 }, "max_seq: must be ≤ 1048576, got 1048577"},
		{"dim%heads", func(s *Spec) { s.Dim = 60 }, "dim: must be a multiple of heads (8), got 60"},
		{"heads%kv", func(s *Spec) { s.KVHeads = 3 }, "kv_heads: must divide heads (8), got 3"},
		{"kv>heads", func(s *Spec) { s.KVHeads = 16 }, "kv_heads: must divide heads (8), got 16"},
		{"odd head dim", func(s *Spec) { s.Dim = 24; s.KVHeads = 8 }, "heads: dim/heads must be even for RoPE, got 24/8 = 3"},
		{"head dim big", func(s *Spec) { s.Dim = 16400; s.KVHeads = 8 }, "heads: dim/heads must be ≤ 1024 (the largest head the kernels take), got 16400/8 = 2050"},
		{"classifier big", func(s *Spec) { s.Vocab = 1 << 20; s.Dim = 512 }, "vocab: vocab × dim must be ≤ 2^28 (the largest matrix the kernels take), got 1048576 × 512"},
		{"ffn matrix big", func(s *Spec) { s.FFNDim = 1 << 20; s.Dim = 512 }, "ffn_dim: 2 × ffn_dim × dim must be ≤ 2^28 (gate and up in one matrix), got 2 × 1048576 × 512"},
		{"qkv matrix big", func(s *Spec) { s.Dim = 16384; s.Heads = 16; s.KVHeads = 16 }, "dim: dim × (dim + 2 × kv_heads × dim/heads) must be ≤ 2^28 (Q, K and V in one matrix), got 16384 × 49152"},
		{"eps 0", func(s *Spec) { s.NormEps = 0 }, "norm_eps: must be in (0, 1), got 0"},
		{"eps 1", func(s *Spec) { s.NormEps = 1 }, "norm_eps: must be in (0, 1), got 1"},
		{"eps nan", func(s *Spec) { s.NormEps = math.NaN() }, "norm_eps: must be in (0, 1), got NaN"},
		{"theta neg", func(s *Spec) { s.RopeTheta = -1 }, "rope_theta: must be a finite number > 0, got -1"},
		{"theta inf", func(s *Spec) { s.RopeTheta = math.Inf(1) }, "rope_theta: must be a finite number > 0, got +Inf"},
		{"experts 1", func(s *Spec) { s.MoE = moe(1, 1, 8) }, "moe.experts: must be ≥ 2, got 1"},
		{"experts big", func(s *Spec) { s.MoE = moe(1025, 1, 8) }, "moe.experts: must be ≤ 1024, got 1025"},
		{"top_k 0", func(s *Spec) { s.MoE = moe(4, 0, 8) }, "moe.top_k: must be ≥ 1, got 0"},
		{"top_k > experts", func(s *Spec) { s.MoE = moe(4, 5, 8) }, "moe.top_k: must be ≤ moe.experts (4), got 5"},
		{"moe ffn 0", func(s *Spec) { s.MoE = moe(4, 2, 0) }, "moe.ffn_dim: must be ≥ 1, got 0"},
		{"moe experts big", func(s *Spec) { s.MoE = moe(1024, 1, 128); s.Dim = 4096 }, "moe.ffn_dim: moe.experts × moe.ffn_dim × dim must be ≤ 2^28 (every expert's gate rows in one tensor), got 1024 × 128 × 4096"},
		{"moe expert rows big", func(s *Spec) { s.MoE = moe(1024, 1, 1<<16); s.Dim, s.Heads, s.KVHeads = 2, 1, 1 }, "moe.ffn_dim: moe.experts × moe.ffn_dim must be ≤ 2^24 (every expert's gate rows in one tensor), got 1024 × 65536"},
		{"aux neg", func(s *Spec) { s.MoE = moe(4, 2, 8); s.MoE.AuxLossCoef = -0.5 },
			"moe.aux_loss_coef: must be a finite number ≥ 0, got -0.5"},
		{"quant", func(s *Spec) { s.Quant = "q5_k" }, `quant: must be one of f32, q8_0, q4_0, got "q5_k"`},
		{"objective", func(s *Spec) { s.Objective = "mlm" }, `objective: must be one of causal, masked, got "mlm"`},
		{"tokenizer kind", func(s *Spec) { s.Tokenizer.Kind = "tiktoken" },
			`tokenizer.kind: must be one of llama2c, sentencepiece, bytelevel, gguf, got "tiktoken"`},
		{"bos out", func(s *Spec) { s.Tokenizer.BOS = 512 }, "tokenizer.bos: must be in [0, vocab) = [0, 512), got 512"},
		{"bos neg", func(s *Spec) { s.Tokenizer.BOS = -1 }, "tokenizer.bos: must be in [0, vocab) = [0, 512), got -1"},
		{"eos out", func(s *Spec) { s.Tokenizer.EOS = 600 }, "tokenizer.eos: must be in [0, vocab) = [0, 512), got 600"},
		{"target", func(s *Spec) { s.Targets = []string{"avx2", "sse4"} },
			`targets[1]: must be one of avx512, avx2, neon, purego, got "sse4"`},
		{"target dup", func(s *Spec) { s.Targets = []string{"avx2", "neon", "avx2"} }, `targets[2]: "avx2" is already listed at targets[0]`},
		{"batch 0", func(s *Spec) { s.Train.BatchSize = 0 }, "train.batch_size: must be ≥ 1, got 0"},
		{"batch big", func(s *Spec) { s.Train.BatchSize = 1<<16 + 1 }, "train.batch_size: must be ≤ 65536, got 65537"},
		{"seq_len 0", func(s *Spec) { s.Train.SeqLen = 0 }, "train.seq_len: must be ≥ 1, got 0"},
		{"seq_len > max", func(s *Spec) { s.Train.SeqLen = 513 }, "train.seq_len: must be ≤ max_seq (512), got 513"},
		{"lr 0", func(s *Spec) { s.Train.LR = 0 }, "train.lr: must be a finite number > 0, got 0"},
		{"min_lr > lr", func(s *Spec) { s.Train.MinLR = 0.01 }, "train.min_lr: must be in [0, train.lr] = [0, 0.0003], got 0.01"},
		{"min_lr neg", func(s *Spec) { s.Train.MinLR = -1e-6 }, "train.min_lr: must be in [0, train.lr] = [0, 0.0003], got -1e-06"},
		{"warmup neg", func(s *Spec) { s.Train.WarmupSteps = -1 }, "train.warmup_steps: must be ≥ 0, got -1"},
		{"wd neg", func(s *Spec) { s.Train.WeightDecay = -0.1 }, "train.weight_decay: must be a finite number ≥ 0, got -0.1"},
		{"beta1 1", func(s *Spec) { s.Train.Beta1 = 1 }, "train.beta1: must be in [0, 1), got 1"},
		{"beta1 neg", func(s *Spec) { s.Train.Beta1 = -0.1 }, "train.beta1: must be in [0, 1), got -0.1"},
		{"beta2 1.5", func(s *Spec) { s.Train.Beta2 = 1.5 }, "train.beta2: must be in [0, 1), got 1.5"},
		{"clip neg", func(s *Spec) { s.Train.GradClip = -1 }, "train.grad_clip: must be a finite number ≥ 0 (0 turns clipping off), got -1"},
		{"accum 0", func(s *Spec) { s.Train.GradAccum = 0 }, "train.grad_accum: must be ≥ 1, got 0"},
		{"eval neg", func(s *Spec) { s.Train.EvalEvery = -5 }, "train.eval_every: must be ≥ 0 (0 never evaluates), got -5"},
		{"ckpt neg", func(s *Spec) { s.Train.CheckpointEv = -5 }, "train.checkpoint_every: must be ≥ 0 (0 saves only at the end), got -5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := valid()
			c.mod(&s)
			err := s.Validate()
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if err.Error() != c.want {
				t.Fatalf("got  %q\nwant %q", err.Error(), c.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("%T is not a *FieldError", err)
			}
		})
	}
}

func TestValidateAcceptsEdges(t *testing.T) {
	for _, mod := range []func(*Spec){
		func(s *Spec) { s.MoE = &MoE{Experts: 4, TopK: 4, FFNDim: 32, AuxLossCoef: 0} },
		func(s *Spec) { s.Targets = []string{"avx512", "avx2", "neon", "purego"} },
		func(s *Spec) { s.Train.MinLR = 0; s.Train.WarmupSteps = 0; s.Train.GradClip = 0; s.Train.Beta1 = 0 },
		func(s *Spec) { s.Train.SeqLen = s.MaxSeq },
		func(s *Spec) { s.Objective = "masked"; s.Quant = "q4_0"; s.Tokenizer.Kind = "gguf" },
		func(s *Spec) { s.KVHeads = 1 },
		func(s *Spec) { s.Tokenizer.BOS, s.Tokenizer.EOS = 0, 511 },
	} {
		s := valid()
		mod(&s)
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
}

const minimal = `name: tiny
vocab: 512
dim: 64
layers: 5
heads: 8
kv_heads: 4
ffn_dim: 172
max_seq: 512
tie_embeddings: true
`

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"layers 0", strings.Replace(minimal, "layers: 5", "layers: 0", 1), "model.yaml:4: layers: must be ≥ 1, got 0"},
		{"unknown top", minimal + "foo: 1\n", `model.yaml:10: unknown field "foo"`},
		{"unknown typo", minimal + "max_sq: 3\n", `model.yaml:10: unknown field "max_sq" (did you mean "max_seq"?)`},
		{"unknown nested", minimal + "train:\n  lr: 0.001\n  lrr: 1\n", `model.yaml:12: train: unknown field "lrr" (did you mean "lr"?)`},
		{"unknown in moe", minimal + "moe:\n  experts: 4\n  topk: 2\n", `model.yaml:12: moe: unknown field "topk" (did you mean "top_k"?)`},
		{"fraction in int", strings.Replace(minimal, "dim: 64", "dim: 64.5", 1), `model.yaml:3: dim: expected an integer, got "64.5"`},
		{"string in int", strings.Replace(minimal, "dim: 64", "dim: big", 1), `model.yaml:3: dim: expected an integer, got "big"`},
		{"quoted int", strings.Replace(minimal, "dim: 64", `dim: "64"`, 1), `model.yaml:3: dim: expected an integer, got "64"`},
		{"int overflow", strings.Replace(minimal, "dim: 64", "dim: 99999999999999999999", 1), `model.yaml:3: dim: expected an integer, got "99999999999999999999"`},
		{"bool", strings.Replace(minimal, "tie_embeddings: true", "tie_embeddings: maybe", 1), `model.yaml:9: tie_embeddings: expected true or false, got "maybe"`},
		{"float string", minimal + "norm_eps: tiny\n", `model.yaml:10: norm_eps: expected a number, got "tiny"`},
		{"negative seed", minimal + "train:\n  seed: -1\n", `model.yaml:11: train.seed: expected a non-negative integer, got "-1"`},
		{"mapping for scalar", minimal + "quant:\n  kind: f32\n", `model.yaml:11: quant: expected a string, got a mapping`},
		{"scalar for mapping", minimal + "train: fast\n", `model.yaml:10: train: expected a mapping, got "fast"`},
		{"targets not list", minimal + "targets: avx2\n", `model.yaml:10: targets: expected a list, got "avx2"`},
		{"bad target", minimal + "targets:\n  - avx2\n  - sse\n", `model.yaml:12: targets[1]: must be one of avx512, avx2, neon, purego, got "sse"`},
		{"duplicate", minimal + "dim: 32\n", "model.yaml:10: dim: duplicate field (first at line 3)"},
		{"relation", strings.Replace(minimal, "kv_heads: 4", "kv_heads: 3", 1), "model.yaml:6: kv_heads: must divide heads (8), got 3"},
		{"top_k", minimal + "moe:\n  experts: 4\n  top_k: 5\n", "model.yaml:12: moe.top_k: must be ≤ moe.experts (4), got 5"},
		{"defaulted field points at parent", minimal + "moe:\n  top_k: 1\n", "model.yaml:10: moe.experts: must be ≥ 2, got 0"},
		{"missing name", strings.Replace(minimal, "name: tiny\n", "", 1), "model.yaml: name: required field missing"},
		{"empty name", strings.Replace(minimal, "name: tiny\n", "name: \"\"\n", 1), "model.yaml:1: name: must not be empty"},
		{"missing dim", strings.Replace(minimal, "dim: 64\n", "", 1), "model.yaml: dim: required field missing"},
		{"moe without either ffn_dim", strings.Replace(minimal, "ffn_dim: 172\n", "", 1) + "moe:\n  experts: 4\n", "model.yaml: ffn_dim: required field missing"},
		{"seq_len default", minimal + "train:\n  seq_len: 1024\n", "model.yaml:11: train.seq_len: must be ≤ max_seq (512), got 1024"},
		{"syntax", minimal + "  bad: : :\n", "model.yaml:10: mapping values are not allowed in this context"},
		{"unclosed", "name: [x\n", "model.yaml:1: did not find expected ',' or ']'"},
		{"unclosed on line 2", "name: x\nvocab: [1\n", "model.yaml:2: did not find expected ',' or ']'"},
		{"unclosed before a key", "name: x\nvocab: [1\ndim: 64\n", "model.yaml:2: did not find expected ',' or ']'"},
		{"tab", "name: x\nvocab: 512\ndim: 64\nlayers: 2\n\theads: 8\n", "model.yaml:5: found a tab character that violates indentation"},
		{"empty", "", "model.yaml: empty spec"},
		{"comment only", "# nothing\n", "model.yaml: empty spec"},
		{"not a mapping", "- 1\n- 2\n", "model.yaml:1: expected a mapping, got a list"},
		{"two documents", minimal + "---\nname: other\n", "model.yaml:10: more than one YAML document; a spec is one"},
		{"json unknown", `{"name": "x", "bogus": 1}`, `model.yaml:1: unknown field "bogus"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.in), "model.yaml")
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if err.Error() != c.want {
				t.Fatalf("got  %q\nwant %q", err.Error(), c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is more than one line: %q", err)
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	s, err := Parse([]byte(minimal), "model.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{
		Name: "tiny", Vocab: 512, Dim: 64, Layers: 5, Heads: 8, KVHeads: 4, FFNDim: 172, MaxSeq: 512,
		NormEps: 1e-5, RopeTheta: 10000, TieEmbeddings: true, Quant: "f32", Objective: "causal",
		Tokenizer: Tokenizer{Kind: "llama2c", BOS: 1, EOS: 2},
		Train: Train{BatchSize: 8, SeqLen: 256, LR: 3e-4, MinLR: 3e-5, WarmupSteps: 100, WeightDecay: 0.1,
			Beta1: 0.9, Beta2: 0.95, GradClip: 1, GradAccum: 1, Seed: 1337, EvalEvery: 100, CheckpointEv: 100},
	}
	if !reflect.DeepEqual(*s, want) {
		t.Fatalf("got  %+v\nwant %+v", *s, want)
	}

	// kv_heads 0 or absent means heads; seq_len is capped at a short max_seq;
	// min_lr follows a given lr; explicit zeros that are valid stay zero.
	in := strings.Replace(minimal, "kv_heads: 4", "kv_heads: 0", 1)
	in = strings.Replace(in, "max_seq: 512", "max_seq: 100", 1)
	in += "train:\n  lr: 0.002\n  warmup_steps: 0\n  grad_clip: 0\ntokenizer:\n  bos: 0\n"
	s, err = Parse([]byte(in), "model.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.KVHeads != 8 || s.Train.SeqLen != 100 || s.Train.MinLR != 0.0002 || s.Train.WarmupSteps != 0 ||
		s.Train.GradClip != 0 || s.Tokenizer.BOS != 0 || s.Tokenizer.EOS != 2 || s.Tokenizer.Kind != "llama2c" {
		t.Fatalf("defaults wrong: %+v", *s)
	}

	// A stray trailing document marker is harmless.
	if _, err := Parse([]byte(minimal+"---\n# end\n"), "model.yaml"); err != nil {
		t.Fatal(err)
	}

	// A null section takes every default.
	s, err = Parse([]byte(minimal+"train:\nmoe: null\n"), "model.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Train != want.Train || s.MoE != nil {
		t.Fatalf("null sections: %+v", *s)
	}

	// MoE defaults: top_k 2, ffn_dim of the dense FFN, aux loss 0.01.
	s, err = Parse([]byte(minimal+"moe:\n  experts: 8\n"), "model.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if *s.MoE != (MoE{Experts: 8, TopK: 2, FFNDim: 172, AuxLossCoef: 0.01}) {
		t.Fatalf("moe defaults: %+v", *s.MoE)
	}
}

func TestSetDefaultsKeepsTokenizer(t *testing.T) {
	s := Spec{Name: "x", Vocab: 100, Dim: 8, Layers: 1, Heads: 2, FFNDim: 8, MaxSeq: 16,
		Tokenizer: Tokenizer{Kind: "bytelevel", BOS: 0, EOS: 99}}
	s.SetDefaults()
	if s.Tokenizer != (Tokenizer{Kind: "bytelevel", BOS: 0, EOS: 99}) {
		t.Fatalf("tokenizer changed: %+v", s.Tokenizer)
	}
	if s.KVHeads != 2 || s.Train.SeqLen != 16 || s.Quant != "f32" {
		t.Fatalf("defaults: %+v", s)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestJSON(t *testing.T) {
	in := "{\n\t\"name\": \"tiny\",\n\t\"vocab\": 512, \"dim\": 64, \"layers\": 5, \"heads\": 8,\n" +
		"\t\"ffn_dim\": 172, \"max_seq\": 512,\n\t\"moe\": {\"experts\": 4, \"top_k\": 1},\n" +
		"\t\"targets\": [\"avx2\", \"purego\"],\n\t\"train\": {\"lr\": 1e-3}\n}\n"
	s, err := Parse([]byte(in), "model.json")
	if err != nil {
		t.Fatal(err)
	}
	if s.Vocab != 512 || s.KVHeads != 8 || s.MoE.TopK != 1 || s.Train.LR != 1e-3 ||
		!reflect.DeepEqual(s.Targets, []string{"avx2", "purego"}) {
		t.Fatalf("json: %+v", *s)
	}
	_, err = Parse([]byte("{\n\t\"name\": \"tiny\",\n\t\"layer\": 5\n}"), "model.json")
	if err == nil || err.Error() != `model.json:3: unknown field "layer" (did you mean "layers"?)` {
		t.Fatalf("json unknown field: %v", err)
	}
}

func roundTrip(t testing.TB, s *Spec) {
	t.Helper()
	b, err := s.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b, "roundtrip.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !reflect.DeepEqual(s, back) {
		t.Fatalf("round trip changed the spec:\n%+v\n%+v\n%s", *s, *back, b)
	}
	b2, err := back.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatalf("YAML not stable:\n%s\n%s", b, b2)
	}
}

func TestRoundTrip(t *testing.T) {
	s := valid()
	roundTrip(t, &s)

	s.MoE = &MoE{Experts: 8, TopK: 2, FFNDim: 96, SharedExpert: true, AuxLossCoef: 0.02}
	s.Quant, s.Objective = "q8_0", "masked"
	s.Tokenizer = Tokenizer{Kind: "sentencepiece", Path: "tok512.model", BOS: 0, EOS: 3}
	s.Targets = []string{"neon", "purego"}
	s.NormEps, s.RopeTheta = 1e-6, 500000
	s.Train = Train{BatchSize: 3, SeqLen: 7, LR: 1.5e-3, MinLR: 0, WarmupSteps: 0, WeightDecay: 0,
		Beta1: 0.85, Beta2: 0.999, GradClip: 0, GradAccum: 4, Seed: math.MaxUint64, EvalEvery: 0, CheckpointEv: 0}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, &s)

	b, _ := s.YAML()
	for _, want := range []string{"name: stories260k\nvocab: 512\n", "\nmoe:\n  experts: 8\n", "seed: 18446744073709551615"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("YAML lacks %q:\n%s", want, b)
		}
	}
}

func TestUnsupported(t *testing.T) {
	s := valid()
	if err := s.Unsupported(); err != nil {
		t.Fatal(err)
	}
	s.Objective = "masked"
	if err := s.Unsupported(); err != nil {
		t.Fatalf("masked: %v", err)
	}
	s.Quant = "f32"
	s.MoE = &MoE{Experts: 4, TopK: 2, FFNDim: 8}
	if err := s.Unsupported(); err != nil {
		t.Fatalf("moe is compiled now: %v", err)
	}
	s.Quant = "q8_0"
	if err := s.Unsupported(); err == nil || err.Error() != "quant: q8_0 with moe needs dim and moe.ffn_dim multiples of 32 (the experts' rows are whole blocks), got 64 and 8 (use f32)" {
		t.Fatalf("q8_0 moe of 8: %v", err)
	}
	s.MoE.FFNDim, s.MoE.SharedExpert = 96, true
	if err := s.Unsupported(); err != nil {
		t.Fatalf("q8_0 moe of 96: %v", err)
	}
	// The quantised classifier of the batched pass takes at most 2^22 rows.
	v := valid()
	v.Quant, v.Vocab = "q4_0", 1<<22+1
	if err := v.Unsupported(); err == nil || err.Error() != "quant: q4_0 needs vocab ≤ 2^22 = 4194304 when dim is a multiple of 32 (the quantised classifier's rows), got 4194305 (use f32)" {
		t.Fatalf("q4_0 vocab 2^22+1: %v", err)
	}
	// The experts (and the shared one) are quantised, the router is not.
	q, f := s.QuantMatrices(), s.FloatTensors()
	if !slices.Contains(q, "blk.N.ffn_down_exps") || !slices.Contains(q, "blk.N.ffn_up_shexp") || slices.Contains(q, "blk.N.ffn_gate") ||
		!slices.Contains(f, "blk.N.ffn_gate_inp") {
		t.Fatalf("q8_0 moe: quantised %v, f32 %v", q, f)
	}
}

func TestQuantSplit(t *testing.T) {
	s := valid()
	s.Quant = "q4_0"
	for _, c := range []struct {
		dim, ffn int
		q, f     int // quantised matrices, f32 tensors
		err      string
	}{
		{64, 128, 8, 3, ""},
		{64, 172, 7, 4, ""},  // ffn_down stays f32
		{48, 128, 1, 10, ""}, // only ffn_down is quantised
		{48, 100, 0, 11, "quant: q4_0 needs rows of whole 32-weight blocks, but no matrix has them: dim 48 and ffn_dim 100 are not multiples of 32 (use f32)"},
	} {
		s.Dim, s.FFNDim, s.Heads, s.KVHeads = c.dim, c.ffn, 4, 4
		q, f := s.QuantMatrices(), s.FloatTensors()
		if len(q) != c.q || len(f) != c.f {
			t.Errorf("dim %d ffn %d: quantised %v, f32 %v", c.dim, c.ffn, q, f)
		}
		err := s.Unsupported()
		if (err == nil) != (c.err == "") || err != nil && err.Error() != c.err {
			t.Errorf("dim %d ffn %d: %v, want %q", c.dim, c.ffn, err, c.err)
		}
	}
}

func TestBundledSpecs(t *testing.T) {
	want := map[string]Spec{
		"stories260k": {Vocab: 512, Dim: 64, Layers: 5, Heads: 8, KVHeads: 4, FFNDim: 172, MaxSeq: 512},
		"llama15m":    {Vocab: 32000, Dim: 288, Layers: 6, Heads: 6, KVHeads: 6, FFNDim: 768, MaxSeq: 256},
		"llama110m":   {Vocab: 32000, Dim: 768, Layers: 12, Heads: 12, KVHeads: 12, FFNDim: 2048, MaxSeq: 1024},
	}
	root := repoRoot(t)
	for name, w := range want {
		s, err := Load(filepath.Join(root, "generated", name, "model.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		got := Spec{Vocab: s.Vocab, Dim: s.Dim, Layers: s.Layers, Heads: s.Heads, KVHeads: s.KVHeads, FFNDim: s.FFNDim, MaxSeq: s.MaxSeq}
		if s.Name != name || !reflect.DeepEqual(got, w) || !s.TieEmbeddings || s.Tokenizer.Kind != "llama2c" || s.Tokenizer.Path != "" {
			t.Errorf("%s: %+v", name, *s)
		}
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if err := s.Unsupported(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		roundTrip(t, s)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "none.yaml")); err == nil || !strings.Contains(err.Error(), "none.yaml") {
		t.Fatalf("missing file: %v", err)
	}
	p := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(p, []byte(minimal+"layres: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || err.Error() != p+`:10: unknown field "layres" (did you mean "layers"?)` {
		t.Fatalf("got %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("#\n"), maxSpecBytes), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "not a spec") {
		t.Fatalf("big file: %v", err)
	}
	bin := filepath.Join(dir, "model.gguf")
	if err := os.WriteFile(bin, []byte("GGUF\x03\x00\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bin); err == nil || err.Error() != bin+": a binary file, not a YAML spec"+importHint {
		t.Fatalf("binary file: %v", err)
	}
}

// TestMoEFFNDimAlone: with experts, moe.ffn_dim alone gives the width (the
// dense ffn_dim, unused, takes it), as ffn_dim alone gives the experts'.
func TestMoEFFNDimAlone(t *testing.T) {
	base := strings.Replace(minimal, "ffn_dim: 172\n", "", 1)
	s, err := Parse([]byte(base+"moe:\n  experts: 4\n  ffn_dim: 96\n"), "model.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.FFNDim != 96 || s.MoE.FFNDim != 96 || s.FFNWidth() != 96 {
		t.Errorf("ffn_dim %d, moe.ffn_dim %d, width %d; want 96", s.FFNDim, s.MoE.FFNDim, s.FFNWidth())
	}
	s, err = Parse([]byte(minimal+"moe:\n  experts: 4\n"), "model.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.MoE.FFNDim != 172 || s.FFNWidth() != 172 {
		t.Errorf("moe.ffn_dim %d, width %d; want 172", s.MoE.FFNDim, s.FFNWidth())
	}
}
