//go:build !purego

package testkernels

import (
	"testing"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/asm/internal/testshapes"
	"github.com/modelc/modelc/runtime/cpu"
)

func archKernel(k asm.Kernel) any { return arm64Kernels[k.Name()] }

// TestNEON runs every NEON kernel (on amd64 hosts under qemu-aarch64).
func TestNEON(t *testing.T) {
	if !cpu.Supports(cpu.NEON) {
		t.Fatalf("arm64 without NEON: %+v", cpu.Detect())
	}
	for _, k := range testshapes.Kernels(asm.NEON) {
		fn, ok := arm64Kernels[k.Name()]
		if !ok {
			t.Fatalf("%s missing from the table", k.Name())
		}
		t.Run(k.Name(), func(t *testing.T) { checkKernel(t, k, fn) })
	}
}
