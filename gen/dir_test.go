package gen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGenerateFolder: gen keeps a spec's folder its own. Files a narrower
// spec no longer makes (a dropped target, the old command of a renamed
// spec) go; a second spec, a hand-written file in the way and a Go file of
// another package are refused before anything is written; gen.go names the
// spec file it was compiled from.
func TestGenerateFolder(t *testing.T) {
	mod := t.TempDir()
	must(t, os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/m\n"), 0o644))
	dir := filepath.Join(mod, "tiny")
	must(t, os.MkdirAll(dir, 0o755))
	const body = "vocab: 11\ndim: 12\nlayers: 1\nheads: 3\nkv_heads: 1\nffn_dim: 8\nmax_seq: 5\n"
	specPath := filepath.Join(dir, "model.yaml")
	gen := func(path, yaml string) error {
		t.Helper()
		must(t, os.WriteFile(path, []byte(yaml), 0o644))
		_, _, err := Generate(path)
		return err
	}
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}
	if err := gen(specPath, "name: tiny\n"+body); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kernels_arm64.s", "dispatch_arm64.go", "kernels_amd64.s", "cmd/tiny/main.go"} {
		if !exists(name) {
			t.Fatalf("no %s after gen", name)
		}
	}

	// Again: nothing changes, so nothing is written.
	if written, removed, err := Generate(specPath); err != nil || len(written)+len(removed) != 0 {
		t.Errorf("regenerating an unchanged spec wrote %v, removed %v: %v", written, removed, err)
	}

	// One target fewer: its files go.
	if err := gen(specPath, "name: tiny\n"+body+"targets: [avx2]\n"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kernels_arm64.s", "kernels_arm64.go", "dispatch_arm64.go", "train_arm64.go"} {
		if exists(name) {
			t.Errorf("%s left after arm64 was dropped from targets", name)
		}
	}
	if !exists("kernels_amd64.s") {
		t.Error("kernels_amd64.s removed")
	}

	// Renamed: the old command goes with its folder.
	if err := gen(specPath, "name: tinier\n"+body); err != nil {
		t.Fatal(err)
	}
	if exists("cmd/tiny") || !exists("cmd/tinier/main.go") {
		t.Errorf("after the rename: cmd/tiny there %v, cmd/tinier/main.go there %v", exists("cmd/tiny"), exists("cmd/tinier/main.go"))
	}
	model, _ := os.ReadFile(filepath.Join(dir, "model_gen.go"))

	for _, c := range []struct {
		file, body, spec, want string
	}{
		{"", "", "second.yaml", "holds the package compiled from model.yaml; second.yaml would replace it"},
		{"model_gen.go", "package tinier\n", "model.yaml", "model_gen.go was not written by modelc"},
		{"foo.go", "package foo\n", "model.yaml", "holds package foo (foo.go), not tinier"},
	} {
		if c.file != "" {
			must(t, os.WriteFile(filepath.Join(dir, c.file), []byte(c.body), 0o644))
		}
		err := gen(filepath.Join(dir, c.spec), "name: tinier\n"+body)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v, want %q", c.spec, c.file, err, c.want)
		}
		if c.file == "model_gen.go" {
			must(t, os.WriteFile(filepath.Join(dir, c.file), model, 0o644))
		} else if c.file != "" {
			os.Remove(filepath.Join(dir, c.file))
		}
		if c.spec != "model.yaml" {
			os.Remove(filepath.Join(dir, c.spec))
		}
	}
	// A file of the package written by hand, and its tests, may stay.
	must(t, os.WriteFile(filepath.Join(dir, "extra.go"), []byte("package tinier\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "x_test.go"), []byte("package tinier_test\n"), 0o644))
	if err := gen(specPath, "name: tinier\n"+body); err != nil {
		t.Fatal(err)
	}
	if !exists("extra.go") || !exists("x_test.go") {
		t.Error("a hand-written file of the package was removed")
	}

	// A spec of another name: gen.go regenerates from it.
	other := filepath.Join(mod, "other")
	must(t, os.MkdirAll(other, 0o755))
	if err := gen(filepath.Join(other, "named.yaml"), "name: other\n"+body); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(other, "gen.go")); !strings.Contains(string(b), "modelc gen named.yaml\n") {
		t.Errorf("gen.go of named.yaml:\n%s", b)
	}
}
