package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/modelc/modelc/generated/stories260k"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generate"
	"github.com/modelc/modelc/runtime/sample"
	"github.com/modelc/modelc/tokenizer"
)

func main() {
	p, _, err := checkpoint.Load("../shared/data/models/stories260K.bin")
	if err != nil {
		panic(err)
	}
	tok, err := tokenizer.LoadLlama2C("../shared/data/models/tok512.bin", 512)
	if err != nil {
		panic(err)
	}
	m, _ := stories260k.New(p)
	var out io.Writer = io.Discard
	if os.Getenv("STDOUT") != "" {
		out = os.Stdout
	}
	for _, sp := range []sample.Params{{Temperature: 0, TopP: 0.9}, {Temperature: 1, TopP: 1}, {Temperature: 1, TopP: 0.9}} {
		var dec, n float64
		if len(os.Args) > 1 && sp.Temperature == 0 {
			f, _ := os.Create(os.Args[1])
			pprof.StartCPUProfile(f)
		}
		t0 := time.Now()
		for i := 0; time.Since(t0) < 2*time.Second; i++ {
			sp.Seed = uint64(i + 1)
			s, _ := sample.New(sp)
			st, err := generate.Generate(context.Background(), m.NewSession(), tok, s, generate.Options{Prompt: "Once upon a time", Steps: 256, MaxSeq: 512}, out)
			if err != nil {
				panic(err)
			}
			dec += st.DecodeSeconds
			n += float64(st.DecodeTokens)
		}
		if len(os.Args) > 1 && sp.Temperature == 0 {
			pprof.StopCPUProfile()
		}
		fmt.Fprintf(os.Stderr, "%+v: %.0f tok/s (%.2f µs/token)\n", sp, n/dec, dec/n*1e6)
	}
}
