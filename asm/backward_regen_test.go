package asm_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/asm/internal/backtest/shapes"
	"github.com/modelc/modelc/internal/gentest"
)

// TestBackwardGeneratedUpToDate regenerates package backtest and fails if
// the committed files differ: run `go generate ./asm/internal/backtest`.
func TestBackwardGeneratedUpToDate(t *testing.T) {
	dir := t.TempDir()
	if err := shapes.Generate(dir); err != nil {
		t.Fatal(err)
	}
	gentest.MatchDir(t, filepath.Join("internal", "backtest"), dir, shapes.Files, "go generate ./asm/internal/backtest")
}

func TestBKernelValidate(t *testing.T) {
	if err := (asm.BKernel{ISA: asm.AVX2, Rows: 0, Cols: 8}).Validate(); err == nil || !strings.Contains(err.Error(), "rows and cols") {
		t.Errorf("rows 0: %v", err)
	}
	if n := (asm.BKernel{DW: true, ISA: asm.AVX512, Rows: 864, Cols: 288}).Name(); n != "matmuldw_864x288_avx512" {
		t.Errorf("name %s", n)
	}
	if _, _, err := asm.BackwardAMD64([]asm.BKernel{{ISA: asm.Generic, Rows: 2, Cols: 2}}, "p"); err == nil {
		t.Error("Generic kernel accepted by the amd64 generator")
	}
	if _, err := asm.BackwardGo([]asm.BKernel{{ISA: asm.AVX2, Rows: 2, Cols: 2}}, "p"); err == nil {
		t.Error("AVX2 kernel accepted by the Go generator")
	}
}
