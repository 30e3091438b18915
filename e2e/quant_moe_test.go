package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelc/modelc/generated/moe8x256"
	"github.com/modelc/modelc/generated/moe8x256_q8_0"
	"github.com/modelc/modelc/gguf"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/cli"
	"github.com/modelc/modelc/runtime/cpu"
)

// The compiled quantised mixture of experts (attention and every expert in
// Q8_0 blocks, 8-bit activations, the router float) stays within the 8-bit
// activations' rounding of the float model on the same file (its weights
// dequantised at load), on every kernel path: the same experts chosen, the
// same greedy tokens where the float model is not at a near-tie.
func TestCompiledQuantMoE(t *testing.T) {
	// Random weights of std 0.05, the routers' 20 times larger: their top
	// two stand clear of the third by more than the 8-bit activations move
	// them, so both models pick the same experts.
	p := cli.RandomParams(moe8x256.Spec(), 7)
	for _, tn := range p.Tensors {
		scale := float32(2.5)
		if strings.HasSuffix(tn.Name, "ffn_gate_inp.weight") {
			scale = 50
		}
		if d := p.T(tn.Name); !isNorm(tn.Name) {
			for i := range d {
				d[i] *= scale
			}
		}
	}
	dir := t.TempDir()
	writeQuantParams(t, dir, p, "q8_0")
	path := filepath.Join(dir, "q8_0.gguf")
	fp, ff, err := checkpoint.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ff.Close()
	fm, err := moe8x256.New(fp)
	if err != nil {
		t.Fatal(err)
	}
	qp, qf, err := checkpoint.LoadKeepBlocks(path, gguf.TypeQ8_0)
	if err != nil {
		t.Fatal(err)
	}
	defer qf.Close()
	// token_embd, and per layer Q, K, V, output and the three expert stacks.
	if want := 1 + 4*7; len(qp.Undecoded) != want {
		t.Fatalf("%d tensors left in blocks, want %d", len(qp.Undecoded), want)
	}
	cm, err := moe8x256_q8_0.New(qp)
	if err != nil {
		t.Fatal(err)
	}
	defer moe8x256_q8_0.UseKernels(cpu.Best())
	for _, l := range cpu.Levels() {
		t.Run(l.String(), func(t *testing.T) {
			if err := moe8x256_q8_0.UseKernels(l); err != nil {
				t.Fatal(err)
			}
			cs, fs := cm.NewSession(), fm.NewSession()
			tok := 1
			worst := 0.0
			for pos := 0; pos < 24; pos++ {
				got, want := cs.Forward(tok, pos), fs.Forward(tok, pos)
				diff := make([]float32, len(want))
				for i := range want {
					diff[i] = got[i] - want[i]
				}
				e := rms(diff) / rms(want)
				worst = max(worst, e)
				if e > 0.05 {
					t.Fatalf("%s at position %d: logits differ from the float model's by %.3g (relative RMS)", moe8x256_q8_0.KernelPath(), pos, e)
				}
				if g, w := argmax(got), argmax(want); g != w && margin(want) > 0.05 {
					t.Fatalf("%s at position %d: greedy token %d, float model %d (margin %.3g)", moe8x256_q8_0.KernelPath(), pos, g, w, margin(want))
				}
				tok = argmax(want)
			}
			t.Logf("%s: worst relative RMS %.4f", moe8x256_q8_0.KernelPath(), worst)
		})
	}
}
