// Command ggmlcheck quantises float32 rows read from stdin (little-endian,
// a multiple of 32 values) with runtime/quant and writes the blocks to
// stdout: check.py feeds the same rows to ggml's own quantize_row_*_ref
// (from a libggml-base.so, e.g. the one node-llama-cpp ships) and compares
// the bytes.
//
// Usage: ggmlcheck q8_0|q4_0 < rows.f32 > blocks
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
		return fmt.Errorf("usage: ggmlcheck q8_0|q4_0 < rows.f32 > blocks")
	}
	t, err := quant.ParseType(os.Args[1])
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	if len(raw)%(4*quant.BlockSize) != 0 {
		return fmt.Errorf("stdin holds %d bytes: not whole blocks of 32 float32s", len(raw))
	}
	x := make([]float32, len(raw)/4)
	gguf.BytesToF32s(x, raw)
	b, err := quant.Quantize(t, x)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(b)
	return err
}
