//go:build arm64 && !purego

package cpu

import "golang.org/x/sys/cpu"

func detect() Features {
	// Advanced SIMD is part of every arm64 core Go supports.
	return Features{ASIMD: true, ASIMDDP: cpu.ARM64.HasASIMDDP}
}
