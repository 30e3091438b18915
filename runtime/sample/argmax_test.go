package sample

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/internal/gentest"
	"github.com/modelc/modelc/runtime/cpu"
)

// TestArgmaxAsm: the assembly gives the Go loop's index on every input
// without a NaN (ties, ±0, ±Inf, all equal, every length around its vector
// steps), and declines (-1) on any input with one, wherever it is.
func TestArgmaxAsm(t *testing.T) {
	if runtime.GOARCH == "amd64" && cpu.Supports(cpu.AVX2) && (!argmaxAsmUsed() || argmaxAsm([]float32{1, 2}) != 1) {
		t.Fatal("the AVX2 argmax is not in use on an AVX2 machine")
	}
	r := rand.New(rand.NewPCG(7, 8))
	lengths := []int{1, 2, 3, 7, 8, 9, 15, 16, 31, 32, 33, 63, 64, 65, 100, 511, 512, 513, 32000}
	specials := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), -1e-38, 3.4e38}
	cases := 0
	for _, n := range lengths {
		for trial := range 40 {
			x := make([]float32, n)
			for i := range x {
				switch trial % 4 {
				case 0: // distinct-ish values
					x[i] = r.Float32()*2 - 1
				case 1: // few values: many ties
					x[i] = float32(r.IntN(3))
				case 2: // all negative, max somewhere in the tail or head
					x[i] = -1 - r.Float32()
				default:
					x[i] = specials[r.IntN(len(specials))]
				}
			}
			if trial%5 == 4 { // one maximum at a chosen place
				x[r.IntN(n)] = 10
			}
			got, want := argmaxAsm(x), argmaxGo(x)
			if got != -1 && got != want {
				t.Fatalf("n %d trial %d: asm %d, Go %d", n, trial, got, want)
			}
			if got == -1 && argmaxAsmUsed() {
				t.Fatalf("n %d trial %d: asm declined an input without NaN", n, trial)
			}
			if Argmax(x) != want {
				t.Fatalf("n %d trial %d: Argmax %d, want %d", n, trial, Argmax(x), want)
			}
			cases++
			// A NaN anywhere: the assembly declines, Argmax keeps the loop's answer.
			y := append([]float32(nil), x...)
			y[r.IntN(n)] = float32(math.NaN())
			if got := argmaxAsm(y); got != -1 {
				t.Fatalf("n %d trial %d: asm answered %d with a NaN in x", n, trial, got)
			}
			if Argmax(y) != argmaxGo(y) {
				t.Fatalf("n %d trial %d: Argmax with a NaN %d, want %d", n, trial, Argmax(y), argmaxGo(y))
			}
		}
	}
	t.Logf("%d inputs", cases)
}

// FuzzArgmax: any floats give the Go loop's answer.
func FuzzArgmax(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 0, 64})
	f.Add([]byte{0, 0, 192, 127, 0, 0, 128, 127, 0, 0, 128, 255, 0, 0, 0, 128, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		x := make([]float32, len(raw)/4)
		for i := range x {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		want := -1
		if len(x) > 0 {
			want = argmaxGo(x)
		}
		if got := Argmax(x); got != want {
			t.Fatalf("Argmax(%v) = %d, want %d", x, got, want)
		}
	})
}

// TestArgmaxGeneratedUpToDate: argmax_amd64.{s,go} are asm.ArgmaxAMD64's
// output (run go generate ./runtime/sample).
func TestArgmaxGeneratedUpToDate(t *testing.T) {
	s, stubs, err := asm.ArgmaxAMD64("sample")
	if err != nil {
		t.Fatal(err)
	}
	gentest.Match(t, ".", map[string][]byte{"argmax_amd64.s": s, "argmax_amd64.go": stubs}, "go generate ./runtime/sample")
}

func BenchmarkArgmax(b *testing.B) {
	for _, n := range []int{512, 32000} {
		r := rand.New(rand.NewPCG(1, 2))
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		b.Run(map[int]string{512: "512", 32000: "32000"}[n]+"/asm", func(b *testing.B) {
			for b.Loop() {
				Argmax(x)
			}
		})
		b.Run(map[int]string{512: "512", 32000: "32000"}[n]+"/go", func(b *testing.B) {
			for b.Loop() {
				argmaxGo(x)
			}
		})
	}
}
