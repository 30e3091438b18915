//go:build (386 || amd64) && !purego

package cpu

import "golang.org/x/sys/cpu"

func detect() Features {
	x := cpu.X86
	return Features{
		AVX2: x.HasAVX2, FMA: x.HasFMA, BMI2: x.HasBMI2,
		AVX512F: x.HasAVX512F, AVX512VL: x.HasAVX512VL, AVX512BW: x.HasAVX512BW, AVX512DQ: x.HasAVX512DQ,
		AVX512VNNI: x.HasAVX512VNNI,
	}
}
