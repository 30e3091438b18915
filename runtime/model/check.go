package model

import (
	"fmt"
	"math"

	"github.com/modelc/modelc/spec"
)

// CheckShape reports the first field in which the shape of have (a model file)
// differs from want (what code was compiled for).
func CheckShape(have, want *Spec) error {
	// Before ffn_dim, which means the experts' width with experts: a dense
	// file given to an MoE binary is told so, not that a width differs.
	hm, wm := have.MoE, want.MoE
	if (hm == nil) != (wm == nil) || hm != nil &&
		(hm.Experts != wm.Experts || hm.TopK != wm.TopK || hm.FFNDim != wm.FFNDim || hm.SharedExpert != wm.SharedExpert) {
		return fmt.Errorf("model file has moe %s, this binary was compiled for moe %s", moeString(hm), moeString(wm))
	}
	fields := []struct {
		name       string
		have, want int
	}{
		{"vocab", have.Vocab, want.Vocab},
		{"dim", have.Dim, want.Dim},
		{"layers", have.Layers, want.Layers},
		{"heads", have.Heads, want.Heads},
		{"kv_heads", have.KVHeads, want.KVHeads},
		{"ffn_dim", have.FFNWidth(), want.FFNWidth()},
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

// moeString names the shape of m (aux_loss_coef is training's, not the
// file's, so it is not part of it).
func moeString(m *spec.MoE) string {
	if m == nil {
		return "none"
	}
	return fmt.Sprintf("{experts %d, top_k %d, ffn_dim %d, shared_expert %v}", m.Experts, m.TopK, m.FFNDim, m.SharedExpert)
}

// CheckFinite reports the first NaN or infinity in x, elements off onwards
// of the tensor called name: the kernels would carry it into every logit and
// print garbage without a word, so loaders refuse it with its place.
func CheckFinite(name string, x []float32, off int) error {
	if i := NonFinite(x); i >= 0 {
		return fmt.Errorf("tensor %s holds %v at element %d", name, x[i], off+i)
	}
	return nil
}

// NonFinite returns the index of the first NaN or ±Inf in x, or -1: one
// pass with one compare per float, cheap beside reading x from a file.
func NonFinite(x []float32) int {
	for i, v := range x {
		if math.Float32bits(v)&0x7f800000 == 0x7f800000 { // exponent all ones
			return i
		}
	}
	return -1
}
