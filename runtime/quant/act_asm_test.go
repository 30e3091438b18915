package quant

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/modelc/modelc/asm"
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
	for name, want := range map[string][]byte{"act_amd64.s": s, "act_amd64.go": stubs} {
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go generate ./runtime/quant", name)
		}
	}
}
