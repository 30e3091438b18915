package model

import "fmt"

// CheckShape reports the first field in which the shape of have (a model file)
// differs from want (what code was compiled for).
func CheckShape(have, want *Spec) error {
	fields := []struct {
		name       string
		have, want int
	}{
		{"vocab", have.Vocab, want.Vocab},
		{"dim", have.Dim, want.Dim},
		{"layers", have.Layers, want.Layers},
		{"heads", have.Heads, want.Heads},
		{"kv_heads", have.KVHeads, want.KVHeads},
		{"ffn_dim", have.FFNDim, want.FFNDim},
		{"max_seq", have.MaxSeq, want.MaxSeq},
	}
	for _, f := range fields {
		if f.have != f.want {
			return fmt.Errorf("model file has %s %d, this binary was compiled for %s %d", f.name, f.have, f.name, f.want)
		}
	}
	if have.TieEmbeddings != want.TieEmbeddings {
		return fmt.Errorf("model file has tie_embeddings %v, this binary was compiled for tie_embeddings %v", have.TieEmbeddings, want.TieEmbeddings)
	}
	return nil
}
