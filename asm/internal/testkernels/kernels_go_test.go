package testkernels

import (
	"testing"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/asm/internal/testshapes"
)

// TestGo runs every pure-Go specialised kernel: that path runs everywhere.
func TestGo(t *testing.T) {
	for _, k := range testshapes.Kernels(asm.Generic) {
		fn, ok := goKernels[k.Name()]
		if !ok {
			t.Fatalf("%s missing from the table", k.Name())
		}
		t.Run(k.Name(), func(t *testing.T) { checkKernel(t, k, fn) })
	}
}
