//go:build purego || !amd64

package sample

func argmaxAsm([]float32) int { return -1 }

// argmaxAsmUsed reports whether Argmax runs the assembly.
func argmaxAsmUsed() bool { return false }
