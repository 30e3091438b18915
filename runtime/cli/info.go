package cli

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/cpu"

	"github.com/modelc/modelc/runtime/screen"
	"github.com/modelc/modelc/spec"
)

func (a *app) infoCmd() *cobra.Command {
	var modelPath string
	cmd := &cobra.Command{
		Use:   "info [--model FILE]",
		Short: "Show the compiled shape, the kernel path in use and the CPU",
		Long: `Info prints the spec this binary was compiled for, the kernel path it runs
on this machine, and with --model whether a model file fits it.`,
		Example: fmt.Sprintf("  %[1]s info\n  %[1]s info --model stories260K.bin", a.name),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			fmt.Fprintln(w, "compiled for:")
			showSpec(w, a.spec)
			path := "not reported by this binary"
			if a.cfg.kernelPath != nil {
				path = a.cfg.kernelPath()
			}
			if modelPath == "" {
				fmt.Fprintf(w, "kernels: %s\n", path)
				fmt.Fprintf(w, "greedy: %s\n", greedyPath(a.spec))
				fmt.Fprintf(w, "cpu: %s/%s, %d cores, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuFeatures())
				return nil
			}
			p, f, err := a.loadParams(modelPath, true)
			if err != nil {
				return err
			}
			if f != nil {
				defer f.Close()
			}
			fit := "fits this binary"
			if err := checkSpec(&p.Spec, a.spec); err != nil {
				fit = "does not fit: " + err.Error() + " (--generic runs it)"
			} else if a.cfg.kernelPath == nil {
				if m, err := a.build(p, false); err == nil {
					if kp, ok := m.(KernelPather); ok {
						path = kp.KernelPath()
					}
				}
			}
			fmt.Fprintf(w, "kernels: %s\n", path)
			fmt.Fprintf(w, "greedy: %s\n", greedyPath(a.spec))
			fmt.Fprintf(w, "cpu: %s/%s, %d cores, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuFeatures())
			fmt.Fprintf(w, "model %s: vocab %d, dim %d, layers %d, heads %d, kv_heads %d, ffn_dim %d, max_seq %d: %s\n",
				modelPath, p.Spec.Vocab, p.Spec.Dim, p.Spec.Layers, p.Spec.Heads, p.Spec.KVHeads, p.Spec.FFNDim, p.Spec.MaxSeq, fit)
			return nil
		},
	}
	cmd.Flags().StringVarP(&modelPath, "model", "m", "", "a model file to check against the compiled shape")
	return cmd
}

// greedyPath says how greedy decoding finds its tokens in this binary's
// compiled model (runtime/screen).
func greedyPath(s *spec.Spec) string {
	switch {
	case s.Quant != "" && s.Quant != "f32":
		return "every logit is made (the classifier is quantised)"
	case !screen.Available():
		return "every logit is made (the classifier screen needs AVX2, AVX-512 VNNI or NEON with SDOT)"
	}
	return "the classifier is screened (" + screen.Path() + ": an int8 copy finds the rows that can win; only those are computed in F32)"
}

// showSpec prints the spec with its own Show when it has one.
func showSpec(w io.Writer, s *spec.Spec) {
	if sh, ok := any(s).(interface{ Show(io.Writer) }); ok {
		sh.Show(w)
		return
	}
	fmt.Fprintf(w, "  vocab %d, dim %d, layers %d, heads %d, kv_heads %d, ffn_dim %d, max_seq %d, norm_eps %g, rope_theta %g, tie_embeddings %v, quant %s\n",
		s.Vocab, s.Dim, s.Layers, s.Heads, s.KVHeads, s.FFNDim, s.MaxSeq, s.NormEps, s.RopeTheta, s.TieEmbeddings, s.Quant)
}

// cpuFeatures lists the SIMD features the kernel dispatch looks at.
func cpuFeatures() string {
	var fs []string
	add := func(ok bool, name string) {
		if ok {
			fs = append(fs, name)
		}
	}
	switch runtime.GOARCH {
	case "amd64":
		add(cpu.X86.HasAVX2, "avx2")
		add(cpu.X86.HasFMA, "fma")
		add(cpu.X86.HasAVX512F, "avx512f")
		add(cpu.X86.HasAVX512VNNI, "avx512vnni")
	case "arm64":
		add(cpu.ARM64.HasASIMD, "neon")
		add(cpu.ARM64.HasASIMDDP, "dotprod")
	}
	if len(fs) == 0 {
		return "no SIMD features detected"
	}
	return strings.Join(fs, " ")
}
