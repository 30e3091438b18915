package posttrain

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/modelc/modelc/runtime/posttrain/tasks"
	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

// dataDir finds shared/data beside the repository root (where go.mod is).
func dataDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(filepath.Dir(dir), "shared", "data")
			if _, err := os.Stat(d); err != nil {
				t.Fatalf("test data: %v", err)
			}
			return d
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the package")
		}
		dir = up
	}
}

func tok512(t testing.TB) tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.Load(filepath.Join(dataDir(t), "models", "tok512.bin"), 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func tinySpec() *spec.Spec {
	return &spec.Spec{Name: "tiny", Vocab: 512, Dim: 16, Layers: 1, Heads: 2, KVHeads: 1, FFNDim: 32, MaxSeq: 128,
		NormEps: 1e-5, RopeTheta: 10000, TieEmbeddings: true}
}

func hyper(steps int) Hyper {
	return Hyper{Steps: steps, LR: 3e-3, MinLR: 3e-4, GradClip: 1, Seed: 1, EvalEvery: 0}
}

// writeJSONL writes items to a file in dir.
func writeJSONL[T any](t testing.TB, dir, name string, items []T) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := tasks.WriteJSONL(f, items); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

func problems(t testing.TB, n int, held bool) []tasks.Problem {
	t.Helper()
	ps, err := tasks.Generate(n, tasks.Config{Seed: 7, Digits: 2, HeldOut: held, Kinds: []string{tasks.KindAdd}})
	if err != nil {
		t.Fatal(err)
	}
	return ps
}
