package embed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"

	"github.com/modelc/modelc/internal/f32le"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/rag/dense"
	"github.com/modelc/modelc/tokenizer"
)

// Encoder is the part of a tokenizer the model embedder needs.
type Encoder interface {
	Encode(text string, bos, eos bool) ([]int, error)
	VocabSize() int
}

// TokenEmbedder is a model that embeds tokens itself: the mean over
// positions of the final-normed hidden state (runtime/generic.Model is one;
// the server's /v1/embeddings uses the same method, so vectors agree).
type TokenEmbedder interface {
	Embed(tokens []int) ([]float32, error)
}

// Pooled embeds a text (encoded with BOS, cut to max_seq tokens) as the
// mean over its positions of a model's final hidden state (after the last
// RMSNorm), unit-normalised: the model's own Embed when it has one, else the
// generic model's over the same weights, else recovered from logits.
//
// Recovery: a model.Session gives logits, not hidden states; but
// logits = W·h with W the classifier ([vocab, dim], no bias), so when
// vocab ≥ dim and W has full column rank, h = (WᵀW)⁻¹Wᵀ·logits exactly (up
// to rounding). The [dim, vocab] matrix costs per token what the classifier
// itself does.
type Pooled struct {
	direct TokenEmbedder // nil: recover from logits
	m      model.Model
	tok    Encoder
	name   string
	maxSeq int
	pinv   []float32 // [dim, vocab]
	dim    int
	vocab  int
}

// NewPooled prepares the embedder. Its Name, which stores compare, holds
// the SHA-256 of the model's weights: the same weights under another file
// name or format (a llama2.c file and its GGUF) embed alike, a fine-tuned
// copy under the old name does not.
func NewPooled(m model.Model, tok Encoder) (*Pooled, error) {
	s := m.Spec()
	p := &Pooled{m: m, tok: tok, maxSeq: s.MaxSeq, dim: s.Dim, vocab: s.Vocab}
	p.name = fmt.Sprintf("pooled-v2/%s/%d", WeightsID(m.Params().Data), s.Dim)
	if err := tokenizer.CheckVocab("", tok, s.Vocab); err != nil {
		return nil, fmt.Errorf("pooled embedder: %w", err)
	}
	if te, ok := m.(TokenEmbedder); ok {
		p.direct = te
		return p, nil
	}
	if g, err := generic.New(m.Params()); err == nil {
		if te, ok := g.(TokenEmbedder); ok {
			p.direct = te
			return p, nil
		}
	}
	return p, p.usePseudoInverse()
}

// usePseudoInverse switches to recovering hidden states from logits.
func (p *Pooled) usePseudoInverse() error {
	p.direct = nil
	pinv, err := pseudoInverse(p.m.Params().Classifier(), p.vocab, p.dim)
	if err != nil {
		return fmt.Errorf("pooled embedder: %w", err)
	}
	p.pinv = pinv
	return nil
}

// pseudoInverse returns (WᵀW)⁻¹Wᵀ for W [rows, cols] row-major, by Cholesky.
func pseudoInverse(w []float32, rows, cols int) ([]float32, error) {
	if rows < cols {
		return nil, fmt.Errorf("vocabulary %d is smaller than dim %d: hidden states cannot be recovered from logits", rows, cols)
	}
	g := make([]float64, cols*cols)
	for r := 0; r < rows; r++ {
		row := w[r*cols : (r+1)*cols]
		for i := 0; i < cols; i++ {
			x := float64(row[i])
			if x == 0 {
				continue
			}
			gi := g[i*cols:]
			for j := 0; j <= i; j++ {
				gi[j] += x * float64(row[j])
			}
		}
	}
	// Cholesky: G = L Lᵀ, L lower-triangular in place.
	for j := 0; j < cols; j++ {
		d := g[j*cols+j]
		for k := 0; k < j; k++ {
			d -= g[j*cols+k] * g[j*cols+k]
		}
		if !(d > 1e-12*math.Max(1, math.Abs(g[j*cols+j]))) {
			return nil, errors.New("the classifier's columns are linearly dependent: hidden states cannot be recovered from logits")
		}
		d = math.Sqrt(d)
		g[j*cols+j] = d
		for i := j + 1; i < cols; i++ {
			s := g[i*cols+j]
			for k := 0; k < j; k++ {
				s -= g[i*cols+k] * g[j*cols+k]
			}
			g[i*cols+j] = s / d
		}
	}
	// Column r of the result solves G x = W[r]ᵀ.
	out := make([]float32, cols*rows)
	x := make([]float64, cols)
	for r := 0; r < rows; r++ {
		row := w[r*cols : (r+1)*cols]
		for i := 0; i < cols; i++ { // L y = b
			s := float64(row[i])
			for k := 0; k < i; k++ {
				s -= g[i*cols+k] * x[k]
			}
			x[i] = s / g[i*cols+i]
		}
		for i := cols - 1; i >= 0; i-- { // Lᵀ x = y
			s := x[i]
			for k := i + 1; k < cols; k++ {
				s -= g[k*cols+i] * x[k]
			}
			x[i] = s / g[i*cols+i]
		}
		for i := 0; i < cols; i++ {
			out[i*rows+r] = float32(x[i])
		}
	}
	return out, nil
}

// Name identifies the model and the pooling.
func (p *Pooled) Name() string { return p.name }

// Dim is the model's width.
func (p *Pooled) Dim() int { return p.dim }

// Embed runs each text through a fresh session. Texts longer than the
// model's context are cut to its first max_seq tokens.
func (p *Pooled) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	h := make([]float32, p.dim)
	for i, t := range texts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ids, err := p.tok.Encode(t, true, false)
		if err != nil {
			return nil, fmt.Errorf("encode text %d: %w", i, err)
		}
		ids = ids[:min(len(ids), p.maxSeq)]
		for _, id := range ids {
			if id < 0 || id >= p.vocab {
				return nil, fmt.Errorf("text %d: token %d outside the vocabulary of %d", i, id, p.vocab)
			}
		}
		n := len(ids)
		var v []float32
		if p.direct != nil {
			if n > 0 {
				if v, err = p.direct.Embed(ids); err != nil {
					return nil, fmt.Errorf("embed text %d: %w", i, err)
				}
			}
		} else {
			v = make([]float32, p.dim)
			sess := p.m.NewSession()
			for pos, id := range ids {
				p.recover(sess.Forward(id, pos), h)
				for j, x := range h {
					v[j] += x
				}
			}
		}
		if v == nil {
			v = make([]float32, p.dim)
		}
		if n > 0 {
			dense.Normalize(v)
		}
		out[i] = v
	}
	return out, nil
}

// recover computes h = pinv · logits.
func (p *Pooled) recover(logits, h []float32) {
	for i := range h {
		h[i] = dense.Dot(p.pinv[i*p.vocab:(i+1)*p.vocab], logits)
	}
}

// WeightsID is the first 16 hex digits of the SHA-256 of the weights as
// little-endian float32s.
func WeightsID(w []float32) string {
	h := sha256.New()
	f32le.Write(h, w) // a hash never fails to write
	return hex.EncodeToString(h.Sum(nil)[:8])
}
