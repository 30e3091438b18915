package spec

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFromLlama2C(t *testing.T) {
	path := filepath.Join(dataDir(t), "models", "stories260K.bin")
	s, err := FromLlama2C(path)
	if err != nil {
		t.Fatal(err)
	}
	want := valid() // the stories260K shape with defaults
	want.Name = "stories260k"
	if s.Name != want.Name || s.Vocab != 512 || s.Dim != 64 || s.Layers != 5 || s.Heads != 8 || s.KVHeads != 4 ||
		s.FFNDim != 172 || s.MaxSeq != 512 || !s.TieEmbeddings {
		t.Fatalf("got %+v", s)
	}
	if fmt.Sprint(s) != fmt.Sprint(want) {
		t.Fatalf("got  %+v\nwant %+v", s, want)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	// What the bundled spec says is what the checkpoint is.
	b, err := Load(filepath.Join(repoRoot(t), "generated", "stories260k", "model.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if b.Vocab != s.Vocab || b.Dim != s.Dim || b.Layers != s.Layers || b.Heads != s.Heads || b.KVHeads != s.KVHeads ||
		b.FFNDim != s.FFNDim || b.MaxSeq != s.MaxSeq || b.TieEmbeddings != s.TieEmbeddings || b.NormEps != s.NormEps {
		t.Fatalf("bundled spec %+v differs from the checkpoint %+v", *b, s)
	}
}

func TestFromLlama2CTruncated(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(dataDir(t), "models", "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 1056540 {
		t.Fatalf("stories260K.bin is %d bytes, want 1056540", len(data))
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "Stories 260K (copy).bin")
	if err := os.WriteFile(p, data[:len(data)-100], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = FromLlama2C(p)
	if err == nil {
		t.Fatal("truncated file accepted")
	}
	for _, want := range []string{p + ": file is 1056440 bytes", "implies 1056540"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q lacks %q", err, want)
		}
	}

	// One float too many is as wrong as one too few.
	if err := os.WriteFile(p, append(append([]byte{}, data...), 0, 0, 0, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := FromLlama2C(p); err == nil || !strings.Contains(err.Error(), "file is 1056544 bytes") {
		t.Fatalf("long file: %v", err)
	}

	// Shorter than the header.
	if err := os.WriteFile(p, data[:10], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := FromLlama2C(p); err == nil || err.Error() != p+": file is 10 bytes, shorter than the 28-byte llama2.c header" {
		t.Fatalf("short file: %v", err)
	}

	// The whole file under another name: the name is sanitised.
	p2 := filepath.Join(dir, "Stories 260K (copy).bin")
	if err := os.WriteFile(p2, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := FromLlama2C(p2)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "stories_260k_copy" {
		t.Fatalf("name %q", s.Name)
	}
}

func writeHeader(t *testing.T, dir string, h [7]int32, extra int64) string {
	t.Helper()
	p := filepath.Join(dir, "m.bin")
	b := make([]byte, 28)
	for i, v := range h {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(28 + extra); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFromLlama2CHeaders(t *testing.T) {
	dir := t.TempDir()
	// Untied (negative vocab): classifier counted; kv_heads 0 means heads.
	d, f, L, V, seq := int64(16), int64(40), int64(2), int64(50), int64(8)
	params := V*d + L*(2*d+2*d*d+2*d*d+3*f*d) + d + V*d
	p := writeHeader(t, dir, [7]int32{16, 40, 2, 4, 0, -50, 8}, 4*(params+seq*4))
	s, err := FromLlama2C(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.TieEmbeddings || s.Vocab != 50 || s.KVHeads != 4 || s.Name != "m" {
		t.Fatalf("got %+v", s)
	}
	if got := Llama2CFileBytes(&s); got != 28+4*(params+seq*4) {
		t.Fatalf("Llama2CFileBytes %d", got)
	}

	// A header that makes no sense is reported with the field.
	p = writeHeader(t, dir, [7]int32{16, 40, 2, 3, 3, 50, 8}, 0)
	if _, err := FromLlama2C(p); err == nil || err.Error() != p+": llama2.c header: dim: must be a multiple of heads (3), got 16" {
		t.Fatalf("bad header: %v", err)
	}
	p = writeHeader(t, dir, [7]int32{-16, 40, 2, 4, 4, 50, 8}, 0)
	if _, err := FromLlama2C(p); err == nil || err.Error() != p+": llama2.c header: dim: must be ≥ 1, got -16" {
		t.Fatalf("negative dim: %v", err)
	}
	// Newer exports start with a magic number.
	p = writeHeader(t, dir, [7]int32{0x616b3432, 1, 0, 0, 0, 0, 0}, 100)
	if _, err := FromLlama2C(p); err == nil || !strings.Contains(err.Error(), "version 1") {
		t.Fatalf("v1 export: %v", err)
	}
	if _, err := FromLlama2C(filepath.Join(dir, "missing.bin")); err == nil || !strings.Contains(err.Error(), "missing.bin") {
		t.Fatalf("missing: %v", err)
	}
}

func TestSanitizeName(t *testing.T) {
	for in, want := range map[string]string{
		"stories260K.bin":  "stories260k",
		"stories15M.bin":   "stories15m",
		"my-model.v2.bin":  "my_model_v2",
		"15M.bin":          "m15m",
		"___.bin":          "model",
		"type.bin":         "type_model",
		"Été__Model!!.bin": "t_model",
		".bin":             "model",
		"x":                "x",
	} {
		got := SanitizeName(in)
		if got != want {
			t.Errorf("SanitizeName(%q) = %q, want %q", in, got, want)
		}
		s := valid()
		s.Name = got
		if err := s.Validate(); err != nil {
			t.Errorf("SanitizeName(%q) = %q: %v", in, got, err)
		}
	}
}
