package spec

import (
	"bytes"
	"strings"
	"testing"
)

func TestFiguresStories260K(t *testing.T) {
	s := valid()
	f := s.Figures()

	// By hand: dim 64, ffn 172, 5 layers, 8 heads of 8, 4 kv heads (kv dim 32), vocab 512, tied.
	const d, ffn, L, kv, V, seq, hd = 64, 172, 5, 32, 512, 512, 8
	perLayer := int64(d + d*d + kv*d + kv*d + d*d + d + 3*ffn*d) // 45,440
	params := V*d + L*perLayer + d                               // 260,032
	if params != 260032 {
		t.Fatalf("hand count %d", params)
	}
	// The .bin is the 28-byte header plus float32 weights and RoPE table.
	if got := 28 + 4*(params+seq*hd); got != 1056540 {
		t.Fatalf("params do not explain the file size: %d", got)
	}
	want := Figures{
		HeadDim: hd, KVDim: kv,
		Params: params, EmbeddingParams: V * d, NonEmbeddingParams: params - V*d, ActiveParams: params,
		WeightBytes: 4 * params,
		Context:     seq,
		// Q, K, V, O, gate, up, down per layer, and the tied classifier.
		MatmulFLOPsPerToken:    2 * (L*(2*d*d+2*kv*d+3*ffn*d) + V*d),
		AttentionFLOPsPerToken: 4 * L * d * seq,
		WeightBytesPerToken:    4*params + 4*d, // every weight once (the classifier is the table) + one embedding row
		KVCacheBytesPerToken:   2 * L * kv * 4,
		KVCacheBytes:           2 * L * kv * 4 * seq,
	}
	want.FLOPsPerToken = want.MatmulFLOPsPerToken + want.AttentionFLOPsPerToken
	want.BytesPerToken = want.WeightBytesPerToken + seq*want.KVCacheBytesPerToken
	if f != want {
		t.Fatalf("got  %+v\nwant %+v", f, want)
	}
	if f.KVCacheBytesPerToken != 1280 || f.MatmulFLOPsPerToken != 518656 {
		t.Fatalf("KV %d, matmul FLOPs %d", f.KVCacheBytesPerToken, f.MatmulFLOPsPerToken)
	}

	// At context 1 only attention and the KV read shrink.
	f1 := s.FiguresAt(1)
	if f1.AttentionFLOPsPerToken != 4*L*d || f1.BytesPerToken != want.WeightBytesPerToken+1280 || f1.Params != params {
		t.Fatalf("context 1: %+v", f1)
	}
}

func TestFiguresQuant(t *testing.T) {
	s := valid()
	const d, ffn, L, kv, V = 64, 172, 5, 32, 512
	q8 := func(r, c int64) int64 { return r * c / 32 * 34 }
	q4 := func(r, c int64) int64 { return r * c / 32 * 18 }
	for _, c := range []struct {
		quant string
		mat   func(r, c int64) int64
	}{{"q8_0", q8}, {"q4_0", q4}} {
		s.Quant = c.quant
		// ffn_down rows are 172 long, not whole blocks: it stays f32; norms stay f32.
		layer := 2*d*4 + 2*c.mat(d, d) + 2*c.mat(kv, d) + 2*c.mat(ffn, d) + 4*d*ffn
		want := c.mat(V, d) + L*layer + 4*d
		f := s.Figures()
		if f.WeightBytes != want {
			t.Errorf("%s: weight bytes %d, want %d", c.quant, f.WeightBytes, want)
		}
		if f.WeightBytesPerToken != want+c.mat(1, d) {
			t.Errorf("%s: weight bytes per token %d, want %d", c.quant, f.WeightBytesPerToken, want+c.mat(1, d))
		}
	}
	// The 15M shape quantises everything but norms: 288, 768 are multiples of 32.
	m := Spec{Name: "m", Vocab: 32000, Dim: 288, Layers: 6, Heads: 6, FFNDim: 768, MaxSeq: 256, TieEmbeddings: true, Quant: "q8_0"}
	m.SetDefaults()
	f := m.Figures()
	norms := int64(6*2*288 + 288)
	if f.WeightBytes != (f.Params-norms)/32*34+4*norms {
		t.Fatalf("15M q8_0: %d bytes for %d params", f.WeightBytes, f.Params)
	}
	if f.Params != 15191712 { // llama2.c reports stories15M as 15M; by hand 9,216,000 + 6 × 995,904 + 288
		t.Fatalf("15M params %d", f.Params)
	}
}

func TestFiguresUntiedAndMoE(t *testing.T) {
	s := valid()
	tied := s.Figures()
	s.TieEmbeddings = false
	f := s.Figures()
	if f.Params != tied.Params+512*64 || f.EmbeddingParams != 512*64 || f.NonEmbeddingParams != f.Params-512*64 {
		t.Fatalf("untied params: %+v", f)
	}
	if f.MatmulFLOPsPerToken != tied.MatmulFLOPsPerToken || f.WeightBytesPerToken != tied.WeightBytesPerToken {
		t.Fatalf("untied per-token cost should equal tied: %+v vs %+v", f, tied)
	}

	s = valid()
	s.MoE = &MoE{Experts: 4, TopK: 2, FFNDim: 32, SharedExpert: true}
	f = s.Figures()
	const d, L = 64, 5
	exp := int64(3 * 32 * d)
	dense := tied.Params - L*3*172*d
	if f.Params != dense+L*(4*d+5*exp) {
		t.Fatalf("moe params %d, want %d", f.Params, dense+L*(4*d+5*exp))
	}
	if f.ActiveParams != dense+L*(4*d+3*exp) {
		t.Fatalf("moe active %d, want %d", f.ActiveParams, dense+L*(4*d+3*exp))
	}
	denseMACs := tied.MatmulFLOPsPerToken/2 - L*3*172*d
	if f.MatmulFLOPsPerToken != 2*(denseMACs+L*(4*d+3*exp)) {
		t.Fatalf("moe flops %d", f.MatmulFLOPsPerToken)
	}
}

func TestShow(t *testing.T) {
	s := valid()
	var buf bytes.Buffer
	s.Show(&buf)
	out := buf.String()
	for _, want := range []string{
		"stories260k: causal, f32",
		"\n  heads                8 (head dim 8)\n",
		"\n  kv_heads             4 (kv dim 32)\n",
		"\n  parameters           260.0K      (260,032)\n",
		"260.0K", "(260,032)",
		"1,040,128 B",
		"per token at context 512",
		"518,656", "655,360",
		"1.2 KiB", "(1,280 B)",
		"640.0 KiB", "(655,360 B for 512 positions)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Show lacks %q:\n%s", want, out)
		}
	}
}

func TestFormatters(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1.0K", 260032: "260.0K", 999949: "999.9K",
		999950: "1.0M", 15191712: "15.2M", 7e9: "7.0G"} {
		if got := Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 12: "12", 1234: "1,234", 260032: "260,032", 1056540: "1,056,540", -1234567: "-1,234,567"} {
		if got := Commas(n); got != want {
			t.Errorf("Commas(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{1023: "1023 B", 1024: "1.0 KiB", 1280: "1.2 KiB", 1040128: "1015.8 KiB", 1 << 30: "1.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
