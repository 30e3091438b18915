package cli

import (
	"math/rand/v2"
	"strings"

	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
)

// RandomParams returns parameters for s drawn from a seed: every weight
// Gaussian with standard deviation 0.02 and every norm weight 1, as a freshly
// initialised Llama. They give shapes with no checkpoint realistic timing
// (benchmarks) and realistic activations (tests); the same seed gives the same
// weights on every machine (math/rand/v2 PCG).
func RandomParams(s *spec.Spec, seed uint64) *model.Params {
	p := model.NewParams(s)
	r := rand.New(rand.NewPCG(seed, seed^0x5851F42D4C957F2D))
	for _, t := range p.Tensors {
		d := p.Data[t.Off : t.Off+t.Len()]
		if strings.Contains(t.Name, "_norm.") {
			for i := range d {
				d[i] = 1
			}
			continue
		}
		for i := range d {
			d[i] = float32(r.NormFloat64() * 0.02)
		}
	}
	return p
}
