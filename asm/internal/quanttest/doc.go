// Package quanttest holds quantised matvec kernels generated for many row
// lengths so that tests can compare every path this machine runs (and arm64
// under qemu) with the reference in runtime/quant and with dequantise-then-
// float32.
package quanttest

//go:generate go run ./gen

// qfunc is the signature of every quantised kernel (asm.QSignature).
type qfunc = func(out *float32, w *byte, xq *int8, xs *float32, n int)

// qmmfunc is the signature of the QMatMul kernels (asm.QMatMulSignature).
type qmmfunc = func(out *float32, w *byte, xq *int8, xs *float32, n, b int)

// qpmmfunc is the signature of the panel QMatMul kernels
// (asm.QPanelMatMulSignature).
type qpmmfunc = func(out *float32, w *byte, xq *int8, xs *float32, xsum *int32, n, b int)
