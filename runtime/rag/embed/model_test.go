package embed

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/rag/dense"
	"github.com/modelc/modelc/runtime/rag/internal/ragtest"
	"github.com/modelc/modelc/tokenizer"
)

// WeightsID is the SHA-256 of the little-endian floats (value from Python's
// hashlib over struct.pack('<2f', 1.0, -2.5)).
func TestWeightsID(t *testing.T) {
	if got := WeightsID([]float32{1, -2.5}); got != "48943f7a0ea247f8" {
		t.Fatalf("WeightsID = %s", got)
	}
	big := make([]float32, 10000) // across the 4096-float buffer
	a := WeightsID(big)
	big[9999] = 1
	if WeightsID(big) == a {
		t.Fatal("the last float does not count")
	}
}

func TestPooled(t *testing.T) {
	data := ragtest.DataDir(t)
	p, _, err := checkpoint.Load(filepath.Join(data, "models", "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := generic.New(p)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(filepath.Join(data, "models", "tok512.bin"), p.Spec.Vocab)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewPooled(m, tok)
	if err != nil {
		t.Fatal(err)
	}
	if e.Dim() != 64 || e.Name() != "pooled-v2/"+WeightsID(p.Data)+"/64" || e.direct == nil {
		t.Fatalf("dim %d name %q direct %v", e.Dim(), e.Name(), e.direct != nil)
	}
	// Other weights, another name: one float changed.
	q := model.NewParams(&p.Spec)
	copy(q.Data, p.Data)
	q.Data[len(q.Data)/2] = math.Nextafter32(q.Data[len(q.Data)/2], 1)
	mq, err := generic.New(q)
	if err != nil {
		t.Fatal(err)
	}
	if eq, err := NewPooled(mq, tok); err != nil || eq.Name() == e.Name() {
		t.Fatalf("one weight changed, the same name %q (%v)", e.Name(), err)
	}
	// The same embedder recovering hidden states from logits.
	r, err := NewPooled(m, tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.usePseudoInverse(); err != nil {
		t.Fatal(err)
	}
	e = r
	// The recovered hidden state reproduces the logits through the classifier.
	W := p.Classifier()
	sess := m.NewSession()
	h := make([]float32, e.dim)
	for pos, id := range []int{1, 403, 407, 261, 1000 % 512} {
		logits := append([]float32(nil), sess.Forward(id, pos)...)
		e.recover(logits, h)
		var num, den float64
		for r := 0; r < e.vocab; r++ {
			d := float64(dense.Dot(W[r*e.dim:(r+1)*e.dim], h)) - float64(logits[r])
			num += d * d
			den += float64(logits[r]) * float64(logits[r])
		}
		if rel := math.Sqrt(num / den); rel > 1e-4 {
			t.Errorf("position %d: W·h differs from the logits by %.2g (relative)", pos, rel)
		}
	}
	texts := []string{"Lily went to the park with her dog.", "Lily went to the park with her dog.", "The sun is hot and the sky is blue."}
	vs, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vs {
		if n := dense.Dot(v, v); math.Abs(float64(n)-1) > 1e-5 {
			t.Errorf("vector %d has squared norm %v", i, n)
		}
	}
	if s := dense.Dot(vs[0], vs[1]); s < 0.99999 {
		t.Errorf("the same text embeds differently (cosine %v)", s)
	}
	if s := dense.Dot(vs[0], vs[2]); s > 0.999 {
		t.Errorf("different texts embed the same (cosine %v)", s)
	}
	// Recovery agrees with the model's own pooling (the server's vectors).
	d, _ := NewPooled(m, tok)
	ws, err := d.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ws {
		ids, _ := tok.Encode(texts[i], true, false)
		own, err := m.(TokenEmbedder).Embed(ids)
		if err != nil {
			t.Fatal(err)
		}
		dense.Normalize(own)
		if c := dense.Dot(ws[i], own); c < 0.999999 {
			t.Errorf("text %d: cosine with the model's Embed %v", i, c)
		}
		if c := dense.Dot(ws[i], vs[i]); c < 0.9999 {
			t.Errorf("text %d: recovered and direct pooling differ (cosine %v)", i, c)
		}
	}
}

func TestPseudoInverseErrors(t *testing.T) {
	if _, err := pseudoInverse(make([]float32, 4*8), 4, 8); err == nil {
		t.Error("vocab < dim accepted")
	}
	w := []float32{1, 2, 2, 4, 3, 6} // columns dependent
	if _, err := pseudoInverse(w, 3, 2); err == nil {
		t.Error("dependent columns accepted")
	}
	w = []float32{1, 0, 0, 1, 1, 1}
	pi, err := pseudoInverse(w, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	// (WᵀW)⁻¹Wᵀ for this W is [[2,-1,1],[-1,2,1]]/3.
	want := []float32{2. / 3, -1. / 3, 1. / 3, -1. / 3, 2. / 3, 1. / 3}
	for i := range want {
		if math.Abs(float64(pi[i]-want[i])) > 1e-6 {
			t.Fatalf("pseudo-inverse %v, want %v", pi, want)
		}
	}
}
