package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// dataDir finds /work/shared/data: the "shared/data" next to (or above) the
// repository root.
func dataDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "shared", "data")
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("shared/data not found above the package directory")
		}
		dir = parent
	}
}

func TestRealVocabFiles(t *testing.T) {
	cases := []struct {
		file, arch string
		tokens     int
		first      []string
		bos        uint32
	}{
		{"ggml-vocab-llama-spm.gguf", "llama", 32000, []string{"<unk>", "<s>", "</s>", "<0x00>"}, 1},
		{"ggml-vocab-gpt-2.gguf", "gpt2", 50257, []string{"!", "\"", "#", "$"}, 50256},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join(dataDir(t), "tokenizer", c.file)
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Version != 3 || len(f.Tensors) != 0 || f.Alignment != 32 {
				t.Errorf("version %d, %d tensors, alignment %d", f.Version, len(f.Tensors), f.Alignment)
			}
			arch, err := f.String("general.architecture")
			if err != nil || arch != c.arch {
				t.Errorf("architecture %q, %v", arch, err)
			}
			toks, err := f.Strings("tokenizer.ggml.tokens")
			if err != nil {
				t.Fatal(err)
			}
			if len(toks) != c.tokens || !reflect.DeepEqual(toks[:4], c.first) {
				t.Errorf("%d tokens starting %q", len(toks), toks[:4])
			}
			if n, err := f.ArrayLen("tokenizer.ggml.token_type"); err != nil || n != c.tokens {
				t.Errorf("token_type length %d, %v", n, err)
			}
			if bos, err := f.Uint32("tokenizer.ggml.bos_token_id"); err != nil || bos != c.bos {
				t.Errorf("bos %d, %v", bos, err)
			}
			// Round trip: write what we read, parse again, compare.
			var buf bytes.Buffer
			if err := Write(&buf, f.KV, nil); err != nil {
				t.Fatal(err)
			}
			g, err := Parse(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g.KV, f.KV) || len(g.Tensors) != 0 {
				t.Errorf("re-parsed metadata differs")
			}
			// The metadata bytes themselves are identical: llama.cpp wrote
			// them in the same encoding, we only add alignment padding.
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes()[:len(orig)], orig) {
				t.Errorf("rewritten file differs from the original within its first %d bytes", len(orig))
			}
		})
	}
}

func TestRealVocabTypedGetters(t *testing.T) {
	f, err := Open(filepath.Join(dataDir(t), "tokenizer", "ggml-vocab-llama-spm.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if eps, err := f.Float32("llama.attention.layer_norm_rms_epsilon"); err != nil || eps != 1e-5 {
		t.Errorf("eps %v, %v", eps, err)
	}
	if scores, err := f.Float32s("tokenizer.ggml.scores"); err != nil || len(scores) != 32000 {
		t.Errorf("scores: %d, %v", len(scores), err)
	}
	tt, err := f.Int32s("tokenizer.ggml.token_type")
	if err != nil || !reflect.DeepEqual(tt[:5], []int32{2, 3, 3, 6, 6}) {
		t.Errorf("token types %v, %v", tt[:5], err)
	}
	if b, err := f.Bool("tokenizer.ggml.add_bos_token"); err != nil || !b {
		t.Errorf("add_bos_token %v, %v", b, err)
	}
	if _, err := f.Uint32("general.name"); err == nil || !strings.Contains(err.Error(), `"general.name"`) || !strings.Contains(err.Error(), "llama-spm") {
		t.Errorf("Uint32 on a string: %v", err)
	}
	if _, err := f.String("nope"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("missing key: %v", err)
	}
	if _, err := f.Strings("tokenizer.ggml.scores"); err == nil || !strings.Contains(err.Error(), "[]float32") {
		t.Errorf("Strings on floats: %v", err)
	}
}

func allValueKVs() []KV {
	return []KV{
		{"u8", uint8(200)}, {"i8", int8(-100)}, {"u16", uint16(60000)}, {"i16", int16(-30000)},
		{"u32", uint32(4000000000)}, {"i32", int32(-2000000000)}, {"u64", uint64(1 << 60)}, {"i64", int64(-1 << 60)},
		{"f32", float32(1.5)}, {"f64", 2.25}, {"bt", true}, {"bf", false}, {"s", "héllo"}, {"empty", ""},
		{"au8", []uint8{1, 2}}, {"ai8", []int8{-1}}, {"au16", []uint16{7}}, {"ai16", []int16{-7}},
		{"au32", []uint32{1, 2, 3}}, {"ai32", []int32{-3}}, {"au64", []uint64{9}}, {"ai64", []int64{-9}},
		{"af32", []float32{0.5, -1}}, {"af64", []float64{1e300}}, {"ab", []bool{true, false}},
		{"as", []string{"a", "", "ccc"}}, {"aempty", []string{}},
	}
}

func sampleTensors() []WriteTensor {
	f32 := make([]byte, 4*3*2)
	F32sToBytes(f32, []float32{1, 2, 3, 4, 5, 6})
	q8 := make([]byte, 34*2)
	for i := range q8 {
		q8[i] = byte(i)
	}
	return []WriteTensor{
		{Name: "a", Dims: []uint64{3, 2}, Type: TypeF32, Data: f32},
		{Name: "b", Dims: []uint64{5}, Type: TypeF16, Data: make([]byte, 10)},
		{Name: "q", Dims: []uint64{32, 2}, Type: TypeQ8_0, Data: q8},
		{Name: "empty", Dims: []uint64{0, 4}, Type: TypeF32, Data: nil},
	}
}

func TestWriteParseRoundTrip(t *testing.T) {
	for _, align := range []uint32{0, 64} {
		kvs := allValueKVs()
		if align != 0 {
			kvs = append(kvs, KV{KeyAlignment, align})
		}
		ts := sampleTensors()
		path := filepath.Join(t.TempDir(), "x.gguf")
		if err := WriteFile(path, kvs, ts); err != nil {
			t.Fatal(err)
		}
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		want := uint64(32)
		if align != 0 {
			want = uint64(align)
		}
		if f.Alignment != want || f.DataOffset%want != 0 {
			t.Errorf("alignment %d data offset %d, want multiples of %d", f.Alignment, f.DataOffset, want)
		}
		if !reflect.DeepEqual(f.KV, kvs) {
			t.Errorf("metadata differs:\n got %#v\nwant %#v", f.KV, kvs)
		}
		if len(f.Tensors) != len(ts) {
			t.Fatalf("%d tensors", len(f.Tensors))
		}
		for i, w := range ts {
			info := f.Tensors[i]
			if info.Name != w.Name || !reflect.DeepEqual(info.Dims, w.Dims) || info.Type != w.Type || info.Offset%want != 0 {
				t.Errorf("tensor %d: %+v", i, info)
			}
			got, err := f.TensorData(w.Name)
			if err != nil || !bytes.Equal(got, w.Data) || cap(got) != len(got) {
				t.Errorf("tensor %s data %v, %v", w.Name, got, err)
			}
		}
		if info, ok := f.Tensor("q"); !ok || info.NumElements() != 64 || info.Size() != 68 {
			t.Errorf("Tensor(q) = %+v %v", info, ok)
		}
		if _, err := f.TensorData("missing"); err == nil {
			t.Error("TensorData of a missing tensor succeeded")
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if v, _ := f.Get("s"); v != "héllo" {
			t.Errorf("metadata after Close: %v", v)
		}
	}
}

func TestWriteRejects(t *testing.T) {
	bad := []struct {
		name string
		kvs  []KV
		ts   []WriteTensor
		want string
	}{
		{"dup key", []KV{{"a", uint8(1)}, {"a", uint8(2)}}, nil, `duplicate metadata key "a"`},
		{"int", []KV{{"a", 1}}, nil, "unsupported value type int"},
		{"align type", []KV{{KeyAlignment, uint64(32)}}, nil, "general.alignment"},
		{"align pow2", []KV{{KeyAlignment, uint32(24)}}, nil, "power of two"},
		{"dup tensor", nil, []WriteTensor{{"t", []uint64{1}, TypeF32, make([]byte, 4)}, {"t", []uint64{1}, TypeF32, make([]byte, 4)}}, `duplicate tensor "t"`},
		{"size", nil, []WriteTensor{{"t", []uint64{2}, TypeF32, make([]byte, 4)}}, "need 8 bytes, data has 4"},
		{"block", nil, []WriteTensor{{"t", []uint64{16}, TypeQ8_0, make([]byte, 17)}}, "block size 32"},
		{"type", nil, []WriteTensor{{"t", []uint64{1}, GGMLType(4), make([]byte, 4)}}, "unknown ggml type 4"},
		{"dims", nil, []WriteTensor{{"t", []uint64{1, 1, 1, 1, 1}, TypeF32, make([]byte, 4)}}, "5 dimensions"},
		{"long name", nil, []WriteTensor{{strings.Repeat("x", 64), []uint64{1}, TypeF32, make([]byte, 4)}}, "1..63 bytes"},
	}
	for _, c := range bad {
		var buf bytes.Buffer
		err := Write(&buf, c.kvs, c.ts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", c.name, err, c.want)
		}
		if buf.Len() != 0 {
			t.Errorf("%s: wrote %d bytes despite the error", c.name, buf.Len())
		}
	}
	// A failed WriteFile leaves nothing behind.
	dir := t.TempDir()
	if err := WriteFile(filepath.Join(dir, "x.gguf"), []KV{{"a", 1}}, nil); err == nil {
		t.Fatal("WriteFile accepted an int value")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("WriteFile left %d files", len(ents))
	}
}

// le builds little-endian test files by hand.
type le struct{ bytes.Buffer }

func (b *le) u32(v uint32) *le { binary.Write(b, binary.LittleEndian, v); return b }
func (b *le) u64(v uint64) *le { binary.Write(b, binary.LittleEndian, v); return b }
func (b *le) str(s string) *le { b.u64(uint64(len(s))); b.WriteString(s); return b }
func header(version uint32, nt, nkv uint64) *le {
	b := &le{}
	b.WriteString("GGUF")
	return b.u32(version).u64(nt).u64(nkv)
}

func TestParseRejects(t *testing.T) {
	var good bytes.Buffer
	if err := Write(&good, allValueKVs(), sampleTensors()); err != nil {
		t.Fatal(err)
	}
	tensorFile := func(name string, dims []uint64, ty uint32, off uint64, dataLen int) []byte {
		b := header(3, 1, 0).str(name)
		b.u32(uint32(len(dims)))
		for _, d := range dims {
			b.u64(d)
		}
		b.u32(ty).u64(off)
		for b.Len()%32 != 0 {
			b.WriteByte(0)
		}
		b.Write(make([]byte, dataLen))
		return b.Bytes()
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "magic needs 4 bytes"},
		{"magic", []byte("GGML\x03\x00\x00\x00"), "bad magic"},
		{"v1", header(1, 0, 0).Bytes(), "version 1"},
		{"big endian", append([]byte("GGUF\x00\x00\x00\x03"), make([]byte, 16)...), "big-endian"},
		{"version", header(7, 0, 0).Bytes(), "unknown version 7"},
		{"huge kv count", header(3, 0, 1<<62).Bytes(), "metadata count"},
		{"huge tensor count", header(3, 1<<40, 0).Bytes(), "tensor count"},
		{"string past EOF", header(3, 0, 1).u64(1 << 50).u64(0).u64(0).Bytes(), "runs past end of file"},
		{"unknown value type", header(3, 0, 1).str("k").u32(13).u64(0).Bytes(), "unknown value type 13"},
		{"nested array", header(3, 0, 1).str("k").u32(9).u32(9).u64(0).Bytes(), "arrays of arrays"},
		{"array past EOF", header(3, 0, 1).str("k").u32(9).u32(5).u64(1 << 40).Bytes(), "runs past end of file"},
		{"bad bool", append(header(3, 0, 1).str("k").u32(7).Bytes(), 2), "bool byte is 2"},
		{"dup key", header(3, 0, 2).str("k").u32(4).u32(1).str("k").u32(4).u32(2).Bytes(), `duplicate metadata key "k"`},
		{"bad alignment", header(3, 0, 1).str(KeyAlignment).u32(4).u32(48).Bytes(), "power of two"},
		{"tensor past EOF", tensorFile("w", []uint64{4}, 0, 0, 8), `tensor "w": data [0, 16) past end of file`},
		{"misaligned", tensorFile("w", []uint64{4}, 0, 8, 64), `tensor "w" data offset 8 is not a multiple of the alignment 32`},
		{"unknown type", tensorFile("w", []uint64{4}, 5, 0, 64), `tensor "w" has unknown ggml type 5`},
		{"zero dims", tensorFile("w", nil, 0, 0, 64), "0 dimensions"},
		{"block", tensorFile("w", []uint64{16}, 8, 0, 64), "not a multiple of the Q8_0 block size"},
		{"overflow", tensorFile("w", []uint64{1 << 32, 1 << 32}, 0, 0, 64), "too many elements"},
		{"key of binary", header(3, 0, 1).str("a\x00\x08b").u32(4).u32(1).Bytes(), "metadata key 0 is not a key (4 bytes"},
		{"key too long", header(3, 0, 1).str(strings.Repeat("k", 1<<16)).u32(4).u32(1).Bytes(), "metadata key 0 is not a key (65536 bytes"},
		{"empty key", header(3, 0, 1).str("").u32(4).u32(1).Bytes(), "metadata key 0 is not a key (0 bytes"},
		{"long tensor name", tensorFile(strings.Repeat("w", 64), []uint64{4}, 0, 0, 64), "tensor 0 name is not a name (64 bytes"},
	}
	for _, c := range cases {
		_, err := Parse(c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", c.name, err, c.want)
		} else if len(err.Error()) > 200 {
			t.Errorf("%s: a %d-byte error", c.name, len(err.Error()))
		}
	}
	// A corrupt key length (the first key's, made 43 KB long) gives one short
	// line, not the bytes it would read as the key.
	bad := header(3, 0, 1).str(KeyArchitecture).u32(8).str(strings.Repeat("x", 50000)).Bytes()
	bad[25] = 0xa9
	if _, err := Parse(bad); err == nil || len(err.Error()) > 200 || strings.ContainsAny(err.Error(), "\x00\n") {
		t.Errorf("corrupt key length: %.300q", err)
	}
	// Every truncation of a good file is an error that says where.
	for n := 0; n < good.Len(); n++ {
		_, err := Parse(good.Bytes()[:n])
		if err == nil || !(strings.Contains(err.Error(), "offset") || strings.Contains(err.Error(), "past end of file")) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	// Duplicate tensors and overlaps need two tensor infos.
	two := func(n1, n2 string, off2 uint64) []byte {
		b := header(3, 2, 0)
		b.str(n1).u32(1).u64(8).u32(0).u64(0)
		b.str(n2).u32(1).u64(8).u32(0).u64(off2)
		for b.Len()%32 != 0 {
			b.WriteByte(0)
		}
		b.Write(make([]byte, 64))
		return b.Bytes()
	}
	if _, err := Parse(two("a", "a", 32)); err == nil || !strings.Contains(err.Error(), `duplicate tensor "a"`) {
		t.Errorf("duplicate tensor: %v", err)
	}
	if _, err := Parse(two("a", "b", 0)); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Errorf("overlap: %v", err)
	}
	if _, err := Parse(two("a", "b", 32)); err != nil {
		t.Errorf("valid two-tensor file: %v", err)
	}
	// Open names the path.
	path := filepath.Join(t.TempDir(), "bad.gguf")
	os.WriteFile(path, []byte("nope"), 0o644)
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "bad magic") {
		t.Errorf("Open of a bad file: %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.gguf")); err == nil {
		t.Error("Open of a missing file succeeded")
	}
	empty := filepath.Join(t.TempDir(), "empty.gguf")
	os.WriteFile(empty, nil, 0o644)
	if _, err := Open(empty); err == nil {
		t.Error("Open of an empty file succeeded")
	}
}

func TestTypeTable(t *testing.T) {
	for ty, want := range map[GGMLType][3]uint64{TypeF32: {1, 4}, TypeF16: {1, 2}, TypeQ4_0: {32, 18}, TypeQ8_0: {32, 34}, TypeQ4_K: {256, 144}, TypeQ6_K: {256, 210}} {
		if ty.BlockSize() != want[0] || ty.BlockBytes() != want[1] {
			t.Errorf("%v: block %d bytes %d", ty, ty.BlockSize(), ty.BlockBytes())
		}
	}
	if n, ok := TypeQ4_0.RowBytes(64); !ok || n != 36 {
		t.Errorf("Q4_0 row of 64: %d %v", n, ok)
	}
	if _, ok := TypeQ4_0.RowBytes(33); ok {
		t.Error("Q4_0 row of 33 accepted")
	}
	if TypeQ8_0.String() != "Q8_0" || GGMLType(4).String() != "type(4)" || GGMLType(4).Known() {
		t.Error("type names wrong")
	}
}

func FuzzParse(f *testing.F) {
	var buf bytes.Buffer
	if err := Write(&buf, allValueKVs()[:6], sampleTensors()); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(header(3, 0, 1).str("k").u32(9).u32(8).u64(2).str("x").str("yy").Bytes())
	f.Add(header(3, 1, 1).str(KeyAlignment).u32(4).u32(64).str("t").u32(2).u64(2).u64(3).u32(1).u64(0).Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse(data)
		if err != nil {
			return
		}
		// Whatever parses must write back and parse to the same content.
		ts := make([]WriteTensor, len(g.Tensors))
		for i, info := range g.Tensors {
			d, err := g.TensorData(info.Name)
			if err != nil {
				t.Fatalf("TensorData(%q): %v", info.Name, err)
			}
			ts[i] = WriteTensor{Name: info.Name, Dims: info.Dims, Type: info.Type, Data: d}
		}
		var out bytes.Buffer
		if err := Write(&out, g.KV, ts); err != nil {
			return // e.g. names llama.cpp would refuse, or a non-uint32 alignment
		}
		h, err := Parse(out.Bytes())
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if len(h.KV) != len(g.KV) || len(h.Tensors) != len(g.Tensors) {
			t.Fatalf("re-parse changed counts")
		}
		for i := range ts {
			d, _ := h.TensorData(ts[i].Name)
			if !bytes.Equal(d, ts[i].Data) {
				t.Fatalf("tensor %q data changed", ts[i].Name)
			}
		}
	})
}

func TestParseVersion2(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, allValueKVs(), sampleTensors()); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	binary.LittleEndian.PutUint32(b[4:], 2) // v2 has v3's layout, little-endian only
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 2 || len(f.KV) != len(allValueKVs()) || len(f.Tensors) != len(sampleTensors()) {
		t.Errorf("v2: version %d, %d keys, %d tensors", f.Version, len(f.KV), len(f.Tensors))
	}
}
