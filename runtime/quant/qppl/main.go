// Command qppl measures a GGUF model's perplexity on a text through either
// path a quantised file can take here: the generic model over dequantised
// weights (what `eval` measures) or, with --int, the quantised reference
// runtime/quant/qmodel (8-bit activations and integer dot products, the
// arithmetic of a quantised engine). Both read the same windows: the text
// encoded with the GGUF's tokenizer (no BOS), consecutive windows of --seq
// predicted tokens, each run from position 0 in a fresh session.
//
// Usage: qppl --model X.gguf --data text.txt [--seq 128] [--windows N] [--int]
package main

import (
	"flag"
	"fmt"
	"math"
	"os"

	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/quant/qmodel"
	"github.com/modelc/modelc/tokenizer"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "qppl:", err)
		os.Exit(1)
	}
}

func run() error {
	path := flag.String("model", "", "GGUF model file (with its tokenizer)")
	data := flag.String("data", "", "UTF-8 text to evaluate on")
	seq := flag.Int("seq", 128, "predicted tokens per window")
	windows := flag.Int("windows", 0, "evaluate at most this many windows (0: the whole text)")
	intPath := flag.Bool("int", false, "run runtime/quant/qmodel (integer dots) instead of the generic model")
	flag.Parse()
	if *path == "" || *data == "" || *seq < 1 {
		return fmt.Errorf("usage: qppl --model X.gguf --data text.txt [--seq N ≥ 1] [--windows N] [--int]")
	}
	p, f, err := checkpoint.Load(*path)
	if err != nil {
		return err
	}
	if f == nil {
		return fmt.Errorf("%s: not a GGUF file", *path)
	}
	defer f.Close()
	if *seq > p.Spec.MaxSeq {
		return fmt.Errorf("--seq %d exceeds the context of %d", *seq, p.Spec.MaxSeq)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return err
	}
	text, err := os.ReadFile(*data)
	if err != nil {
		return err
	}
	ids, err := tok.Encode(string(text), false, false)
	if err != nil {
		return err
	}
	var m model.Model
	if *intPath {
		m, err = qmodel.New(f)
	} else {
		m, err = generic.New(p)
	}
	if err != nil {
		return err
	}
	var nll float64
	var n int
	for w := 0; (w+1)*(*seq)+1 <= len(ids) && (*windows == 0 || w < *windows); w++ {
		win := ids[w*(*seq) : (w+1)*(*seq)+1]
		s := m.NewSession()
		for pos := 0; pos < *seq; pos++ {
			logits := s.Forward(win[pos], pos)
			mx := math.Inf(-1)
			for _, v := range logits {
				mx = max(mx, float64(v))
			}
			var z float64
			for _, v := range logits {
				z += math.Exp(float64(v) - mx)
			}
			nll += mx + math.Log(z) - float64(logits[win[pos+1]])
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("%s holds %d tokens: fewer than one window of %d", *data, len(ids), *seq+1)
	}
	path2 := "generic (dequantised)"
	if *intPath {
		path2 = "qmodel (integer)"
	}
	fmt.Printf("%s: %s: loss %.4f nats/token  perplexity %.3f  (%d predicted tokens, windows of %d)\n", *path, path2, nll/float64(n), math.Exp(nll/float64(n)), n, *seq)
	return nil
}
