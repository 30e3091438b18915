package cli

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/quant"
	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

// loadParams reads a checkpoint. Unless the generic model will run it, its
// shape must be the compiled one. The *gguf.File (nil for llama2.c files)
// backs the parameters and must be closed after the model is done.
func (a *app) loadParams(path string, useGeneric bool) (*model.Params, *gguf.File, error) {
	if path == "" {
		return nil, nil, errNoModel
	}
	// A quantised binary runs the file's blocks in place: not dequantised.
	q := a.spec.Quant
	if useGeneric {
		q = "f32"
	}
	p, f, err := checkpoint.LoadFor(path, q)
	if err != nil {
		return nil, nil, err
	}
	if !useGeneric {
		if err := checkSpec(&p.Spec, a.spec); err != nil {
			if f != nil {
				f.Close()
			}
			return nil, nil, fmt.Errorf("%s: %w (use --generic to run it anyway)", path, err)
		}
		for _, name := range quant.Requantised(p, a.spec.Quant) {
			info, _ := f.Tensor(name)
			fmt.Fprintf(os.Stderr, "note: %s: %s is %s in the file; this binary, compiled for %s, runs it requantised to %s (--generic runs the file as stored)\n",
				path, name, info.Type, a.spec.Quant, strings.ToUpper(a.spec.Quant))
		}
	}
	return p, f, nil
}

// checkSpec is model.CheckShape plus the constants compiled code bakes in.
func checkSpec(have, want *spec.Spec) error {
	if err := model.CheckShape(have, want); err != nil {
		return err
	}
	for _, c := range []struct {
		name       string
		have, want float64
	}{
		{"norm_eps", have.NormEps, want.NormEps},
		{"rope_theta", have.RopeTheta, want.RopeTheta},
	} {
		// Zero means the file does not say; anything else must agree.
		if c.have != 0 && c.want != 0 && math.Abs(c.have-c.want) > 1e-6*math.Abs(c.want) {
			return fmt.Errorf("model file has %s %g, this binary was compiled for %s %g", c.name, c.have, c.name, c.want)
		}
	}
	return nil
}

// build binds parameters to the compiled code, or to the generic model.
func (a *app) build(p *model.Params, useGeneric bool) (model.Model, error) {
	f := a.factory
	if useGeneric {
		f = generic.New
	}
	m, err := f(p)
	if err != nil {
		return nil, err
	}
	// Loading leaves garbage (file buffers, conversion temporaries) that
	// would start a collection a few milliseconds later, in the middle of
	// the first tokens: its mark phase took 6 ms on a stories260K run, a
	// 128-token decode is 1.5 ms. Collect it now; decoding allocates
	// nothing, so none follows.
	runtime.GC()
	return m, nil
}

// loadTokenizer reads --tokenizer, or the vocabulary inside a GGUF model, and
// checks that it speaks the model's vocabulary.
func loadTokenizer(path string, f *gguf.File, modelPath string, vocab int) (tokenizer.Tokenizer, error) {
	var (
		tok tokenizer.Tokenizer
		err error
		src = path
	)
	switch {
	case path != "":
		tok, err = tokenizer.Load(path, vocab)
		if err != nil {
			return nil, err // names the tokenizer and the file
		}
	case f != nil:
		src = modelPath
		tok, err = tokenizer.FromGGUF(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (pass --tokenizer FILE)", modelPath, err)
		}
	default:
		return nil, fmt.Errorf("no tokenizer: %s carries none, pass --tokenizer FILE", modelPath)
	}
	if err := tokenizer.CheckVocab(src, tok, vocab); err != nil {
		return nil, err
	}
	return tok, nil
}
