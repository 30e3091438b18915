// Package quant converts float32 rows to and from ggml's block formats Q8_0
// and Q4_0, byte for byte as ggml's reference quantisers (the ones llama.cpp's
// quantize tool uses without an importance matrix) write them, so files move
// both ways between modelc and llama.cpp.
//
// Both formats cut a row into blocks of 32 weights with one float16 scale d:
//
//	Q8_0 (34 bytes): d = max|x|/127, then 32 int8 q = round(x/d) (half away
//	                 from zero); x ≈ q·d.
//	Q4_0 (18 bytes): d = m/-8 where m is the value of largest magnitude (its
//	                 sign kept, so that m itself maps to nibble 0, i.e. -8·d),
//	                 then 16 bytes; byte j holds element j in its low nibble
//	                 and element j+16 in its high nibble, q = min(15,
//	                 trunc(x/d + 8.5)); x ≈ (q-8)·d.
//
// As in ggml, the quantisers multiply by the float32 reciprocal of d (not
// divide by d) and round d to float16 only when storing it, so the codes are
// computed against the unrounded scale.
package quant

import (
	"fmt"
	"math"

	"github.com/modelc/modelc/gguf"
)

// BlockSize is the number of weights per block of both formats.
const BlockSize = 32

// Bytes per block: a float16 scale then the codes.
const (
	Q8_0BlockBytes = 2 + BlockSize   // 34
	Q4_0BlockBytes = 2 + BlockSize/2 // 18
)

// Supported reports whether t is a block format this package converts.
func Supported(t gguf.GGMLType) bool { return t == gguf.TypeQ8_0 || t == gguf.TypeQ4_0 }

// RowBytes is the encoded size of n weights in t (n a multiple of BlockSize).
func RowBytes(t gguf.GGMLType, n int) (int, error) {
	if !Supported(t) {
		return 0, fmt.Errorf("quant: type %s is not supported (Q8_0, Q4_0)", t)
	}
	if n < 0 || n%BlockSize != 0 {
		return 0, fmt.Errorf("quant: %d values are not a whole number of %s blocks of %d", n, t, BlockSize)
	}
	return n / BlockSize * int(t.BlockBytes()), nil
}

// Quantize encodes src (a multiple of 32 values) in format t.
func Quantize(t gguf.GGMLType, src []float32) ([]byte, error) {
	n, err := RowBytes(t, len(src))
	if err != nil {
		return nil, err
	}
	dst := make([]byte, n)
	if t == gguf.TypeQ8_0 {
		QuantizeQ8_0(dst, src)
	} else {
		QuantizeQ4_0(dst, src)
	}
	return dst, nil
}

// Dequantize decodes src, data in format t, into dst; src must hold exactly
// len(dst) values. The error names what does not fit.
func Dequantize(t gguf.GGMLType, dst []float32, src []byte) error {
	n, err := RowBytes(t, len(dst))
	if err != nil {
		return err
	}
	if len(src) != n {
		return fmt.Errorf("quant: %d %s values need %d bytes, got %d (misaligned block data)", len(dst), t, n, len(src))
	}
	if t == gguf.TypeQ8_0 {
		DequantizeQ8_0(dst, src)
	} else {
		DequantizeQ4_0(dst, src)
	}
	return nil
}

// inverse is ggml's id = d ? 1/d : 0, in float32.
func inverse(d float32) float32 {
	if d == 0 {
		return 0
	}
	return 1 / d
}

func putScale(b []byte, d float32) {
	h := gguf.F32ToF16(d)
	b[0], b[1] = byte(h), byte(h>>8)
}

// Scale returns the float32 value of the float16 scale at the start of a block.
func Scale(block []byte) float32 { return gguf.F16ToF32(uint16(block[0]) | uint16(block[1])<<8) }

// roundAway is C's roundf: to nearest, halves away from zero.
func roundAway(x float32) int32 { return int32(math.Round(float64(x))) }

// QuantizeQ8_0 encodes src into dst; len(src) must be a multiple of 32 and
// len(dst) = len(src)/32·34 (it panics otherwise: callers size both).
func QuantizeQ8_0(dst []byte, src []float32) {
	nb := len(src) / BlockSize
	if nb == 0 {
		return
	}
	_ = dst[nb*Q8_0BlockBytes-1]
	for i := 0; i < nb; i++ {
		x := src[i*BlockSize : (i+1)*BlockSize]
		b := dst[i*Q8_0BlockBytes : (i+1)*Q8_0BlockBytes]
		var amax float32
		for _, v := range x {
			amax = max(amax, abs32(v))
		}
		d := amax / 127
		id := inverse(d)
		putScale(b, d)
		for j, v := range x {
			b[2+j] = byte(int8(roundAway(v * id)))
		}
	}
}

// DequantizeQ8_0 decodes len(dst)/32 blocks of src into dst.
func DequantizeQ8_0(dst []float32, src []byte) {
	nb := len(dst) / BlockSize
	if nb == 0 {
		return
	}
	_ = src[nb*Q8_0BlockBytes-1]
	for i := 0; i < nb; i++ {
		b := src[i*Q8_0BlockBytes : (i+1)*Q8_0BlockBytes]
		y := dst[i*BlockSize : (i+1)*BlockSize]
		d := Scale(b)
		for j := range y {
			y[j] = float32(int8(b[2+j])) * d
		}
	}
}

// QuantizeQ4_0 encodes src into dst; len(src) must be a multiple of 32 and
// len(dst) = len(src)/32·18.
func QuantizeQ4_0(dst []byte, src []float32) {
	nb := len(src) / BlockSize
	if nb == 0 {
		return
	}
	_ = dst[nb*Q4_0BlockBytes-1]
	for i := 0; i < nb; i++ {
		x := src[i*BlockSize : (i+1)*BlockSize]
		b := dst[i*Q4_0BlockBytes : (i+1)*Q4_0BlockBytes]
		// The first value of strictly largest magnitude, sign kept.
		var amax, m float32
		for _, v := range x {
			if a := abs32(v); amax < a {
				amax, m = a, v
			}
		}
		d := m / -8
		id := inverse(d)
		putScale(b, d)
		for j := 0; j < BlockSize/2; j++ {
			lo := nibble(x[j] * id)
			hi := nibble(x[j+BlockSize/2] * id)
			b[2+j] = lo | hi<<4
		}
	}
}

// nibble is ggml's MIN(15, (int8_t)(v + 8.5f)): truncation toward zero. For
// finite weights v+8.5 lies in [0.5, 16.5]; the clamp at 0 only keeps
// non-finite input from depending on Go's out-of-range conversion.
func nibble(v float32) byte {
	f := v + 8.5
	if !(f >= 0) {
		return 0
	}
	return byte(min(15, int32(min(f, 16))))
}

// DequantizeQ4_0 decodes len(dst)/32 blocks of src into dst.
func DequantizeQ4_0(dst []float32, src []byte) {
	nb := len(dst) / BlockSize
	if nb == 0 {
		return
	}
	_ = src[nb*Q4_0BlockBytes-1]
	for i := 0; i < nb; i++ {
		b := src[i*Q4_0BlockBytes : (i+1)*Q4_0BlockBytes]
		y := dst[i*BlockSize : (i+1)*BlockSize]
		d := Scale(b)
		for j := 0; j < BlockSize/2; j++ {
			y[j] = float32(int(b[2+j]&0x0f)-8) * d
			y[j+BlockSize/2] = float32(int(b[2+j]>>4)-8) * d
		}
	}
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }
