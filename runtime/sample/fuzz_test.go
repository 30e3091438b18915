package sample

import (
	"encoding/binary"
	"math"
	"testing"
)

// FuzzSample: any logits (NaN and ±Inf included) and any valid parameters
// give an index inside the vocabulary, never a panic.
func FuzzSample(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 64}, 1.0, 0.9, 0, uint64(1))
	f.Add([]byte{0, 0, 192, 127, 0, 0, 128, 127, 0, 0, 128, 255}, 0.5, 0.5, 2, uint64(0))
	f.Fuzz(func(t *testing.T, raw []byte, temp, topP float64, topK int, seed uint64) {
		p := Params{Temperature: temp, TopP: topP, TopK: topK, Seed: seed}
		s, err := New(p)
		if err != nil {
			return
		}
		logits := make([]float32, len(raw)/4)
		for i := range logits {
			logits[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		for range 3 {
			got := s.Sample(logits)
			if len(logits) == 0 {
				if got != -1 {
					t.Fatalf("empty logits gave %d", got)
				}
				continue
			}
			if got < 0 || got >= len(logits) {
				t.Fatalf("Sample(%v) with %+v = %d, out of range", logits, p, got)
			}
		}
		for _, id := range s.Kept(logits) {
			if id < 0 || id >= len(logits) {
				t.Fatalf("Kept returned %d for %d logits", id, len(logits))
			}
		}
	})
}
