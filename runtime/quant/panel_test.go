package quant

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"

	"github.com/modelc/modelc/gguf"
)

// unpanel reads block (r, b) back out of the panel layout, following the
// layout's description independently of packPanels: its scale and codes in
// ggml's block form.
func unpanel(t gguf.GGMLType, p []byte, r, b, cols int) []byte {
	nb, bb := cols/BlockSize, int(t.BlockBytes())
	panel := p[r/PanelRows*PanelRows*nb*bb:]
	pair := panel[b/2*2*PanelRows*bb:]
	j, nbl := b%2, min(2, nb-b/2*2)
	codeBytes := bb - 2
	scales := pair[32*j:]
	codes := pair[32*nbl+j*PanelRows*codeBytes:]
	out := []byte{scales[2*(r%PanelRows)], scales[2*(r%PanelRows)+1]}
	for k := 0; k < codeBytes/4; k++ {
		for i := 0; i < 4; i++ {
			v := codes[64*k+4*(r%PanelRows)+i]
			if t == gguf.TypeQ8_0 {
				v ^= 0x80
			}
			out = append(out, v)
		}
	}
	return out
}

func TestPanels(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, typ := range []gguf.GGMLType{gguf.TypeQ8_0, gguf.TypeQ4_0} {
		for _, shape := range [][2]int{{1, 32}, {16, 64}, {17, 96}, {40, 288}, {5, 2048}} {
			rows, cols := shape[0], shape[1]
			wf := make([]float32, rows*cols)
			for i := range wf {
				wf[i] = float32(r.NormFloat64())
			}
			src, err := Quantize(typ, wf)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Panels(strings.ToLower(typ.String()), src, rows, cols)
			if err != nil {
				t.Fatal(err)
			}
			if uintptr(unsafe.Pointer(unsafe.SliceData(p)))%64 != 0 {
				t.Errorf("%s %v: panels not 64-byte aligned", typ, shape)
			}
			padded := (rows + PanelRows - 1) / PanelRows * PanelRows
			rb, _ := RowBytes(typ, cols)
			if len(p) != padded*rb || PanelBytes(typ, rows, cols) != len(p) {
				t.Fatalf("%s %v: %d bytes of panels, want %d", typ, shape, len(p), padded*rb)
			}
			bb := int(typ.BlockBytes())
			for row := 0; row < padded; row++ {
				for b := 0; b < cols/BlockSize; b++ {
					got := unpanel(typ, p, row, b, cols)
					if row >= rows {
						// Padding rows: zero scale, so they add nothing.
						if got[0] != 0 || got[1] != 0 {
							t.Fatalf("%s %v: padding row %d block %d has scale bytes %x", typ, shape, row, b, got[:2])
						}
						continue
					}
					want := src[row*rb+b*bb : row*rb+(b+1)*bb]
					if string(got) != string(want) {
						t.Fatalf("%s %v: row %d block %d: %x, want %x", typ, shape, row, b, got, want)
					}
				}
			}
		}
	}
	if _, err := Panels("q8_0", make([]byte, 33), 1, 32); err == nil {
		t.Error("a short matrix was accepted")
	}
	if _, err := Panels("f16", make([]byte, 64), 1, 32); err == nil {
		t.Error("an unsupported format was accepted")
	}
	if _, err := Panels("q8_0", nil, 1, 40); err == nil {
		t.Error("rows of 40 were accepted")
	}
}
