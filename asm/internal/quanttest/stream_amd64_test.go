//go:build amd64 && !purego

package quanttest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/bench/limits"
	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/cpu"
	"github.com/modelc/modelc/runtime/quant"
)

// BenchmarkStream runs the quantised matvecs of the 12 layers of the 110M
// shape (qkv, wo, gate+up, down), every layer's matrices in their own
// memory, so that they come cold from DRAM as in a decode step, and reports
// the bytes streamed per second against the machine's read bandwidth
// (bench/limits, same path) measured in alternation: "frac" is the share of
// the bandwidth bound the kernels reach ("frac-panel": the AVX-512 panel
// kernels on the same blocks in the panel layout; "panel-GB/s" their rate,
// beside "read-same-size-GB/s", a read loop over a buffer the size of the
// matrices, which can gain from L3 where one over 256 MiB cannot). Fastest of b.N
// interleaved rounds.
//
//	go test -run '^$' -bench Stream -benchtime 5x ./asm/internal/quanttest
func BenchmarkStream(b *testing.B) {
	const dim, ffn, layers = 768, 2048, 12
	ops := []struct{ rows, cols int }{{3 * dim, dim}, {dim, dim}, {2 * ffn, dim}, {dim, ffn}}
	r := rand.New(rand.NewPCG(3, 4))
	buf, err := limits.NewBuffer(256 << 20)
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range []asm.QFormat{asm.Q8_0, asm.Q4_0} {
		t := gguf.TypeQ8_0
		if f == asm.Q4_0 {
			t = gguf.TypeQ4_0
		}
		var mats, panels [][]byte
		var total int64
		for _, o := range ops {
			wf := make([]float32, o.rows*o.cols)
			for i := range wf {
				wf[i] = float32(r.NormFloat64()) * 0.05
			}
			w, _ := quant.Quantize(t, wf)
			for l := 0; l < layers; l++ {
				mats = append(mats, append([]byte(nil), w...))
				total += int64(len(w))
			}
		}
		for i, m := range mats {
			o := ops[i/layers]
			p, err := quant.Panels(f.String(), m, o.rows, o.cols)
			if err != nil {
				b.Fatal(err)
			}
			panels = append(panels, p)
		}
		// The same bytes in a file mapping, as a compiled model reads them.
		var all []byte
		for _, m := range mats {
			all = append(all, m...)
		}
		fn := filepath.Join(b.TempDir(), "w")
		if err := os.WriteFile(fn, all, 0o644); err != nil {
			b.Fatal(err)
		}
		fd, err := os.Open(fn)
		if err != nil {
			b.Fatal(err)
		}
		mapped, err := syscall.Mmap(int(fd.Fd()), 0, len(all), syscall.PROT_READ, syscall.MAP_SHARED)
		fd.Close()
		if err != nil {
			b.Fatal(err)
		}
		defer syscall.Munmap(mapped)
		var mmats [][]byte
		for off, i := 0, 0; i < len(mats); i++ {
			mmats = append(mmats, mapped[off:off+len(mats[i])])
			off += len(mats[i])
		}
		xq, xs := make([]int8, ffn), make([]float32, ffn/32)
		x := make([]float32, ffn)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		quant.QuantizeAct(xq, xs, x)
		out := make([]float32, 2*ffn)
		for _, isa := range []asm.ISA{asm.AVX2, asm.AVX512} {
			if isa == asm.AVX2 && !cpu.Supports(cpu.AVX2) || isa == asm.AVX512 && !VNNI() {
				continue
			}
			fns, pfns := make([]qfunc, len(ops)), make([]qfunc, len(ops))
			for i, o := range ops {
				fns[i] = amd64Kernels[asm.QKernel{Format: f, ISA: isa, Cols: o.cols}.Name()]
				pfns[i] = amd64Kernels[asm.QKernel{Format: f, ISA: isa, Cols: o.cols, Panel: true}.Name()]
			}
			path := "avx2"
			if isa == asm.AVX512 {
				path = "avx512"
			}
			b.Run(fmt.Sprintf("110M/%s/%s", f, isa), func(b *testing.B) {
				best, bestMap, bestPanel := time.Duration(1<<62), time.Duration(1<<62), time.Duration(1<<62)
				bw := 0.0
				pass := func(fns []qfunc, ms [][]byte) time.Duration {
					t0 := time.Now()
					for l := 0; l < layers; l++ {
						for j, o := range ops {
							fns[j](&out[0], &ms[j*layers+l][0], &xq[0], &xs[0], o.rows)
						}
					}
					return time.Since(t0)
				}
				for i := 0; i < b.N; i++ {
					best = min(best, pass(fns, mats))
					bestMap = min(bestMap, pass(fns, mmats))
					if isa == asm.AVX512 {
						bestPanel = min(bestPanel, pass(pfns, panels))
					}
					v, err := buf.ReadBandwidth(path, 1, 1)
					if err != nil {
						b.Fatal(err)
					}
					bw = max(bw, v)
				}
				gbs := float64(total) / best.Seconds()
				b.ReportMetric(float64(best.Microseconds()), "us")
				b.ReportMetric(gbs/1e9, "GB/s")
				b.ReportMetric(bw/1e9, "read-GB/s")
				b.ReportMetric(gbs/bw, "frac")
				b.ReportMetric(float64(total)/bestMap.Seconds()/bw, "frac-mmap")
				if isa == asm.AVX512 {
					b.ReportMetric(float64(total)/bestPanel.Seconds()/bw, "frac-panel")
					b.ReportMetric(float64(total)/bestPanel.Seconds()/1e9, "panel-GB/s")
					same, _ := limits.NewBuffer(total)
					v := 0.0
					for i := 0; i < 5; i++ {
						x, _ := same.ReadBandwidth(path, 1, 1)
						v = max(v, x)
					}
					b.ReportMetric(v/1e9, "read-same-size-GB/s")
				}
			})
		}
	}
}
