package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/bench/limits"
	"github.com/modelc/modelc/runtime/cpu"
)

func limitsCmd() *cobra.Command {
	var (
		sizes, threads, paths string
		passes                int
		fmaTime               time.Duration
	)
	cmd := &cobra.Command{
		Use:   "limits",
		Short: "Measure this machine's read bandwidth and FMA peak (the ceilings of decoding)",
		Long: `limits streams buffers of each --sizes with the loads the matvec kernels use
(an FMA whose memory operand is the weight vector, 8 accumulators; the best of
plain loads and loads with a PREFETCHNTA of each line 1 or 4 KiB ahead, the
hint the decode matvecs give, on the assembly paths) and runs
independent FMA chains in registers, on each thread count of --threads and
each kernel path, and prints the best of --passes. A decoded token reads
every weight once and does 2 FLOPs per weight: tokens/s ≤ bandwidth ÷ bytes
per token and ≤ peak ÷ FLOPs per token (see "modelc spec show").

With several threads each reads its own contiguous part of the buffer, so a
size is the working set of all threads together. GB/s are 10^9 bytes/s.`,
		Example: "  modelc limits\n  modelc limits --sizes 1GiB --threads 1,2 --paths avx512",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			szs, err := parseSizes(sizes)
			if err != nil {
				return err
			}
			ths, err := parseInts("--threads", threads)
			if err != nil {
				return err
			}
			for _, t := range ths {
				if err := cpu.CheckThreads(t); err != nil {
					return err
				}
			}
			ps := limits.Paths()
			if paths != "" {
				ps = strings.Split(paths, ",")
				for _, p := range ps {
					if !slices.Contains(limits.Paths(), p) {
						return fmt.Errorf("--paths: %q is not a kernel path this machine runs (%s)", p, strings.Join(limits.Paths(), ", "))
					}
				}
			}
			if passes < 1 {
				return fmt.Errorf("--passes: must be ≥ 1, got %d", passes)
			}
			if fmaTime <= 0 {
				return fmt.Errorf("--fma-time: must be > 0, got %v", fmaTime)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(cmd.OutOrStdout(), "read bandwidth, GB/s (best of %d passes)\n", passes)
			header := "size\tpath\t"
			for _, t := range ths {
				header += fmt.Sprintf("%d thread%s\t", t, plural(t))
			}
			fmt.Fprintln(w, header)
			for _, sz := range szs {
				b, err := limits.NewBuffer(sz)
				if err != nil {
					return err
				}
				for _, p := range ps {
					row := fmt.Sprintf("%s\t%s\t", sizeString(b.Bytes()), p)
					for _, t := range ths {
						bw, err := b.ReadBandwidth(p, t, passes)
						if err != nil {
							return err
						}
						row += fmt.Sprintf("%.1f\t", bw/1e9)
					}
					fmt.Fprintln(w, row)
				}
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nFMA peak, GFLOP/s (an FMA is 2 FLOPs; best of %d runs of %v)\n", passes, fmaTime)
			fmt.Fprintln(w, "path\t"+header[len("size\tpath\t"):])
			for _, p := range ps {
				row := p + "\t"
				for _, t := range ths {
					f, err := limits.FMAPeak(p, t, passes, fmaTime)
					if err != nil {
						return err
					}
					row += fmt.Sprintf("%.1f\t", f/1e9)
				}
				fmt.Fprintln(w, row)
			}
			return w.Flush()
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&sizes, "sizes", "256KiB,8MiB,1GiB", "buffer sizes to stream (B, KiB, MiB, GiB), all threads together")
	fl.StringVar(&threads, "threads", "1,2", "thread counts")
	fl.StringVar(&paths, "paths", "", "kernel paths (avx512, avx2, go); default: every path this machine runs")
	fl.IntVar(&passes, "passes", 5, "measurements of each figure; the best is printed")
	fl.DurationVar(&fmaTime, "fma-time", 100*time.Millisecond, "duration of one FMA peak run")
	return cmd
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func parseInts(flag, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a positive integer", flag, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseSizes reads a comma-separated list like "256KiB,8MiB,1GiB".
func parseSizes(s string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		num, mul := f, int64(1)
		for _, u := range []struct {
			suffix string
			mul    int64
		}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
			if strings.HasSuffix(f, u.suffix) {
				num, mul = strings.TrimSuffix(f, u.suffix), u.mul
				break
			}
		}
		n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if err != nil || n < 1 || n > (64<<30)/mul || n*mul < 4096 {
			return nil, fmt.Errorf("--sizes: %q is not a size like 256KiB, 8MiB or 1GiB (4KiB to 64GiB)", f)
		}
		out = append(out, n*mul)
	}
	return out, nil
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
