package e2e

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/modelc/modelc/generated/moe8x256"
	"github.com/modelc/modelc/generated/moe8x256_q8_0"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/cpu"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/quant"
)

// The compiled quantised models' batched passes (prompt spans beside decode
// tokens of other sessions, and ForwardBatch, as the server drives them)
// give each session, bit for bit, the logits its one-token Forward calls
// give: on AVX-512 VNNI through the panel matmuls, elsewhere row by row.
// llama15m has every matrix quantised; stories260K's ffn_down stays float32
// (the pass runs the step's float matvec on it row by row); moe8x256_q8_0's
// experts run row by row with the step's code.
func TestCompiledQuantBatchesMatchForward(t *testing.T) {
	moe := quantShape{"moe8x256", moe8x256.Spec(), moe8x256.New, []quantPkg{
		{"q8_0", moe8x256_q8_0.New, moe8x256_q8_0.UseKernels, moe8x256_q8_0.KernelPath, 0},
	}, 0}
	for _, sh := range append(quantShapes, moe) {
		t.Run(sh.name, func(t *testing.T) { testQuantBatches(t, sh) })
	}
}

func testQuantBatches(t *testing.T, sh quantShape) {
	dir := t.TempDir()
	writeQuantFiles(t, dir, sh)
	for _, q := range sh.pkgs {
		t.Run(q.format, func(t *testing.T) {
			typ, _ := quant.ParseType(q.format)
			p, f, err := checkpoint.LoadKeepBlocks(filepath.Join(dir, q.format+".gguf"), typ)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			m, err := q.new(p)
			if err != nil {
				t.Fatal(err)
			}
			batcher := m.(model.Batcher)
			spanner := m.(interface {
				ForwardSpans([]model.Session, [][]int, []int) [][]float32
			})
			defer q.use(cpu.Best())
			for _, l := range cpu.Levels() {
				t.Run(l.String(), func(t *testing.T) {
					if err := q.use(l); err != nil {
						t.Fatal(err)
					}
					const n = 3
					rng := rand.New(rand.NewPCG(3, 4))
					bs, fs := make([]model.Session, n), make([]model.Session, n)
					next := make([]int, n)
					for i := range n {
						bs[i], fs[i] = m.NewSession(), m.NewSession()
					}
					for step := 0; step < 8; step++ {
						var ss []model.Session
						var spans [][]int
						var pos, idx []int
						for i := range n {
							k := 1
							if step%3 == 0 {
								k = 1 + rng.IntN(20) // a prompt chunk beside decode tokens
							}
							span := make([]int, k)
							for j := range span {
								span[j] = 3 + rng.IntN(sh.spec.Vocab-3)
							}
							ss, spans, pos, idx = append(ss, bs[i]), append(spans, span), append(pos, next[i]), append(idx, i)
						}
						var got [][]float32
						if step%2 == 0 {
							got = spanner.ForwardSpans(ss, spans, pos)
						} else {
							toks := make([]int, len(spans))
							for j, sp := range spans {
								toks[j] = sp[0]
								spans[j] = sp[:1]
							}
							got = batcher.ForwardBatch(ss, toks, pos)
						}
						for j, i := range idx {
							var want []float32
							for k, tok := range spans[j] {
								want = fs[i].Forward(tok, next[i]+k)
							}
							next[i] += len(spans[j])
							for v := range want {
								if got[j][v] != want[v] {
									t.Fatalf("%s step %d session %d logit %d: batched %g, Forward %g", q.path(), step, i, v, got[j][v], want[v])
								}
							}
						}
					}
				})
			}
		})
	}
}
