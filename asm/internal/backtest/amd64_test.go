//go:build amd64 && !purego

package backtest

import (
	"testing"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/runtime/cpu"
)

func TestAMD64(t *testing.T) {
	ran := 0
	for _, c := range []struct {
		isa asm.ISA
		l   cpu.Level
	}{{asm.AVX2, cpu.AVX2}, {asm.AVX512, cpu.AVX512}} {
		if !cpu.Supports(c.l) {
			t.Logf("%s: not supported here", c.isa)
			continue
		}
		ran += runAll(t, c.isa, amd64DX, amd64DW)
	}
	if ran == 0 && cpu.Supports(cpu.AVX2) {
		t.Fatal("no kernel ran")
	}
	t.Logf("ran %d kernels", ran)
}
