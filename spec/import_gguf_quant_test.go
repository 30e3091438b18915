package spec_test

import (
	"strings"
	"testing"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/spec"
)

// A quantiser leaves matrices whose rows are not whole 32-blocks in F32:
// the file is still q8_0 (or q4_0), not "mixed"; with only float matrices it
// is f32, and an unsupported block format is named.
func TestFromGGUFQuantWithFloatLeftovers(t *testing.T) {
	for _, c := range []struct {
		ts   []gguf.WriteTensor
		want string
	}{
		{[]gguf.WriteTensor{matrix("blk.0.ffn_down.weight", gguf.TypeF32, 20, 16), matrix("blk.0.attn_q.weight", gguf.TypeQ4_0, 32, 16)}, "q4_0"},
		{[]gguf.WriteTensor{matrix("blk.0.attn_q.weight", gguf.TypeQ8_0, 32, 16), matrix("blk.0.ffn_down.weight", gguf.TypeF16, 20, 16)}, "q8_0"},
		{[]gguf.WriteTensor{matrix("blk.0.attn_q.weight", gguf.TypeF16, 32, 16), matrix("blk.0.ffn_down.weight", gguf.TypeF32, 20, 16)}, "f32"},
	} {
		s, err := spec.FromGGUF(writeGGUF(t, baseKVs(), c.ts))
		if err != nil || s.Quant != c.want {
			t.Errorf("%s/%s: quant %q, %v; want %q", c.ts[0].Type, c.ts[1].Type, s.Quant, err, c.want)
		}
	}
	_, err := spec.FromGGUF(writeGGUF(t, baseKVs(), []gguf.WriteTensor{matrix("blk.0.attn_q.weight", gguf.TypeQ6_K, 256, 1)}))
	if err == nil {
		t.Fatal("Q6_K layer matrix accepted")
	}
	if got := err.Error(); !strings.Contains(got, "blk.0.attn_q.weight") || !strings.Contains(got, "Q6_K") {
		t.Errorf("error %q does not name the tensor and type", got)
	}
}
