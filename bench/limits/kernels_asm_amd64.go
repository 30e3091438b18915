//go:build !purego

package limits

import (
	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/runtime/cpu"
)

func paths() []string {
	var ps []string
	if cpu.Supports(cpu.AVX512) {
		ps = append(ps, "avx512")
	}
	if cpu.Supports(cpu.AVX2) {
		ps = append(ps, "avx2")
	}
	return append(ps, "go")
}

func kernelsFor(path string) kernels {
	switch path {
	case "avx512":
		return kernels{lanes: 16, fma: peakFMA_avx512, flops: 2 * 16 * asm.LimitFMAChains(asm.AVX512), read: read_avx512, readNTA: readnta_avx512}
	case "avx2":
		return kernels{lanes: 8, fma: peakFMA_avx2, flops: 2 * 8 * asm.LimitFMAChains(asm.AVX2), read: read_avx2, readNTA: readnta_avx2}
	}
	return goKernels
}
