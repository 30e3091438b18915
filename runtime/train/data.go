package train

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/modelc/modelc/internal/atomicfile"
	"github.com/modelc/modelc/internal/mmap"
	"io"
	"os"
	"unicode"
	"unicode/utf8"

	"github.com/modelc/modelc/tokenizer"
)

// A token file holds a tokenized corpus, ready to be memory-mapped:
//
//	offset  size  field
//	0       4     magic "MCTK"
//	4       4     version (1), uint32 little-endian
//	8       4     bytes per id: 2 (uint16) when vocab ≤ 65536, else 4 (uint32)
//	12      4     vocabulary size
//	16      8     number of ids
//	24      8     reserved, zero
//	32      …     the ids, little-endian
const (
	tokMagic      = "MCTK"
	tokVersion    = 1
	tokHeaderSize = 32
)

// TokenFileExt is the extension `modelc data prepare` and `train` give token files.
const TokenFileExt = ".tok"

// Tokens is a token file opened for reading (memory-mapped where possible).
type Tokens struct {
	path  string
	data  []byte // the ids
	width int
	vocab int
	n     int
	unmap func() error
}

// IsTokenFile reports whether path starts with the token file magic.
func IsTokenFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var m [4]byte
	_, err = io.ReadFull(f, m[:])
	return err == nil && string(m[:]) == tokMagic
}

// OpenTokens maps a token file and checks it: header, size, and every id
// below the vocabulary size it records.
func OpenTokens(path string) (*Tokens, error) {
	b, unmap, err := mmap.Map(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	t, err := parseTokens(path, b)
	if err != nil {
		unmap()
		return nil, err
	}
	t.unmap = unmap
	return t, nil
}

func parseTokens(path string, b []byte) (*Tokens, error) {
	if len(b) < tokHeaderSize || string(b[:4]) != tokMagic {
		return nil, fmt.Errorf("token file %s: not a token file (no %q header)", path, tokMagic)
	}
	le := binary.LittleEndian
	if v := le.Uint32(b[4:]); v != tokVersion {
		return nil, fmt.Errorf("token file %s: version %d, this program reads version %d", path, v, tokVersion)
	}
	width := int(le.Uint32(b[8:]))
	vocab := le.Uint32(b[12:])
	n := le.Uint64(b[16:])
	if width != 2 && width != 4 {
		return nil, fmt.Errorf("token file %s: offset 8: id width %d, want 2 or 4", path, width)
	}
	if vocab == 0 || (width == 2) != (vocab <= 1<<16) {
		return nil, fmt.Errorf("token file %s: offset 12: vocabulary %d does not fit id width %d", path, vocab, width)
	}
	if n > uint64(len(b)-tokHeaderSize)/uint64(width) || uint64(len(b)-tokHeaderSize) != n*uint64(width) {
		return nil, fmt.Errorf("token file %s: offset 16: header says %d ids, the file holds %d bytes of ids", path, n, len(b)-tokHeaderSize)
	}
	t := &Tokens{path: path, data: b[tokHeaderSize:], width: width, vocab: int(vocab), n: int(n)}
	for i := 0; i < t.n; i++ {
		if id := t.At(i); int(id) >= t.vocab {
			return nil, fmt.Errorf("token file %s: id %d at index %d (offset %d) is not below the vocabulary size %d", path, id, i, tokHeaderSize+i*width, vocab)
		}
	}
	return t, nil
}

// Len is the number of ids.
func (t *Tokens) Len() int { return t.n }

// Vocab is the vocabulary size the file was made for.
func (t *Tokens) Vocab() int { return t.vocab }

// Path is the file's path.
func (t *Tokens) Path() string { return t.path }

// At returns id i.
func (t *Tokens) At(i int) int32 {
	if t.width == 2 {
		return int32(binary.LittleEndian.Uint16(t.data[2*i:]))
	}
	return int32(binary.LittleEndian.Uint32(t.data[4*i:]))
}

// Read copies ids lo, lo+1, … into dst.
func (t *Tokens) Read(dst []int32, lo int) {
	for i := range dst {
		dst[i] = t.At(lo + i)
	}
}

// Close unmaps the file.
func (t *Tokens) Close() error {
	if t.unmap == nil {
		return nil
	}
	err := t.unmap()
	t.unmap = nil
	return err
}

// tokenWriter streams ids into a token file written atomically.
type tokenWriter struct {
	f     *atomicfile.File
	w     *bufio.Writer
	width int
	vocab int
	n     uint64
	buf   [4]byte
}

func newTokenWriter(path string, vocab int) (*tokenWriter, error) {
	if vocab <= 0 || int64(vocab) > 1<<32 {
		return nil, fmt.Errorf("token file %s: vocabulary size %d out of range", path, vocab)
	}
	f, err := atomicfile.Create(path)
	if err != nil {
		return nil, err
	}
	tw := &tokenWriter{f: f, w: bufio.NewWriterSize(f, 1<<20), width: 4, vocab: vocab}
	if vocab <= 1<<16 {
		tw.width = 2
	}
	var h [tokHeaderSize]byte // rewritten with the count at the end
	if _, err := tw.w.Write(h[:]); err != nil {
		f.Abort()
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	return tw, nil
}

func (tw *tokenWriter) write(ids []int) error {
	for _, id := range ids {
		if id < 0 || id >= tw.vocab {
			return fmt.Errorf("tokenizer produced id %d, outside the vocabulary of %d", id, tw.vocab)
		}
		if tw.width == 2 {
			binary.LittleEndian.PutUint16(tw.buf[:], uint16(id))
		} else {
			binary.LittleEndian.PutUint32(tw.buf[:], uint32(id))
		}
		if _, err := tw.w.Write(tw.buf[:tw.width]); err != nil {
			return fmt.Errorf("token file %s: %w", tw.f.Path(), err)
		}
	}
	tw.n += uint64(len(ids))
	return nil
}

func (tw *tokenWriter) commit() error {
	if err := tw.w.Flush(); err != nil {
		tw.f.Abort()
		return fmt.Errorf("token file %s: %w", tw.f.Path(), err)
	}
	var h [tokHeaderSize]byte
	copy(h[:], tokMagic)
	le := binary.LittleEndian
	le.PutUint32(h[4:], tokVersion)
	le.PutUint32(h[8:], uint32(tw.width))
	le.PutUint32(h[12:], uint32(tw.vocab))
	le.PutUint64(h[16:], tw.n)
	if _, err := tw.f.WriteAt(h[:], 0); err != nil {
		tw.f.Abort()
		return fmt.Errorf("token file %s: %w", tw.f.Path(), err)
	}
	return tw.f.Commit()
}

// WriteTokens writes ids as a token file for a vocabulary of vocab ids.
func WriteTokens(path string, ids []int, vocab int) error {
	tw, err := newTokenWriter(path, vocab)
	if err != nil {
		return err
	}
	if err := tw.write(ids); err != nil {
		tw.f.Abort()
		return fmt.Errorf("token file %s: %w", path, err)
	}
	return tw.commit()
}

// chunkSize is about how much text is encoded at once (a variable so tests
// can make many chunks of a small file). cutPoint places the cuts so that
// the chunks encode to the ids of the whole text.
var chunkSize = 1 << 16

// ErrEmptyCorpus is returned for corpora without any text.
var ErrEmptyCorpus = errors.New("empty corpus")

// PrepareData tokenizes the text files corpora with tok into the token file
// out, each file starting with the BOS id: the work `modelc data prepare`
// does once for a big corpus, and `train` does for a text file. It returns
// the number of ids written. Nothing is left at out on error.
func PrepareData(corpora []string, tok tokenizer.Tokenizer, out string) (int64, error) {
	if len(corpora) == 0 {
		return 0, fmt.Errorf("prepare data: no corpus files given")
	}
	tw, err := newTokenWriter(out, tok.VocabSize())
	if err != nil {
		return 0, fmt.Errorf("prepare data: %w", err)
	}
	for _, path := range corpora {
		if err := encodeFile(tw, path, tok); err != nil {
			tw.f.Abort()
			return 0, fmt.Errorf("prepare data: %w", err)
		}
	}
	if tw.n == 0 {
		tw.f.Abort()
		return 0, fmt.Errorf("prepare data: %w", ErrEmptyCorpus)
	}
	n := int64(tw.n)
	if err := tw.commit(); err != nil {
		return 0, fmt.Errorf("prepare data: %w", err)
	}
	return n, nil
}

func encodeFile(tw *tokenWriter, path string, tok tokenizer.Tokenizer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return fmt.Errorf("%s: is a directory, not a text file", path)
	}
	encode := chunkEncoder(tok)
	r := bufio.NewReaderSize(f, 4*chunkSize)
	var pending []byte
	first := true
	var off int64
	flush := func(text []byte) error {
		if i := invalidUTF8(text); i >= 0 {
			return fmt.Errorf("%s: invalid UTF-8 at byte offset %d", path, off+int64(i))
		}
		ids, err := encode(string(text), first)
		if err != nil {
			return fmt.Errorf("%s: byte offset %d: encode: %w", path, off, err)
		}
		first = false
		off += int64(len(text))
		return tw.write(ids)
	}
	buf := make([]byte, chunkSize)
	for {
		n, rerr := r.Read(buf)
		pending = append(pending, buf[:n]...)
		for len(pending) >= 4*chunkSize {
			cut := cutPoint(pending)
			if err := flush(pending[:cut]); err != nil {
				return err
			}
			pending = append(pending[:0], pending[cut:]...)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("%s: %w", path, rerr)
		}
	}
	if len(bytes.TrimSpace(pending)) > 0 || (len(pending) > 0 && !first) {
		return flush(pending)
	}
	return nil
}

// chunkEncoder returns the encoding of one chunk of a file: BOS before the
// first only, and for SentencePiece the dummy prefix too (it marks the start
// of the text; before a later chunk it would be a stray space).
func chunkEncoder(tok tokenizer.Tokenizer) func(text string, first bool) ([]int, error) {
	if sp, ok := tok.(*tokenizer.SentencePiece); ok {
		return func(text string, first bool) ([]int, error) {
			return sp.EncodeWith(text, tokenizer.EncodeOptions{BOS: first, Continue: !first})
		}
	}
	return func(text string, first bool) ([]int, error) { return tok.Encode(text, first, false) }
}

// invalidUTF8 returns the index of the first byte of b that is not part of
// valid UTF-8, or -1.
func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, w := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && w == 1 {
			return i
		}
		i += w
	}
	return -1
}

// cutPoint picks where to end a chunk of text (len ≥ 4·chunkSize), past
// chunkSize, so that encoding the chunks one after the other gives the ids
// of the whole text: before a newline that is
//
//  1. the second of a blank line that text follows ("\n|\nX"), else
//  2. next to a non-space character ("X|\n" or "\r|\nX"), else
//  3. at a UTF-8 boundary, where a token may be split (no newline in
//     3·chunkSize of text).
//
// Cuts 1 and 2 fall between pre-tokens of GPT-2's regex. A whitespace run
// followed by a non-space splits as \s+(?!\S), the run less its last
// character, then that character ("\n" does not join the next word as " "
// does): "…\r\n\nX" is "…\r\n" "\n" "X" whatever precedes the run, and
// chunk one's "…\r\n" is a run at the end of its text, which \s+ takes
// whole. No pre-token reaches from a non-space into the whitespace after
// it. For SentencePiece "\n" is a byte-fallback token in Llama's,
// llama2.c's and modelc's vocabularies (no piece holds it), which never
// merges, so no merge reaches across the cut. ("\r" is not: Llama has
// ".\r".) A vocabulary with pieces holding "\n" could still merge across.
func cutPoint(b []byte) int {
	// Stop utf8.UTFMax short of the end so the character after a cut is
	// always whole.
	end := len(b) - utf8.UTFMax
	spaceAfter := func(q int) bool { r, _ := utf8.DecodeRune(b[q+1:]); return unicode.IsSpace(r) }
	spaceBefore := func(q int) bool { r, _ := utf8.DecodeLastRune(b[:q]); return unicode.IsSpace(r) }
	for q := chunkSize; q < end; q++ {
		if b[q] == '\n' && b[q-1] == '\n' && !spaceAfter(q) {
			return q
		}
	}
	for q := chunkSize; q < end; q++ {
		if b[q] == '\n' && (!spaceBefore(q) || !spaceAfter(q)) {
			return q
		}
	}
	c := chunkSize
	for c < len(b) && !utf8.RuneStart(b[c]) {
		c++
	}
	return c
}
