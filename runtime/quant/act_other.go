//go:build purego || !amd64

package quant

import "github.com/modelc/modelc/runtime/kernels"

func quantizeActAsm(xq []int8, xs []float32, x []float32, nb int) bool { return false }

// SwiGLU is runtime/kernels.SwiGLU (the amd64 build has an AVX2 form).
func SwiGLU(gate, up []float32) { kernels.SwiGLU(gate, up) }
