// Package gen is the compiler: it turns a spec into a plan (operations with
// concrete shapes, fusions and kernel choices) and the plan into a Go package
// specialised to exactly those shapes.
package gen

import (
	"fmt"
	"sort"

	"github.com/modelc/modelc/spec"
)

// Lanes is the number of floats a dot product consumes per step; each lane has
// its own accumulator so the additions do not wait on each other.
const Lanes = 8

// UnrollHead is the largest head size whose dot products are unrolled completely.
const UnrollHead = 16

// Fusion says what a matrix-vector product does around the multiplication.
type Fusion int

const (
	// Plain writes out = W·x.
	Plain Fusion = iota
	// Residual adds into out: out += W·x (the residual connection).
	Residual
	// Norm normalises x (RMSNorm with a weight) before out = W·norm(x).
	Norm
	// NormSwiGLU normalises x, then out[r] = silu(Wg[r]·x)·(Wu[r]·x) where the
	// gate rows are followed by the up rows in one matrix of 2·Rows rows.
	NormSwiGLU
)

var fusionNames = [...]string{"mv", "mvAdd", "mvNorm", "mvNormSwiGLU"}

// MatVec is one specialised matrix-vector kernel.
type MatVec struct {
	Rows, Cols int
	Fusion     Fusion
}

// ParallelMACs is the size (multiply-adds) from which a matrix-vector product
// is split over the worker pool; below it waking a thread costs more than the
// work (all of stories260K runs on one thread).
const ParallelMACs = 1 << 16

// GrainMACs is the least work one thread gets.
const GrainMACs = 1 << 14

// Parallel reports whether the plan splits this kernel's rows over threads.
func (m MatVec) Parallel() bool { return m.Rows*m.Cols >= ParallelMACs }

// Grain is the number of rows a thread gets at least.
func (m MatVec) Grain() int { return max(1, GrainMACs/m.Cols) }

// Name is the Go function name of the kernel.
func (m MatVec) Name() string {
	return fmt.Sprintf("%s%dx%d", fusionNames[m.Fusion], m.Rows, m.Cols)
}

// Plan is everything the emitters need: the spec and the kernels it uses.
type Plan struct {
	Spec    spec.Spec
	Package string
	// Vecs are the distinct row lengths, each becoming a blocked row type.
	Vecs []int
	// QKV, Out, FFN, Down and Classifier are the matvecs of one token's pass.
	QKV, Out, FFN, Down, Classifier MatVec
	MatVecs                         []MatVec
}

// NewPlan checks that gen can compile s and lays out its kernels.
func NewPlan(s *spec.Spec) (*Plan, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := s.Unsupported(); err != nil {
		return nil, err
	}
	d, kv, f := s.Dim, s.KVDim(), s.FFNDim
	p := &Plan{
		Spec:       *s,
		Package:    s.Name,
		QKV:        MatVec{Rows: d + 2*kv, Cols: d, Fusion: Norm},
		Out:        MatVec{Rows: d, Cols: d, Fusion: Residual},
		FFN:        MatVec{Rows: f, Cols: d, Fusion: NormSwiGLU},
		Down:       MatVec{Rows: d, Cols: f, Fusion: Residual},
		Classifier: MatVec{Rows: s.Vocab, Cols: d, Fusion: Plain},
	}
	seen := map[MatVec]bool{}
	for _, m := range []MatVec{p.QKV, p.Out, p.FFN, p.Down, p.Classifier} {
		if !seen[m] {
			seen[m] = true
			p.MatVecs = append(p.MatVecs, m)
		}
	}
	vecs := map[int]bool{d: true, f: true}
	for v := range vecs {
		p.Vecs = append(p.Vecs, v)
	}
	sort.Ints(p.Vecs)
	return p, nil
}
