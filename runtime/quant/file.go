package quant

import (
	"fmt"
	"math"
	"strings"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/model"
)

// KeyQuantizationVersion is the metadata key llama.cpp's quantize tool sets
// to the version of the block formats (2 since the float16 scale of Q8_0).
const KeyQuantizationVersion = "general.quantization_version"

// Decode widens tensor data of any type this project loads (F32, F16, BF16,
// Q8_0, Q4_0, and Q6_K, which llama.cpp's quantize uses for output.weight)
// into dst, which holds the tensor's element count. The error
// names the type or the size mismatch.
func Decode(t gguf.GGMLType, dst []float32, data []byte) error {
	want, ok := t.RowBytes(uint64(len(dst)))
	switch {
	case !t.Known():
		return fmt.Errorf("unknown ggml type %d", uint32(t))
	case !ok:
		return fmt.Errorf("%d %s values are not a whole number of blocks of %d (misaligned block data)", len(dst), t, t.BlockSize())
	case uint64(len(data)) != want:
		return fmt.Errorf("%d %s values need %d bytes, got %d (misaligned block data)", len(dst), t, want, len(data))
	}
	switch t {
	case gguf.TypeF32:
		gguf.BytesToF32s(dst, data)
	case gguf.TypeF16:
		gguf.F16sToF32s(dst, data)
	case gguf.TypeBF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(data[2*i])<<16 | uint32(data[2*i+1])<<24)
		}
	case gguf.TypeQ8_0:
		DequantizeQ8_0(dst, data)
	case gguf.TypeQ4_0:
		DequantizeQ4_0(dst, data)
	case gguf.TypeQ6_K:
		DequantizeQ6K(dst, data)
	default:
		return fmt.Errorf("type %s is not supported (F32, F16, BF16, Q8_0, Q4_0, Q6_K)", t)
	}
	return nil
}

// CheckScales refuses data in format t whose block scales hold NaN or ±Inf
// (NonFiniteScale), naming tensor name, the block and its elements.
func CheckScales(name string, t gguf.GGMLType, data []byte) error {
	b, d := NonFiniteScale(t, data)
	if b < 0 {
		return nil
	}
	n := int(t.BlockSize())
	return fmt.Errorf("tensor %s holds %v in the scale of block %d (elements %d to %d)", name, d, b, b*n, b*n+n-1)
}

// NonFiniteScale returns the first block of data, in format t (Q8_0, Q4_0
// or Q6_K), whose float16 scale is NaN or infinite, and that scale; block
// is -1 when all are finite, or t has no scales. The codes are integers and
// a finite scale times them stays finite, so the scales are all a loader
// needs to check: one look per block, not per weight.
func NonFiniteScale(t gguf.GGMLType, data []byte) (block int, d float32) {
	at := 0 // the scale's offset in a block
	switch t {
	case gguf.TypeQ8_0, gguf.TypeQ4_0:
	case gguf.TypeQ6_K:
		at = Q6KBlockBytes - 2
	default:
		return -1, 0
	}
	bb := int(t.BlockBytes())
	for i := 0; i+bb <= len(data); i += bb {
		if h := uint16(data[i+at]) | uint16(data[i+at+1])<<8; h&0x7c00 == 0x7c00 { // exponent all ones
			return i / bb, gguf.F16ToF32(h)
		}
	}
	return -1, 0
}

// IsRouter reports whether tensor name is a mixture's router (ffn_gate_inp),
// which quantisation keeps F32 as llama.cpp's quantize does.
func IsRouter(name string) bool { return strings.HasSuffix(name, "ffn_gate_inp.weight") }

// Quantizable reports whether tensor name of these ggml dims (innermost
// first) becomes quantised: a matrix, or a stack of them (the 3-D experts of
// a mixture), whose rows are whole blocks; as in llama.cpp's quantize, not
// a mixture's router (ffn_gate_inp), which stays F32.
func Quantizable(name string, dims []uint64) bool {
	if IsRouter(name) {
		return false
	}
	return (len(dims) == 2 || len(dims) == 3) && dims[0] > 0 && dims[0]%BlockSize == 0
}

// FileType is general.file_type for a file mostly in t (llama_ftype:
// MOSTLY_Q8_0 = 7, MOSTLY_Q4_0 = 2).
func FileType(t gguf.GGMLType) (uint32, error) {
	switch t {
	case gguf.TypeQ8_0:
		return gguf.FileTypeQ8_0, nil
	case gguf.TypeQ4_0:
		return gguf.FileTypeQ4_0, nil
	}
	return 0, fmt.Errorf("quant: type %s is not supported (Q8_0, Q4_0)", t)
}

// ParseType maps "q8_0" / "q4_0" (any case) to the ggml type.
func ParseType(s string) (gguf.GGMLType, error) {
	switch s {
	case "q8_0", "Q8_0":
		return gguf.TypeQ8_0, nil
	case "q4_0", "Q4_0":
		return gguf.TypeQ4_0, nil
	}
	return 0, fmt.Errorf("quant: unknown type %q (want q8_0 or q4_0)", s)
}

// Change is what QuantizeFile did with one tensor.
type Change struct {
	Name     string
	Dims     []uint64
	From, To gguf.GGMLType
	Bytes    int // size of the written data
}

// QuantizeFile turns the tensors of a GGUF file into format t the way
// llama.cpp's quantize does for a pure Q8_0/Q4_0 file: every 2-D matrix
// whose rows are whole 32-blocks is quantised, and so are the 3-D expert
// stacks of a mixture (from F32, F16, BF16, or another block format through
// float32); the others (norms, the router, matrices with rows of other
// lengths) stay F32, or F16 if they were. All metadata is
// copied (tokenizer included) with general.file_type set for t and
// general.quantization_version 2. A weight or block scale that is NaN or
// ±Inf is refused.
func QuantizeFile(f *gguf.File, t gguf.GGMLType) ([]gguf.KV, []gguf.WriteTensor, []Change, error) {
	ftype, err := FileType(t)
	if err != nil {
		return nil, nil, nil, err
	}
	kvs := make([]gguf.KV, 0, len(f.KV)+2)
	setType, setVersion := false, false
	for _, kv := range f.KV {
		switch kv.Key {
		case gguf.KeyFileType:
			kv.Value, setType = ftype, true
		case KeyQuantizationVersion:
			kv.Value, setVersion = uint32(2), true
		}
		kvs = append(kvs, kv)
	}
	if !setType {
		kvs = append(kvs, gguf.KV{Key: gguf.KeyFileType, Value: ftype})
	}
	if !setVersion {
		kvs = append(kvs, gguf.KV{Key: KeyQuantizationVersion, Value: uint32(2)})
	}
	var ts []gguf.WriteTensor
	var changes []Change
	for _, info := range f.Tensors {
		data, err := f.TensorData(info.Name)
		if err != nil {
			return nil, nil, nil, err
		}
		to := gguf.TypeF32
		switch {
		case Quantizable(info.Name, info.Dims):
			to = t
		case info.Type == gguf.TypeF32 || info.Type == gguf.TypeF16:
			to = info.Type
		}
		// A NaN or infinity is refused here rather than written on for
		// every loader to refuse: a block format's by its scales, a float
		// format's by its values (decoded even when copied as they are).
		if err := CheckScales(info.Name, info.Type, data); err != nil {
			return nil, nil, nil, err
		}
		out := data
		if float := info.Type.BlockSize() == 1; to != info.Type || float {
			n := info.NumElements()
			if n > uint64(len(data))*8+64 { // no format packs more than 8 values a byte
				return nil, nil, nil, fmt.Errorf("tensor %s: %d elements in %d bytes", info.Name, n, len(data))
			}
			x := make([]float32, n)
			if err := Decode(info.Type, x, data); err != nil {
				return nil, nil, nil, fmt.Errorf("tensor %s: %w", info.Name, err)
			}
			if float {
				if err := model.CheckFinite(info.Name, x, 0); err != nil {
					return nil, nil, nil, err
				}
			}
			switch {
			case to == info.Type: // a float tensor kept as it is
			case to == gguf.TypeF32:
				out = make([]byte, 4*len(x))
				gguf.F32sToBytes(out, x)
			default:
				if out, err = Quantize(to, x); err != nil {
					return nil, nil, nil, fmt.Errorf("tensor %s: %w", info.Name, err)
				}
			}
		}
		ts = append(ts, gguf.WriteTensor{Name: info.Name, Dims: info.Dims, Type: to, Data: out})
		changes = append(changes, Change{Name: info.Name, Dims: info.Dims, From: info.Type, To: to, Bytes: len(out)})
	}
	return kvs, ts, changes, nil
}
