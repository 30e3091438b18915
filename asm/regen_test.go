package asm_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/modelc/modelc/asm/internal/testshapes"
)

// TestGeneratedUpToDate regenerates package testkernels and fails if the
// committed files differ: run `go generate ./asm/...` after changing a
// generator.
func TestGeneratedUpToDate(t *testing.T) {
	dir := t.TempDir()
	if err := testshapes.Generate(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range testshapes.Files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("internal", "testkernels", name))
		if err != nil {
			t.Fatalf("committed %s: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("internal/testkernels/%s is stale: run go generate ./asm/internal/testkernels", name)
		}
	}
}
