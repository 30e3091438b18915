//go:build !purego

package screen

import "github.com/modelc/modelc/runtime/cpu"

//go:generate go run ./internal/screengen

// The screen's kernels: VNNI's where AVX-512 has it, and AVX2's, whose
// VPMADDUBSW needs the input quantised to ±63 (asm.ScreenAMD64).
var (
	vnni = &kernels{name: "avx512vnni", levels: 127, run: screen_avx512vnni, prep: prepAVX512}
	avx2 = &kernels{name: "avx2", levels: 63, run: screen_avx2, prep: prepAVX2}
)

// forLevel returns the kernel this machine runs beside the model kernels
// of level l, nil if none.
func forLevel(l cpu.Level) *kernels {
	switch {
	case l >= cpu.AVX512 && cpu.Supports(cpu.AVX512) && cpu.Detect().AVX512VNNI:
		return vnni
	case l >= cpu.AVX2 && cpu.Supports(cpu.AVX2):
		return avx2
	}
	return nil
}

// prepAVX512 is prepare's kernel for n a multiple of 16; done is false when
// it does not apply (the Go loop then prepares).
func prepAVX512(s *Scratch, x, g []float32, eps float32) (ok, done bool) {
	n := len(x)
	if n%16 != 0 {
		return false, false
	}
	return screenprep_avx512(&s.x[0], &s.xn[0], &s.tok[0], &x[0], &g[0], n, eps), true
}

// prepAVX2 is prepAVX512 for AVX2, for n a multiple of 8, quantising to ±63.
func prepAVX2(s *Scratch, x, g []float32, eps float32) (ok, done bool) {
	n := len(x)
	if n%8 != 0 {
		return false, false
	}
	return screenprep_avx2(&s.x[0], &s.xn[0], &s.tok[0], &x[0], &g[0], n, eps), true
}
