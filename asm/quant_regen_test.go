package asm_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/asm/internal/quanttest/shapes"
	"github.com/modelc/modelc/internal/gentest"
)

// TestQuantGeneratedUpToDate regenerates package quanttest and fails if the
// committed files differ: run `go generate ./asm/internal/quanttest`.
func TestQuantGeneratedUpToDate(t *testing.T) {
	dir := t.TempDir()
	if err := shapes.Generate(dir); err != nil {
		t.Fatal(err)
	}
	gentest.MatchDir(t, filepath.Join("internal", "quanttest"), dir, shapes.Files, "go generate ./asm/internal/quanttest")
}

func TestQKernelValidate(t *testing.T) {
	for _, c := range []struct {
		k    asm.QKernel
		want string
	}{
		{asm.QKernel{Format: asm.Q8_0, ISA: asm.AVX2, Cols: 48}, "multiple of 32"},
		{asm.QKernel{Format: asm.Q4_0, ISA: asm.AVX2, Cols: 0}, "multiple of 32"},
		{asm.QKernel{Format: 9, ISA: asm.AVX2, Cols: 32}, "unknown format"},
		{asm.QKernel{Format: asm.Q8_0, ISA: asm.AVX2, Cols: 32, NoDot: true}, "NEON only"},
	} {
		if err := c.k.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.k, err, c.want)
		}
	}
	if n := (asm.QKernel{Format: asm.Q8_0, ISA: asm.NEON, Cols: 288, NoDot: true}).Name(); n != "q8_0matvec_288_neonnodot" {
		t.Errorf("name %s", n)
	}
	if n := (asm.QKernel{Format: asm.Q4_0, ISA: asm.AVX2, Rows: 300, Cols: 288}).Name(); n != "q4_0matmul_300x288_avx2" {
		t.Errorf("name %s", n)
	}
	if err := (asm.QKernel{Format: asm.Q4_0, ISA: asm.AVX2, Rows: -1, Cols: 288}).Validate(); err == nil || !strings.Contains(err.Error(), "rows") {
		t.Errorf("rows -1: %v", err)
	}
	if _, _, err := asm.QuantAMD64([]asm.QKernel{{Format: asm.Q8_0, ISA: asm.NEON, Cols: 32}}, "p"); err == nil {
		t.Error("NEON kernel accepted by the amd64 generator")
	}
}
