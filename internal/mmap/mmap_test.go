package mmap

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMap(t *testing.T) {
	dir := t.TempDir()
	for _, content := range []string{"GGUF and more", ""} {
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		b, unmap, err := Map(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != content {
			t.Fatalf("Map = %q, want %q", b, content)
		}
		if err := unmap(); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := Map(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("mapping a missing file succeeded")
	}
}

// Released mapped pages read back the file's bytes; memory that is not a
// mapping is left alone.
func TestRelease(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	want := make([]byte, 5*os.Getpagesize()+123)
	for i := range want {
		want[i] = byte(i * 7)
	}
	if err := os.WriteFile(p, want, 0o644); err != nil {
		t.Fatal(err)
	}
	b, unmap, err := Map(p)
	if err != nil {
		t.Fatal(err)
	}
	defer unmap()
	Release(b[100 : len(b)-50])
	Release(b)
	if string(b) != string(want) {
		t.Fatal("a released mapping reads back different bytes")
	}
	heap := append([]byte(nil), want...)
	Release(heap)
	if string(heap) != string(want) {
		t.Fatal("Release changed memory that is not a mapping")
	}
}
