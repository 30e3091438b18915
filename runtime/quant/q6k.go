package quant

// Q6_K is decoded (not written) so that files llama.cpp quantises to Q4_0 or
// Q8_0 load here: its quantize tool stores output.weight as Q6_K in those.
//
// A Q6_K super-block holds 256 weights in 210 bytes: ql[128] (low 4 bits),
// qh[64] (high 2 bits), 16 int8 sub-block scales and a float16 d. Weight w
// of sub-block s is d·scales[s]·(q-32), q the 6-bit code.

// Q6KBlockSize and Q6KBlockBytes describe a Q6_K super-block.
const (
	Q6KBlockSize  = 256
	Q6KBlockBytes = 210
)

// DequantizeQ6K decodes len(dst)/256 super-blocks of src into dst.
func DequantizeQ6K(dst []float32, src []byte) {
	nb := len(dst) / Q6KBlockSize
	if nb == 0 {
		return
	}
	_ = src[nb*Q6KBlockBytes-1]
	for i := 0; i < nb; i++ {
		b := src[i*Q6KBlockBytes : (i+1)*Q6KBlockBytes]
		ql, qh, sc := b[0:128], b[128:192], b[192:208]
		d := Scale(b[208:210])
		y := dst[i*Q6KBlockSize : (i+1)*Q6KBlockSize]
		// Two halves of 128 weights; in each, byte l of ql and qh feeds the
		// weights l, l+32, l+64 and l+96.
		for h := 0; h < 2; h++ {
			l6, h6, s6, y6 := ql[64*h:], qh[32*h:], sc[8*h:], y[128*h:]
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int32(l6[l]&0xf|(h6[l]>>0&3)<<4) - 32
				q2 := int32(l6[l+32]&0xf|(h6[l]>>2&3)<<4) - 32
				q3 := int32(l6[l]>>4|(h6[l]>>4&3)<<4) - 32
				q4 := int32(l6[l+32]>>4|(h6[l]>>6&3)<<4) - 32
				y6[l] = d * float32(int8(s6[is])) * float32(q1)
				y6[l+32] = d * float32(int8(s6[is+2])) * float32(q2)
				y6[l+64] = d * float32(int8(s6[is+4])) * float32(q3)
				y6[l+96] = d * float32(int8(s6[is+6])) * float32(q4)
			}
		}
	}
}
