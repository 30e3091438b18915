package f32le

import (
	"bytes"
	"testing"
)

func TestWrite(t *testing.T) {
	var b bytes.Buffer
	fs := make([]float32, 5000) // across the 4096-float buffer
	fs[0], fs[4999] = 1, -2.5
	if err := Write(&b, fs); err != nil {
		t.Fatal(err)
	}
	got := b.Bytes()
	if len(got) != 20000 || !bytes.Equal(got[:4], []byte{0, 0, 0x80, 0x3f}) || !bytes.Equal(got[19996:], []byte{0, 0, 0x20, 0xc0}) {
		t.Fatalf("%d bytes, first % x, last % x", len(got), got[:4], got[len(got)-4:])
	}
}
