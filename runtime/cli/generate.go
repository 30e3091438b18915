package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/runtime/generate"
	"github.com/modelc/modelc/runtime/sample"
)

func (a *app) generateCmd() *cobra.Command {
	var (
		modelPath, tokPath, prompt string
		steps, threads             int
		sp                         = sample.Defaults()
		useGeneric                 bool
	)
	cmd := &cobra.Command{
		Use:   "generate --model FILE [--tokenizer FILE] --prompt TEXT",
		Short: "Continue a prompt; the text goes to stdout, speed to stderr",
		Long: `Generate continues the prompt the way llama2.c's run.c does: the prompt (with
BOS) is forced, then tokens are sampled until BOS or EOS, or until --steps
positions (prompt included) have run. The text streams to stdout; the last
line on stderr reports prompt and decode speed. Temperature 0 is greedy and
deterministic; otherwise --seed makes a run repeatable.`,
		Example: fmt.Sprintf(`  %[1]s generate --model stories260K.bin --tokenizer tok512.bin --prompt "Once upon a time" -t 0
  %[1]s generate --model model.gguf --prompt "Hello" --temperature 0.8 --top-p 0.95 --seed 42`, a.name),
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected argument %q: the prompt goes in --prompt (-i)", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			randomSeed := !cmd.Flags().Changed("seed")
			if randomSeed {
				sp.Seed = uint64(time.Now().UnixNano())
			}
			if err := sp.Validate(); err != nil {
				return err
			}
			if steps < 0 {
				return fmt.Errorf("--steps: must be ≥ 0 (0 = the model's max_seq), got %d", steps)
			}
			if err := a.setThreads(threads); err != nil {
				return err
			}
			p, f, err := a.loadParams(modelPath, useGeneric)
			if err != nil {
				return err
			}
			if f != nil {
				defer f.Close()
			}
			tok, err := loadTokenizer(tokPath, f, modelPath, p.Spec.Vocab)
			if err != nil {
				return err
			}
			m, err := a.build(p, useGeneric)
			if err != nil {
				return err
			}
			sampler, err := sample.New(sp)
			if err != nil {
				return err
			}
			if randomSeed && sp.Temperature > 0 {
				// As llama.cpp prints its sampler seed: the text can be had again.
				fmt.Fprintf(cmd.ErrOrStderr(), "seed: %d (--seed %[1]d repeats this text)\n", sp.Seed)
			}
			generate.PrepareGreedy(m, sampler)
			st, err := generate.Generate(cmd.Context(), m.NewSession(), tok, sampler,
				generate.Options{Prompt: prompt, Steps: steps, MaxSeq: m.Spec().MaxSeq, Coalesce: generate.DefaultCoalesce}, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if w := st.Warning(m.Spec().MaxSeq); w != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), w)
			}
			fmt.Fprintln(cmd.ErrOrStderr(), st.Line())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&modelPath, "model", "m", "", "model file: llama2.c .bin or GGUF (required)")
	fl.StringVarP(&tokPath, "tokenizer", "z", "", "tokenizer file (llama2.c .bin, GGUF, …); default: the one inside a GGUF model")
	fl.StringVarP(&prompt, "prompt", "i", "", "text to continue")
	fl.IntVarP(&steps, "steps", "n", 256, "positions to run, prompt included; 0 = max_seq")
	fl.Float64VarP(&sp.Temperature, "temperature", "t", sp.Temperature, "sampling temperature; 0 = greedy")
	fl.Float64VarP(&sp.TopP, "top-p", "p", sp.TopP, "nucleus sampling mass in (0, 1]; 1 = off")
	fl.IntVarP(&sp.TopK, "top-k", "k", 0, "keep the k most probable tokens; 0 = off")
	fl.Uint64VarP(&sp.Seed, "seed", "s", 0, "random seed (default: from the clock)")
	fl.IntVar(&threads, "threads", defaultThreads(), "worker threads")
	fl.BoolVar(&useGeneric, "generic", false, "run the generic model instead of the compiled one (for comparisons)")
	return cmd
}
