package server

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/quant"
)

// keptModel is a model whose parameters left the file's Q8_0 tensors in
// their blocks, as a quantised compiled model's do (checkpoint.LoadFor);
// its steps run the generic model over the decoded file.
type keptModel struct {
	model.Model
	p *model.Params
}

func (k keptModel) Params() *model.Params { return k.p }

// TestLazyEmbedder: a model whose quantised tensors stayed in blocks gets
// the lazy embedder at Ready, and its embeddings are the generic model's
// over the same file fully decoded, bit for bit.
func TestLazyEmbedder(t *testing.T) {
	dir := t.TempDir()
	f32 := filepath.Join(dir, "m.gguf")
	if err := checkpoint.SaveGGUF(f32, randomModel(t, tinySpec(64), 3).Params(), nil, false); err != nil {
		t.Fatal(err)
	}
	src, err := gguf.Open(f32)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close() // the unquantised tensors are slices of its mapping
	kvs, ts, _, err := quant.QuantizeFile(src, gguf.TypeQ8_0)
	if err != nil {
		t.Fatal(err)
	}
	q8 := filepath.Join(dir, "q8.gguf")
	if err := gguf.WriteFile(q8, kvs, ts); err != nil {
		t.Fatal(err)
	}
	full, f1, err := checkpoint.Load(q8)
	if err != nil {
		t.Fatal(err)
	}
	defer f1.Close()
	g, err := generic.New(full)
	if err != nil {
		t.Fatal(err)
	}
	kept, f2, err := checkpoint.LoadFor(q8, "q8_0")
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	if len(kept.Undecoded) == 0 {
		t.Fatal("LoadFor q8_0 decoded every tensor")
	}
	s, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ready(keptModel{g, kept}, tok512(t), nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.st.Load().embed.(*lazyEmbedder); !ok {
		t.Fatalf("embedder %T, want the lazy one", s.st.Load().embed)
	}
	ids := []int{1, 300, 42, 7, 99}
	want, err := g.(Embedder).Embed(ids)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second call reuses the decoded model
		got, err := s.st.Load().embed.Embed(ids)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("embedding[%d] = %g, the decoded file's %g", i, got[i], want[i])
			}
		}
	}
}
