package gguf

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

func TestF16RoundTripAll(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := F16ToF32(h)
		if got := F32ToF16(f); got != h {
			t.Fatalf("half %#04x -> %v (%#08x) -> %#04x", h, f, math.Float32bits(f), got)
		}
	}
}

func TestF16Values(t *testing.T) {
	cases := []struct {
		h uint16
		f float32
	}{
		{0x0000, 0},
		{0x3c00, 1},
		{0xc000, -2},
		{0x3555, 0.333251953125},
		{0x7bff, 65504},
		{0x0400, 6.103515625e-05},       // smallest normal
		{0x0001, 5.960464477539063e-08}, // smallest subnormal, 2^-24
		{0x03ff, 6.097555160522461e-05}, // largest subnormal
		{0x7c00, float32(math.Inf(1))},  // +inf
		{0xfc00, float32(math.Inf(-1))}, // -inf
	}
	for _, c := range cases {
		if got := F16ToF32(c.h); got != c.f {
			t.Errorf("F16ToF32(%#04x) = %v, want %v", c.h, got, c.f)
		}
		if got := F32ToF16(c.f); got != c.h {
			t.Errorf("F32ToF16(%v) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	if f := F16ToF32(0x8000); f != 0 || !math.Signbit(float64(f)) {
		t.Errorf("F16ToF32(0x8000) = %v, want -0", f)
	}
	if !math.IsNaN(float64(F16ToF32(0x7e00))) {
		t.Errorf("F16ToF32(0x7e00) is not NaN")
	}
	// Rounding: ties go to even, overflow goes to inf, underflow to zero.
	round := []struct {
		f float32
		h uint16
	}{
		{65519.99, 0x7bff},
		{65520, 0x7c00}, // halfway between 65504 and 65536 (inf): ties to even = inf
		{1e10, 0x7c00},
		{-1e10, 0xfc00},
		{1 + 1.0/2048, 0x3c00},                     // tie between 1 and 1+2^-10: even is 1
		{1 + 3.0/2048, 0x3c02},                     // tie between 1+2^-10 and 1+2^-9: even is the upper
		{1 + 1.0/2048 + 1.0/65536, 0x3c01},         // just above the tie
		{float32(math.Ldexp(1, -25)), 0x0000},      // tie between 0 and 2^-24: even is 0
		{float32(math.Ldexp(1.5, -25)), 0x0001},    // above the tie
		{float32(math.Ldexp(3, -25)), 0x0002},      // tie between 1 and 2 units: even is 2
		{float32(math.Ldexp(1, -30)), 0x0000},      // far below
		{float32(math.Ldexp(1, -149)), 0x0000},     // float32 subnormal
		{float32(math.Ldexp(2047, -25)), 0x0400},   // tie above the largest subnormal rounds to the (even) smallest normal
		{math.Float32frombits(0x7f800001), 0x7e00}, // NaN with payload only in dropped bits stays NaN
	}
	for _, c := range round {
		if got := F32ToF16(c.f); got != c.h {
			t.Errorf("F32ToF16(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
}

// TestF32ToF16Nearest checks random floats against a slow reference: the
// nearest of all finite halves, ties to the even one.
func TestF32ToF16Nearest(t *testing.T) {
	var pos []float64 // all non-negative finite halves, ascending
	for h := uint16(0); h < 0x7c00; h++ {
		pos = append(pos, float64(F16ToF32(h)))
	}
	ref := func(f float32) uint16 {
		x := math.Abs(float64(f))
		var sign uint16
		if math.Signbit(float64(f)) {
			sign = 0x8000
		}
		if x >= 65520 {
			return sign | 0x7c00
		}
		i := sort.SearchFloat64s(pos, x) // pos[i] >= x
		if i < len(pos) && pos[i] == x {
			return sign | uint16(i)
		}
		lo, hi := i-1, i
		dl, dh := x-pos[lo], pos[hi]-x
		switch {
		case dl < dh:
			return sign | uint16(lo)
		case dh < dl:
			return sign | uint16(hi)
		case lo%2 == 0:
			return sign | uint16(lo)
		}
		return sign | uint16(hi)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300000; i++ {
		var f float32
		if i%2 == 0 {
			// uniform bit patterns concentrated on the half range
			f = float32(math.Ldexp(r.Float64()*2-1, r.IntN(44)-27))
		} else {
			f = math.Float32frombits(r.Uint32())
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				continue
			}
		}
		if got, want := F32ToF16(f), ref(f); got != want {
			t.Fatalf("F32ToF16(%g = %#08x) = %#04x, want %#04x", f, math.Float32bits(f), got, want)
		}
	}
}

func TestBulkConversions(t *testing.T) {
	src := []float32{1, -2.5, 0.1, 65504, float32(math.Inf(1))}
	b := make([]byte, 2*len(src))
	F32sToF16s(b, src)
	back := make([]float32, len(src))
	F16sToF32s(back, b)
	for i, f := range src {
		if want := F16ToF32(F32ToF16(f)); back[i] != want {
			t.Errorf("element %d: %v, want %v", i, back[i], want)
		}
	}
	b4 := make([]byte, 4*len(src))
	F32sToBytes(b4, src)
	if b4[4] != 0 || b4[7] != 0xc0 || b4[6] != 0x20 { // -2.5 = 0xc0200000
		t.Errorf("F32sToBytes little-endian layout wrong: % x", b4[4:8])
	}
	BytesToF32s(back, b4)
	for i := range src {
		if back[i] != src[i] {
			t.Errorf("element %d: %v, want %v", i, back[i], src[i])
		}
	}
}
