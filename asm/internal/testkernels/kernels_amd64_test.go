//go:build !purego

package testkernels

import (
	"testing"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/asm/internal/testshapes"
	"github.com/modelc/modelc/runtime/cpu"
)

func archKernel(k asm.Kernel) any { return amd64Kernels[k.Name()] }

// TestAMD64 runs every generated kernel this machine can execute.
func TestAMD64(t *testing.T) {
	ran := 0
	for _, k := range testshapes.Kernels(asm.AVX2, asm.AVX512) {
		if !cpu.Supports(levelOf[k.ISA]) {
			continue
		}
		fn, ok := amd64Kernels[k.Name()]
		if !ok {
			t.Fatalf("%s missing from the table", k.Name())
		}
		ran++
		t.Run(k.Name(), func(t *testing.T) { checkKernel(t, k, fn) })
	}
	t.Logf("ran %d kernels (best level %v)", ran, cpu.Best())
}
