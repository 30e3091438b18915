package kernels

// Embedding copies row tokens[n] of table ([vocab, D]) into out[n*D:(n+1)*D].
// Token ids must be in range: callers validate them where they come from.
func Embedding(out, table []float32, tokens []int32, D int) {
	for n, tok := range tokens {
		copy(out[n*D:(n+1)*D], table[int(tok)*D:int(tok)*D+D])
	}
}

// EmbeddingBackward accumulates dOut into the rows of dTable its tokens chose:
// dTable[tokens[n]] += dOut[n]. Rows are added in the order of tokens, so the
// result is deterministic.
func EmbeddingBackward(dTable, dOut []float32, tokens []int32, D int) {
	for n, tok := range tokens {
		Add(dTable[int(tok)*D:int(tok)*D+D], dOut[n*D:(n+1)*D])
	}
}
