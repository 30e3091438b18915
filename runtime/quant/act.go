package quant

import (
	"math"

	"github.com/modelc/modelc/gguf"
)

// QuantizeAct quantises activations x (a multiple of 32 values) to 8 bits
// per 32-block for the integer dot products as llama.cpp's CPU backend does
// (so that both engines' integer sums see the same codes): the scale xs[b]
// is max|x_b|/127 rounded to float16 (the block's stored scale in ggml),
// and the codes are x·(127/max|x_b|) rounded to nearest, ties to even, in
// [-127, 127]. A block whose float16 scale is 0 gets codes 0 (its products
// vanish either way). ggml's own reference quantiser differs (1/d, ties
// away from zero), and so would the dot products in about one block in
// 10^5; the vectorised one is what llama.cpp runs.
func QuantizeAct(xq []int8, xs []float32, x []float32) {
	nb := len(x) / BlockSize
	if nb == 0 {
		return
	}
	_, _ = xq[nb*BlockSize-1], xs[nb-1]
	if quantizeActAsm(xq, xs, x, nb) {
		return
	}
	quantizeActGo(xq, xs, x, nb)
}

// quantizeActGo is QuantizeAct's reference loop over nb blocks.
func quantizeActGo(xq []int8, xs []float32, x []float32, nb int) {
	for b := 0; b < nb; b++ {
		blk := (*[BlockSize]float32)(x[b*BlockSize:])
		q := (*[BlockSize]int8)(xq[b*BlockSize:])
		amax := blockMax(blk)
		d := gguf.F16ToF32(gguf.F32ToF16(amax / 127))
		xs[b] = d
		var id float32
		if d != 0 {
			id = 127 / amax
		}
		for j, v := range blk {
			// The product's float64 is exact, so is its rounding; a NaN
			// (an infinite or NaN input) gives code 0 as the vector
			// conversion's 0x80000000 does in its low byte.
			q[j] = int8(roundCode(float64(v * id)))
		}
	}
}

// blockMax is max|v| over a block through the AVX2 kernel's tree of
// maxima, whose x86 max returns its second operand when either is NaN, so
// that the Go loop and the kernel agree on a block holding a NaN too (any
// other block has one maximum whatever the order).
func blockMax(blk *[BlockSize]float32) float32 {
	mx := func(a, b float32) float32 {
		if a > b {
			return a
		}
		return b
	}
	var g [4]float32
	var h [8]float32
	for k := range h {
		h[k] = mx(mx(abs32(blk[k]), abs32(blk[8+k])), mx(abs32(blk[16+k]), abs32(blk[24+k])))
	}
	for k := range g {
		g[k] = mx(h[k], h[4+k])
	}
	return mx(mx(g[0], g[2]), mx(g[1], g[3]))
}

// roundCode rounds f to the nearest integer, ties to even; NaN gives 0.
func roundCode(f float64) int32 {
	if f != f {
		return 0
	}
	return int32(math.RoundToEven(f))
}

// DotQ8_0 is the reference integer dot product of one Q8_0 row w (len(xq)/32
// blocks) with quantised activations: Σ_b d_w·xs[b]·Σ_j q_j·xq_j, the block
// sums exact in int32 and combined in float32 in block order, each product
// rounded before the addition (the explicit conversion keeps the compiler
// from fusing them on arm64), so every architecture gets the same bits.
func DotQ8_0(w []byte, xq []int8, xs []float32) float32 {
	var sum float32
	for b := range xs {
		blk := w[b*Q8_0BlockBytes : (b+1)*Q8_0BlockBytes]
		var isum int32
		for j := 0; j < BlockSize; j++ {
			isum += int32(int8(blk[2+j])) * int32(xq[b*BlockSize+j])
		}
		sum += float32(float32(isum) * (Scale(blk) * xs[b])) // rounded product: never fused into an FMA
	}
	return sum
}

// DotQ4_0 is DotQ8_0 for a Q4_0 row: codes q-8 against xq.
func DotQ4_0(w []byte, xq []int8, xs []float32) float32 {
	var sum float32
	for b := range xs {
		blk := w[b*Q4_0BlockBytes : (b+1)*Q4_0BlockBytes]
		x := xq[b*BlockSize : (b+1)*BlockSize]
		var isum int32
		for j := 0; j < BlockSize/2; j++ {
			isum += (int32(blk[2+j]&0x0f) - 8) * int32(x[j])
			isum += (int32(blk[2+j]>>4) - 8) * int32(x[j+BlockSize/2])
		}
		sum += float32(float32(isum) * (Scale(blk) * xs[b])) // rounded product: never fused into an FMA
	}
	return sum
}

// MatVec is the reference quantised matrix-vector product: out[r] is the
// integer dot product of row r of w (rows of cols weights in format t, rows
// = len(out)) with x quantised by QuantizeAct. cols must be a multiple of 32.
func MatVec(t gguf.GGMLType, out []float32, w []byte, x []float32) {
	cols := len(x)
	xq := make([]int8, cols)
	xs := make([]float32, cols/BlockSize)
	QuantizeAct(xq, xs, x)
	rb := cols / BlockSize * int(t.BlockBytes())
	for r := range out {
		row := w[r*rb : (r+1)*rb]
		if t == gguf.TypeQ8_0 {
			out[r] = DotQ8_0(row, xq, xs)
		} else {
			out[r] = DotQ4_0(row, xq, xs)
		}
	}
}
