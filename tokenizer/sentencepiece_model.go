package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"
)

// LoadSentencePieceModel reads a SentencePiece tokenizer.model (a
// serialized ModelProto) of model type BPE: pieces, scores, types, the
// special ids and add_dummy_prefix. Encoding is run.c's, as for the
// tokenizer.bin llama2.c exports from the same model: the model's text
// normalizer (NFKC rules, remove_extra_whitespaces) is not applied.
func LoadSentencePieceModel(path string) (*SentencePiece, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := ParseSentencePieceModel(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return t, nil
}

// pbReader walks protobuf wire format.
type pbReader struct {
	b   []byte
	off int
}

func (r *pbReader) varint(what string) (uint64, error) {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		return 0, fmt.Errorf("%s at offset %d: bad varint", what, r.off)
	}
	r.off += n
	return v, nil
}

// field reads the next field: its number, wire type, and for wire type 2 the
// payload, for 0 the value, for 5 the 32 bits; other wire types are skipped.
func (r *pbReader) field(what string) (num int, wire int, val uint64, payload []byte, err error) {
	start := r.off
	key, err := r.varint(what + " key")
	if err != nil {
		return 0, 0, 0, nil, err
	}
	num, wire = int(key>>3), int(key&7)
	switch wire {
	case 0:
		val, err = r.varint(what)
	case 1:
		if len(r.b)-r.off < 8 {
			return 0, 0, 0, nil, fmt.Errorf("%s field %d at offset %d: cut short", what, num, start)
		}
		val = binary.LittleEndian.Uint64(r.b[r.off:])
		r.off += 8
	case 2:
		var n uint64
		if n, err = r.varint(what + " length"); err != nil {
			return
		}
		if n > uint64(len(r.b)-r.off) {
			return 0, 0, 0, nil, fmt.Errorf("%s field %d at offset %d: length %d past the end", what, num, start, n)
		}
		payload = r.b[r.off : r.off+int(n)]
		r.off += int(n)
	case 5:
		if len(r.b)-r.off < 4 {
			return 0, 0, 0, nil, fmt.Errorf("%s field %d at offset %d: cut short", what, num, start)
		}
		val = uint64(binary.LittleEndian.Uint32(r.b[r.off:]))
		r.off += 4
	default:
		return 0, 0, 0, nil, fmt.Errorf("%s field %d at offset %d: unsupported wire type %d", what, num, start, wire)
	}
	return num, wire, val, payload, err
}

// SentencePiece's ModelProto field numbers.
const (
	pbModelPieces     = 1
	pbModelTrainer    = 2
	pbModelNormalizer = 3
	pbPiece           = 1
	pbPieceScore      = 2
	pbPieceType       = 3
	pbTrainerType     = 3
	pbTrainerUnk      = 40
	pbTrainerBOS      = 41
	pbTrainerEOS      = 42
	pbTrainerPad      = 43
	pbNormDummyPrefix = 3
	spmModelBPE       = 2
)

// ParseSentencePieceModel parses the bytes of a tokenizer.model.
func ParseSentencePieceModel(data []byte) (*SentencePiece, error) {
	v := SPMVocab{BOS: 1, EOS: 2, Unknown: 0, Pad: -1, AddBOS: true}
	modelType := uint64(1) // TrainerSpec's default: unigram
	r := &pbReader{b: data}
	for r.off < len(data) {
		num, wire, _, payload, err := r.field("ModelProto")
		if err != nil {
			return nil, err
		}
		if wire != 2 {
			continue
		}
		switch num {
		case pbModelPieces:
			p, s, ty, err := parsePiece(payload, len(v.Pieces))
			if err != nil {
				return nil, err
			}
			v.Pieces = append(v.Pieces, strings.ReplaceAll(p, spmSpace, " "))
			v.Scores = append(v.Scores, s)
			v.Types = append(v.Types, ty)
		case pbModelTrainer:
			tr := &pbReader{b: payload}
			for tr.off < len(payload) {
				n, w, val, _, err := tr.field("TrainerSpec")
				if err != nil {
					return nil, err
				}
				if w != 0 {
					continue
				}
				id := int(int32(val)) // negative ids are 10-byte varints
				switch n {
				case pbTrainerType:
					modelType = val
				case pbTrainerUnk:
					v.Unknown = id
				case pbTrainerBOS:
					v.BOS = id
				case pbTrainerEOS:
					v.EOS = id
				case pbTrainerPad:
					v.Pad = id
				}
			}
		case pbModelNormalizer:
			nr := &pbReader{b: payload}
			for nr.off < len(payload) {
				n, w, val, _, err := nr.field("NormalizerSpec")
				if err != nil {
					return nil, err
				}
				if w == 0 && n == pbNormDummyPrefix {
					v.NoSpacePrefix = val == 0
				}
			}
		}
	}
	if len(v.Pieces) == 0 {
		return nil, fmt.Errorf("no pieces: not a SentencePiece model")
	}
	if modelType != spmModelBPE {
		return nil, fmt.Errorf("model type %d is not BPE (2): only BPE SentencePiece models are supported", modelType)
	}
	for _, id := range []*int{&v.BOS, &v.EOS, &v.Unknown, &v.Pad} {
		if *id < -1 || *id >= len(v.Pieces) {
			*id = -1 // SentencePiece disables a special with -1; be as lenient
		}
	}
	return NewSentencePiece(v)
}

func parsePiece(b []byte, i int) (string, float32, TokenType, error) {
	what := fmt.Sprintf("piece %d", i)
	r := &pbReader{b: b}
	var piece string
	var score float32
	typ := TokenNormal
	for r.off < len(b) {
		n, w, val, payload, err := r.field(what)
		if err != nil {
			return "", 0, 0, err
		}
		switch {
		case n == pbPiece && w == 2:
			piece = string(payload)
		case n == pbPieceScore && w == 5:
			score = math.Float32frombits(uint32(val))
		case n == pbPieceType && w == 0:
			if val < 1 || val > uint64(TokenByte) {
				return "", 0, 0, fmt.Errorf("%s: type %d is not a SentencePiece type (1..6)", what, val)
			}
			typ = TokenType(val)
		}
	}
	return piece, score, typ, nil
}
