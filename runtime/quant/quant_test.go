package quant

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/modelc/modelc/gguf"
)

// TestQ8_0KnownBlock builds a block by hand: max|x| = 127 makes d exactly 1
// (float16 0x3c00), so the codes are the values rounded half away from zero
// as C's roundf does (2.5 → 3, not 2).
func TestQ8_0KnownBlock(t *testing.T) {
	x := make([]float32, 32)
	copy(x, []float32{127, -127, 0.5, -0.5, 1.5, 2.5, -2.5, 0.49, 100.4, -3})
	want := []byte{0x00, 0x3c, 0x7f, 0x81, 0x01, 0xff, 0x02, 0x03, 0xfd, 0x00, 0x64, 0xfd}
	want = append(want, make([]byte, 34-len(want))...)
	got, err := Quantize(gguf.TypeQ8_0, x)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Q8_0 block\n got % x\nwant % x", got, want)
	}
	// A scale that float16 cannot hold exactly: max 1 gives d = 1/127,
	// stored as the nearest half 0x2008 (0.0078773...).
	x2 := make([]float32, 32)
	x2[5] = -1
	got, _ = Quantize(gguf.TypeQ8_0, x2)
	if got[0] != 0x08 || got[1] != 0x20 || got[2+5] != 0x81 {
		t.Fatalf("Q8_0 scale of 1/127: got % x", got[:8])
	}
}

// TestQ4_0KnownBlock: the value of largest magnitude is -8, so d = -8/-8 = 1
// and -8 becomes nibble 0; element j sits in the low nibble of byte j and
// element j+16 in the high nibble; codes truncate x/d+8.5 and cap at 15.
func TestQ4_0KnownBlock(t *testing.T) {
	x := make([]float32, 32)
	x[0], x[16] = -8, 7      // 0.5 → 0, 15.5 → 15
	x[1], x[17] = 7.9, 0     // 16.4 → 16 → capped 15, 8.5 → 8
	x[2], x[18] = -0.5, -0.6 // 8.0 → 8, 7.9 → 7
	x[3], x[19] = 0.49, 0.5  // 8.99 → 8, 9.0 → 9
	// every other element is 0 → 8 in both nibbles (0x88)
	want := []byte{0x00, 0x3c, 0xf0, 0x8f, 0x78, 0x98}
	for len(want) < 18 {
		want = append(want, 0x88)
	}
	got, err := Quantize(gguf.TypeQ4_0, x)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Q4_0 block\n got % x\nwant % x", got, want)
	}
	// The sign of the extreme is kept: +8 first gives d = -1 (0xbc00) and +8
	// maps to nibble 0; a later -8 of equal magnitude does not replace it and
	// maps to 16, capped at 15.
	y := make([]float32, 32)
	y[4], y[20] = 8, -8
	got, _ = Quantize(gguf.TypeQ4_0, y)
	if got[0] != 0x00 || got[1] != 0xbc || got[2+4] != 0xf0 {
		t.Fatalf("Q4_0 positive extreme: got % x", got[:8])
	}
	deq := make([]float32, 32)
	if err := Dequantize(gguf.TypeQ4_0, deq, got); err != nil {
		t.Fatal(err)
	}
	if deq[4] != 8 || deq[20] != -7 || deq[0] != 0 {
		t.Fatalf("Q4_0 dequantised: x4=%v x20=%v x0=%v, want 8, -7, 0", deq[4], deq[20], deq[0])
	}
}

func randRow(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		// Blocks of very different magnitudes, some all zero.
		s := float32(math.Pow(10, float64(i/32%5)-3))
		if i/32%7 == 6 {
			s = 0
		}
		x[i] = float32(r.NormFloat64()) * s
	}
	return x
}

// TestErrorBounds checks quantise→dequantise against the per-block bounds of
// the formats: |x - x̂| ≤ d/2 for Q8_0 and for Q4_0 codes below the cap, d
// for values the cap at 15 clips (x/d > 7.5), plus the error of storing d
// as float16 (|code|·|d16-d|).
func TestErrorBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, ty := range []gguf.GGMLType{gguf.TypeQ8_0, gguf.TypeQ4_0} {
		x := randRow(r, 32*200)
		q, err := Quantize(ty, x)
		if err != nil {
			t.Fatal(err)
		}
		y := make([]float32, len(x))
		if err := Dequantize(ty, y, q); err != nil {
			t.Fatal(err)
		}
		bb := int(ty.BlockBytes())
		for b := 0; b < len(x)/32; b++ {
			var amax, m float32
			for _, v := range x[b*32 : b*32+32] {
				if a := abs32(v); amax < a {
					amax, m = a, v
				}
			}
			d := float64(amax) / 127
			codeMax := 127.0
			if ty == gguf.TypeQ4_0 {
				d, codeMax = float64(m)/-8, 8
			}
			d16 := float64(Scale(q[b*bb:]))
			// Half a float16 ulp: relative 2^-11, or 2^-25 among subnormals.
			if e := math.Abs(d16 - d); e > max(math.Abs(d)/2048, 0x1p-25) {
				t.Fatalf("%s block %d: float16 scale %g vs %g", ty, b, d16, d)
			}
			for j := b * 32; j < b*32+32; j++ {
				limit := math.Abs(d)/2 + codeMax*math.Abs(d16-d) + 1e-6*math.Abs(d)
				if ty == gguf.TypeQ4_0 && float64(x[j])/d > 7.5 {
					limit += math.Abs(d) / 2
				}
				if e := math.Abs(float64(x[j]) - float64(y[j])); e > limit {
					t.Fatalf("%s element %d: x=%g x̂=%g error %g > bound %g (d=%g)", ty, j, x[j], y[j], e, limit, d)
				}
			}
		}
		// Dequantised values are a fixed point: quantising them again gives
		// the same bytes (the extreme maps to the extreme code, so d is d16).
		q2, _ := Quantize(ty, y)
		if !bytes.Equal(q, q2) {
			t.Fatalf("%s: quantise(dequantise(q)) differs from q", ty)
		}
	}
}

func TestErrors(t *testing.T) {
	if _, err := Quantize(gguf.TypeQ8_0, make([]float32, 33)); err == nil || !strings.Contains(err.Error(), "33") {
		t.Fatalf("33 values: %v", err)
	}
	if _, err := Quantize(gguf.TypeQ4_1, make([]float32, 32)); err == nil || !strings.Contains(err.Error(), "Q4_1") {
		t.Fatalf("Q4_1: %v", err)
	}
	if err := Dequantize(gguf.TypeQ4_0, make([]float32, 64), make([]byte, 35)); err == nil || !strings.Contains(err.Error(), "misaligned") {
		t.Fatalf("35 bytes of Q4_0: %v", err)
	}
	if n, err := RowBytes(gguf.TypeQ8_0, 288); err != nil || n != 9*34 {
		t.Fatalf("RowBytes(Q8_0, 288) = %d, %v", n, err)
	}
}

// TestQuantizeAct: llama.cpp's CPU activation quantiser, value by value
// (check.py compares it with the library itself on many blocks): the scale
// is max/127 rounded to float16, codes are x·127/max rounded to nearest with
// ties to even, a block whose float16 scale is 0 gets codes 0.
func TestQuantizeAct(t *testing.T) {
	x := make([]float32, 3*BlockSize)
	// Block 0: max 127, so 127/max is 1 and every half is a tie.
	copy(x, []float32{127, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.49, -126.5})
	// Block 1: max 100: the scale 100/127 = 0.7874016 rounds to float16
	// 0.78759766; the codes use 127/100 (50 makes 63.5 in float32: a tie, to
	// even 64, where 1/scale would make 63.48).
	copy(x[BlockSize:], []float32{100, -100, 0.3937, 50, -50, 1})
	// Block 2: max 1e-7: the scale 7.9e-10 is 0 in float16.
	copy(x[2*BlockSize:], []float32{1e-7, -5e-8})
	xq, xs := make([]int8, len(x)), make([]float32, 3)
	QuantizeAct(xq, xs, x)
	want := map[int]int8{0: 127, 1: 0, 2: 2, 3: 2, 4: 0, 5: -2, 6: -2, 7: 3, 8: -126,
		32: 127, 33: -127, 34: 0, 35: 64, 36: -64, 37: 1, 64: 0, 65: 0}
	for i, w := range want {
		if xq[i] != w {
			t.Errorf("code %d (x %g) = %d, want %d", i, x[i], xq[i], w)
		}
	}
	for b, w := range []float32{1, 0.78759766, 0} {
		if xs[b] != w {
			t.Errorf("scale %d = %.9g, want %.9g", b, xs[b], w)
		}
	}
}

// TestDots: the integer dot products equal the float dot product of the
// dequantised weights and dequantised activations, and are close to the
// float32 dot product within the quantisation error.
func TestDots(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n = 32 * 9
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	xq := make([]int8, n)
	xs := make([]float32, n/32)
	QuantizeAct(xq, xs, x)
	for i := range x {
		// Half a step, plus the float16 scale's rounding (2^-11 of up to
		// 127 steps) since the codes use 127/max, not 1/xs.
		if e := math.Abs(float64(x[i]) - float64(xq[i])*float64(xs[i/32])); e > float64(xs[i/32])*(0.5+127.0/2048)*1.0001 {
			t.Fatalf("activation %d: %g vs %g", i, x[i], float64(xq[i])*float64(xs[i/32]))
		}
	}
	for _, ty := range []gguf.GGMLType{gguf.TypeQ8_0, gguf.TypeQ4_0} {
		w := make([]float32, n)
		for i := range w {
			w[i] = float32(r.NormFloat64()) * 0.1
		}
		q, _ := Quantize(ty, w)
		wd := make([]float32, n)
		Dequantize(ty, wd, q)
		var want, exact float64
		for i := range wd {
			want += float64(wd[i]) * float64(xq[i]) * float64(xs[i/32])
			exact += float64(w[i]) * float64(x[i])
		}
		var got float32
		if ty == gguf.TypeQ4_0 {
			got = DotQ4_0(q, xq, xs)
		} else {
			got = DotQ8_0(q, xq, xs)
		}
		if math.Abs(float64(got)-want) > 1e-4*(1+math.Abs(want)) {
			t.Fatalf("%s dot %g, dequantised dot %g", ty, got, want)
		}
		tol := 0.05
		if ty == gguf.TypeQ4_0 {
			tol = 0.5
		}
		if math.Abs(want-exact) > tol {
			t.Fatalf("%s dot %g far from float dot %g", ty, want, exact)
		}
		out := make([]float32, 1)
		MatVec(ty, out, q, x)
		if out[0] != got {
			t.Fatalf("%s MatVec %g, dot %g", ty, out[0], got)
		}
	}
}

// FuzzRoundTrip: any finite block quantises and dequantises within the bound
// and never panics, and any 34 or 18 bytes dequantise.
func FuzzRoundTrip(f *testing.F) {
	f.Add(make([]byte, 128))
	f.Add(bytes.Repeat([]byte{0x7f, 0x80, 1, 2}, 32))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) < 128 {
			return
		}
		x := make([]float32, 32)
		gguf.BytesToF32s(x, raw[:128])
		for _, ty := range []gguf.GGMLType{gguf.TypeQ8_0, gguf.TypeQ4_0} {
			q, err := Quantize(ty, x)
			if err != nil {
				t.Fatal(err)
			}
			y := make([]float32, 32)
			if err := Dequantize(ty, y, q); err != nil {
				t.Fatal(err)
			}
			if err := Dequantize(ty, y, raw[:ty.BlockBytes()]); err != nil {
				t.Fatal(err)
			}
		}
	})
}
