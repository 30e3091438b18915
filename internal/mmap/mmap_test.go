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
