// Package gguf reads and writes GGUF files, the container llama.cpp and ollama
// use for model weights and tokenizer metadata: a header, typed key/value
// metadata, tensor descriptions, and an aligned data section.
//
// Reading supports versions 2 and 3 in little-endian byte order; writing
// produces version 3. The package uses only the standard library so that spec,
// tokenizer and runtime can all depend on it.
package gguf

import "fmt"

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// Version is the version this package writes.
const Version = 3

// DefaultAlignment is the data alignment when general.alignment is absent.
const DefaultAlignment = 32

// KeyAlignment is the metadata key that overrides DefaultAlignment (a uint32).
const KeyAlignment = "general.alignment"

// MaxDims is the largest number of dimensions a tensor may have (GGML_MAX_DIMS).
const MaxDims = 4

// MaxNameLen is the longest tensor name llama.cpp accepts (GGML_MAX_NAME - 1).
const MaxNameLen = 63

// KV is one metadata entry. Value is one of uint8, int8, uint16, int16,
// uint32, int32, uint64, int64, float32, float64, bool, string, or a slice of
// one of those ([]uint8 … []string).
type KV struct {
	Key   string
	Value any
}

// GGMLType is a tensor element format.
type GGMLType uint32

// Tensor element formats, numbered as in ggml.h. Gaps are formats ggml removed.
const (
	TypeF32     GGMLType = 0
	TypeF16     GGMLType = 1
	TypeQ4_0    GGMLType = 2
	TypeQ4_1    GGMLType = 3
	TypeQ5_0    GGMLType = 6
	TypeQ5_1    GGMLType = 7
	TypeQ8_0    GGMLType = 8
	TypeQ8_1    GGMLType = 9
	TypeQ2_K    GGMLType = 10
	TypeQ3_K    GGMLType = 11
	TypeQ4_K    GGMLType = 12
	TypeQ5_K    GGMLType = 13
	TypeQ6_K    GGMLType = 14
	TypeQ8_K    GGMLType = 15
	TypeIQ2_XXS GGMLType = 16
	TypeIQ2_XS  GGMLType = 17
	TypeIQ3_XXS GGMLType = 18
	TypeIQ1_S   GGMLType = 19
	TypeIQ4_NL  GGMLType = 20
	TypeIQ3_S   GGMLType = 21
	TypeIQ2_S   GGMLType = 22
	TypeIQ4_XS  GGMLType = 23
	TypeI8      GGMLType = 24
	TypeI16     GGMLType = 25
	TypeI32     GGMLType = 26
	TypeI64     GGMLType = 27
	TypeF64     GGMLType = 28
	TypeIQ1_M   GGMLType = 29
	TypeBF16    GGMLType = 30
	TypeTQ1_0   GGMLType = 34
	TypeTQ2_0   GGMLType = 35
	TypeMXFP4   GGMLType = 39
)

type typeTraits struct {
	name       string
	blockSize  uint64 // elements per block
	blockBytes uint64 // bytes per block
}

// traits are the block layouts of ggml's formats (ggml-common.h); QK_K is 256.
var traits = map[GGMLType]typeTraits{
	TypeF32:     {"F32", 1, 4},
	TypeF16:     {"F16", 1, 2},
	TypeQ4_0:    {"Q4_0", 32, 18},
	TypeQ4_1:    {"Q4_1", 32, 20},
	TypeQ5_0:    {"Q5_0", 32, 22},
	TypeQ5_1:    {"Q5_1", 32, 24},
	TypeQ8_0:    {"Q8_0", 32, 34},
	TypeQ8_1:    {"Q8_1", 32, 36},
	TypeQ2_K:    {"Q2_K", 256, 84},
	TypeQ3_K:    {"Q3_K", 256, 110},
	TypeQ4_K:    {"Q4_K", 256, 144},
	TypeQ5_K:    {"Q5_K", 256, 176},
	TypeQ6_K:    {"Q6_K", 256, 210},
	TypeQ8_K:    {"Q8_K", 256, 292},
	TypeIQ2_XXS: {"IQ2_XXS", 256, 66},
	TypeIQ2_XS:  {"IQ2_XS", 256, 74},
	TypeIQ3_XXS: {"IQ3_XXS", 256, 98},
	TypeIQ1_S:   {"IQ1_S", 256, 50},
	TypeIQ4_NL:  {"IQ4_NL", 32, 18},
	TypeIQ3_S:   {"IQ3_S", 256, 110},
	TypeIQ2_S:   {"IQ2_S", 256, 82},
	TypeIQ4_XS:  {"IQ4_XS", 256, 136},
	TypeI8:      {"I8", 1, 1},
	TypeI16:     {"I16", 1, 2},
	TypeI32:     {"I32", 1, 4},
	TypeI64:     {"I64", 1, 8},
	TypeF64:     {"F64", 1, 8},
	TypeIQ1_M:   {"IQ1_M", 256, 56},
	TypeBF16:    {"BF16", 1, 2},
	TypeTQ1_0:   {"TQ1_0", 256, 54},
	TypeTQ2_0:   {"TQ2_0", 256, 66},
	TypeMXFP4:   {"MXFP4", 32, 17},
}

// Known reports whether t is a format this package knows the layout of.
func (t GGMLType) Known() bool { _, ok := traits[t]; return ok }

// String is ggml's name for the format, e.g. "Q8_0", or "type(99)".
func (t GGMLType) String() string {
	if tr, ok := traits[t]; ok {
		return tr.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize is the number of elements in one block (1 for plain formats),
// or 0 for an unknown format.
func (t GGMLType) BlockSize() uint64 { return traits[t].blockSize }

// BlockBytes is the size in bytes of one block, or 0 for an unknown format.
func (t GGMLType) BlockBytes() uint64 { return traits[t].blockBytes }

// RowBytes is the size in bytes of n elements, which must be a multiple of
// the block size; ok is false when it is not or t is unknown.
func (t GGMLType) RowBytes(n uint64) (bytes uint64, ok bool) {
	tr, known := traits[t]
	if !known || n%tr.blockSize != 0 {
		return 0, false
	}
	return n / tr.blockSize * tr.blockBytes, true
}

// metadata value types of the file format
const (
	tUint8   uint32 = 0
	tInt8    uint32 = 1
	tUint16  uint32 = 2
	tInt16   uint32 = 3
	tUint32  uint32 = 4
	tInt32   uint32 = 5
	tFloat32 uint32 = 6
	tBool    uint32 = 7
	tString  uint32 = 8
	tArray   uint32 = 9
	tUint64  uint32 = 10
	tInt64   uint32 = 11
	tFloat64 uint32 = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

func valueTypeName(t uint32) string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("value type %d", t)
}

// fixedSize is the encoded size of a scalar value type; strings report their
// minimum (the length prefix).
func fixedSize(t uint32) uint64 {
	switch t {
	case tUint8, tInt8, tBool:
		return 1
	case tUint16, tInt16:
		return 2
	case tUint32, tInt32, tFloat32:
		return 4
	case tUint64, tInt64, tFloat64, tString:
		return 8
	}
	return 0
}

// TensorInfo describes one tensor. Dims are in ggml order: Dims[0] is the
// innermost (the length of a row), so a row-major [rows, cols] matrix has
// Dims [cols, rows]. Offset is relative to the start of the data section.
type TensorInfo struct {
	Name   string
	Dims   []uint64
	Type   GGMLType
	Offset uint64
}

// NumElements is the product of the dimensions.
func (t TensorInfo) NumElements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Size is the number of bytes of the tensor's data (0 for an unknown type).
func (t TensorInfo) Size() uint64 {
	b, _ := t.Type.RowBytes(t.NumElements())
	return b
}
