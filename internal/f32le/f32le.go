// Package f32le writes float32s as little-endian bytes (the layout of GGUF,
// llama2.c checkpoints and the training state) through a small buffer, so a
// large tensor needs no byte copy of its own.
package f32le

import (
	"encoding/binary"
	"io"
	"math"
)

// Write writes fs to w, four little-endian bytes each.
func Write(w io.Writer, fs []float32) error {
	var buf [1 << 14]byte
	for len(fs) > 0 {
		n := min(len(fs), len(buf)/4)
		for i, v := range fs[:n] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		if _, err := w.Write(buf[:4*n]); err != nil {
			return err
		}
		fs = fs[n:]
	}
	return nil
}
