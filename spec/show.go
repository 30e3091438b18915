package spec

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Show writes the human-readable summary `modelc spec show` prints: the shape
// and the derived figures, each with a short and an exact form.
func (s *Spec) Show(w io.Writer) {
	f := s.Figures()
	// One fixed key column for every section, so the whole summary lines up;
	// a tab in a value separates its short form from the exact one.
	row := func(k, format string, args ...any) {
		v := fmt.Sprintf(format, args...)
		if short, exact, ok := strings.Cut(v, "\t"); ok {
			v = fmt.Sprintf("%-12s%s", short, exact)
		}
		fmt.Fprintf(w, "  %-21s%s\n", k, v)
	}

	fmt.Fprintf(w, "%s: %s, %s\n", s.Name, s.Objective, s.Quant)
	fmt.Fprintln(w, "shape")
	row("vocab", "%d", s.Vocab)
	row("dim", "%d", s.Dim)
	row("layers", "%d", s.Layers)
	row("heads", "%d (head dim %d)", s.Heads, f.HeadDim)
	row("kv_heads", "%d (kv dim %d)", s.KVHeads, f.KVDim)
	row("ffn_dim", "%d", s.FFNDim)
	row("max_seq", "%d", s.MaxSeq)
	row("norm_eps", "%s", num(s.NormEps))
	row("rope_theta", "%s", num(s.RopeTheta))
	row("tie_embeddings", "%t", s.TieEmbeddings)
	if m := s.MoE; m != nil {
		shared := ""
		if m.SharedExpert {
			shared = " + 1 shared"
		}
		row("moe", "%d experts%s, top %d, ffn %d, aux loss %s", m.Experts, shared, m.TopK, m.FFNDim, num(m.AuxLossCoef))
	} else {
		row("moe", "none")
	}
	tok := fmt.Sprintf("%s (bos %d, eos %d)", s.Tokenizer.Kind, s.Tokenizer.BOS, s.Tokenizer.EOS)
	if s.Tokenizer.Path != "" {
		tok += " " + s.Tokenizer.Path
	}
	row("tokenizer", "%s", tok)
	targets := "all"
	if len(s.Targets) > 0 {
		targets = strings.Join(s.Targets, ", ")
	}
	row("targets", "%s", targets)

	fmt.Fprintln(w, "size")
	row("parameters", "%s\t(%s)", Count(f.Params), Commas(f.Params))
	row("  embedding", "%s\t(%s)", Count(f.EmbeddingParams), Commas(f.EmbeddingParams))
	row("  non-embedding", "%s\t(%s)", Count(f.NonEmbeddingParams), Commas(f.NonEmbeddingParams))
	if f.ActiveParams != f.Params {
		row("  active per token", "%s\t(%s)", Count(f.ActiveParams), Commas(f.ActiveParams))
	}
	row("weight bytes", "%s\t(%s B, %s)", Bytes(f.WeightBytes), Commas(f.WeightBytes), s.Quant)
	if s.Quant != "f32" {
		row("quantised", "%s", strings.Join(s.QuantMatrices(), ", "))
		row("stays f32", "%s", strings.Join(s.FloatTensors(), ", "))
	}

	fmt.Fprintf(w, "per token at context %d\n", f.Context)
	row("FLOPs", "%s\t(%s: matmuls %s + attention %s)", Count(f.FLOPsPerToken), Commas(f.FLOPsPerToken),
		Commas(f.MatmulFLOPsPerToken), Commas(f.AttentionFLOPsPerToken))
	row("bytes read", "%s\t(%s B: weights %s + KV cache %s)", Bytes(f.BytesPerToken), Commas(f.BytesPerToken),
		Commas(f.WeightBytesPerToken), Commas(f.BytesPerToken-f.WeightBytesPerToken))
	if f.BytesPerToken > 0 {
		row("FLOPs per byte", "%.2f", float64(f.FLOPsPerToken)/float64(f.BytesPerToken))
	}
	fmt.Fprintln(w, "KV cache")
	row("per token", "%s\t(%s B)", Bytes(f.KVCacheBytesPerToken), Commas(f.KVCacheBytesPerToken))
	row("full context", "%s\t(%s B for %d positions)", Bytes(f.KVCacheBytes), Commas(f.KVCacheBytes), s.MaxSeq)
}

// Count formats n with a K, M, G or T suffix (powers of 1000): 260032 -> "260.0K".
func Count(n int64) string {
	v := float64(n)
	for _, u := range []string{"", "K", "M", "G", "T"} {
		if v < 999.95 || u == "T" {
			if u == "" {
				return strconv.FormatInt(n, 10)
			}
			return fmt.Sprintf("%.1f%s", v, u)
		}
		v /= 1000
	}
	return strconv.FormatInt(n, 10)
}

// Bytes formats n bytes with a binary unit: 1040128 -> "1015.8 KiB".
func Bytes(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= 1024
		if v < 1023.95 || u == "TiB" {
			return fmt.Sprintf("%.1f %s", v, u)
		}
	}
	return strconv.FormatInt(n, 10) + " B"
}

// Commas writes n with thousands separators: 260032 -> "260,032".
func Commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
