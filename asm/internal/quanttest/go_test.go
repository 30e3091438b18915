package quanttest

import (
	"math"
	"testing"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/asm/internal/quanttest/shapes"
)

// The pure-Go kernels add the block sums in the reference's order: equal bits.
func TestGo(t *testing.T) {
	t.Logf("ran %d kernels", runAll(t, asm.Generic, goKernels, goKernelsMM, goKernelsPMM, true, nil))
}

// Quantised matvec against float32 matvec with the original weights: the
// error is the quantisation's, small relative to the row's Σ|w·x|.
func TestAgainstFloat(t *testing.T) {
	for _, k := range shapes.Kernels(asm.Generic) {
		if k.Rows > 0 {
			continue
		}
		p := newProblem(k, 5, 9)
		got := run(t, k, goKernels[k.Name()], p, 5)
		C := k.Cols
		for i := range got {
			var exact, abs float64
			for j := 0; j < C; j++ {
				// p.wf is dequantised; compare against the float activations.
				exact += float64(p.wf[i*C+j]) * float64(p.x[j])
				abs += math.Abs(float64(p.wf[i*C+j]) * float64(p.x[j]))
			}
			// Activation rounding: at most half a step of 1/127 of each block's max.
			if d := math.Abs(float64(got[i]) - exact); d > 0.02*abs+1e-6 {
				t.Errorf("%s row %d: %g vs float %g (Σ|w·x| %g)", k.Name(), i, got[i], exact, abs)
			}
		}
	}
}
