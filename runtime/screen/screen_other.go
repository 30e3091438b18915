//go:build purego || !amd64

package screen

const kernel = false

func run(hi *float32, mask *uint16, w *byte, x *int32, row *float32, groups, quads int, tok *uint32) {
	panic("screen: no kernel on this path")
}

func prepAsm(s *Scratch, x, g []float32, eps float32) (ok, done bool) { return false, false }
