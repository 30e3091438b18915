package tokenizer

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/modelc/modelc/internal/atomicfile"
)

// maxLlama2CPiece bounds one piece's length so a corrupt length field
// cannot ask for gigabytes.
const maxLlama2CPiece = 1 << 16

// LoadLlama2C reads a llama2.c tokenizer.bin: int32 max_token_length, then
// per token a float32 score, an int32 byte length and the bytes, all little
// endian. The file does not store the vocabulary size, so the caller gives
// it (the model header has it); vocabSize <= 0 reads tokens until the end.
func LoadLlama2C(path string, vocabSize int) (*SentencePiece, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	defer f.Close()
	t, err := ReadLlama2C(f, vocabSize)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return t, nil
}

// ReadLlama2C is LoadLlama2C on a reader; errors name the token and offset.
func ReadLlama2C(r io.Reader, vocabSize int) (*SentencePiece, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return ParseLlama2C(data, vocabSize)
}

// ParseLlama2C parses the bytes of a tokenizer.bin.
func ParseLlama2C(data []byte, vocabSize int) (*SentencePiece, error) {
	if len(data) < 4 {
		return nil, fmt.Errorf("file of %d bytes is too short for the max_token_length header", len(data))
	}
	off := 4
	var pieces []string
	var scores []float32
	// next reads one token record at off; done reports a clean end of data.
	next := func() (done bool, err error) {
		i := len(pieces)
		if off == len(data) {
			return true, nil
		}
		if len(data)-off < 8 {
			return false, fmt.Errorf("token %d at offset %d: record header cut short (%d of 8 bytes)", i, off, len(data)-off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		ln := int64(int32(binary.LittleEndian.Uint32(data[off+4:])))
		if ln < 0 || ln > maxLlama2CPiece {
			return false, fmt.Errorf("token %d at offset %d: length %d out of range [0, %d]", i, off+4, ln, maxLlama2CPiece)
		}
		if int64(len(data)-off-8) < ln {
			return false, fmt.Errorf("token %d at offset %d: %d bytes of text expected, file ends after %d", i, off+8, ln, len(data)-off-8)
		}
		pieces = append(pieces, string(data[off+8:off+8+int(ln)]))
		scores = append(scores, score)
		off += 8 + int(ln)
		return false, nil
	}
	if vocabSize > 0 {
		for len(pieces) < vocabSize {
			done, err := next()
			if err != nil {
				return nil, fmt.Errorf("vocab size %d: %w", vocabSize, err)
			}
			if done {
				return nil, fmt.Errorf("vocab size %d given but the file ends after %d tokens (%d bytes)", vocabSize, len(pieces), len(data))
			}
		}
		if off != len(data) {
			// Count what the file really holds to say what the size should be.
			end := off
			for {
				done, err := next()
				if err != nil {
					return nil, fmt.Errorf("vocab size %d given but %d bytes remain after token %d at offset %d", vocabSize, len(data)-end, vocabSize-1, end)
				}
				if done {
					break
				}
			}
			return nil, fmt.Errorf("vocab size %d given but the file holds %d tokens (%d bytes left over at offset %d)", vocabSize, len(pieces), len(data)-end, end)
		}
	} else {
		for {
			done, err := next()
			if err != nil {
				return nil, err
			}
			if done {
				break
			}
		}
		if len(pieces) == 0 {
			return nil, fmt.Errorf("no tokens after the max_token_length header")
		}
	}
	// AddBOS: run.c encodes every prompt with BOS.
	return NewSentencePiece(SPMVocab{Pieces: pieces, Scores: scores, BOS: idIf(1, len(pieces)), EOS: idIf(2, len(pieces)), Unknown: unkIf(pieces), Pad: -1, AddBOS: true})
}

// idIf is run.c's fixed BOS=1 / EOS=2 convention, when the vocabulary is
// big enough to have them.
func idIf(id, n int) int {
	if id < n {
		return id
	}
	return -1
}

func unkIf(pieces []string) int {
	if len(pieces) > 0 && pieces[0] == "<unk>" {
		return 0
	}
	return -1
}

// WriteLlama2C writes the vocabulary as a llama2.c tokenizer.bin, through a
// temporary file renamed into place. BOS and EOS are spelled "\n<s>\n" and
// "\n</s>\n" as llama2.c's exporter does when their text is "<s>"/"</s>".
func (t *SentencePiece) WriteLlama2C(path string) error {
	f, err := atomicfile.Create(path)
	if err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	w := bufio.NewWriter(f)
	pieces := make([]string, len(t.pieces))
	maxLen := 0
	for i, p := range t.pieces {
		if t.types[i] == TokenControl && (p == "<s>" || p == "</s>") {
			p = "\n" + p + "\n"
		}
		pieces[i] = p
		maxLen = max(maxLen, len(p))
	}
	var b [8]byte
	binary.LittleEndian.PutUint32(b[:4], uint32(maxLen))
	w.Write(b[:4])
	for i, p := range pieces {
		binary.LittleEndian.PutUint32(b[:4], math.Float32bits(t.scores[i]))
		binary.LittleEndian.PutUint32(b[4:], uint32(len(p)))
		w.Write(b[:])
		w.WriteString(p)
	}
	if err := w.Flush(); err != nil {
		f.Abort()
		return fmt.Errorf("tokenizer: write %s: %w", path, err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	return nil
}
