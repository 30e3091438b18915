package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse: no input panics, every error is one line, and every accepted
// spec validates and survives a round trip through YAML. The seeds are whole
// specs, so minimising an interesting input takes long; run it with
// -fuzzminimizetime=3s or the progress line seems stuck.
func FuzzParse(f *testing.F) {
	root := repoRoot(f)
	for _, n := range []string{"stories260k", "llama15m", "llama110m"} {
		b, err := os.ReadFile(filepath.Join(root, "generated", n, "model.yaml"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		minimal,
		minimal + "moe:\n  experts: 4\n  top_k: 2\n  shared_expert: true\n",
		minimal + "targets: [avx2, neon]\nquant: q4_0\n",
		minimal + "train: {lr: 1e-3, seed: 7}\n",
		`{"name": "j", "vocab": 10, "dim": 8, "layers": 1, "heads": 2, "ffn_dim": 4, "max_seq": 8}`,
		"a: &x [1]\nb: *x\n",
		"&a [*a]",
		"name: x\nmoe: &m {experts: 2}\ntrain: *m\n",
		"dim: .nan\nnorm_eps: .inf\n",
		"---\n---\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data, "f.yaml")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("accepted spec does not validate: %v", err)
		}
		b, err := s.YAML()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(b, "back.yaml")
		if err != nil {
			t.Fatalf("round trip: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(s, back) {
			t.Fatalf("round trip changed the spec:\n%+v\n%+v", *s, *back)
		}
		_ = s.Figures()
	})
}
