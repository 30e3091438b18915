package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/modelc/modelc/internal/mmap"
	"math"
	"math/bits"
	"sort"
	"unicode/utf8"
)

// File is a parsed GGUF file. Tensor data is not copied: TensorData returns
// slices of the bytes Parse was given (or of the memory mapping Open made),
// valid until Close.
type File struct {
	Version   uint32
	KV        []KV
	Tensors   []TensorInfo
	Alignment uint64
	// DataOffset is where the data section starts in the file.
	DataOffset uint64
	// Path is the file Open read (empty after Parse), for messages.
	Path string

	data    []byte // the whole file
	unmap   func() error
	kvIndex map[string]int
	tIndex  map[string]int
}

// ErrNotFound is wrapped by the getters' errors when a key is absent.
var ErrNotFound = errors.New("not found")

// ErrNotGGUF is wrapped by the error for a file without GGUF's magic.
var ErrNotGGUF = errors.New("not a GGUF file")

// Open parses the file at path. It memory-maps the file read-only where the
// platform allows and reads it into memory otherwise; Close releases it.
func Open(path string) (*File, error) {
	data, unmap, err := mmap.Map(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		if unmap != nil {
			unmap()
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.unmap, f.Path = unmap, path
	return f, nil
}

// Close releases the file's memory mapping, if any. Slices TensorData returned
// must not be used afterwards; metadata stays valid.
func (f *File) Close() error {
	f.data = nil
	if f.unmap == nil {
		return nil
	}
	u := f.unmap
	f.unmap = nil
	return u()
}

// decoder reads little-endian values from a byte slice, tracking the offset
// for error messages.
type decoder struct {
	b   []byte
	off uint64
}

func (d *decoder) left() uint64 { return uint64(len(d.b)) - d.off }

func (d *decoder) need(n uint64, what string) error {
	if n > d.left() {
		return fmt.Errorf("gguf: offset %d: %s needs %d bytes, only %d left (truncated file?)", d.off, what, n, d.left())
	}
	return nil
}

func (d *decoder) bytes(n uint64, what string) ([]byte, error) {
	if err := d.need(n, what); err != nil {
		return nil, err
	}
	s := d.b[d.off : d.off+n]
	d.off += n
	return s, nil
}

func (d *decoder) u8(what string) (uint8, error) {
	s, err := d.bytes(1, what)
	if err != nil {
		return 0, err
	}
	return s[0], nil
}

func (d *decoder) u16(what string) (uint16, error) {
	s, err := d.bytes(2, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(s), nil
}

func (d *decoder) u32(what string) (uint32, error) {
	s, err := d.bytes(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(s), nil
}

func (d *decoder) u64(what string) (uint64, error) {
	s, err := d.bytes(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(s), nil
}

func (d *decoder) str(what string) (string, error) {
	at := d.off
	n, err := d.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > d.left() {
		return "", fmt.Errorf("gguf: offset %d: %s length %d runs past end of file (%d bytes left)", at, what, n, d.left())
	}
	s, _ := d.bytes(n, what)
	return string(s), nil
}

// maxKey is the GGUF spec's longest metadata key; maxTensorName llama.cpp's
// longest tensor name (GGML_MAX_NAME less its terminating zero).
const maxKey, maxTensorName = 1<<16 - 1, 63

// validKey reports whether k can be a metadata key: the spec's printable
// ASCII of at most maxKey bytes.
func validKey(k string) bool {
	if len(k) == 0 || len(k) > maxKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// Parse decodes a GGUF file held in data. The File refers to data for tensor
// bytes, so data must not change while the File is in use.
func Parse(data []byte) (*File, error) {
	d := &decoder{b: data}
	magic, err := d.bytes(4, "magic")
	if err != nil {
		return nil, err
	}
	if string(magic) != Magic {
		return nil, fmt.Errorf("gguf: offset 0: bad magic %q, want %q (%w)", magic, Magic, ErrNotGGUF)
	}
	f := &File{}
	if f.Version, err = d.u32("version"); err != nil {
		return nil, err
	}
	switch {
	case f.Version == 2 || f.Version == 3:
	case f.Version == 1:
		return nil, fmt.Errorf("gguf: offset 4: version 1 is not supported (only 2 and 3)")
	case bits.ReverseBytes32(f.Version) <= 3:
		return nil, fmt.Errorf("gguf: offset 4: big-endian GGUF (version %d) is not supported", bits.ReverseBytes32(f.Version))
	default:
		return nil, fmt.Errorf("gguf: offset 4: unknown version %d (want 2 or 3)", f.Version)
	}
	nTensors, err := d.u64("tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := d.u64("metadata count")
	if err != nil {
		return nil, err
	}
	// Bound the counts by the bytes left before allocating anything: a key/value
	// takes at least 13 bytes and a tensor info at least 28.
	const minKV, minTensor = 8 + 4 + 1, 8 + 4 + 8 + 4 + 8
	if nKV > d.left()/minKV {
		return nil, fmt.Errorf("gguf: offset 16: metadata count %d cannot fit in the %d bytes left", nKV, d.left())
	}
	if nTensors > d.left()/minTensor {
		return nil, fmt.Errorf("gguf: offset 8: tensor count %d cannot fit in the %d bytes left", nTensors, d.left())
	}

	f.KV = make([]KV, 0, nKV)
	f.kvIndex = make(map[string]int, nKV)
	for i := uint64(0); i < nKV; i++ {
		at := d.off
		key, err := d.str(fmt.Sprintf("metadata key %d", i))
		if err != nil {
			return nil, err
		}
		if !validKey(key) {
			// A corrupt length reads the bytes after it as a key: say so in
			// one short line rather than print them.
			return nil, fmt.Errorf("gguf: offset %d: metadata key %d is not a key (%d bytes; keys are printable ASCII of at most %d)", at, i, len(key), maxKey)
		}
		if _, dup := f.kvIndex[key]; dup {
			return nil, fmt.Errorf("gguf: offset %d: duplicate metadata key %q", at, key)
		}
		vt, err := d.u32("value type of " + key)
		if err != nil {
			return nil, err
		}
		v, err := d.value(vt, key)
		if err != nil {
			return nil, err
		}
		f.kvIndex[key] = len(f.KV)
		f.KV = append(f.KV, KV{Key: key, Value: v})
	}

	f.Alignment = DefaultAlignment
	if v, ok := f.Get(KeyAlignment); ok {
		a, ok := asUint64(v)
		if !ok || a == 0 || a&(a-1) != 0 || a > 1<<30 {
			return nil, fmt.Errorf("gguf: %s must be a power of two, found %v (%T)", KeyAlignment, v, v)
		}
		f.Alignment = a
	}

	f.Tensors = make([]TensorInfo, 0, nTensors)
	f.tIndex = make(map[string]int, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		at := d.off
		t, err := d.tensorInfo(i, f.Alignment)
		if err != nil {
			return nil, err
		}
		if _, dup := f.tIndex[t.Name]; dup {
			return nil, fmt.Errorf("gguf: offset %d: duplicate tensor %q", at, t.Name)
		}
		f.tIndex[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}

	f.DataOffset = alignUp(d.off, f.Alignment)
	var dataLen uint64
	if f.DataOffset < uint64(len(data)) {
		dataLen = uint64(len(data)) - f.DataOffset
	}
	if err := checkTensorData(f.Tensors, dataLen, f.DataOffset); err != nil {
		return nil, err
	}
	f.data = data
	return f, nil
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

func (d *decoder) tensorInfo(i uint64, align uint64) (TensorInfo, error) {
	var t TensorInfo
	var err error
	at := d.off
	if t.Name, err = d.str(fmt.Sprintf("tensor %d name", i)); err != nil {
		return t, err
	}
	if len(t.Name) > maxTensorName || !utf8.ValidString(t.Name) {
		return t, fmt.Errorf("gguf: offset %d: tensor %d name is not a name (%d bytes; names are UTF-8 of at most %d, as llama.cpp reads)", at, i, len(t.Name), maxTensorName)
	}
	at = d.off
	nd, err := d.u32("dimension count of tensor " + t.Name)
	if err != nil {
		return t, err
	}
	if nd < 1 || nd > MaxDims {
		return t, fmt.Errorf("gguf: offset %d: tensor %q has %d dimensions (want 1..%d)", at, t.Name, nd, MaxDims)
	}
	t.Dims = make([]uint64, nd)
	n := uint64(1)
	for j := range t.Dims {
		at := d.off
		if t.Dims[j], err = d.u64("dimension of tensor " + t.Name); err != nil {
			return t, err
		}
		hi, lo := bits.Mul64(n, t.Dims[j])
		if hi != 0 || lo > math.MaxInt64 {
			return t, fmt.Errorf("gguf: offset %d: tensor %q has too many elements (dims %v)", at, t.Name, t.Dims[:j+1])
		}
		n = lo
	}
	at = d.off
	ty, err := d.u32("type of tensor " + t.Name)
	if err != nil {
		return t, err
	}
	t.Type = GGMLType(ty)
	if !t.Type.Known() {
		return t, fmt.Errorf("gguf: offset %d: tensor %q has unknown ggml type %d", at, t.Name, ty)
	}
	if t.Dims[0]%t.Type.BlockSize() != 0 {
		return t, fmt.Errorf("gguf: tensor %q: row length %d is not a multiple of the %s block size %d", t.Name, t.Dims[0], t.Type, t.Type.BlockSize())
	}
	at = d.off
	if t.Offset, err = d.u64("data offset of tensor " + t.Name); err != nil {
		return t, err
	}
	if t.Offset%align != 0 {
		return t, fmt.Errorf("gguf: offset %d: tensor %q data offset %d is not a multiple of the alignment %d", at, t.Name, t.Offset, align)
	}
	return t, nil
}

// checkTensorData makes sure every tensor lies inside the data section and
// that no two overlap.
func checkTensorData(ts []TensorInfo, dataLen, dataOff uint64) error {
	idx := make([]int, len(ts))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return ts[idx[a]].Offset < ts[idx[b]].Offset })
	var end uint64
	prev := ""
	for _, i := range idx {
		t := ts[i]
		size := t.Size()
		if t.Offset > dataLen || size > dataLen-t.Offset {
			return fmt.Errorf("gguf: tensor %q: data [%d, %d) past end of file (data section at %d holds %d bytes)", t.Name, t.Offset, t.Offset+size, dataOff, dataLen)
		}
		if size > 0 && t.Offset < end {
			return fmt.Errorf("gguf: tensor %q: data at %d overlaps tensor %q", t.Name, t.Offset, prev)
		}
		if size > 0 {
			end = t.Offset + size
			prev = t.Name
		}
	}
	return nil
}

// value decodes a metadata value of type vt.
func (d *decoder) value(vt uint32, key string) (any, error) {
	at := d.off
	what := "value of " + key
	switch vt {
	case tUint8:
		return d.u8(what)
	case tInt8:
		v, err := d.u8(what)
		return int8(v), err
	case tUint16:
		return d.u16(what)
	case tInt16:
		v, err := d.u16(what)
		return int16(v), err
	case tUint32:
		return d.u32(what)
	case tInt32:
		v, err := d.u32(what)
		return int32(v), err
	case tUint64:
		return d.u64(what)
	case tInt64:
		v, err := d.u64(what)
		return int64(v), err
	case tFloat32:
		v, err := d.u32(what)
		return math.Float32frombits(v), err
	case tFloat64:
		v, err := d.u64(what)
		return math.Float64frombits(v), err
	case tBool:
		v, err := d.u8(what)
		if err == nil && v > 1 {
			err = fmt.Errorf("gguf: offset %d: %s: bool byte is %d (want 0 or 1)", at, key, v)
		}
		return v == 1, err
	case tString:
		return d.str(what)
	case tArray:
		return d.array(key)
	}
	return nil, fmt.Errorf("gguf: offset %d: %s has unknown value type %d", at-4, key, vt)
}

func (d *decoder) array(key string) (any, error) {
	at := d.off
	et, err := d.u32("array element type of " + key)
	if err != nil {
		return nil, err
	}
	n, err := d.u64("array length of " + key)
	if err != nil {
		return nil, err
	}
	size := fixedSize(et)
	if size == 0 {
		if et == tArray {
			return nil, fmt.Errorf("gguf: offset %d: %s: arrays of arrays are not supported", at, key)
		}
		return nil, fmt.Errorf("gguf: offset %d: %s: unknown array element type %d", at, key, et)
	}
	if n > d.left()/size {
		return nil, fmt.Errorf("gguf: offset %d: %s: array of %d %s runs past end of file (%d bytes left)", at, key, n, valueTypeName(et), d.left())
	}
	if et == tString {
		out := make([]string, n)
		for i := range out {
			if out[i], err = d.str(fmt.Sprintf("%s[%d]", key, i)); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	raw, _ := d.bytes(n*size, key)
	le := binary.LittleEndian
	switch et {
	case tUint8:
		return append([]uint8(nil), raw...), nil
	case tInt8:
		out := make([]int8, n)
		for i := range out {
			out[i] = int8(raw[i])
		}
		return out, nil
	case tBool:
		out := make([]bool, n)
		for i := range out {
			if raw[i] > 1 {
				return nil, fmt.Errorf("gguf: offset %d: %s[%d]: bool byte is %d (want 0 or 1)", d.off-n+uint64(i), key, i, raw[i])
			}
			out[i] = raw[i] == 1
		}
		return out, nil
	case tUint16:
		out := make([]uint16, n)
		for i := range out {
			out[i] = le.Uint16(raw[2*i:])
		}
		return out, nil
	case tInt16:
		out := make([]int16, n)
		for i := range out {
			out[i] = int16(le.Uint16(raw[2*i:]))
		}
		return out, nil
	case tUint32:
		out := make([]uint32, n)
		for i := range out {
			out[i] = le.Uint32(raw[4*i:])
		}
		return out, nil
	case tInt32:
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(le.Uint32(raw[4*i:]))
		}
		return out, nil
	case tFloat32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
		return out, nil
	case tUint64:
		out := make([]uint64, n)
		for i := range out {
			out[i] = le.Uint64(raw[8*i:])
		}
		return out, nil
	case tInt64:
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(le.Uint64(raw[8*i:]))
		}
		return out, nil
	case tFloat64:
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
		return out, nil
	}
	return nil, fmt.Errorf("gguf: offset %d: %s: unknown array element type %d", at, key, et)
}
