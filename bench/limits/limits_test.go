package limits

import (
	"math"
	"testing"
	"time"

	"github.com/modelc/modelc/bench/limits/internal/limitgen"
	"github.com/modelc/modelc/internal/gentest"
)

// TestGeneratedUpToDate regenerates the kernels and fails if the committed
// files differ: run `go generate ./bench/limits` after changing asm/peak.go.
func TestGeneratedUpToDate(t *testing.T) {
	dir := t.TempDir()
	if err := limitgen.Generate(dir); err != nil {
		t.Fatal(err)
	}
	gentest.MatchDir(t, ".", dir, limitgen.Files, "go generate ./bench/limits")
}

// The FMA kernel computes acc = acc·a + b from acc = b on every chain: with
// a = 0.5, b = 1 three iterations give 1.875 exactly, and the stored sum
// is chains × 1.875 in every lane.
func TestFMAKernelValues(t *testing.T) {
	for _, p := range Paths() {
		k := kernelsFor(p)
		chains := k.flops / 2 / k.lanes
		var out [16]float32
		for i := range out {
			out[i] = -1
		}
		k.fma(3, 0.5, 1, &out[0])
		want := float32(chains) * 1.875
		for l := range k.lanes {
			if out[l] != want {
				t.Errorf("%s: lane %d = %g, want %g (%d chains)", p, l, out[l], want, chains)
			}
		}
		for l := k.lanes; l < 16; l++ {
			if out[l] != -1 {
				t.Errorf("%s: wrote lane %d past its %d lanes", p, l, k.lanes)
			}
		}
		// n = 0 leaves the accumulators at b.
		k.fma(0, 0.5, 1, &out[0])
		if out[0] != float32(chains) {
			t.Errorf("%s: n=0 gives %g, want %d", p, out[0], chains)
		}
	}
}

// Every read kernel's lanes sum to Σ p[i]·x over exactly n blocks, plus the
// accumulators' start: the element after the blocks (huge) must not count.
// The prefetching ones give the same sums, prefetching past the end freely.
func TestReadKernelSums(t *testing.T) {
	for _, p := range Paths() {
		k := kernelsFor(p)
		if (p == "go") != (k.readNTA == nil) {
			t.Errorf("%s: prefetching read kernel present = %v", p, k.readNTA != nil)
		}
		for ri, read := range k.reads() {
			for _, blocks := range []int{0, 1, 3, 17} {
				d := make([]float32, blocks*k.block()+1)
				var want float64
				for i := range d {
					d[i] = float32(i%13) - 6
					if i < blocks*k.block() {
						want += float64(d[i]) * 0.5
					}
				}
				d[len(d)-1] = 1e30
				var out [16]float32
				read(&d[0], blocks, 0.5, &out[0])
				var got float64
				for l := range k.lanes {
					got += float64(out[l])
				}
				// Each of the 8 accumulators starts at x in every lane.
				want += 0.5 * 8 * float64(k.lanes)
				if math.Abs(got-want) > 1e-3 {
					t.Errorf("%s read %d, %d blocks: sum %g, want %g", p, ri, blocks, got, want)
				}
			}
		}
	}
}

// Measurements come out positive and finite on 1 and 2 threads; the
// arguments are checked.
func TestMeasure(t *testing.T) {
	b, err := NewBuffer(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if b.Bytes() != 1<<20 {
		t.Fatalf("buffer of %d bytes, want %d", b.Bytes(), 1<<20)
	}
	// Only positive and finite: a loaded CI machine may deschedule a pass
	// for its whole duration, so a speed threshold would be a timed test.
	for _, p := range Paths() {
		for _, th := range []int{1, 2} {
			bw, err := b.ReadBandwidth(p, th, 1)
			if err != nil || !(bw > 0) || math.IsInf(bw, 0) {
				t.Errorf("%s, %d threads: bandwidth %g B/s, err %v", p, th, bw, err)
			}
			f, err := FMAPeak(p, th, 1, 5*time.Millisecond)
			if err != nil || !(f > 0) || math.IsInf(f, 0) {
				t.Errorf("%s, %d threads: FMA peak %g FLOP/s, err %v", p, th, f, err)
			}
		}
	}
	if _, err := NewBuffer(100); err == nil {
		t.Error("a 100-byte buffer was accepted")
	}
	if _, err := b.ReadBandwidth("sse9", 1, 1); err == nil {
		t.Error("an unknown path was accepted")
	}
	if _, err := b.ReadBandwidth("go", 0, 1); err == nil {
		t.Error("0 threads were accepted")
	}
	if _, err := FMAPeak("go", 1, 0, time.Millisecond); err == nil {
		t.Error("0 passes were accepted")
	}
}
