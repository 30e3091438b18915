// Package checkpoint reads and writes model weights: llama2.c checkpoints
// (read) and GGUF files with llama.cpp's llama architecture (read and write),
// into and out of runtime/model.Params.
package checkpoint

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
)

// llama2cMagic opens llama2.c's newer exports (version 1 and 2): "ak42".
const llama2cMagic = 0x616b3432

// ReadLlama2CHeader reads the 28-byte header of a legacy llama2.c checkpoint
// (int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
// a negative vocab_size means the classifier is not tied to the embedding)
// and returns the spec it describes: name "model", norm_eps 1e-5, rope_theta
// 10000, llama2.c tokenizer, defaults set and validated. It uses the same
// rules as spec.FromLlama2C, which also checks the file size.
func ReadLlama2CHeader(r io.Reader) (spec.Spec, error) {
	var h [spec.Llama2CHeaderBytes]byte
	if n, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return spec.Spec{}, fmt.Errorf("llama2.c header: only %d of its %d bytes present", n, len(h))
		}
		return spec.Spec{}, fmt.Errorf("llama2.c header: %w", err)
	}
	if binary.LittleEndian.Uint32(h[:4]) == llama2cMagic {
		return spec.Spec{}, fmt.Errorf("llama2.c export version %d (magic \"ak42\") is not supported; export with --version 0 (the legacy format)",
			int32(binary.LittleEndian.Uint32(h[4:8])))
	}
	var v [7]int
	for i := range v {
		v[i] = int(int32(binary.LittleEndian.Uint32(h[4*i:])))
	}
	s := spec.Spec{
		Name:          "model",
		Dim:           v[0],
		FFNDim:        v[1],
		Layers:        v[2],
		Heads:         v[3],
		KVHeads:       v[4],
		Vocab:         v[5],
		MaxSeq:        v[6],
		TieEmbeddings: v[5] > 0,
		NormEps:       spec.DefaultNormEps,
		RopeTheta:     spec.DefaultRopeTheta,
	}
	if s.Vocab < 0 {
		s.Vocab = -s.Vocab
	}
	if s.Heads > 0 && s.KVHeads == 0 {
		s.KVHeads = s.Heads // older headers leave it 0
	}
	s.SetDefaults()
	if err := s.Validate(); err != nil {
		return spec.Spec{}, fmt.Errorf("llama2.c header: %w", err)
	}
	return s, nil
}

// LoadLlama2C loads a legacy llama2.c checkpoint. The file must be exactly as
// long as its header implies, and its weights finite (no NaN or ±Inf). The
// spec is named after the file (see spec.FromLlama2C). llama2.c's w1, w2, w3
// become ffn_gate, ffn_down, ffn_up; its RoPE table is skipped (the runtime
// computes it).
func LoadLlama2C(path string) (*model.Params, error) {
	// spec.FromLlama2C validates the header and the exact file size, so the
	// allocation below is bounded by the file's size.
	s, err := spec.FromLlama2C(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	fd, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer fd.Close()
	// Small files get small buffers: fuzzing loads many tiny ones.
	r := bufio.NewReaderSize(fd, int(min(spec.Llama2CFileBytes(&s), 1<<20)))
	hs, err := ReadLlama2CHeader(r)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	if err := model.CheckShape(&hs, &s); err != nil {
		return nil, fmt.Errorf("checkpoint: %s: file changed while loading: %w", path, err)
	}
	p := model.NewParams(&s)
	if err := readLlama2CWeights(r, p); err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	return p, nil
}

// readLlama2CWeights reads the weights after the header, in run.c's order.
func readLlama2CWeights(r io.Reader, p *model.Params) error {
	s := &p.Spec
	buf := make([]byte, min(4*len(p.Data), 1<<16)+4)
	read := func(name string) error {
		dst := p.T(name)
		for done := 0; len(dst) > 0; {
			n := min(len(dst), len(buf)/4)
			if _, err := io.ReadFull(r, buf[:4*n]); err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					return fmt.Errorf("reading %s: file ends early", name)
				}
				return fmt.Errorf("reading %s: %w", name, err)
			}
			for i := range dst[:n] {
				dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
			}
			if err := model.CheckFinite(name, dst[:n], done); err != nil {
				return err
			}
			dst, done = dst[n:], done+n
		}
		return nil
	}
	perLayer := func(kind string) error {
		for l := 0; l < s.Layers; l++ {
			if err := read(model.LayerTensor(l, kind)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := read(model.TokEmbd); err != nil {
		return err
	}
	// run.c's order: rms_att, wq, wk, wv, wo, rms_ffn, w1 (gate), w2 (down), w3 (up).
	for _, kind := range []string{"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_down", "ffn_up"} {
		if err := perLayer(kind); err != nil {
			return err
		}
	}
	if err := read(model.OutputNorm); err != nil {
		return err
	}
	// freq_cis_real and freq_cis_imag: seq_len × head_dim/2 floats each.
	skip := int64(s.MaxSeq) * int64(s.HeadDim()) * 4
	if n, err := io.CopyN(io.Discard, r, skip); err != nil {
		return fmt.Errorf("skipping the RoPE table: %d of %d bytes present", n, skip)
	}
	if !s.TieEmbeddings {
		if err := read(model.Output); err != nil {
			return err
		}
	}
	if n, _ := io.CopyN(io.Discard, r, 1); n != 0 {
		return fmt.Errorf("file has bytes after the weights")
	}
	return nil
}
