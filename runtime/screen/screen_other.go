//go:build purego || !(amd64 || arm64)

package screen

import "github.com/modelc/modelc/runtime/cpu"

func forLevel(cpu.Level) *kernels { return nil }
