package gguf

import (
	"encoding/binary"
	"math"
)

// F16ToF32 widens an IEEE 754 half-precision value; it is exact, and keeps
// the sign of zero and NaN payloads.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal half: shift the mantissa up until its leading bit becomes the
	// implicit one of a normal float32.
	e := uint32(127 - 15 + 1)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// F32ToF16 narrows to half precision, rounding to nearest with ties to even.
// Values too large become ±inf, too small ±0 (through subnormals). A NaN stays
// a NaN with the top bits of its payload.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00
		}
		h := uint16(mant >> 13)
		if h == 0 {
			h = 0x200 // the payload lived only in dropped bits: stay a NaN
		}
		return sign | 0x7c00 | h
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e > 0 {
		h := uint16(e)<<10 | uint16(mant>>13)
		rem := mant & 0x1fff
		if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
			h++ // a carry into the exponent is right, up to inf
		}
		return sign | h
	}
	if exp == 0 {
		return sign // float32 subnormals are far below the half range
	}
	// Half subnormal: the value in units of 2^-24 is m * 2^(exp-126).
	m := mant | 0x800000
	shift := uint(126 - exp)
	if shift > 31 {
		return sign
	}
	h := m >> shift
	rem := m & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if rem > half || (rem == half && h&1 == 1) {
		h++
	}
	return sign | uint16(h)
}

// F16sToF32s converts little-endian half-precision data to float32s; dst must
// hold len(src)/2 values.
func F16sToF32s(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = F16ToF32(uint16(src[2*i]) | uint16(src[2*i+1])<<8)
	}
}

// F32sToF16s encodes float32s as little-endian half-precision data; dst must
// hold 2*len(src) bytes.
func F32sToF16s(dst []byte, src []float32) {
	for i, f := range src {
		h := F32ToF16(f)
		dst[2*i] = byte(h)
		dst[2*i+1] = byte(h >> 8)
	}
}

// BytesToF32s decodes little-endian float32 data; dst must hold len(src)/4 values.
func BytesToF32s(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

// F32sToBytes encodes float32s as little-endian data; dst must hold 4*len(src) bytes.
func F32sToBytes(dst []byte, src []float32) {
	for i, f := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(f))
	}
}
