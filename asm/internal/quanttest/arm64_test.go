//go:build arm64 && !purego

package quanttest

import (
	"testing"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/runtime/cpu"
)

// The NEON kernels add the block sums in the reference's order: equal bits.
func TestARM64(t *testing.T) {
	dot := cpu.Detect().ASIMDDP
	ran := runAll(t, asm.NEON, arm64Kernels, arm64KernelsMM, arm64KernelsPMM, true, func(k asm.QKernel) bool { return !k.NoDot && !dot })
	t.Logf("ran %d kernels (SDOT: %v)", ran, dot)
}

// archKernel is k's assembly kernel when this machine can run it.
func archKernel(k asm.QKernel) qfunc {
	if k.ISA != asm.NEON || !k.NoDot && !cpu.Detect().ASIMDDP {
		return nil
	}
	return arm64Kernels[k.Name()]
}
