//go:build !purego

package screen

import "github.com/modelc/modelc/runtime/cpu"

//go:generate go run ./internal/screengen

// kernel is whether this machine runs screen_avx512vnni (the AVX-512 path
// with VNNI; GODEBUG=cpu.avx512f=off turns it off).
var kernel = cpu.Supports(cpu.AVX512) && cpu.Detect().AVX512VNNI

func run(hi *float32, mask *uint16, w *byte, x *int32, row *float32, groups, quads int, tok *uint32) {
	screen_avx512vnni(hi, mask, w, x, row, groups, quads, tok)
}

// prepAsm is prepare's kernel for n a multiple of 16; done is false when
// it does not apply (the Go loop then prepares).
func prepAsm(s *Scratch, x, g []float32, eps float32) (ok, done bool) {
	n := len(x)
	if !kernel || n%16 != 0 {
		return false, false
	}
	return screenprep_avx512(&s.x[0], &s.xn[0], &s.tok[0], &x[0], &g[0], n, eps), true
}
