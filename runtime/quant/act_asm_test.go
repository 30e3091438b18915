package quant

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/internal/gentest"
)

// TestQuantizeActAsm: the assembly activation quantiser (where this build
// and machine have one) gives the Go loop's codes and scales to the bit, on
// Gaussian blocks over many magnitudes, values on exact half steps of the
// code, all-zero blocks, subnormals and equal magnitudes of both signs.
func TestQuantizeActAsm(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const nb = 40
	x := make([]float32, nb*BlockSize)
	for trial := 0; trial < 300; trial++ {
		for b := 0; b < nb; b++ {
			blk := x[b*BlockSize : (b+1)*BlockSize]
			scale := float32(math.Pow(10, r.Float64()*24-12))
			for j := range blk {
				blk[j] = float32(r.NormFloat64()) * scale
			}
			switch b % 5 {
			case 1: // codes on half steps: amax 127, values k+0.5
				blk[0] = 127
				for j := 1; j < BlockSize; j++ {
					blk[j] = float32(r.IntN(254)-127) + 0.5
				}
			case 2:
				clear(blk)
			case 3:
				for j := range blk {
					blk[j] = float32(r.NormFloat64()) * 1e-40
				}
			case 4:
				blk[3], blk[9] = -blk[0], blk[0]
			}
		}
		n := 1 + r.IntN(nb)
		want, wantS := make([]int8, n*BlockSize), make([]float32, n)
		got, gotS := make([]int8, n*BlockSize), make([]float32, n)
		quantizeActGo(want, wantS, x, n)
		if !quantizeActAsm(got, gotS, x, n) {
			t.Skip("no assembly activation quantiser on this build or machine")
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("trial %d: code %d (block %d) = %d, want %d (x %g, scale %g)", trial, i, i/BlockSize, got[i], want[i], x[i], wantS[i/BlockSize])
			}
		}
		for i := range wantS {
			if math.Float32bits(gotS[i]) != math.Float32bits(wantS[i]) {
				t.Fatalf("trial %d: scale %d = %g, want %g", trial, i, gotS[i], wantS[i])
			}
		}
	}
}

// TestActGeneratedUpToDate: act_amd64.{s,go} are asm.QuantActAMD64's output
// (run go generate ./runtime/quant).
func TestActGeneratedUpToDate(t *testing.T) {
	s, stubs, err := asm.QuantActAMD64("quant")
	if err != nil {
		t.Fatal(err)
	}
	gentest.Match(t, ".", map[string][]byte{"act_amd64.s": s, "act_amd64.go": stubs}, "go generate ./runtime/quant")
}

// FuzzQuantizeAct: for any 64 floats (two blocks), the assembly quantiser
// (where there is one) gives the Go loop's bits, NaNs included; in a block
// without NaN every code is in [-127, 127]; a finite block's scale is
// max/127 in float16 and each value lies within half a step (plus the
// float16 scale's rounding) of its code.
func FuzzQuantizeAct(f *testing.F) {
	seed := make([]byte, 256)
	for i := range 64 {
		binary.LittleEndian.PutUint32(seed[4*i:], math.Float32bits(float32(i-32)*0.75))
	}
	f.Add(seed)
	f.Add(bytes.Repeat([]byte{0, 0, 0x80, 0x3f}, 64)) // all 1.0
	f.Add(bytes.Repeat([]byte{1, 0, 0, 0}, 64))       // subnormals
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) < 256 {
			return
		}
		x := make([]float32, 64)
		for i := range x {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		q, s := make([]int8, 64), make([]float32, 2)
		quantizeActGo(q, s, x, 2)
		if qa, sa := make([]int8, 64), make([]float32, 2); quantizeActAsm(qa, sa, x, 2) {
			for i := range q {
				if qa[i] != q[i] {
					t.Fatalf("code %d: asm %d, Go %d (x %g)", i, qa[i], q[i], x[i])
				}
			}
			for b := range s {
				if math.Float32bits(sa[b]) != math.Float32bits(s[b]) {
					t.Fatalf("scale %d: asm %g, Go %g", b, sa[b], s[b])
				}
			}
		}
		for b := range 2 {
			blk := x[32*b : 32*b+32]
			var amax float32
			finite, nan := true, false
			for _, v := range blk {
				finite = finite && !math.IsInf(float64(v), 0) && !math.IsNaN(float64(v))
				nan = nan || math.IsNaN(float64(v))
				amax = max(amax, float32(math.Abs(float64(v))))
			}
			if nan {
				continue // a NaN may hide the maximum from the max tree: codes are then garbage, alike on both paths
			}
			for j := range 32 {
				if c := q[32*b+j]; c < -127 {
					t.Fatalf("code %d = %d", 32*b+j, c)
				}
			}
			if !finite {
				continue
			}
			if want := gguf.F16ToF32(gguf.F32ToF16(amax / 127)); math.Float32bits(s[b]) != math.Float32bits(want) {
				t.Fatalf("block %d: scale %g, want %g", b, s[b], want)
			}
			if s[b] == 0 || math.IsInf(float64(s[b]), 0) {
				continue
			}
			// Half a step of the exact scale max/127, plus up to 127 steps
			// of the float16 scale's rounding (relative 2^-11, more where
			// it is subnormal in float16).
			d := float64(amax) / 127
			bound := (d/2 + 127*math.Abs(float64(s[b])-d)) * 1.0001
			for j, v := range blk {
				e := math.Abs(float64(v) - float64(q[32*b+j])*float64(s[b]))
				if e > bound {
					t.Fatalf("block %d value %d: %g is code %d of scale %g (error %g)", b, j, v, q[32*b+j], s[b], e)
				}
			}
		}
	})
}
