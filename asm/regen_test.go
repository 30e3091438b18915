package asm_test

import (
	"path/filepath"
	"testing"

	"github.com/modelc/modelc/asm/internal/testshapes"
	"github.com/modelc/modelc/internal/gentest"
)

// TestGeneratedUpToDate regenerates package testkernels and fails if the
// committed files differ: run `go generate ./asm/...` after changing a
// generator.
func TestGeneratedUpToDate(t *testing.T) {
	dir := t.TempDir()
	if err := testshapes.Generate(dir); err != nil {
		t.Fatal(err)
	}
	gentest.MatchDir(t, filepath.Join("internal", "testkernels"), dir, testshapes.Files, "go generate ./asm/internal/testkernels")
}
