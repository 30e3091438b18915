package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/cli"
	"github.com/modelc/modelc/spec"
)

// convert --random writes RandomParams of the spec's shape scaled to --std
// (norms stay 1), with the vocabulary, as a GGUF the loader reads back.
func TestConvertRandom(t *testing.T) {
	root, data := repo(t)
	yaml := filepath.Join(root, "generated", "stories260k", "model.yaml")
	tok := filepath.Join(data, "models", "tok512.bin")
	s, err := spec.Load(yaml)
	if err != nil {
		t.Fatal(err)
	}
	want := cli.RandomParams(s, 7)
	for _, c := range []struct {
		args  []string
		scale float32
	}{
		{nil, 1},
		{[]string{"--std", "0.3"}, 15},
	} {
		out := filepath.Join(t.TempDir(), "r.gguf")
		args := append([]string{"convert", "--random", yaml, "--tokenizer", tok, "--seed", "7", out}, c.args...)
		if msg, err := run(t, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, msg)
		}
		p, f, err := checkpoint.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		if p.Spec.Dim != s.Dim || p.Spec.Layers != s.Layers || p.Spec.Vocab != s.Vocab || p.Spec.KVHeads != s.KVHeads {
			t.Errorf("%v: shape %+v, want that of %s", c.args, p.Spec, yaml)
		}
		for _, wt := range want.Tensors {
			gt, ok := p.Lookup(wt.Name)
			if !ok {
				t.Fatalf("%v: tensor %s missing", c.args, wt.Name)
			}
			got := p.Data[gt.Off : gt.Off+gt.Len()]
			w := want.Data[wt.Off : wt.Off+wt.Len()]
			scale := c.scale
			if strings.Contains(wt.Name, "_norm.") {
				scale = 1
			}
			for i, v := range w {
				if g := got[i]; g != v*scale {
					t.Fatalf("%v: %s[%d] = %g, want %g", c.args, wt.Name, i, g, v*scale)
				}
			}
		}
		f.Close()
	}
	for _, bad := range [][]string{
		{"convert", "--random", yaml, "--tokenizer", tok, "--std", "0", filepath.Join(t.TempDir(), "x.gguf")},
		{"convert", filepath.Join(data, "models", "stories260K.bin"), "--tokenizer", tok, "--seed", "3", filepath.Join(t.TempDir(), "x.gguf")},
		{"convert", "--random", filepath.Join(data, "models", "stories260K.bin"), "--tokenizer", tok, filepath.Join(t.TempDir(), "x.gguf")},
	} {
		if _, err := run(t, bad...); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
