// Package backtest holds the backward matrix kernels (asm.BKernel)
// generated for odd shapes so that tests compare every path this machine
// runs with a float64 reference.
package backtest

//go:generate go run ./gen

// dxfunc and dwfunc are the kernels' signatures (asm.BKernel.Signature).
type (
	dxfunc = func(dx, dy, w *float32, n int)
	dwfunc = func(dw, dy, x *float32, n, b int)
	// asm.TKernel.Signature
	softmaxfunc = func(row *float32) (z float64, m float32)
	attbwdfunc  = func(dq, dk, dv, dout, p, q, k, v, dp *float32, n int)
	mmpackfunc  = func(out, wp, x *float32, n int)
	swiglubfunc = func(dgu, dout, gu *float32, n int)
)
