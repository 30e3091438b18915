//go:build arm64 && !purego

package quanttest

import (
	"testing"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/asm/internal/quanttest/shapes"
	"github.com/modelc/modelc/runtime/cpu"
)

// The NEON kernels add the block sums in the reference's order: equal bits.
func TestARM64(t *testing.T) {
	ran := 0
	for _, k := range shapes.Kernels(asm.NEON) {
		if !k.NoDot && !cpu.Detect().ASIMDDP {
			continue
		}
		fn, ok := arm64Kernels[k.Name()]
		if !ok {
			t.Fatalf("%s missing from the table", k.Name())
		}
		checkKernel(t, k, fn, true)
		ran++
	}
	t.Logf("ran %d kernels (SDOT: %v)", ran, cpu.Detect().ASIMDDP)
}

// archKernel is k's assembly kernel when this machine can run it.
func archKernel(k asm.QKernel) qfunc {
	if k.ISA != asm.NEON || !k.NoDot && !cpu.Detect().ASIMDDP {
		return nil
	}
	return arm64Kernels[k.Name()]
}
