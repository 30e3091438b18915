package limits

import "unsafe"

// goChains is the number of independent chains of the Go FMA loop.
const goChains = 8

// goKernels are plain Go loops: the limits of code the compiler writes, for
// machines and builds without the assembly (a multiply and an add count as
// the 2 FLOPs of an FMA).
var goKernels = kernels{lanes: 1, fma: goFMA, flops: 2 * goChains, read: goRead}

func goFMA(n int, a, b float32, out *float32) {
	var acc [goChains]float32
	for i := range acc {
		acc[i] = b
	}
	for range n {
		for i := range acc {
			acc[i] = acc[i]*a + b
		}
	}
	var s float32
	for _, v := range acc {
		s += v
	}
	*out = s
}

func goRead(p *float32, n int, x float32, out *float32) {
	d := unsafe.Slice(p, n*8)
	var acc [8]float32
	for j := range acc {
		acc[j] = x // as the assembly starts
	}
	for i := 0; i+8 <= len(d); i += 8 {
		c := d[i : i+8 : i+8]
		for j := range acc {
			acc[j] += c[j] * x
		}
	}
	var s float32
	for _, v := range acc {
		s += v
	}
	*out = s
}
