package quant

import (
	"fmt"
	"strings"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/model"
)

// Blocks returns the blocks, in format ("q8_0" or "q4_0"), of matrix name of
// p for a compiled quantised model. When p was read from a GGUF file that
// holds the tensor in that format, they are the file's own bytes (a slice of
// its mapping, no copy). A tensor the file holds in a float format is
// quantised from p.Data into new memory, so that an F32 file (or random
// parameters) runs too. So is one outside the layers (token_embd, output)
// in another block format (Requantised names them): llama.cpp's quantize
// keeps those in more bits than the layers (a Q4_0 file's output is Q6_K,
// or Q8_0 when its rows are not whole 256-blocks). A file whose layers are
// in the other block format is refused: requantising it would change the
// whole model.
func Blocks(p *model.Params, name, format string) ([]byte, error) {
	t, err := ParseType(format)
	if err != nil {
		return nil, err
	}
	tn, ok := p.Lookup(name)
	// A matrix, or a stack of them (a mixture's experts): rows of the last dim.
	if !ok || len(tn.Shape) < 2 || tn.Shape[len(tn.Shape)-1]%BlockSize != 0 {
		return nil, fmt.Errorf("quant: %s is not a matrix of whole %d-blocks", name, BlockSize)
	}
	rows := 1
	for _, n := range tn.Shape[:len(tn.Shape)-1] {
		rows *= n
	}
	rb, _ := RowBytes(t, tn.Shape[len(tn.Shape)-1])
	want := rows * rb
	if p.File != nil {
		if info, ok := p.File.Tensor(name); ok {
			switch {
			case info.Type == t:
				data, err := p.File.TensorData(name)
				if err != nil {
					return nil, err
				}
				if len(data) != want {
					return nil, fmt.Errorf("quant: tensor %s holds %d bytes, want %d", name, len(data), want)
				}
				return data, nil
			case Supported(info.Type) && p.Spec.Quant != format:
				file := "the model file"
				if p.File.Path != "" {
					file = p.File.Path
				}
				return nil, fmt.Errorf("tensor %s is %s in %s, this binary was compiled for %s (use a binary compiled for %s, or --generic)",
					name, info.Type, file, format, strings.ToLower(info.Type.String()))
			}
		}
	}
	if p.Undecoded[name] {
		return nil, fmt.Errorf("quant: tensor %s was not decoded and has no %s blocks", name, format)
	}
	return Quantize(t, p.T(name))
}

// Requantised names the matrices of p's file that a model compiled for
// format ("q8_0" or "q4_0") quantises anew at load because the file holds
// them in another block format (Q8_0, Q4_0 or Q6_K) while its layers are in
// format: the tensors Blocks converts rather than reads in place.
func Requantised(p *model.Params, format string) []string {
	t, err := ParseType(format)
	if p.File == nil || err != nil || p.Spec.Quant != format {
		return nil
	}
	var names []string
	for _, info := range p.File.Tensors {
		if _, ok := p.Lookup(info.Name); ok && info.Type != t && (Supported(info.Type) || info.Type == gguf.TypeQ6_K) && Quantizable(info.Name, info.Dims) {
			names = append(names, info.Name)
		}
	}
	return names
}

// DequantizeRow decodes one row of blocks in format ("q8_0" or "q4_0").
func DequantizeRow(format string, dst []float32, src []byte) {
	if format == "q4_0" {
		DequantizeQ4_0(dst, src)
	} else {
		DequantizeQ8_0(dst, src)
	}
}
