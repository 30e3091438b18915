//go:build purego || !(amd64 || arm64)

package quanttest

import "github.com/modelc/modelc/asm"

func archKernel(asm.QKernel) qfunc { return nil }
