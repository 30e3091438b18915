//go:build amd64 && !purego

package quanttest

import (
	"testing"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/runtime/cpu"
	"github.com/modelc/modelc/runtime/quant"
)

// VNNI reports whether the AVX-512 quantised kernels can run here.
func VNNI() bool {
	f := cpu.Detect()
	return cpu.Supports(cpu.AVX512) && f.AVX512BW && f.AVX512VNNI
}

func TestAMD64(t *testing.T) {
	ran := 0
	for _, isa := range []asm.ISA{asm.AVX2, asm.AVX512} {
		if isa == asm.AVX2 && !cpu.Supports(cpu.AVX2) || isa == asm.AVX512 && !VNNI() {
			t.Logf("%s: not supported here", isa)
			continue
		}
		ran += runAll(t, isa, amd64Kernels, amd64KernelsMM, amd64KernelsPMM, false, nil)
	}
	t.Logf("ran %d kernels", ran)
}

// archKernel is k's assembly kernel when this machine can run it.
func archKernel(k asm.QKernel) qfunc {
	if k.ISA == asm.AVX2 && cpu.Supports(cpu.AVX2) || k.ISA == asm.AVX512 && VNNI() {
		return amd64Kernels[k.Name()]
	}
	return nil
}

// The panel kernels and runtime/quant.Panels agree on the panel height.
func TestPanelRows(t *testing.T) {
	if asm.QPanelRows != quant.PanelRows {
		t.Fatalf("asm panels are %d rows, runtime/quant's %d", asm.QPanelRows, quant.PanelRows)
	}
}
