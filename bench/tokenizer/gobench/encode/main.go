// Command encode measures GPT-2 (r50k) encode throughput of modelc's
// byte-level tokenizer and of github.com/tiktoken-go/tokenizer on the same
// text, one thread, and checks that both give the same ids (and the ids
// the Node.js runner wrote, when -ids is given).
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/modelc/modelc/tokenizer"
	tiktoken "github.com/tiktoken-go/tokenizer"
)

func main() {
	data := flag.String("data", "../../../../shared/data", "the shared data folder")
	passes := flag.Int("passes", 5, "timed passes per tokenizer")
	idsFile := flag.String("ids", "", "ids from bench/tokenizer/encode_bench.js (uint32 little-endian) to compare with")
	flag.Parse()
	runtime.GOMAXPROCS(1)
	if err := run(*data, *passes, *idsFile); err != nil {
		fmt.Fprintln(os.Stderr, "encode:", err)
		os.Exit(1)
	}
}

func corpus(data string) (string, error) {
	var sb strings.Builder
	for _, f := range []string{"text/tinyshakespeare.txt", "retrieval/cran.all.1400"} {
		b, err := os.ReadFile(filepath.Join(data, f))
		if err != nil {
			return "", err
		}
		sb.Write(b)
	}
	return sb.String(), nil
}

// timeIt runs f passes times and returns the best and median MB/s.
func timeIt(n int, size int, f func()) (best, median float64) {
	var r []float64
	for i := 0; i < n; i++ {
		start := time.Now()
		f()
		r = append(r, float64(size)/1e6/time.Since(start).Seconds())
	}
	sort.Float64s(r)
	return r[len(r)-1], r[len(r)/2]
}

func run(data string, passes int, idsFile string) error {
	text, err := corpus(data)
	if err != nil {
		return err
	}
	gpt2, err := tokenizer.LoadGPT2(filepath.Join(data, "tokenizer/gpt2/encoder.json"), filepath.Join(data, "tokenizer/gpt2/vocab.bpe"))
	if err != nil {
		return err
	}
	tk, err := tiktoken.Get(tiktoken.R50kBase)
	if err != nil {
		return err
	}
	fmt.Printf("text: %d bytes; GOMAXPROCS=%d; %s\n", len(text), runtime.GOMAXPROCS(0), runtime.Version())

	ours := gpt2.EncodeOrdinary(text)
	theirs, _, err := tk.Encode(text)
	if err != nil {
		return err
	}
	same := len(ours) == len(theirs)
	for i := 0; same && i < len(ours); i++ {
		same = uint(ours[i]) == theirs[i]
	}
	if !same {
		return fmt.Errorf("modelc and tiktoken-go ids differ (%d vs %d tokens)", len(ours), len(theirs))
	}
	fmt.Printf("ids: modelc == tiktoken-go (%d tokens)\n", len(ours))
	if idsFile != "" {
		b, err := os.ReadFile(idsFile)
		if err != nil {
			return err
		}
		if len(b) != 4*len(ours) {
			return fmt.Errorf("%s holds %d ids, modelc gives %d", idsFile, len(b)/4, len(ours))
		}
		for i, id := range ours {
			if got := binary.LittleEndian.Uint32(b[4*i:]); int(got) != id {
				return fmt.Errorf("%s: id %d is %d, modelc gives %d", idsFile, i, got, id)
			}
		}
		fmt.Printf("ids: modelc == %s\n", idsFile)
	}

	ids := make([]int, 0, len(ours))
	best, med := timeIt(passes, len(text), func() { ids = gpt2.AppendOrdinary(ids[:0], text) })
	fmt.Printf("%-28s best %7.2f MB/s  median %7.2f MB/s\n", "modelc (warm cache)", best, med)
	// Cold: a fresh tokenizer each pass, so the word cache starts empty.
	var cold []float64
	for i := 0; i < passes; i++ {
		g, _ := tokenizer.LoadGPT2(filepath.Join(data, "tokenizer/gpt2/encoder.json"), filepath.Join(data, "tokenizer/gpt2/vocab.bpe"))
		runtime.GC()
		start := time.Now()
		ids = g.AppendOrdinary(ids[:0], text)
		cold = append(cold, float64(len(text))/1e6/time.Since(start).Seconds())
	}
	sort.Float64s(cold)
	fmt.Printf("%-28s best %7.2f MB/s  median %7.2f MB/s\n", "modelc (first pass, cold)", cold[len(cold)-1], cold[len(cold)/2])
	best, med = timeIt(passes, len(text), func() { tk.Encode(text) })
	fmt.Printf("%-28s best %7.2f MB/s  median %7.2f MB/s\n", "tiktoken-go v0.10.0", best, med)
	return nil
}
