//go:build purego || !(amd64 || arm64)

package testkernels

import "github.com/modelc/modelc/asm"

func archKernel(asm.Kernel) any { return nil }
