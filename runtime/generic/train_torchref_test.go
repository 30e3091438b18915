package generic

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
)

// The PyTorch comparison: testdata/torchref/input.json holds tiny models
// (weights by tensor name) and batches; testdata/torchref/torchref.py,
// run by hand with Debian's python3-torch, computes each case's loss and
// gradients in float64 and writes expected.json; this test compares the
// generic trainer with it. Regenerate the input with
//
//	go test ./runtime/generic -run TorchRef -torchref-write
//	python3 testdata/torchref/torchref.py
var torchrefWrite = flag.Bool("torchref-write", false, "rewrite testdata/torchref/input.json")

type torchCase struct {
	Name    string               `json:"name"`
	Spec    spec.Spec            `json:"spec"`
	B       int                  `json:"B"`
	T       int                  `json:"T"`
	Tokens  []int32              `json:"tokens"`
	Targets []int32              `json:"targets"`
	Weights map[string][]float32 `json:"weights"`
}

type torchExpected struct {
	Name  string               `json:"name"`
	Loss  float64              `json:"loss"`
	Grads map[string][]float64 `json:"grads"`
}

func repoRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package")
		}
		dir = parent
	}
}

func torchCases(t *testing.T) []torchCase {
	var cases []torchCase
	for i, c := range []struct {
		name, objective string
		tied            bool
	}{{"causal", model.ObjectiveCausal, false}, {"masked_tied", model.ObjectiveMasked, true}} {
		s := tinySpec(c.objective, c.tied)
		m := randomModel(t, s, uint64(20+i))
		B, T := 2, 6
		tokens, targets := batch(s, B, T, uint64(30+i))
		w := map[string][]float32{}
		for _, ts := range m.p.Tensors {
			w[ts.Name] = m.p.T(ts.Name)
		}
		cases = append(cases, torchCase{Name: c.name, Spec: *s, B: B, T: T, Tokens: tokens, Targets: targets, Weights: w})
	}
	return cases
}

func TestTorchRef(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "testdata", "torchref")
	if *torchrefWrite {
		b, err := json.MarshalIndent(torchCases(t), "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "input.json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s; now run python3 %s", filepath.Join(dir, "input.json"), filepath.Join(dir, "torchref.py"))
		return
	}
	var cases []torchCase
	var expected []torchExpected
	for name, v := range map[string]any{"input.json": &cases, "expected.json": &expected} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if len(cases) == 0 || len(cases) != len(expected) {
		t.Fatalf("%d cases, %d expectations", len(cases), len(expected))
	}
	for i, c := range cases {
		want := expected[i]
		if want.Name != c.Name {
			t.Fatalf("case %d is %q in input.json, %q in expected.json", i, c.Name, want.Name)
		}
		p := model.NewParams(&c.Spec)
		for _, ts := range p.Tensors {
			w, ok := c.Weights[ts.Name]
			if !ok || len(w) != ts.Len() {
				t.Fatalf("%s: tensor %s missing or of the wrong size", c.Name, ts.Name)
			}
			copy(p.T(ts.Name), w)
		}
		mi, err := New(p)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := mi.(*Model).NewTrainer(c.B, c.T)
		if err != nil {
			t.Fatal(err)
		}
		loss := tr.Forward(c.Tokens, c.Targets, c.B, c.T)
		tr.Backward()
		if rel := math.Abs(float64(loss)-want.Loss) / math.Abs(want.Loss); rel > 1e-5 {
			t.Errorf("%s: loss %.8g, PyTorch %.8g", c.Name, loss, want.Loss)
		}
		g := tr.Grads()
		worst := 0.0
		for _, ts := range p.Tensors {
			ref, ok := want.Grads[ts.Name]
			if !ok || len(ref) != ts.Len() {
				t.Fatalf("%s: PyTorch gradient of %s missing or of the wrong size", c.Name, ts.Name)
			}
			var num, den float64
			for j, r := range ref {
				d := float64(g[ts.Off+j]) - r
				num += d * d
				den += r * r
			}
			rel := math.Sqrt(num / den)
			worst = max(worst, rel)
			if rel > 1e-4 {
				t.Errorf("%s: %s: relative error %.2g against PyTorch", c.Name, ts.Name, rel)
			}
		}
		t.Logf("%s: loss %.8g (PyTorch %.8g), worst relative gradient error %.2g", c.Name, loss, want.Loss, worst)
	}
}
