package spec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Llama2CHeaderBytes is the size of a (legacy) llama2.c checkpoint header:
// seven little-endian int32s dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size (negative when the classifier is not tied to the embedding),
// seq_len.
const Llama2CHeaderBytes = 7 * 4

// llama2cMagic opens the newer llama2.c exports (version 1 and 2), which are
// laid out differently; "ak42" read as a little-endian uint32.
const llama2cMagic = 0x616b3432

// FromLlama2C reads the header of a llama2.c checkpoint and returns the spec
// it describes, with defaults set and validated. It checks that the file
// holds exactly the weights the header implies: the token embedding, the
// per-layer weights, the final norm, the RoPE table (seq_len × head_dim/2
// cosines and as many sines) and, when untied, the classifier, all float32.
// The name is the file's base name, lower-cased and made a valid name
// (stories260K.bin -> stories260k).
func FromLlama2C(path string) (Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return Spec{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	var h [Llama2CHeaderBytes]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Spec{}, fmt.Errorf("%s: file is %d bytes, shorter than the %d-byte llama2.c header", path, st.Size(), Llama2CHeaderBytes)
		}
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	if binary.LittleEndian.Uint32(h[:4]) == llama2cMagic {
		return Spec{}, fmt.Errorf("%s: llama2.c export version %d (magic \"ak42\") is not supported; export with --version 0 (the legacy format)",
			path, int32(binary.LittleEndian.Uint32(h[4:8])))
	}
	var v [7]int32
	for i := range v {
		v[i] = int32(binary.LittleEndian.Uint32(h[4*i:]))
	}
	s := Spec{
		Name:          SanitizeName(filepath.Base(path)),
		Dim:           int(v[0]),
		FFNDim:        int(v[1]),
		Layers:        int(v[2]),
		Heads:         int(v[3]),
		KVHeads:       int(v[4]),
		Vocab:         int(v[5]),
		MaxSeq:        int(v[6]),
		TieEmbeddings: v[5] > 0,
	}
	if v[5] < 0 {
		s.Vocab = -int(v[5]) // int, so -MinInt32 does not overflow
	}
	if s.Heads > 0 && s.KVHeads == 0 {
		s.KVHeads = s.Heads // older headers leave it 0
	}
	s.SetDefaults()
	if err := s.Validate(); err != nil {
		return Spec{}, fmt.Errorf("%s: llama2.c header: %w", path, err)
	}
	want := Llama2CFileBytes(&s)
	if st.Size() != want {
		return Spec{}, fmt.Errorf("%s: file is %d bytes, but its llama2.c header (dim %d, ffn %d, layers %d, heads %d, kv_heads %d, vocab %d, seq %d, tied %t) implies %d",
			path, st.Size(), s.Dim, s.FFNDim, s.Layers, s.Heads, s.KVHeads, s.Vocab, s.MaxSeq, s.TieEmbeddings, want)
	}
	return s, nil
}

// Llama2CFileBytes is the size of a legacy llama2.c checkpoint of a dense f32
// spec: header, weights (the classifier only when untied) and the RoPE table.
func Llama2CFileBytes(s *Spec) int64 {
	f32 := *s
	f32.Quant = "f32"
	f32.MoE = nil
	params := f32.Figures().Params
	freq := int64(s.MaxSeq) * int64(s.Dim/s.Heads)
	return Llama2CHeaderBytes + 4*(params+freq)
}

// SanitizeName turns a file name into a valid spec name: the extension goes,
// letters are lower-cased, every run of other characters becomes one '_',
// and a name that would not start with a letter gets "m" in front.
func SanitizeName(file string) string {
	base := strings.TrimSuffix(file, filepath.Ext(file))
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(base) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			under = false
		} else if !under && b.Len() > 0 {
			b.WriteByte('_')
			under = true
		}
	}
	name := strings.TrimRight(b.String(), "_")
	if name == "" {
		return "model"
	}
	if name[0] < 'a' || name[0] > 'z' {
		name = "m" + name
	}
	if len(name) > maxNameLen {
		name = strings.TrimRight(name[:maxNameLen], "_")
	}
	for token.IsKeyword(name) {
		name += "_model"
	}
	return name
}
