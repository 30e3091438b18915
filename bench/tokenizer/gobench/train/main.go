// Command train times modelc's BPE trainer on a corpus (one thread) and
// reports its peak RSS, for comparison with spm_train --model_type=bpe.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/modelc/modelc/tokenizer"
)

func main() {
	files := flag.String("input", "", "comma-separated corpus files, read one after another")
	vocab := flag.Int("vocab", 4096, "vocabulary size")
	style := flag.String("style", "sentencepiece", "bytelevel or sentencepiece")
	out := flag.String("out", "", "write the vocabulary as a GGUF file")
	quiet := flag.Bool("q", false, "no progress on stderr")
	minFreq := flag.Int("minfreq", 0, "lowest pair count merged (0: the library default, 2; spm_train merges down to 1)")
	flag.Parse()
	runtime.GOMAXPROCS(1)
	if err := run(*files, *vocab, *minFreq, *style, *out, *quiet); err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
}

func run(files string, vocab, minFreq int, styleName, out string, quiet bool) error {
	style, err := tokenizer.ParseTrainStyle(styleName)
	if err != nil {
		return err
	}
	if files == "" {
		return fmt.Errorf("no -input")
	}
	var readers []io.Reader
	for _, f := range strings.Split(files, ",") {
		fh, err := os.Open(f)
		if err != nil {
			return err
		}
		defer fh.Close()
		// A file that does not end in a newline must not run into the next.
		readers = append(readers, fh, bytes.NewReader([]byte("\n")))
	}
	opts := tokenizer.TrainOptions{VocabSize: vocab, Style: style, MinFrequency: minFreq}
	if !quiet {
		opts.Progress = os.Stderr
	}
	start := time.Now()
	v, err := tokenizer.Train(io.MultiReader(readers...), opts)
	if err != nil {
		return err
	}
	el := time.Since(start)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("modelc train %s vocab %d: %d tokens, %d merges, %.3fs (count %.3fs, merge %.3fs), peak RSS %.1f MB, %d bytes, %d distinct words\n",
		style, vocab, len(v.Tokens), v.Stats.Merges, el.Seconds(), v.Stats.CountTime.Seconds(), v.Stats.MergeTime.Seconds(),
		float64(ru.Maxrss)/1024, v.Stats.Bytes, v.Stats.DistinctWords)
	if out != "" {
		return v.SaveGGUF(out)
	}
	return nil
}
