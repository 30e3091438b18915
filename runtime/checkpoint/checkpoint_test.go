package checkpoint

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
)

// dataDir finds the shared data directory above the package directory.
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
		if filepath.Dir(dir) == dir {
			t.Fatal("shared/data not found above the package directory")
		}
		dir = filepath.Dir(dir)
	}
}

func storiesPath(t testing.TB) string { return filepath.Join(dataDir(t), "models", "stories260K.bin") }

// rawFloats decodes a llama2.c file's weights, everything after the header.
func rawFloats(t testing.TB, b []byte) []float32 {
	t.Helper()
	b = b[28:]
	if len(b)%4 != 0 {
		t.Fatalf("weights are %d bytes, not whole floats", len(b))
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// llama2cOrder is run.c's weight order as (tensor kind, per layer?, rows, cols)
// for a spec; "" kinds are skipped (the RoPE table).
type section struct {
	kind       string
	perLayer   bool
	rows, cols int
}

func llama2cOrder(s *spec.Spec) []section {
	d, kv, f, hd := s.Dim, s.KVDim(), s.FFNDim, s.HeadDim()
	secs := []section{
		{model.TokEmbd, false, s.Vocab, d},
		{"attn_norm", true, 1, d},
		{"attn_q", true, d, d},
		{"attn_k", true, kv, d},
		{"attn_v", true, kv, d},
		{"attn_output", true, d, d},
		{"ffn_norm", true, 1, d},
		{"ffn_gate", true, f, d}, // w1
		{"ffn_down", true, d, f}, // w2
		{"ffn_up", true, f, d},   // w3
		{model.OutputNorm, false, 1, d},
		{"", false, s.MaxSeq, hd}, // freq_cis_real and _imag: seq × hd/2 each
	}
	if !s.TieEmbeddings {
		secs = append(secs, section{model.Output, false, s.Vocab, d})
	}
	return secs
}

// sameBits compares floats bit for bit, so that NaNs compare too.
func sameBits(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// checkAgainstRaw compares every tensor of p with the floats of a llama2.c file.
func checkAgainstRaw(t *testing.T, p *model.Params, raw []float32) {
	t.Helper()
	s := &p.Spec
	off := 0
	for _, sec := range llama2cOrder(s) {
		n := sec.rows * sec.cols
		if sec.kind == "" {
			off += n
			continue
		}
		layers := 1
		if sec.perLayer {
			layers = s.Layers
		}
		for l := 0; l < layers; l++ {
			name := sec.kind
			if sec.perLayer {
				name = model.LayerTensor(l, sec.kind)
			}
			if !sameBits(p.T(name), raw[off:off+n]) {
				t.Fatalf("%s differs from the file's floats at %d", name, off)
			}
			off += n
		}
	}
	if off != len(raw) {
		t.Fatalf("walked %d floats of %d", off, len(raw))
	}
}

func TestLoadStories260K(t *testing.T) {
	path := storiesPath(t)
	p, err := LoadLlama2C(path)
	if err != nil {
		t.Fatal(err)
	}
	s := p.Spec
	if s.Dim != 64 || s.FFNDim != 172 || s.Layers != 5 || s.Heads != 8 || s.KVHeads != 4 || s.Vocab != 512 || s.MaxSeq != 512 || !s.TieEmbeddings {
		t.Fatalf("spec %+v", s)
	}
	if s.NormEps != 1e-5 || s.RopeTheta != 10000 || s.Name != "stories260k" || s.Quant != "f32" {
		t.Errorf("eps %v theta %v name %q quant %q", s.NormEps, s.RopeTheta, s.Name, s.Quant)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstRaw(t, p, rawFloats(t, b))
	if &p.Classifier()[0] != &p.T(model.TokEmbd)[0] {
		t.Error("tied classifier is not the embedding")
	}

	// The reader-only header decoder agrees with spec.FromLlama2C but for the name.
	hs, err := ReadLlama2CHeader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := spec.FromLlama2C(path)
	if err != nil {
		t.Fatal(err)
	}
	if hs.Name != "model" {
		t.Errorf("header spec name %q", hs.Name)
	}
	hs.Name = fs.Name
	if fmt.Sprintf("%+v", hs) != fmt.Sprintf("%+v", fs) {
		t.Errorf("ReadLlama2CHeader %+v\nspec.FromLlama2C %+v", hs, fs)
	}

	// Load detects the format.
	q, f, err := Load(path)
	if err != nil || f != nil || !slices.Equal(q.Data, p.Data) {
		t.Errorf("Load: %v, file %v", err, f)
	}
}

// writeLlama2C writes a llama2.c checkpoint of s with random weights and
// returns its path and its bytes.
func writeLlama2C(t testing.TB, dir string, s *spec.Spec, seed uint64) (string, []byte) {
	r := rand.New(rand.NewPCG(seed, 7))
	var b bytes.Buffer
	vocab := s.Vocab
	if !s.TieEmbeddings {
		vocab = -vocab
	}
	for _, v := range []int{s.Dim, s.FFNDim, s.Layers, s.Heads, s.KVHeads, vocab, s.MaxSeq} {
		binary.Write(&b, binary.LittleEndian, int32(v))
	}
	for _, sec := range llama2cOrder(s) {
		n := sec.rows * sec.cols
		if sec.perLayer {
			n *= s.Layers
		}
		for i := 0; i < n; i++ {
			binary.Write(&b, binary.LittleEndian, float32(r.NormFloat64()))
		}
	}
	path := filepath.Join(dir, "m.bin")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, b.Bytes()
}

var tinySpec = spec.Spec{Name: "tiny", Dim: 16, FFNDim: 24, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 10, MaxSeq: 8}

func TestLoadUntiedLlama2C(t *testing.T) {
	s := tinySpec
	path, b := writeLlama2C(t, t.TempDir(), &s, 1)
	p, err := LoadLlama2C(path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.TieEmbeddings || p.Spec.Vocab != 10 || p.Spec.FFNDim != 24 || p.Spec.KVHeads != 2 {
		t.Fatalf("spec %+v", p.Spec)
	}
	// Random weights: a swapped w1/w3 or a misplaced classifier would show.
	checkAgainstRaw(t, p, rawFloats(t, b))
	if &p.Classifier()[0] == &p.T(model.TokEmbd)[0] {
		t.Error("untied classifier aliases the embedding")
	}
}

func TestGGUFRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := tinySpec
	untiedPath, _ := writeLlama2C(t, dir, &s, 2)
	untied, err := LoadLlama2C(untiedPath)
	if err != nil {
		t.Fatal(err)
	}
	stories, err := LoadLlama2C(storiesPath(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*model.Params{stories, untied} {
		for _, f16 := range []bool{false, true} {
			path := filepath.Join(dir, fmt.Sprintf("%s-%v.gguf", p.Spec.Name, f16))
			extra := []gguf.KV{{Key: gguf.KeyTokenizerModel, Value: "llama"}, {Key: gguf.KeyBOS, Value: uint32(1)}}
			if err := SaveGGUF(path, p, extra, f16); err != nil {
				t.Fatal(err)
			}
			q, f, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if f == nil {
				t.Fatal("Load of a GGUF file returned no gguf.File")
			}
			if m, _ := f.String(gguf.KeyTokenizerModel); m != "llama" {
				t.Errorf("extra metadata lost: %q", m)
			}
			f.Close()
			if err := model.CheckShape(&q.Spec, &p.Spec); err != nil {
				t.Fatal(err)
			}
			if q.Spec.Name != p.Spec.Name || q.Spec.NormEps != p.Spec.NormEps || q.Spec.RopeTheta != p.Spec.RopeTheta {
				t.Errorf("spec %+v, want %+v", q.Spec, p.Spec)
			}
			if q.Spec.Tokenizer.BOS != 1 || q.Spec.Tokenizer.EOS != 2 {
				t.Errorf("tokenizer %+v", q.Spec.Tokenizer)
			}
			if !f16 {
				if !slices.Equal(q.Data, p.Data) {
					t.Errorf("%s: F32 round trip is not bit-identical", path)
				}
				continue
			}
			for _, tn := range p.Tensors {
				a, b := p.T(tn.Name), q.T(tn.Name)
				for i := range a {
					want := a[i]
					if len(tn.Shape) == 2 {
						want = gguf.F16ToF32(gguf.F32ToF16(a[i]))
					}
					if b[i] != want {
						t.Fatalf("%s: %s[%d] = %v, want %v (from %v)", path, tn.Name, i, b[i], want, a[i])
					}
					if d := math.Abs(float64(b[i] - a[i])); d > 1e-3*math.Abs(float64(a[i]))+1e-7 {
						t.Fatalf("%s: %s[%d] = %v, too far from %v", path, tn.Name, i, b[i], a[i])
					}
				}
			}
		}
	}
}

// TestSavedGGUFFollowsSpec checks a saved file against the GGUF rules and
// llama.cpp's llama architecture by decoding its bytes here, without the gguf
// package's reader.
func TestSavedGGUFFollowsSpec(t *testing.T) {
	raw, err := os.ReadFile(storiesPath(t))
	if err != nil {
		t.Fatal(err)
	}
	p, err := LoadLlama2C(storiesPath(t))
	if err != nil {
		t.Fatal(err)
	}
	tokens := make([]string, 512)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("t%d", i)
	}
	path := filepath.Join(t.TempDir(), "s.gguf")
	if err := SaveGGUF(path, p, []gguf.KV{{Key: "tokenizer.ggml.tokens", Value: tokens}}, false); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	pos := 0
	u32 := func() uint32 { v := le.Uint32(b[pos:]); pos += 4; return v }
	u64 := func() uint64 { v := le.Uint64(b[pos:]); pos += 8; return v }
	str := func() string { n := int(u64()); s := string(b[pos : pos+n]); pos += n; return s }

	if string(b[:4]) != "GGUF" {
		t.Fatalf("magic %q", b[:4])
	}
	pos = 4
	if v := u32(); v != 3 {
		t.Fatalf("version %d", v)
	}
	nTensors, nKV := u64(), u64()
	if nTensors != 5*9+2 {
		t.Errorf("%d tensors, want 47 (tied: no output.weight)", nTensors)
	}
	type kv struct {
		typ uint32
		val any
	}
	kvs := map[string]kv{}
	for i := uint64(0); i < nKV; i++ {
		key := str()
		typ := u32()
		var val any
		switch typ {
		case 4: // uint32
			val = u32()
		case 6: // float32
			val = math.Float32frombits(u32())
		case 8: // string
			val = str()
		case 9: // array
			et, n := u32(), u64()
			if et != 8 {
				t.Fatalf("%s: array of type %d", key, et)
			}
			var ss []string
			for j := uint64(0); j < n; j++ {
				ss = append(ss, str())
			}
			val = ss
		default:
			t.Fatalf("key %s has type %d, not one this file should use", key, typ)
		}
		if _, dup := kvs[key]; dup {
			t.Fatalf("duplicate key %s", key)
		}
		kvs[key] = kv{typ, val}
	}
	wantKV := map[string]kv{
		"general.architecture":                   {8, "llama"},
		"general.name":                           {8, "stories260k"},
		"general.file_type":                      {4, uint32(0)},
		"llama.context_length":                   {4, uint32(512)},
		"llama.embedding_length":                 {4, uint32(64)},
		"llama.block_count":                      {4, uint32(5)},
		"llama.feed_forward_length":              {4, uint32(172)},
		"llama.rope.dimension_count":             {4, uint32(8)},
		"llama.attention.head_count":             {4, uint32(8)},
		"llama.attention.head_count_kv":          {4, uint32(4)},
		"llama.attention.layer_norm_rms_epsilon": {6, float32(1e-5)},
		"llama.rope.freq_base":                   {6, float32(10000)},
		"llama.vocab_size":                       {4, uint32(512)},
		"tokenizer.ggml.bos_token_id":            {4, uint32(1)},
		"tokenizer.ggml.eos_token_id":            {4, uint32(2)},
	}
	for k, want := range wantKV {
		if got, ok := kvs[k]; !ok || got.typ != want.typ || got.val != want.val {
			t.Errorf("key %s = %+v, want %+v", k, got, want)
		}
	}
	if got := kvs["tokenizer.ggml.tokens"].val.([]string); len(got) != 512 || got[511] != "t511" {
		t.Errorf("tokens: %d", len(got))
	}
	if len(kvs) != len(wantKV)+1 {
		t.Errorf("%d keys, want %d", len(kvs), len(wantKV)+1)
	}

	// Tensor infos: llama.cpp's names, ggml dims (innermost first), F32.
	wantDims := map[string][]uint64{"token_embd.weight": {64, 512}, "output_norm.weight": {64}}
	for l := 0; l < 5; l++ {
		blk := func(k string) string { return fmt.Sprintf("blk.%d.%s.weight", l, k) }
		wantDims[blk("attn_norm")] = []uint64{64}
		wantDims[blk("ffn_norm")] = []uint64{64}
		wantDims[blk("attn_q")] = []uint64{64, 64}
		wantDims[blk("attn_k")] = []uint64{64, 32}
		wantDims[blk("attn_v")] = []uint64{64, 32}
		wantDims[blk("attn_output")] = []uint64{64, 64}
		wantDims[blk("ffn_gate")] = []uint64{64, 172}
		wantDims[blk("ffn_up")] = []uint64{64, 172}
		wantDims[blk("ffn_down")] = []uint64{172, 64}
	}
	type info struct {
		dims      []uint64
		off, size uint64
	}
	infos := map[string]info{}
	for i := uint64(0); i < nTensors; i++ {
		name := str()
		nd := u32()
		dims := make([]uint64, nd)
		n := uint64(4)
		for j := range dims {
			dims[j] = u64()
			n *= dims[j]
		}
		if typ := u32(); typ != 0 {
			t.Errorf("%s has ggml type %d, want 0 (F32)", name, typ)
		}
		off := u64()
		if off%32 != 0 {
			t.Errorf("%s offset %d not 32-aligned", name, off)
		}
		if !slices.Equal(dims, wantDims[name]) {
			t.Errorf("%s dims %v, want %v", name, dims, wantDims[name])
		}
		infos[name] = info{dims, off, n}
	}
	if len(infos) != len(wantDims) {
		t.Errorf("%d distinct tensors, want %d", len(infos), len(wantDims))
	}
	dataStart := (pos + 31) / 32 * 32
	for _, z := range b[pos:dataStart] {
		if z != 0 {
			t.Fatal("padding before the data section is not zero")
		}
	}
	// Tensors tile the data section in order without overlap, each padded to
	// 32, and the file ends after the last one's padding.
	var spans [][2]uint64
	for _, in := range infos {
		spans = append(spans, [2]uint64{in.off, in.off + in.size})
	}
	slices.SortFunc(spans, func(a, b [2]uint64) int { return int(a[0]) - int(b[0]) })
	var end uint64
	for _, sp := range spans {
		if sp[0] != (end+31)/32*32 {
			t.Fatalf("tensor at %d, expected the next one at %d", sp[0], (end+31)/32*32)
		}
		end = sp[1]
	}
	if want := uint64(dataStart) + (end+31)/32*32; uint64(len(b)) != want {
		t.Errorf("file is %d bytes, want %d", len(b), want)
	}
	// The bytes are the llama2.c file's floats: token_embd first, then the
	// last layer's w2 (ffn_down).
	te := infos["token_embd.weight"]
	if !bytes.Equal(b[uint64(dataStart)+te.off:][:te.size], raw[28:28+te.size]) {
		t.Error("token_embd.weight bytes differ from the llama2.c file")
	}
	w2 := infos["blk.4.ffn_down.weight"]
	// In the llama2.c file: header, embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, then w2 of layers 0..4.
	w2Off := 28 + 4*(512*64+5*64+5*64*64+2*5*32*64+5*64*64+5*64+5*172*64+4*64*172)
	if !bytes.Equal(b[uint64(dataStart)+w2.off:][:w2.size], raw[w2Off:w2Off+int(w2.size)]) {
		t.Error("blk.4.ffn_down.weight bytes differ from the llama2.c file's w2")
	}
}

func oneLine(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", wants)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestBadLlama2C(t *testing.T) {
	raw, err := os.ReadFile(storiesPath(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	full := int64(len(raw))

	p := write("trunc.bin", raw[:len(raw)-100])
	_, err = LoadLlama2C(p)
	oneLine(t, err, p, fmt.Sprint(full-100), fmt.Sprint(full))

	p = write("long.bin", append(slices.Clone(raw), 0, 0, 0, 0))
	_, err = LoadLlama2C(p)
	oneLine(t, err, fmt.Sprint(full+4), fmt.Sprint(full))

	bad := slices.Clone(raw)
	binary.LittleEndian.PutUint32(bad[24:], 256) // seq_len
	p = write("seq.bin", bad)
	_, err = LoadLlama2C(p)
	oneLine(t, err, "seq 256", fmt.Sprint(full))

	bad = slices.Clone(raw)
	binary.LittleEndian.PutUint32(bad[12:], 7) // heads 7: 64 % 7 != 0
	_, err = LoadLlama2C(write("heads.bin", bad))
	oneLine(t, err, "dim: must be a multiple of heads")

	bad = slices.Clone(raw)
	binary.LittleEndian.PutUint32(bad[0:], 0x7fffffff) // dim
	_, err = LoadLlama2C(write("huge.bin", bad))
	oneLine(t, err, "dim")

	_, err = LoadLlama2C(write("short.bin", raw[:10]))
	oneLine(t, err, "header")

	_, err = LoadLlama2C(write("ak42.bin", append([]byte("24ka\x01\x00\x00\x00"), make([]byte, 300)...)))
	oneLine(t, err, "ak42")

	_, err = ReadLlama2CHeader(bytes.NewReader(raw[:20]))
	oneLine(t, err, "only 20 of its 28 bytes")

	_, err = LoadLlama2C(filepath.Join(dir, "missing.bin"))
	oneLine(t, err, "missing.bin")

	// GGUF loaders refuse a llama2.c file by its magic.
	_, _, err = LoadGGUF(storiesPath(t))
	oneLine(t, err, "bad magic", "stories260K.bin")
	// Load treats anything not GGUF as llama2.c.
	_, _, err = Load(write("text.txt", []byte("hello, this is not a model at all")))
	oneLine(t, err, "text.txt")
}

func tinyParams(t testing.TB, tied bool) *model.Params {
	s := tinySpec
	s.TieEmbeddings = tied
	s.SetDefaults()
	p := model.NewParams(&s)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range p.Data {
		p.Data[i] = float32(r.NormFloat64())
	}
	return p
}

func TestBadGGUFModels(t *testing.T) {
	dir := t.TempDir()
	p := tinyParams(t, false)
	kvs, err := ggufMetadata(p, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	good, err := ggufTensors(p, false)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, kvs []gguf.KV, ts []gguf.WriteTensor) string {
		path := filepath.Join(dir, name)
		if err := gguf.WriteFile(path, kvs, ts); err != nil {
			t.Fatal(err)
		}
		return path
	}
	replace := func(i int, w gguf.WriteTensor) []gguf.WriteTensor {
		ts := slices.Clone(good)
		ts[i] = w
		return ts
	}
	if _, f, err := LoadGGUF(write("good.gguf", kvs, good)); err != nil {
		t.Fatal(err)
	} else {
		f.Close()
	}
	q := good[2] // blk.0.attn_q.weight, [16, 16]
	if q.Name != "blk.0.attn_q.weight" {
		t.Fatalf("layout changed: %s", q.Name)
	}

	path := write("missing.gguf", kvs, slices.Delete(slices.Clone(good), 2, 3))
	_, _, err = LoadGGUF(path)
	oneLine(t, err, path, "tensor blk.0.attn_q.weight is missing")

	_, _, err = LoadGGUF(write("shape.gguf", kvs, replace(2, gguf.WriteTensor{Name: q.Name, Dims: []uint64{8, 32}, Type: gguf.TypeF32, Data: q.Data})))
	oneLine(t, err, "blk.0.attn_q.weight has dims [8 32], the spec needs [16 16]")

	_, _, err = LoadGGUF(write("type.gguf", kvs, replace(2, gguf.WriteTensor{Name: q.Name, Dims: []uint64{16, 16}, Type: gguf.TypeI32, Data: q.Data})))
	oneLine(t, err, "blk.0.attn_q.weight has type I32")

	_, _, err = LoadGGUF(write("extra.gguf", kvs, append(slices.Clone(good), gguf.WriteTensor{Name: "rope_freqs.weight", Dims: []uint64{2}, Type: gguf.TypeF32, Data: make([]byte, 8)})))
	oneLine(t, err, "unexpected tensor rope_freqs.weight")

	// Quantized layer matrices load: see quant_test.go.

	// Metadata that contradicts the tensors.
	bad := slices.Clone(kvs)
	for i := range bad {
		if bad[i].Key == gguf.KeyLlamaFeedForward {
			bad[i].Value = uint32(32)
		}
	}
	_, _, err = LoadGGUF(write("ffn.gguf", bad, good))
	oneLine(t, err, "blk.0.ffn_gate.weight has dims [16 24], the spec needs [16 32]")

	// Save refuses to let extra metadata contradict the spec.
	err = SaveGGUF(filepath.Join(dir, "x.gguf"), p, []gguf.KV{{Key: gguf.KeyLlamaBlockCount, Value: uint32(3)}}, false)
	oneLine(t, err, "llama.block_count", "cannot be replaced")
	err = SaveGGUF(filepath.Join(dir, "x.gguf"), p, []gguf.KV{{Key: "a", Value: uint8(1)}, {Key: "a", Value: uint8(1)}}, false)
	oneLine(t, err, "a given twice")
	if _, err := os.Stat(filepath.Join(dir, "x.gguf")); !os.IsNotExist(err) {
		t.Error("a failed save left a file")
	}
	// general.name may be replaced.
	named := filepath.Join(dir, "named.gguf")
	if err := SaveGGUF(named, p, []gguf.KV{{Key: gguf.KeyName, Value: "Other Name"}}, false); err != nil {
		t.Fatal(err)
	}
	q2, f, err := LoadGGUF(named)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if q2.Spec.Name != "other_name" || !slices.Equal(q2.Data, p.Data) {
		t.Errorf("name %q", q2.Spec.Name)
	}
}

// tinyLlama2C is a small valid llama2.c file for fuzz seeds.
func tinyLlama2C(t testing.TB, tied bool) []byte {
	s := spec.Spec{Dim: 8, FFNDim: 8, Layers: 1, Heads: 2, KVHeads: 1, Vocab: 4, MaxSeq: 2, TieEmbeddings: tied}
	_, b := writeLlama2C(t, t.TempDir(), &s, 5)
	return b
}

func FuzzLoadLlama2C(f *testing.F) {
	f.Add(tinyLlama2C(f, true))
	f.Add(tinyLlama2C(f, false))
	f.Add([]byte("24ka\x01\x00\x00\x00"))
	// One file per fuzzing process, rewritten each run: a fresh directory
	// per input would make file system work dominate.
	path := filepath.Join(f.TempDir(), "f.bin")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := LoadLlama2C(path)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		// Whatever loads is exactly the file's floats.
		checkAgainstRaw(t, p, rawFloats(t, data))
	})
}

func FuzzLoadGGUF(f *testing.F) {
	for _, tied := range []bool{true, false} {
		for _, f16 := range []bool{false, true} {
			s := spec.Spec{Name: "z", Dim: 4, FFNDim: 4, Layers: 1, Heads: 2, KVHeads: 1, Vocab: 3, MaxSeq: 2, TieEmbeddings: tied}
			s.SetDefaults()
			var b bytes.Buffer
			if err := WriteGGUF(&b, model.NewParams(&s), nil, f16); err != nil {
				f.Fatal(err)
			}
			f.Add(b.Bytes())
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := gguf.Parse(data)
		if err != nil {
			return
		}
		p, err := FromGGUF(g)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		// Whatever loads saves and loads back to the same floats.
		var b bytes.Buffer
		if err := WriteGGUF(&b, p, nil, false); err != nil {
			t.Fatalf("save of a loaded model: %v", err)
		}
		g2, err := gguf.Parse(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		q, err := FromGGUF(g2)
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
		if len(q.Data) != len(p.Data) {
			t.Fatal("reload changed the size")
		}
		for i := range p.Data {
			if math.Float32bits(q.Data[i]) != math.Float32bits(p.Data[i]) {
				t.Fatalf("reload changed float %d", i)
			}
		}
	})
}
