package gguf

import (
	"fmt"
	"math"
)

// Get returns the value of key.
func (f *File) Get(key string) (any, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return nil, false
	}
	return f.KV[i].Value, true
}

// Has reports whether key is present.
func (f *File) Has(key string) bool { _, ok := f.kvIndex[key]; return ok }

func (f *File) lookup(key string) (any, error) {
	v, ok := f.Get(key)
	if !ok {
		return nil, fmt.Errorf("gguf: metadata key %q: %w", key, ErrNotFound)
	}
	return v, nil
}

func wrongType(key, want string, v any) error {
	return fmt.Errorf("gguf: metadata key %q: want %s, found %s", key, want, describe(v))
}

// describe names a value's type, and shows it when short.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return fmt.Sprintf("string %q", x)
	case []string:
		return fmt.Sprintf("array of %d strings", len(x))
	case []uint8, []int8, []uint16, []int16, []uint32, []int32, []uint64, []int64, []float32, []float64, []bool:
		return fmt.Sprintf("%T", v)
	}
	return fmt.Sprintf("%T %v", v, v)
}

// asUint64 converts any integer value that is not negative.
func asUint64(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

// String returns a string value.
func (f *File) String(key string) (string, error) {
	v, err := f.lookup(key)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", wrongType(key, "string", v)
	}
	return s, nil
}

// Uint32 returns an integer value of any type, if it fits in a uint32.
func (f *File) Uint32(key string) (uint32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	u, ok := asUint64(v)
	if !ok || u > math.MaxUint32 {
		return 0, wrongType(key, "an integer in uint32 range", v)
	}
	return uint32(u), nil
}

// Uint64 returns a non-negative integer value of any type.
func (f *File) Uint64(key string) (uint64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	u, ok := asUint64(v)
	if !ok {
		return 0, wrongType(key, "a non-negative integer", v)
	}
	return u, nil
}

// Int32 returns an integer value of any type, if it fits in an int32.
func (f *File) Int32(key string) (int32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	var n int64
	switch x := v.(type) {
	case int8:
		n = int64(x)
	case int16:
		n = int64(x)
	case int32:
		n = int64(x)
	case int64:
		n = x
	default:
		u, ok := asUint64(v)
		if !ok || u > math.MaxInt32 {
			return 0, wrongType(key, "an integer in int32 range", v)
		}
		n = int64(u)
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		return 0, wrongType(key, "an integer in int32 range", v)
	}
	return int32(n), nil
}

// Float32 returns a float32 value (a float64 is narrowed).
func (f *File) Float32(key string) (float32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	switch x := v.(type) {
	case float32:
		return x, nil
	case float64:
		return float32(x), nil
	}
	return 0, wrongType(key, "float32", v)
}

// Bool returns a bool value.
func (f *File) Bool(key string) (bool, error) {
	v, err := f.lookup(key)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, wrongType(key, "bool", v)
	}
	return b, nil
}

// Strings returns an array of strings.
func (f *File) Strings(key string) ([]string, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.([]string)
	if !ok {
		return nil, wrongType(key, "array of strings", v)
	}
	return s, nil
}

// Float32s returns an array of float32s.
func (f *File) Float32s(key string) ([]float32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.([]float32)
	if !ok {
		return nil, wrongType(key, "array of float32", v)
	}
	return s, nil
}

// Int32s returns an array of int32s.
func (f *File) Int32s(key string) ([]int32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.([]int32)
	if !ok {
		return nil, wrongType(key, "array of int32", v)
	}
	return s, nil
}

// ArrayLen returns the length of an array value of any element type.
func (f *File) ArrayLen(key string) (int, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	switch x := v.(type) {
	case []string:
		return len(x), nil
	case []uint8:
		return len(x), nil
	case []int8:
		return len(x), nil
	case []uint16:
		return len(x), nil
	case []int16:
		return len(x), nil
	case []uint32:
		return len(x), nil
	case []int32:
		return len(x), nil
	case []uint64:
		return len(x), nil
	case []int64:
		return len(x), nil
	case []float32:
		return len(x), nil
	case []float64:
		return len(x), nil
	case []bool:
		return len(x), nil
	}
	return 0, wrongType(key, "array", v)
}

// Tensor returns the description of the tensor called name.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.tIndex[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// TensorData returns the bytes of the tensor called name, without copying.
// The slice aliases the file's memory: do not modify it, and do not use it
// after Close.
func (f *File) TensorData(name string) ([]byte, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("gguf: no tensor %q", name)
	}
	if f.data == nil && t.Size() > 0 {
		return nil, fmt.Errorf("gguf: tensor %q: file is closed", name)
	}
	start := f.DataOffset + t.Offset
	end := start + t.Size()
	if t.Size() == 0 {
		return []byte{}, nil
	}
	return f.data[start:end:end], nil
}
