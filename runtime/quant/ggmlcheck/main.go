// Command ggmlcheck quantises float32 rows read from stdin (little-endian,
// a multiple of 32 values) with runtime/quant and writes the blocks to
// stdout: check.py feeds the same rows to ggml's own quantize_row_*_ref
// (from a libggml-base.so, e.g. the one node-llama-cpp ships) and compares
// the bytes.
//
// With dq6_k it instead reads Q6_K super-blocks and writes runtime/quant's
// dequantised float32s, for check.py to compare with ggml's
// dequantize_row_q6_K. With act it quantises the rows as activations
// (quant.QuantizeAct) and writes them as Q8_0 blocks (the float16 scale,
// then the codes), for check.py to compare with the CPU backend's own
// activation quantiser (the from_float of its Q8_0 type traits).
//
// Usage: ggmlcheck q8_0|q4_0|dq6_k|act < input > output
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/quant"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ggmlcheck:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return fmt.Errorf("usage: ggmlcheck q8_0|q4_0|dq6_k|act < input > output")
	}
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	if os.Args[1] == "dq6_k" {
		if len(raw)%quant.Q6KBlockBytes != 0 {
			return fmt.Errorf("stdin holds %d bytes: not whole Q6_K blocks", len(raw))
		}
		y := make([]float32, len(raw)/quant.Q6KBlockBytes*quant.Q6KBlockSize)
		if err := quant.Decode(gguf.TypeQ6_K, y, raw); err != nil {
			return err
		}
		out := make([]byte, 4*len(y))
		gguf.F32sToBytes(out, y)
		_, err = os.Stdout.Write(out)
		return err
	}
	if len(raw)%(4*quant.BlockSize) != 0 {
		return fmt.Errorf("stdin holds %d bytes: not whole blocks of 32 float32s", len(raw))
	}
	x := make([]float32, len(raw)/4)
	gguf.BytesToF32s(x, raw)
	if os.Args[1] == "act" {
		nb := len(x) / quant.BlockSize
		xq, xs := make([]int8, len(x)), make([]float32, nb)
		quant.QuantizeAct(xq, xs, x)
		out := make([]byte, nb*quant.Q8_0BlockBytes)
		for b := range nb {
			blk := out[b*quant.Q8_0BlockBytes:]
			h := gguf.F32ToF16(xs[b])
			blk[0], blk[1] = byte(h), byte(h>>8)
			for j, q := range xq[b*quant.BlockSize : (b+1)*quant.BlockSize] {
				blk[2+j] = byte(q)
			}
		}
		_, err = os.Stdout.Write(out)
		return err
	}
	t, err := quant.ParseType(os.Args[1])
	if err != nil {
		return err
	}
	b, err := quant.Quantize(t, x)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(b)
	return err
}
