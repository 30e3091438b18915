package quant

import (
	"fmt"
	"unsafe"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/internal/mmap"
)

// PanelRows is the rows of one panel of the AVX-512 panel kernels
// (asm.QKernel.Panel).
const PanelRows = 16

// The panel layout is the same blocks as ggml's, rearranged at load so that
// a matrix-vector product reads one linear stream and needs no shuffles:
// rows go in panels of PanelRows (the last padded with zero-scale rows), and
// a panel holds its blocks in pairs (b, b+1), each pair 64-byte aligned:
//
//	scales   the 16 rows' float16 scales of block b, then of block b+1 (64 bytes)
//	codes    block b's codes, then block b+1's, as 64-byte chunks: chunk k
//	         holds bytes 4k..4k+3 of every row's codes, row r at 4r, so that
//	         one VPDPBUSD with the activation's 4 bytes broadcast adds them
//	         into the 16 rows' lanes. Q8_0 has 8 chunks, its codes stored
//	         XOR 0x80 (q+128, unsigned); Q4_0 4 chunks of raw nibble bytes.
//
// An odd last block stands alone (32 bytes of scales, then its chunks). A
// panel takes exactly PanelRows rows' bytes, so row r of a panelled matrix
// (r a multiple of PanelRows) starts where it does in ggml's layout.

// PanelBytes is the size of rows×cols weights of type t in the panel layout.
func PanelBytes(t gguf.GGMLType, rows, cols int) int {
	rb, _ := RowBytes(t, cols)
	return (rows + PanelRows - 1) / PanelRows * PanelRows * rb
}

// Panels returns the rows×cols blocks src (ggml's layout, format "q8_0" or
// "q4_0") in the panel layout, in new 64-byte aligned memory.
func Panels(format string, src []byte, rows, cols int) ([]byte, error) {
	t, err := ParseType(format)
	if err != nil {
		return nil, err
	}
	if cols <= 0 || cols%BlockSize != 0 || rows < 0 {
		return nil, fmt.Errorf("quant: cannot make panels of %d×%d %s", rows, cols, t)
	}
	rb, _ := RowBytes(t, cols)
	if len(src) != rows*rb {
		return nil, fmt.Errorf("quant: %d×%d %s holds %d bytes, want %d", rows, cols, t, len(src), rows*rb)
	}
	n := PanelBytes(t, rows, cols)
	buf := make([]byte, n+64)
	off := int((64 - uintptr(unsafe.Pointer(unsafe.SliceData(buf)))%64) % 64)
	dst := buf[off : off+n : off+n]
	packPanels(t, dst, src, rows, cols)
	return dst, nil
}

func packPanels(t gguf.GGMLType, dst, src []byte, rows, cols int) {
	nb := cols / BlockSize
	bb := int(t.BlockBytes())
	rb := nb * bb
	chunks, flip := 4, byte(0)
	if t == gguf.TypeQ8_0 {
		chunks, flip = 8, 0x80
	}
	o := 0
	for p0 := 0; p0 < rows; p0 += PanelRows {
		for b := 0; b < nb; b += 2 {
			pair := min(2, nb-b)
			for j := 0; j < pair; j++ {
				for r := 0; r < PanelRows; r++ {
					if p0+r < rows {
						copy(dst[o:o+2], src[(p0+r)*rb+(b+j)*bb:])
					}
					o += 2
				}
			}
			for j := 0; j < pair; j++ {
				for k := 0; k < chunks; k++ {
					for r := 0; r < PanelRows; r++ {
						if p0+r < rows {
							code := src[(p0+r)*rb+(b+j)*bb+2+4*k:]
							for i := 0; i < 4; i++ {
								dst[o+i] = code[i] ^ flip
							}
						}
						o += 4
					}
				}
			}
		}
	}
}

// Release drops the pages of blocks that were copied into panels from the
// resident set when they lie in the model file's mapping (they are read
// back from the page cache if touched again); other memory is left alone.
func Release(blocks []byte) { mmap.Release(blocks) }

// PanelOffset is what the panel kernels add to every code to make it
// unsigned: 128 for Q8_0, 8 for Q4_0 (the raw nibble).
func PanelOffset(format string) int32 {
	if format == "q4_0" {
		return 8
	}
	return 128
}

// ActSums writes -o·Σ of each 32-block of the codes xq into sums (one per
// block): the table the panel matmul kernels start each block's integer
// sum from, o being PanelOffset.
func ActSums(sums []int32, xq []int8, o int32) {
	for b := range sums {
		var s int32
		for _, v := range xq[b*BlockSize : (b+1)*BlockSize] {
			s += int32(v)
		}
		sums[b] = -o * s
	}
}
