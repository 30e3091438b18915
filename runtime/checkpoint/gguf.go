package checkpoint

import (
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/quant"
	"github.com/modelc/modelc/spec"
)

// LoadGGUF loads a GGUF model file of architecture llama. The spec comes
// from its metadata (spec.FromGGUFFile); every tensor must have the name,
// shape and a type the spec's layout calls for. F32 tensors are copied and
// F16 and BF16 ones widened to float32, and Q8_0 and Q4_0 ones (and Q6_K,
// which llama.cpp's quantize gives output.weight) dequantised to float32
// (ggml's block layouts, runtime/quant): the weights then run in any model,
// generic or compiled, at float32; other types are refused, and so is a
// weight (or, in a block format, a block scale) that is NaN or ±Inf. The
// spec's quant names the file's block format. The open gguf.File is returned too, for its tokenizer metadata; the caller
// must Close it.
func LoadGGUF(path string) (*model.Params, *gguf.File, error) {
	return loadGGUF(path, 0)
}

// LoadKeepBlocks is Load, except that GGUF tensors of block type keep (Q8_0
// or Q4_0) are not dequantised: their Data stays zero and untouched (no
// memory resident), p.Undecoded names them, and a quantised compiled model
// reads their blocks from p.File. Only such a model may run the parameters.
func LoadKeepBlocks(path string, keep gguf.GGMLType) (*model.Params, *gguf.File, error) {
	if !isGGUF(path) {
		return Load(path)
	}
	return loadGGUF(path, keep)
}

// LoadFor loads a model file for a model whose weight format is q (a
// spec's quant: "f32", "q8_0" or "q4_0"): for a quantised one the file's
// blocks of that format stay undecoded (LoadKeepBlocks), so that only the
// blocks, not a float copy of them, take memory; otherwise as Load.
func LoadFor(path, q string) (*model.Params, *gguf.File, error) {
	if t, err := quant.ParseType(q); err == nil {
		return LoadKeepBlocks(path, t)
	}
	return Load(path)
}

// DecodeKept decodes the tensors LoadKeepBlocks left in their blocks (p's
// Undecoded) from p.File into p.Data, in place, and returns parameters that
// share p's memory with nothing left undecoded, for a model that reads
// floats (the generic one). p itself is not changed otherwise, and a
// quantised compiled model running on p may go on meanwhile: it reads
// those tensors' blocks, never their floats.
func DecodeKept(p *model.Params) (*model.Params, error) {
	q := *p
	q.Undecoded = nil
	for name := range p.Undecoded {
		if p.File == nil {
			return nil, fmt.Errorf("checkpoint: tensor %s is in blocks but the parameters have no file", name)
		}
		if err := decodeTensor(p.File, name, q.T(name)); err != nil {
			return nil, fmt.Errorf("checkpoint: %w", err)
		}
	}
	return &q, nil
}

// decodeTensor decodes tensor name of f, whatever its format, into dst.
func decodeTensor(f *gguf.File, name string, dst []float32) error {
	info, _ := f.Tensor(name)
	data, err := f.TensorData(name)
	if err != nil {
		return err
	}
	if err := quant.Decode(info.Type, dst, data); err != nil {
		return fmt.Errorf("tensor %s: %w", name, err)
	}
	return nil
}

func loadGGUF(path string, keep gguf.GGMLType) (*model.Params, *gguf.File, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint: %w", err)
	}
	p, err := fromGGUF(f, keep)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	return p, f, nil
}

// FromGGUF builds parameters from an open GGUF file (see LoadGGUF).
func FromGGUF(f *gguf.File) (*model.Params, error) { return fromGGUF(f, 0) }

func fromGGUF(f *gguf.File, keep gguf.GGMLType) (*model.Params, error) {
	s, err := spec.FromGGUFFile(f)
	if err != nil {
		return nil, err
	}
	// Check every tensor before allocating: the metadata alone must not make
	// us allocate more than the file holds.
	layout, _ := model.Layout(&s)
	want := make(map[string]bool, len(layout))
	for _, t := range layout {
		want[t.Name] = true
		info, ok := f.Tensor(t.Name)
		if !ok {
			return nil, fmt.Errorf("tensor %s is missing", t.Name)
		}
		if dims := ggmlDims(t.Shape); !slices.Equal(info.Dims, dims) {
			return nil, fmt.Errorf("tensor %s has dims %v, the spec needs %v (ggml order, innermost first)", t.Name, info.Dims, dims)
		}
		switch info.Type {
		case gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ6_K:
		default:
			return nil, fmt.Errorf("tensor %s has type %s: not supported (F32, F16, BF16, Q8_0, Q4_0, Q6_K)", t.Name, info.Type)
		}
	}
	for _, info := range f.Tensors {
		if !want[info.Name] {
			return nil, fmt.Errorf("unexpected tensor %s (not part of a llama model with this spec)", info.Name)
		}
	}
	p := model.NewParams(&s)
	p.File = f
	for _, t := range p.Tensors {
		info, _ := f.Tensor(t.Name)
		if keep != 0 && info.Type == keep {
			data, err := f.TensorData(t.Name) // in bounds, though not decoded now
			if err != nil {
				return nil, err
			}
			if err := quant.CheckScales(t.Name, info.Type, data); err != nil {
				return nil, err
			}
			if p.Undecoded == nil {
				p.Undecoded = map[string]bool{}
			}
			p.Undecoded[t.Name] = true
			continue
		}
		dst := p.T(t.Name)
		if err := decodeTensor(f, t.Name, dst); err != nil {
			return nil, err
		}
		if err := checkDecoded(f, t.Name, info.Type, dst); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// checkDecoded refuses a decoded tensor holding NaN or ±Inf: one in a block
// format by its scales (its codes are integers), one in a float format by
// its values.
func checkDecoded(f *gguf.File, name string, t gguf.GGMLType, dst []float32) error {
	if t.BlockSize() == 1 {
		return model.CheckFinite(name, dst, 0)
	}
	data, _ := f.TensorData(name) // decodeTensor has just read it
	return quant.CheckScales(name, t, data)
}

// ggmlDims turns a row-major shape [rows, cols] into ggml's [cols, rows].
func ggmlDims(shape []int) []uint64 {
	d := make([]uint64, len(shape))
	for i, n := range shape {
		d[len(shape)-1-i] = uint64(n)
	}
	return d
}

// SaveGGUF writes p as a GGUF file llama.cpp loads as architecture llama:
// general.* and llama.* metadata from the spec, then the caller's extra
// metadata (typically the tokenizer's tokenizer.ggml.* keys; an extra key may
// replace general.name or the bos/eos ids, but not a shape key), then the
// tensors under llama.cpp's names (a mixture of experts as llama.cpp's llama
// with experts: ffn_gate_inp and the 3-D ffn_{gate,up,down}_exps, with
// llama.expert_count and expert_used_count; a shared expert is written as
// ffn_*_shexp with llama.expert_shared_count 1, which modelc reads back but
// llama.cpp's llama architecture does not). Matrices are F16 when f16 is set, F32
// otherwise; norms are always F32. The file is written atomically.
func SaveGGUF(path string, p *model.Params, extra []gguf.KV, f16 bool) error {
	if err := saveGGUF(path, p, extra, f16); err != nil {
		return fmt.Errorf("checkpoint: save %s: %w", path, err)
	}
	return nil
}

func saveGGUF(path string, p *model.Params, extra []gguf.KV, f16 bool) error {
	kvs, err := ggufMetadata(p, extra, f16)
	if err != nil {
		return err
	}
	ts, err := ggufTensors(p, f16)
	if err != nil {
		return err
	}
	return gguf.WriteFile(path, kvs, ts)
}

// WriteGGUF is SaveGGUF to a writer, not atomic.
func WriteGGUF(w io.Writer, p *model.Params, extra []gguf.KV, f16 bool) error {
	kvs, err := ggufMetadata(p, extra, f16)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	ts, err := ggufTensors(p, f16)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return gguf.Write(w, kvs, ts)
}

func ggufMetadata(p *model.Params, extra []gguf.KV, f16 bool) ([]gguf.KV, error) {
	s := p.Spec
	// Check the shape; training defaults left unset in code are no reason
	// to refuse a save, so validate a defaulted copy.
	check := s
	check.SetDefaults()
	if err := check.Validate(); err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	ftype := gguf.FileTypeAllF32
	if f16 {
		ftype = gguf.FileTypeMostlyF16
	}
	u := func(n int) uint32 { return uint32(n) }
	kvs := []gguf.KV{
		{Key: gguf.KeyArchitecture, Value: "llama"},
		{Key: gguf.KeyName, Value: s.Name},
		{Key: gguf.KeyFileType, Value: ftype},
		{Key: gguf.KeyLlamaVocabSize, Value: u(s.Vocab)},
		{Key: gguf.KeyLlamaContextLength, Value: u(s.MaxSeq)},
		{Key: gguf.KeyLlamaEmbeddingLength, Value: u(s.Dim)},
		{Key: gguf.KeyLlamaBlockCount, Value: u(s.Layers)},
		{Key: gguf.KeyLlamaFeedForward, Value: u(s.FFNWidth())},
		{Key: gguf.KeyLlamaRopeDimCount, Value: u(s.HeadDim())},
		{Key: gguf.KeyLlamaHeadCount, Value: u(s.Heads)},
		{Key: gguf.KeyLlamaHeadCountKV, Value: u(s.KVHeads)},
		{Key: gguf.KeyLlamaRMSEps, Value: float32(s.NormEps)},
		{Key: gguf.KeyLlamaRopeFreqBase, Value: float32(s.RopeTheta)},
	}
	if m := s.MoE; m != nil {
		kvs = append(kvs, gguf.KV{Key: gguf.KeyLlamaExpertCount, Value: u(m.Experts)}, gguf.KV{Key: gguf.KeyLlamaExpertUsedCount, Value: u(m.TopK)})
		if m.SharedExpert {
			kvs = append(kvs, gguf.KV{Key: spec.KeyLlamaExpertSharedCount, Value: u(1)})
		}
	}
	fixed := len(kvs)
	replaceable := map[string]bool{gguf.KeyName: true}
	index := make(map[string]int, len(kvs)+len(extra))
	for i, kv := range kvs {
		index[kv.Key] = i
	}
	for _, kv := range extra {
		if i, ok := index[kv.Key]; ok {
			if i < fixed && !replaceable[kv.Key] {
				return nil, fmt.Errorf("extra metadata key %s is set from the model's spec and cannot be replaced", kv.Key)
			}
			if i >= fixed {
				return nil, fmt.Errorf("extra metadata key %s given twice", kv.Key)
			}
			kvs[i] = kv
			continue
		}
		index[kv.Key] = len(kvs)
		kvs = append(kvs, kv)
	}
	// The spec's bos and eos, unless the tokenizer metadata says otherwise.
	if _, ok := index[gguf.KeyBOS]; !ok {
		kvs = append(kvs, gguf.KV{Key: gguf.KeyBOS, Value: u(check.Tokenizer.BOS)})
	}
	if _, ok := index[gguf.KeyEOS]; !ok {
		kvs = append(kvs, gguf.KV{Key: gguf.KeyEOS, Value: u(check.Tokenizer.EOS)})
	}
	return kvs, nil
}

func ggufTensors(p *model.Params, f16 bool) ([]gguf.WriteTensor, error) {
	layout, n := model.Layout(&p.Spec)
	if len(p.Data) != n {
		return nil, fmt.Errorf("parameters hold %d floats, the spec's layout needs %d", len(p.Data), n)
	}
	ts := make([]gguf.WriteTensor, 0, len(layout))
	for _, t := range layout {
		have, ok := p.Lookup(t.Name)
		if !ok || have.Off != t.Off || !slices.Equal(have.Shape, t.Shape) {
			return nil, fmt.Errorf("tensor %s does not match the spec's layout", t.Name)
		}
		src := p.Data[t.Off : t.Off+t.Len()]
		w := gguf.WriteTensor{Name: t.Name, Dims: ggmlDims(t.Shape)}
		if f16 && len(t.Shape) >= 2 { // matrices and stacks of expert matrices
			w.Type = gguf.TypeF16
			w.Data = make([]byte, 2*len(src))
			gguf.F32sToF16s(w.Data, src)
		} else {
			w.Type = gguf.TypeF32
			w.Data = make([]byte, 4*len(src))
			gguf.F32sToBytes(w.Data, src)
		}
		ts = append(ts, w)
	}
	return ts, nil
}

// Load loads a model file of either format, told apart by its first bytes:
// GGUF (the returned gguf.File must be closed by the caller) or a legacy
// llama2.c checkpoint (the gguf.File is nil).
func Load(path string) (*model.Params, *gguf.File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint: %w", err)
	}
	fd.Close()
	if isGGUF(path) {
		return LoadGGUF(path)
	}
	p, err := LoadLlama2C(path)
	return p, nil, err
}

// isGGUF tells a GGUF file by its first bytes.
func isGGUF(path string) bool {
	fd, err := os.Open(path)
	if err != nil {
		return false
	}
	var magic [4]byte
	n, _ := io.ReadFull(fd, magic[:])
	fd.Close()
	return n == 4 && string(magic[:]) == gguf.Magic
}
