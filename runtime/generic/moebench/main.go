// Command moebench produces the figures of runtime/generic/MOE-RESULTS.md:
//
//	moebench train  -out DIR [-steps N] [-coef C] [-experts E] [-topk K]
//	    trains a small MoE on tinyshakespeare (tok512) with runtime/train and
//	    leaves DIR/model.gguf and DIR/metrics.jsonl;
//	moebench greedy -model X.gguf [-steps N]
//	    prints the generic model's greedy ids from BOS as JSON, with the gap
//	    between the two best logits at each step (compare with
//	    bench/llamacpp/run.mjs on the same file);
//	moebench speed  [-threads N]
//	    decode and training tokens/s of an MoE spec against a dense spec
//	    with the same active parameters and one with the same total.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/train"
	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: moebench train|greedy|speed [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "train":
		err = trainCmd(os.Args[2:])
	case "greedy":
		err = greedyCmd(os.Args[2:])
	case "speed":
		err = speedCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (train, greedy, speed)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "moebench:", err)
		os.Exit(1)
	}
}

// sharedData finds /work/shared/data beside the repository root.
func sharedData() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(filepath.Dir(dir), "shared", "data")
			if _, err := os.Stat(d); err != nil {
				return "", fmt.Errorf("shared data: %w", err)
			}
			return d, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

func trainCmd(args []string) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	out := fs.String("out", "", "run folder")
	steps := fs.Int("steps", 400, "optimizer steps")
	coef := fs.Float64("coef", 0.01, "aux loss coefficient (0: none)")
	experts := fs.Int("experts", 8, "experts")
	topk := fs.Int("topk", 2, "experts per token")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("train: -out is required")
	}
	d, err := sharedData()
	if err != nil {
		return err
	}
	tok, err := tokenizer.Load(filepath.Join(d, "models", "tok512.bin"), 512)
	if err != nil {
		return err
	}
	// The shape of runtime/train's TestMoELoadBalance.
	s := &spec.Spec{Name: "moe", Vocab: 512, Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFNDim: 128, MaxSeq: 64,
		MoE: &spec.MoE{Experts: *experts, TopK: *topk, FFNDim: 64 / *topk}}
	s.SetDefaults()
	s.MoE.AuxLossCoef = *coef
	if err := s.Validate(); err != nil {
		return err
	}
	hp := s.Train
	hp.BatchSize, hp.SeqLen = 8, 64
	hp.LR, hp.MinLR, hp.WarmupSteps = 5e-3, 5e-4, 20
	hp.EvalEvery, hp.CheckpointEv = max(1, *steps/4), *steps
	_, err = train.Run(context.Background(), train.Config{Spec: s, Train: hp, Steps: *steps,
		Data: filepath.Join(d, "text", "tinyshakespeare.txt"), Tokenizer: tok, Out: *out, MaskID: -1, EvalBatches: 8})
	return err
}

func greedyCmd(args []string) error {
	fs := flag.NewFlagSet("greedy", flag.ContinueOnError)
	path := fs.String("model", "", "GGUF model")
	steps := fs.Int("steps", 48, "positions from BOS")
	promptIDs := fs.String("prompt-ids", "", "comma-separated prompt ids (as run.mjs): steps+1 ids after it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, f, err := checkpoint.Load(*path)
	if err != nil {
		return err
	}
	if f != nil {
		defer f.Close()
	}
	m, err := generic.New(p)
	if err != nil {
		return err
	}
	if *steps > p.Spec.MaxSeq {
		return fmt.Errorf("-steps %d exceeds max_seq %d", *steps, p.Spec.MaxSeq)
	}
	ss := m.NewSession()
	tok := p.Spec.Tokenizer.BOS
	var ids []int
	var margins []float64
	start, n := 0, *steps
	if *promptIDs != "" {
		var prompt []int
		for _, f := range strings.Split(*promptIDs, ",") {
			v, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || v < 0 || v >= p.Spec.Vocab {
				return fmt.Errorf("-prompt-ids: bad id %q", f)
			}
			prompt = append(prompt, v)
		}
		if len(prompt)+n > p.Spec.MaxSeq {
			return fmt.Errorf("prompt %d + steps %d exceed max_seq %d", len(prompt), n, p.Spec.MaxSeq)
		}
		ss.Prefill(prompt[:len(prompt)-1], 0)
		tok, start, n = prompt[len(prompt)-1], len(prompt)-1, n+1
	}
	for pos := start; pos < start+n; pos++ {
		logits := ss.Forward(tok, pos)
		best, second := 0, -1
		for i, v := range logits {
			if v > logits[best] {
				best, second = i, best
			} else if i != best && (second < 0 || v > logits[second]) {
				second = i
			}
		}
		ids = append(ids, best)
		margins = append(margins, float64(logits[best]-logits[second]))
		tok = best
	}
	return json.NewEncoder(os.Stdout).Encode(struct {
		IDs     []int     `json:"ids"`
		Margins []float64 `json:"margins"`
	}{ids, margins})
}

// speedSpecs: an MoE, a dense model with its active parameters (ffn_dim =
// top_k × expert ffn_dim) and one with its total (experts × expert ffn_dim).
func speedSpecs() []*spec.Spec {
	base := spec.Spec{Vocab: 512, Dim: 256, Layers: 4, Heads: 8, KVHeads: 8, MaxSeq: 256}
	moe := base
	moe.Name, moe.FFNDim = "moe_8x256_top2", 256
	moe.MoE = &spec.MoE{Experts: 8, TopK: 2, FFNDim: 256}
	act := base
	act.Name, act.FFNDim = "dense_active_512", 512
	tot := base
	tot.Name, tot.FFNDim = "dense_total_2048", 2048
	out := []*spec.Spec{&moe, &act, &tot}
	for _, s := range out {
		s.SetDefaults()
	}
	return out
}

func speedCmd(args []string) error {
	fs := flag.NewFlagSet("speed", flag.ContinueOnError)
	threads := fs.Int("threads", 1, "GOMAXPROCS")
	decodeSteps := fs.Int("decode", 128, "decode positions per round")
	trainSteps := fs.Int("train", 3, "training steps (batch 8 × 64) per round")
	rounds := fs.Int("rounds", 3, "interleaved rounds; the best of each is kept")
	ggufDir := fs.String("gguf", "", "also write each spec's weights here as <name>.gguf (tok512 vocabulary) for llama.cpp")
	if err := fs.Parse(args); err != nil {
		return err
	}
	runtime.GOMAXPROCS(*threads)
	specs := speedSpecs()
	type row struct {
		s                   *spec.Spec
		m                   model.Trainable
		decode, trainTok    float64
		decodeCPU, trainCPU float64 // per second of process CPU time
	}
	var rows []*row
	for _, s := range specs {
		p := model.NewParams(s)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range p.Data {
			p.Data[i] = float32(rng.NormFloat64() * 0.05)
		}
		m, err := generic.New(p)
		if err != nil {
			return err
		}
		if *ggufDir != "" {
			d, err := sharedData()
			if err != nil {
				return err
			}
			tok, err := tokenizer.LoadLlama2C(filepath.Join(d, "models", "tok512.bin"), 512)
			if err != nil {
				return err
			}
			if err := checkpoint.SaveGGUF(filepath.Join(*ggufDir, s.Name+".gguf"), p, tok.GGUFMetadata(), false); err != nil {
				return err
			}
		}
		rows = append(rows, &row{s: s, m: m.(model.Trainable)})
	}
	B, T := 8, 64
	for range *rounds {
		for _, r := range rows {
			ss := r.m.NewSession()
			tok := 1
			t0, c0 := time.Now(), cpuSeconds()
			for pos := range *decodeSteps {
				logits := ss.Forward(tok, pos)
				tok = argmax(logits)
			}
			r.decode = max(r.decode, float64(*decodeSteps)/time.Since(t0).Seconds())
			r.decodeCPU = max(r.decodeCPU, float64(*decodeSteps)/(cpuSeconds()-c0))

			tr, err := r.m.NewTrainer(B, T)
			if err != nil {
				return err
			}
			rng := rand.New(rand.NewPCG(3, 4))
			tokens, targets := make([]int32, B*T), make([]int32, B*T)
			for i := range tokens {
				tokens[i], targets[i] = int32(rng.IntN(r.s.Vocab)), int32(rng.IntN(r.s.Vocab))
			}
			t0, c0 = time.Now(), cpuSeconds()
			for range *trainSteps {
				tr.ZeroGrads()
				tr.Forward(tokens, targets, B, T)
				tr.Backward()
			}
			r.trainTok = max(r.trainTok, float64(*trainSteps*B*T)/time.Since(t0).Seconds())
			r.trainCPU = max(r.trainCPU, float64(*trainSteps*B*T)/(cpuSeconds()-c0))
		}
	}
	// Per CPU second as well as per wall second: on a shared machine the
	// process's CPU time is what the work cost, whatever else ran.
	fmt.Printf("| spec | params | active params | decode tok/s | decode tok/CPU-s | train tok/s (fwd+bwd, %d×%d) | train tok/CPU-s |\n|---|---|---|---|---|---|---|\n", B, T)
	for _, r := range rows {
		f := r.s.Figures()
		fmt.Printf("| %s | %.2fM | %.2fM | %.0f | %.0f | %.0f | %.0f |\n", r.s.Name, float64(f.Params)/1e6, float64(f.ActiveParams)/1e6, r.decode, r.decodeCPU, r.trainTok, r.trainCPU)
	}
	return nil
}

// cpuSeconds is the user and system CPU time of the process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] || math.IsNaN(float64(v[best])) {
			best = i
		}
	}
	return best
}
