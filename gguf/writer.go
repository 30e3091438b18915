package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/modelc/modelc/internal/atomicfile"
)

// WriteTensor is a tensor to write: Dims in ggml order (Dims[0] is the row
// length) and Data already encoded in Type.
type WriteTensor struct {
	Name string
	Dims []uint64
	Type GGMLType
	Data []byte
}

// encoder writes little-endian values, remembering the first error.
type encoder struct {
	w   *bufio.Writer
	n   uint64
	err error
	buf [8]byte
}

func (e *encoder) raw(b []byte) {
	if e.err != nil {
		return
	}
	_, e.err = e.w.Write(b)
	e.n += uint64(len(b))
}

func (e *encoder) u8(v uint8) { e.raw([]byte{v}) }
func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.buf[:], v)
	e.raw(e.buf[:2])
}
func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], v)
	e.raw(e.buf[:4])
}
func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], v)
	e.raw(e.buf[:8])
}
func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
		e.n += uint64(len(s))
	}
}
func (e *encoder) pad(align uint64) {
	var zero [64]byte
	for e.n%align != 0 && e.err == nil {
		k := min(align-e.n%align, uint64(len(zero)))
		e.raw(zero[:k])
	}
}

// valueType returns the file type of a metadata value and, for arrays, the
// element type.
func valueType(v any) (vt, et uint32, ok bool) {
	switch v.(type) {
	case uint8:
		return tUint8, 0, true
	case int8:
		return tInt8, 0, true
	case uint16:
		return tUint16, 0, true
	case int16:
		return tInt16, 0, true
	case uint32:
		return tUint32, 0, true
	case int32:
		return tInt32, 0, true
	case uint64:
		return tUint64, 0, true
	case int64:
		return tInt64, 0, true
	case float32:
		return tFloat32, 0, true
	case float64:
		return tFloat64, 0, true
	case bool:
		return tBool, 0, true
	case string:
		return tString, 0, true
	case []uint8:
		return tArray, tUint8, true
	case []int8:
		return tArray, tInt8, true
	case []uint16:
		return tArray, tUint16, true
	case []int16:
		return tArray, tInt16, true
	case []uint32:
		return tArray, tUint32, true
	case []int32:
		return tArray, tInt32, true
	case []uint64:
		return tArray, tUint64, true
	case []int64:
		return tArray, tInt64, true
	case []float32:
		return tArray, tFloat32, true
	case []float64:
		return tArray, tFloat64, true
	case []bool:
		return tArray, tBool, true
	case []string:
		return tArray, tString, true
	}
	return 0, 0, false
}

func (e *encoder) value(v any) {
	switch x := v.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float32:
		e.u32(math.Float32bits(x))
	case float64:
		e.u64(math.Float64bits(x))
	case bool:
		if x {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case string:
		e.str(x)
	case []uint8:
		e.arr(tUint8, len(x))
		e.raw(x)
	case []int8:
		e.arr(tInt8, len(x))
		for _, y := range x {
			e.u8(uint8(y))
		}
	case []uint16:
		e.arr(tUint16, len(x))
		for _, y := range x {
			e.u16(y)
		}
	case []int16:
		e.arr(tInt16, len(x))
		for _, y := range x {
			e.u16(uint16(y))
		}
	case []uint32:
		e.arr(tUint32, len(x))
		for _, y := range x {
			e.u32(y)
		}
	case []int32:
		e.arr(tInt32, len(x))
		for _, y := range x {
			e.u32(uint32(y))
		}
	case []uint64:
		e.arr(tUint64, len(x))
		for _, y := range x {
			e.u64(y)
		}
	case []int64:
		e.arr(tInt64, len(x))
		for _, y := range x {
			e.u64(uint64(y))
		}
	case []float32:
		e.arr(tFloat32, len(x))
		for _, y := range x {
			e.u32(math.Float32bits(y))
		}
	case []float64:
		e.arr(tFloat64, len(x))
		for _, y := range x {
			e.u64(math.Float64bits(y))
		}
	case []bool:
		e.arr(tBool, len(x))
		for _, y := range x {
			e.value(y)
		}
	case []string:
		e.arr(tString, len(x))
		for _, y := range x {
			e.str(y)
		}
	}
}

func (e *encoder) arr(et uint32, n int) {
	e.u32(et)
	e.u64(uint64(n))
}

// Write writes a GGUF version 3 file: the metadata kvs in the order given,
// then the tensors, each at an offset aligned to general.alignment (a uint32
// among kvs) or 32. It checks everything first and writes nothing when an
// entry is invalid.
func Write(w io.Writer, kvs []KV, tensors []WriteTensor) error {
	align := uint64(DefaultAlignment)
	seen := make(map[string]bool, len(kvs))
	for i, kv := range kvs {
		if kv.Key == "" {
			return fmt.Errorf("gguf: write: metadata entry %d has an empty key", i)
		}
		if seen[kv.Key] {
			return fmt.Errorf("gguf: write: duplicate metadata key %q", kv.Key)
		}
		seen[kv.Key] = true
		if _, _, ok := valueType(kv.Value); !ok {
			return fmt.Errorf("gguf: write: metadata key %q: unsupported value type %T (use a sized number, bool, string or a slice of them)", kv.Key, kv.Value)
		}
		if kv.Key == KeyAlignment {
			a, ok := kv.Value.(uint32)
			if !ok || a == 0 || a&(a-1) != 0 {
				return fmt.Errorf("gguf: write: %s must be a uint32 power of two, got %v (%T)", KeyAlignment, kv.Value, kv.Value)
			}
			align = uint64(a)
		}
	}
	names := make(map[string]bool, len(tensors))
	offsets := make([]uint64, len(tensors))
	var off uint64
	for i, t := range tensors {
		if t.Name == "" || len(t.Name) > MaxNameLen {
			return fmt.Errorf("gguf: write: tensor %d: name %q must have 1..%d bytes", i, t.Name, MaxNameLen)
		}
		if names[t.Name] {
			return fmt.Errorf("gguf: write: duplicate tensor %q", t.Name)
		}
		names[t.Name] = true
		if len(t.Dims) < 1 || len(t.Dims) > MaxDims {
			return fmt.Errorf("gguf: write: tensor %q has %d dimensions (want 1..%d)", t.Name, len(t.Dims), MaxDims)
		}
		if !t.Type.Known() {
			return fmt.Errorf("gguf: write: tensor %q has unknown ggml type %d", t.Name, uint32(t.Type))
		}
		info := TensorInfo{Name: t.Name, Dims: t.Dims, Type: t.Type}
		n := uint64(1)
		for _, d := range t.Dims {
			if d != 0 && n > math.MaxInt64/d {
				return fmt.Errorf("gguf: write: tensor %q has too many elements (dims %v)", t.Name, t.Dims)
			}
			n *= d
		}
		if t.Dims[0]%t.Type.BlockSize() != 0 {
			return fmt.Errorf("gguf: write: tensor %q: row length %d is not a multiple of the %s block size %d", t.Name, t.Dims[0], t.Type, t.Type.BlockSize())
		}
		if size := info.Size(); uint64(len(t.Data)) != size {
			return fmt.Errorf("gguf: write: tensor %q: %s dims %v need %d bytes, data has %d", t.Name, t.Type, t.Dims, size, len(t.Data))
		}
		offsets[i] = off
		off = alignUp(off+uint64(len(t.Data)), align)
	}

	e := &encoder{w: bufio.NewWriterSize(w, 1<<16)}
	e.raw([]byte(Magic))
	e.u32(Version)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(kvs)))
	for _, kv := range kvs {
		e.str(kv.Key)
		vt, _, _ := valueType(kv.Value)
		e.u32(vt)
		e.value(kv.Value)
	}
	for i, t := range tensors {
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(offsets[i])
	}
	e.pad(align)
	for _, t := range tensors {
		e.raw(t.Data)
		e.pad(align)
	}
	if e.err != nil {
		return fmt.Errorf("gguf: write: %w", e.err)
	}
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("gguf: write: %w", err)
	}
	return nil
}

// WriteFile writes a GGUF file atomically: to a temporary file in the same
// directory, synced, then renamed over path.
func WriteFile(path string, kvs []KV, tensors []WriteTensor) error {
	f, err := atomicfile.Create(path)
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err := Write(f, kvs, tensors); err != nil {
		f.Abort()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return nil
}
