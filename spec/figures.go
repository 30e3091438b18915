package spec

// Figures are sizes and costs derived from a spec.
//
// What is counted:
//   - Parameters: every weight, with the tensors of runtime/model's Layout:
//     token embedding [vocab, dim]; per layer attn_norm [dim], Q [dim, dim],
//     K and V [kv_dim, dim], O [dim, dim], ffn_norm [dim], gate and up
//     [ffn, dim], down [dim, ffn]; output_norm [dim]; output [vocab, dim]
//     unless tied. With MoE each layer has instead a router [experts, dim],
//     experts × (gate, up, down) of moe.ffn_dim, and one more such expert
//     when shared_expert is set. The RoPE table is computed, not stored.
//   - FLOPs: 2 per multiply-add. Matmuls are all weight matrices a token
//     passes through, the classifier included (the embedding is a lookup,
//     not a matmul; with MoE only the router, top_k experts and the shared
//     expert). Attention at context c is, per layer, c·dim multiply-adds for
//     the scores q·k plus c·dim for the weighted sum of values, so 4·layers·
//     dim·c FLOPs. Norms, RoPE, softmax, SiLU and residual adds are left out:
//     they are O(dim) per layer, noise next to the matmuls.
//   - Bytes per token: what decoding one token reads from memory — every
//     weight matrix it uses once (the classifier in full, which when tied is
//     the whole embedding table), one row of the embedding, the norms, and the
//     keys and values of c cached positions. Activations are left out.
type Figures struct {
	HeadDim int // dim / heads
	KVDim   int // kv_heads × head_dim

	Params             int64 // all weights
	EmbeddingParams    int64 // the token embedding table (vocab × dim)
	NonEmbeddingParams int64 // Params − EmbeddingParams (an untied classifier counts here)
	ActiveParams       int64 // weights one token uses: with MoE, top_k experts (+ shared) only

	// WeightBytes is the size of all weights in the spec's quant format:
	// f32 4 bytes a weight, q8_0 34 bytes and q4_0 18 bytes per block of 32.
	// Vectors (norms), the MoE router and matrices whose rows are not a
	// multiple of 32 long stay f32, as llama.cpp keeps them.
	WeightBytes int64

	// Context is the number of cached positions the per-token attention
	// figures below assume: Figures uses max_seq, the most expensive token.
	Context int

	MatmulFLOPsPerToken    int64 // 2 × multiply-adds of the weight matmuls, classifier included
	AttentionFLOPsPerToken int64 // 4 × layers × dim × Context
	FLOPsPerToken          int64 // the sum of the two

	WeightBytesPerToken int64 // weight bytes one decoded token reads
	BytesPerToken       int64 // WeightBytesPerToken + Context × KVCacheBytesPerToken

	KVCacheBytesPerToken int64 // 2 × layers × kv_dim × 4 (f32 keys and values)
	KVCacheBytes         int64 // for max_seq positions
}

// Figures returns the derived figures with attention costs at the full
// context (max_seq). The spec must be valid.
func (s *Spec) Figures() Figures { return s.FiguresAt(s.MaxSeq) }

// FiguresAt returns the derived figures with attention costs for a token that
// attends to context positions (itself included).
func (s *Spec) FiguresAt(context int) Figures {
	var f Figures
	d, L, V := int64(s.Dim), int64(s.Layers), int64(s.Vocab)
	if s.Heads > 0 {
		f.HeadDim = s.Dim / s.Heads
		f.KVDim = s.KVHeads * f.HeadDim
	}
	kv := int64(f.KVDim)
	mat := func(rows, cols int64) int64 { return matrixBytes(s.Quant, rows, cols) }

	// Per layer: params, bytes, params and bytes one token uses.
	attnP := 2*d*d + 2*kv*d
	attnB := mat(d, d)*2 + mat(kv, d)*2
	normP, normB := 2*d, 2*d*4
	var ffnP, ffnB, ffnActP, ffnActB int64
	if m := s.MoE; m != nil {
		mf, E, K := int64(m.FFNDim), int64(m.Experts), int64(m.TopK)
		if m.SharedExpert {
			K++
			E++
		}
		expP := 3 * mf * d
		expB := mat(mf, d)*2 + mat(d, mf)
		routerP, routerB := int64(m.Experts)*d, int64(m.Experts)*d*4
		ffnP, ffnB = routerP+E*expP, routerB+E*expB
		ffnActP, ffnActB = routerP+K*expP, routerB+K*expB
	} else {
		ff := int64(s.FFNDim)
		ffnP, ffnB = 3*ff*d, mat(ff, d)*2+mat(d, ff)
		ffnActP, ffnActB = ffnP, ffnB
	}

	embP, embB := V*d, mat(V, d)
	clsP, clsB := int64(0), int64(0) // separate classifier, when untied
	if !s.TieEmbeddings {
		clsP, clsB = V*d, mat(V, d)
	}
	f.EmbeddingParams = embP
	f.Params = embP + L*(normP+attnP+ffnP) + d + clsP
	f.NonEmbeddingParams = f.Params - embP
	f.ActiveParams = embP + L*(normP+attnP+ffnActP) + d + clsP
	f.WeightBytes = embB + L*(normB+attnB+ffnB) + d*4 + clsB

	// The matmul inputs of one token: the weights it uses, less the embedding
	// and norms, plus the classifier (which is the embedding when tied).
	macs := L*(attnP+ffnActP) + V*d
	f.MatmulFLOPsPerToken = 2 * macs
	f.Context = context
	f.AttentionFLOPsPerToken = 4 * L * d * int64(context)
	f.FLOPsPerToken = f.MatmulFLOPsPerToken + f.AttentionFLOPsPerToken

	f.WeightBytesPerToken = mat(1, d) + L*(normB+attnB+ffnActB) + d*4 + mat(V, d)
	f.KVCacheBytesPerToken = 2 * L * kv * 4
	f.KVCacheBytes = f.KVCacheBytesPerToken * int64(s.MaxSeq)
	f.BytesPerToken = f.WeightBytesPerToken + int64(context)*f.KVCacheBytesPerToken
	return f
}

// matrixBytes is the storage of a [rows, cols] matrix in quant format q.
// Rows are quantised in blocks of 32 along cols; a matrix whose rows do not
// split into whole blocks stays f32.
func matrixBytes(q string, rows, cols int64) int64 {
	n := rows * cols
	if cols%32 != 0 {
		return 4 * n
	}
	switch q {
	case "q8_0":
		return n / 32 * 34 // float16 scale + 32 int8
	case "q4_0":
		return n / 32 * 18 // float16 scale + 32 nibbles
	}
	return 4 * n
}
