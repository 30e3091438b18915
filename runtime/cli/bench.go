package cli

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/sample"
	"github.com/modelc/modelc/runtime/screen"
)

func (a *app) benchCmd() *cobra.Command {
	var (
		modelPath                   string
		random, useGeneric, compare bool
		fullLogits                  bool
		steps, threads, rounds      int
		seed                        uint64
	)
	cmd := &cobra.Command{
		Use:   "bench (--model FILE | --random) [--steps N] [--compare]",
		Short: "Measure decode and prefill speed, optionally against the generic model",
		Long: `Bench runs greedy decoding for --steps positions and a prefill of the same
tokens, and prints tokens per second. --random draws weights from --seed
(Gaussian, std 0.02) for shapes with no checkpoint. --compare runs the compiled
and the generic model on the same weights and prints the speedup. Each figure
is the best of --rounds runs, the models taking turns. Each run first decodes 4
tokens and prefills one batch untimed (faulting in the weights and scratch),
and collects the heap before each timer.

Greedy decoding needs only the largest logit: a compiled float model finds it
by screening the classifier with an int8 copy (AVX-512 VNNI, AVX2, NEON
SDOT) and computing in F32 only the rows that can win, the same token as from
every logit. The decode line says "screened" when it did. --full-logits
makes every logit each token, as sampling with a temperature does.`,
		Example: fmt.Sprintf("  %[1]s bench --random --steps 128 --compare\n  %[1]s bench --model stories260K.bin --threads 1", a.name),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if random == (modelPath != "") {
				return fmt.Errorf("bench: give exactly one of --model FILE and --random")
			}
			if compare && useGeneric {
				return fmt.Errorf("bench: --compare already runs the generic model; drop --generic")
			}
			if rounds < 1 {
				return fmt.Errorf("--rounds: must be ≥ 1, got %d", rounds)
			}
			if steps < 1 {
				return fmt.Errorf("--steps: must be ≥ 1, got %d", steps)
			}
			if err := a.setThreads(threads); err != nil {
				return err
			}
			var p *model.Params
			if random {
				p = RandomParams(a.spec, seed)
			} else {
				pp, gf, err := a.loadParams(modelPath, useGeneric || compare)
				if err != nil {
					return err
				}
				if gf != nil {
					defer gf.Close()
				}
				p = pp
			}
			w := cmd.OutOrStdout()
			kinds := []bool{useGeneric}
			if compare {
				kinds = []bool{false, true}
			}
			// Rounds interleave the models (A B A B ...) and keep each one's
			// best, so that load from other processes hits both alike.
			models := make([]model.Model, len(kinds))
			for i, g := range kinds {
				m, err := a.build(p, g)
				if err != nil {
					return err
				}
				models[i] = m
			}
			res := make([]benchResult, len(kinds))
			for range rounds {
				for i, m := range models {
					r, err := benchModel(cmd.Context(), m, steps, fullLogits)
					if err != nil {
						return err
					}
					res[i].steps, res[i].screened = r.steps, r.screened
					res[i].decode = max(res[i].decode, r.decode)
					res[i].prefill = max(res[i].prefill, r.prefill)
				}
			}
			for i, g := range kinds {
				res[i].label = "compiled"
				if g {
					res[i].label = "generic"
				}
				res[i].print(w)
			}
			if compare {
				c, g := res[0], res[1]
				fmt.Fprintf(w, "compiled/generic: decode %.2fx, prefill %.2fx\n", c.decode/g.decode, c.prefill/g.prefill)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&modelPath, "model", "m", "", "model file: llama2.c .bin or GGUF")
	fl.BoolVar(&random, "random", false, "use random weights of the compiled shape")
	fl.Uint64Var(&seed, "seed", 1, "seed of the random weights")
	fl.IntVarP(&steps, "steps", "n", 128, "positions to decode (clamped to max_seq)")
	fl.IntVar(&threads, "threads", defaultThreads(), "worker threads")
	fl.BoolVar(&useGeneric, "generic", false, "measure the generic model instead of the compiled one")
	fl.BoolVar(&compare, "compare", false, "measure compiled and generic side by side")
	fl.IntVar(&rounds, "rounds", 3, "interleaved rounds; the best of each model's rounds is reported")
	fl.BoolVar(&fullLogits, "full-logits", false, "make every logit each decoded token (no classifier screen)")
	return cmd
}

type benchResult struct {
	label           string
	steps           int
	decode, prefill float64 // tokens per second
	screened        bool    // decode found the tokens by the classifier screen
}

func (r benchResult) print(w io.Writer) {
	how := ""
	if r.screened {
		how = ", screened"
	}
	fmt.Fprintf(w, "%-8s  decode: %d tokens, %.1f tok/s (%.3f ms/token%s); prefill: %d tokens, %.1f tok/s\n",
		r.label, r.steps, r.decode, 1000/r.decode, how, r.steps, r.prefill)
}

// benchModel decodes greedily from BOS for steps positions on a fresh
// session (model.NextGreedy, or Argmax of every logit with full), then
// prefills the same tokens on another. A warm-up first decodes
// 4 tokens (faulting in the weights) and prefills steps tokens (the batched
// pass's scratch, made on first use), as bench/llamacpp/run.mjs does for
// llama.cpp; the heap is collected before each timer.
func benchModel(ctx context.Context, m model.Model, steps int, full bool) (benchResult, error) {
	s := m.Spec()
	steps = min(steps, s.MaxSeq)
	first := 1 % s.Vocab // BOS in llama2.c vocabularies
	next := model.NextGreedy
	if full {
		next = func(s model.Session, tok, pos int) int { return sample.Argmax(s.Forward(tok, pos)) }
	}
	warm := m.NewSession() // its first Greedy makes the screen
	for pos, tok := 0, first; pos < min(steps, 4); pos++ {
		tok = next(warm, tok, pos)
	}
	m.NewSession().Prefill(slices.Repeat([]int{first}, steps), 0)

	sess := m.NewSession()
	toks := make([]int, steps)
	tok := first
	// The sessions are garbage-collected heap: collect before each timer, as
	// testing.B does, so that no cycle they start runs inside it.
	runtime.GC()
	t0 := time.Now()
	for pos := range steps {
		if pos%16 == 0 {
			if err := ctx.Err(); err != nil {
				return benchResult{}, err
			}
		}
		toks[pos] = tok
		tok = next(sess, tok, pos)
	}
	dec := time.Since(t0).Seconds()

	ps := m.NewSession() // made outside the timer, like the decode session
	runtime.GC()
	t0 = time.Now()
	ps.Prefill(toks, 0)
	pre := time.Since(t0).Seconds()
	_, greedy := sess.(model.Greedy)
	return benchResult{steps: steps, decode: float64(steps) / dec, prefill: float64(steps) / pre,
		screened: greedy && !full && screen.Available()}, nil
}
