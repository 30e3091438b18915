package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/internal/atomicfile"
	"github.com/modelc/modelc/tokenizer"
)

func tokenizerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokenizer",
		Short: "Train BPE vocabularies; encode, decode and measure text with any vocabulary",
		Long: `tokenizer trains byte-level (GPT-2 style) or SentencePiece-style BPE
vocabularies into vocabulary-only GGUF files, and encodes, decodes and
measures text with any vocabulary modelc reads: GGUF (a model with its
tokenizer, or vocabulary only; "llama" and "gpt2" tokenizers), GPT-2's
encoder.json with vocab.bpe beside it, a SentencePiece tokenizer.model (BPE)
or a llama2.c tokenizer.bin. The format is detected from the file.`,
	}
	cmd.AddCommand(tokTrainCmd(), tokEncodeCmd(), tokDecodeCmd(), tokStatsCmd())
	return cmd
}

// tokFlags are the flags every command that loads a vocabulary shares.
type tokFlags struct {
	path  string
	vocab int
}

func (f *tokFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.path, "tokenizer", "", "vocabulary: GGUF, encoder.json (+ vocab.bpe), tokenizer.model or tokenizer.bin (required)")
	cmd.Flags().IntVar(&f.vocab, "vocab", 0, "vocabulary size: checked when given; a llama2.c tokenizer.bin is read to the end without it")
	cmd.MarkFlagRequired("tokenizer")
}

func (f *tokFlags) load() (tokenizer.Tokenizer, error) {
	if f.vocab < 0 {
		return nil, fmt.Errorf("--vocab %d: must be ≥ 0", f.vocab)
	}
	return tokenizer.Load(f.path, f.vocab)
}

// specialFlags are --parse-special / --no-parse-special. Special-token text
// is parsed by default, as llama.cpp's llama-tokenize does.
type specialFlags struct{ parse, noParse bool }

func (f *specialFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.parse, "parse-special", false, "map special-token text (\"<s>\", \"<|endoftext|>\") in the input to its id (the default)")
	cmd.Flags().BoolVar(&f.noParse, "no-parse-special", false, "treat special-token text in the input as plain text")
	cmd.MarkFlagsMutuallyExclusive("parse-special", "no-parse-special")
}

// encoder returns a function encoding one text with t, with BOS/EOS and
// special-token parsing as asked. The Tokenizer interface has no option
// for special tokens, so the two concrete kinds are handled here.
func encoder(t tokenizer.Tokenizer, path string, bos, eos, parse bool) (func(string) ([]int, error), error) {
	if bos && t.BOS() < 0 {
		return nil, fmt.Errorf("--bos: %s has no BOS token", path)
	}
	if eos && t.EOS() < 0 {
		return nil, fmt.Errorf("--eos: %s has no EOS token", path)
	}
	switch tk := t.(type) {
	case *tokenizer.SentencePiece:
		o := tokenizer.EncodeOptions{BOS: bos, EOS: eos, ParseSpecial: parse}
		return func(s string) ([]int, error) { return tk.EncodeWith(s, o) }, nil
	case *tokenizer.ByteLevel:
		if parse {
			return func(s string) ([]int, error) { return tk.Encode(s, bos, eos) }, nil
		}
		return func(s string) ([]int, error) {
			ids := make([]int, 0, len(s)/4+2)
			if bos {
				ids = append(ids, tk.BOS())
			}
			ids = tk.AppendOrdinary(ids, s)
			if eos {
				ids = append(ids, tk.EOS())
			}
			return ids, nil
		}, nil
	}
	if !parse {
		return nil, fmt.Errorf("--no-parse-special: not supported for %T", t)
	}
	return func(s string) ([]int, error) { return t.Encode(s, bos, eos) }, nil
}

// eachLine calls fn for every line of r without its "\n" (a "\r" stays,
// so CRLF text survives a round trip); a last line without "\n" counts.
func eachLine(r io.Reader, fn func(n int, line string) error) error {
	br := bufio.NewReaderSize(r, 1<<16)
	for n := 1; ; n++ {
		line, err := br.ReadString('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("read line %d: %w", n, err)
		}
		if line == "" && err == io.EOF {
			return nil
		}
		if ferr := fn(n, strings.TrimSuffix(line, "\n")); ferr != nil {
			return ferr
		}
		if err == io.EOF {
			return nil
		}
	}
}

func tokEncodeCmd() *cobra.Command {
	var tf tokFlags
	var sf specialFlags
	var bos, eos bool
	cmd := &cobra.Command{
		Use:   "encode --tokenizer FILE [--bos] [--eos] < text",
		Short: "Encode standard input: one line of space-separated ids per input line",
		Long: `encode reads standard input and prints, for each input line (without its
newline), one line of space-separated token ids. Special-token text in the
input ("<s>", "<|endoftext|>", chat markers) becomes its id unless
--no-parse-special is given (SentencePiece vocabularies still match their
user-defined tokens then, as llama.cpp does).`,
		Example: `  echo "Hello world" | modelc tokenizer encode --tokenizer ../shared/data/tokenizer/ggml-vocab-llama-spm.gguf
  modelc tokenizer encode --tokenizer tok.gguf --bos < text.txt > ids.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := tf.load()
			if err != nil {
				return err
			}
			enc, err := encoder(t, tf.path, bos, eos, !sf.noParse)
			if err != nil {
				return err
			}
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<16)
			var buf []byte
			err = eachLine(cmd.InOrStdin(), func(n int, line string) error {
				ids, err := enc(line)
				if err != nil {
					return fmt.Errorf("line %d: %w", n, err)
				}
				buf = buf[:0]
				for i, id := range ids {
					if i > 0 {
						buf = append(buf, ' ')
					}
					buf = strconv.AppendInt(buf, int64(id), 10)
				}
				buf = append(buf, '\n')
				_, err = w.Write(buf)
				return err
			})
			if err != nil {
				w.Flush() // the lines before the bad one are done: keep them
				return err
			}
			return w.Flush()
		},
	}
	tf.register(cmd)
	sf.register(cmd)
	cmd.Flags().BoolVar(&bos, "bos", false, "put the BOS id before each line")
	cmd.Flags().BoolVar(&eos, "eos", false, "put the EOS id after each line")
	return cmd
}

func tokDecodeCmd() *cobra.Command {
	var tf tokFlags
	var special bool
	cmd := &cobra.Command{
		Use:   "decode --tokenizer FILE < ids",
		Short: "Decode standard input: each line of space-separated ids becomes one line of text",
		Long: `decode reads lines of space-separated token ids (as encode prints them) and
prints each line's text followed by a newline. BOS, EOS and other control
tokens print nothing unless --special is given. A number that is not a token
id is an error naming its line and position.`,
		Example: "  modelc tokenizer encode --tokenizer tok.gguf < a.txt | modelc tokenizer decode --tokenizer tok.gguf",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := tf.load()
			if err != nil {
				return err
			}
			decode := t.Decode
			if special {
				ds, ok := t.(interface{ DecodeSpecial([]int) (string, error) })
				if !ok {
					return fmt.Errorf("--special: not supported for %T", t)
				}
				decode = ds.DecodeSpecial
			}
			size := t.VocabSize()
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<16)
			var ids []int
			err = eachLine(cmd.InOrStdin(), func(n int, line string) error {
				ids = ids[:0]
				for i, f := range strings.Fields(line) {
					id, err := strconv.Atoi(f)
					if err != nil {
						return fmt.Errorf("line %d, token %d: %q is not a token id", n, i+1, f)
					}
					if id < 0 || id >= size {
						return fmt.Errorf("line %d, token %d: id %d is not in the vocabulary [0, %d)", n, i+1, id, size)
					}
					ids = append(ids, id)
				}
				s, err := decode(ids)
				if err != nil {
					return fmt.Errorf("line %d: %w", n, err)
				}
				w.WriteString(s)
				return w.WriteByte('\n')
			})
			if err != nil {
				w.Flush() // the lines before the bad one are done: keep them
				return err
			}
			return w.Flush()
		},
	}
	tf.register(cmd)
	cmd.Flags().BoolVar(&special, "special", false, "write control tokens (BOS, EOS, chat markers) as their text")
	return cmd
}

func tokTrainCmd() *cobra.Command {
	var vocab, minFreq int
	var style, out string
	var specials []string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "train --vocab N --style bytelevel|sentencepiece CORPUS... -o tok.gguf",
		Short: "Learn a BPE vocabulary from text files into a vocabulary-only GGUF",
		Long: `train learns a BPE vocabulary from the corpus files (read one after the
other, "-" for standard input) and writes it as GGUF tokenizer.ggml.* metadata.

  bytelevel      GPT-2 style: merges over bytes, on words split by GPT-2's
                 pre-tokenizer; "<|endoftext|>" is id 0 (BOS and EOS). A "gpt2"
                 GGUF vocabulary that represents any byte string.
  sentencepiece  merges over characters, each line a sentence, "▁" for
                 spaces; <unk> <s> </s> and byte-fallback tokens <0x00>..<0xFF>.
                 A "llama" GGUF vocabulary, as llama2.c and Llama use.

--vocab counts every token (special and byte tokens included); training stops
earlier when no pair is seen --min-frequency times. Special tokens (--special,
repeatable) are never split and their text in the corpus is not learned from.`,
		Example: `  modelc tokenizer train --vocab 4096 --style bytelevel ../shared/data/text/tinyshakespeare.txt -o tok.gguf
  modelc tokenizer train --vocab 512 --style sentencepiece --special '<|im_start|>' --special '<|im_end|>' a.txt b.txt -o tok.gguf`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("-o FILE is required")
			}
			if err := atomicfile.NotInput("-o", out, args...); err != nil {
				return err
			}
			st, err := tokenizer.ParseTrainStyle(style)
			if err != nil {
				return fmt.Errorf("--style: %w", err)
			}
			if vocab <= 0 {
				return fmt.Errorf("--vocab %d: must be > 0", vocab)
			}
			if minFreq < 0 {
				return fmt.Errorf("--min-frequency %d: must be ≥ 0", minFreq)
			}
			stdin := 0
			for _, p := range args {
				if p == "-" {
					if stdin++; stdin > 1 {
						return errors.New("standard input (-) given twice")
					}
					continue
				}
				fi, err := os.Stat(p)
				if err != nil {
					return fmt.Errorf("corpus: %w", err)
				}
				if fi.IsDir() {
					return fmt.Errorf("corpus %s is a directory", p)
				}
			}
			opts := tokenizer.TrainOptions{VocabSize: vocab, MinFrequency: minFreq, Special: specials, Style: st}
			if !quiet {
				opts.Progress = cmd.ErrOrStderr()
			}
			start := time.Now()
			r := &corpusReader{paths: args, stdin: cmd.InOrStdin()}
			defer r.Close()
			v, err := tokenizer.Train(r, opts)
			if err != nil {
				return err
			}
			if r.total == 0 {
				return fmt.Errorf("the corpus (%s) is empty: nothing to learn merges from", strings.Join(args, ", "))
			}
			if len(v.Tokens) < vocab && !quiet {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: the corpus supports %d tokens, fewer than --vocab %d: every pair that occurs --min-frequency times is merged\n", len(v.Tokens), vocab)
			}
			if err := v.SaveGGUF(out); err != nil {
				return err
			}
			if !quiet {
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s: %d tokens (%s), %d merges, from %d bytes of %d file(s) in %.2fs\n",
					out, len(v.Tokens), st, v.Stats.Merges, r.total, len(args), time.Since(start).Seconds())
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&vocab, "vocab", 0, "vocabulary size, special and byte tokens included (required)")
	cmd.Flags().StringVar(&style, "style", "bytelevel", "bytelevel or sentencepiece")
	cmd.Flags().IntVar(&minFreq, "min-frequency", 0, "lowest count of a pair worth merging (0: 2)")
	cmd.Flags().StringArrayVar(&specials, "special", nil, "special token text, never split (repeatable)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing on success")
	cmd.Flags().StringVarP(&out, "output", "o", "", "GGUF file to write (required)")
	cmd.MarkFlagRequired("vocab")
	return cmd
}

// corpusReader reads the corpus files one after the other, putting a
// newline between two files when the first does not end with one, so
// that the last line of a file and the first of the next stay apart.
type corpusReader struct {
	paths []string
	stdin io.Reader
	next  int       // index of the next file to open
	cur   io.Reader // nil between files
	close func() error
	name  string
	last  byte  // last byte read from the current file
	n     int64 // bytes read from the current file
	nl    bool  // a separating newline is due
	total int64 // bytes read from all files
}

func (c *corpusReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.cur == nil {
			if c.nl {
				c.nl = false
				p[0] = '\n'
				return 1, nil
			}
			if c.next == len(c.paths) {
				return 0, io.EOF
			}
			c.name = c.paths[c.next]
			c.next++
			c.n, c.last = 0, 0
			if c.name == "-" {
				c.cur, c.close, c.name = c.stdin, nil, "standard input"
			} else {
				f, err := os.Open(c.name)
				if err != nil {
					return 0, fmt.Errorf("corpus: %w", err)
				}
				c.cur, c.close = f, f.Close
			}
		}
		k, err := c.cur.Read(p)
		if k > 0 {
			c.n += int64(k)
			c.total += int64(k)
			c.last = p[k-1]
		}
		if err == io.EOF {
			c.nl = c.n > 0 && c.last != '\n' && c.next < len(c.paths)
			if cerr := c.Close(); cerr != nil {
				return k, cerr
			}
			if k > 0 {
				return k, nil
			}
			continue
		}
		if err != nil {
			return k, fmt.Errorf("corpus %s: %w", c.name, err)
		}
		return k, nil
	}
}

// Close closes the file being read, if any.
func (c *corpusReader) Close() error {
	c.cur = nil
	if c.close == nil {
		return nil
	}
	err := c.close()
	c.close = nil
	if err != nil {
		return fmt.Errorf("corpus %s: %w", c.name, err)
	}
	return nil
}

func tokStatsCmd() *cobra.Command {
	var tf tokFlags
	var sf specialFlags
	var top int
	var whole bool
	cmd := &cobra.Command{
		Use:   "stats --tokenizer FILE CORPUS...",
		Short: "Measure a vocabulary on text: tokens per byte, vocabulary use, most frequent tokens",
		Long: `stats encodes the corpus files and reports tokens per byte (and bytes per
token), how much of the vocabulary the text uses (distinct ids / vocabulary
size, and how many ids are never used) and the most frequent tokens.

Each line is encoded on its own, as encode does, and its newline is not
counted; --whole encodes each file as one text, newlines included.`,
		Example: "  modelc tokenizer stats --tokenizer tok.gguf ../shared/data/text/tinyshakespeare.txt",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if top < 0 {
				return fmt.Errorf("--top %d: must be ≥ 0", top)
			}
			t, err := tf.load()
			if err != nil {
				return err
			}
			enc, err := encoder(t, tf.path, false, false, !sf.noParse)
			if err != nil {
				return err
			}
			size := t.VocabSize()
			counts := make([]int64, size)
			var bytes, tokens, lines int64
			add := func(s string) error {
				ids, err := enc(s)
				if err != nil {
					return err
				}
				bytes += int64(len(s))
				tokens += int64(len(ids))
				for _, id := range ids {
					if id < 0 || id >= size {
						return fmt.Errorf("encoder gave id %d outside [0, %d)", id, size)
					}
					counts[id]++
				}
				return nil
			}
			for _, p := range args {
				if whole {
					b, err := os.ReadFile(p)
					if err != nil {
						return fmt.Errorf("corpus: %w", err)
					}
					if err := add(string(b)); err != nil {
						return fmt.Errorf("%s: %w", p, err)
					}
					lines += int64(strings.Count(string(b), "\n"))
					continue
				}
				f, err := os.Open(p)
				if err != nil {
					return fmt.Errorf("corpus: %w", err)
				}
				err = eachLine(f, func(n int, line string) error {
					lines++
					if err := add(line); err != nil {
						return fmt.Errorf("line %d: %w", n, err)
					}
					return nil
				})
				f.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
			}
			return writeStats(cmd.OutOrStdout(), t, tf.path, counts, bytes, tokens, lines, len(args), whole, top)
		},
	}
	tf.register(cmd)
	sf.register(cmd)
	cmd.Flags().IntVar(&top, "top", 20, "how many of the most frequent tokens to list")
	cmd.Flags().BoolVar(&whole, "whole", false, "encode each file as one text (newlines included) instead of line by line")
	return cmd
}

func writeStats(w io.Writer, t tokenizer.Tokenizer, path string, counts []int64, bytes, tokens, lines int64, files int, whole bool, top int) error {
	kind := "SentencePiece-style"
	if _, ok := t.(*tokenizer.ByteLevel); ok {
		kind = "byte-level"
	}
	size := len(counts)
	used := 0
	for _, c := range counts {
		if c > 0 {
			used++
		}
	}
	ratio := func(a, b int64) float64 {
		if b == 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	mode := "line by line, newlines not counted"
	if whole {
		mode = "each file whole"
	}
	fmt.Fprintf(w, "tokenizer   %s (%s, %d tokens)\n", path, kind, size)
	fmt.Fprintf(w, "corpus      %d file(s), %d lines, %d bytes (%s)\n", files, lines, bytes, mode)
	fmt.Fprintf(w, "tokens      %d: %.4f tokens per byte, %.3f bytes per token\n", tokens, ratio(tokens, bytes), ratio(bytes, tokens))
	fmt.Fprintf(w, "vocabulary  %d of %d ids used (%.1f%%), %d never used\n", used, size, 100*ratio(int64(used), int64(size)), size-used)
	if top == 0 || tokens == 0 {
		return nil
	}
	order := make([]int, 0, used)
	for id, c := range counts {
		if c > 0 {
			order = append(order, id)
		}
	}
	// Most frequent first; the lower id first on ties, so output is stable.
	sort.Slice(order, func(a, b int) bool {
		ca, cb := counts[order[a]], counts[order[b]]
		return ca > cb || (ca == cb && order[a] < order[b])
	})
	if len(order) > top {
		order = order[:top]
	}
	fmt.Fprintf(w, "most frequent tokens:\n%6s %8s %10s %7s  %s\n", "rank", "id", "count", "share", "token")
	for i, id := range order {
		fmt.Fprintf(w, "%6d %8d %10d %6.2f%%  %s\n", i+1, id, counts[id], 100*ratio(counts[id], tokens), tokenText(t, id))
	}
	return nil
}

// tokenText shows a token as it is stored, quoted: SentencePiece pieces with
// their spaces, byte-level tokens as their bytes.
func tokenText(t tokenizer.Tokenizer, id int) string {
	switch tk := t.(type) {
	case *tokenizer.SentencePiece:
		if p, _, _, err := tk.Token(id); err == nil {
			return strconv.Quote(p)
		}
	case *tokenizer.ByteLevel:
		if b := tk.TokenBytes(id); b != nil {
			return strconv.Quote(string(b))
		}
	}
	b, err := t.Piece(-1, id)
	if err != nil {
		return "?"
	}
	return strconv.Quote(string(b))
}
