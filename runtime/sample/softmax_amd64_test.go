//go:build !purego

package sample

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/internal/gentest"
	"github.com/modelc/modelc/runtime/cpu"
)

// TestExpShiftBits: every lane expshift_avx2 fills is float32(math.Exp) to
// the bit; the lanes it leaves -1 are flagged, rare inside [-87, 0], and
// every d ≤ -104 is 0, which is what float32(math.Exp) gives there too.
func TestExpShiftBits(t *testing.T) {
	if !cpu.Supports(cpu.AVX2) {
		t.Skip("no AVX2 on this machine: the kernel cannot run")
	}
	if !softmaxAVX2 {
		t.Fatal("the AVX2 softmax is not in use on an AVX2 machine")
	}
	r := rand.New(rand.NewPCG(3, 4))
	specials := []float32{0, float32(math.Copysign(0, -1)), -1e-30, -1e-7, -0.5, -0.34657359, -1, -20, -86.99, -87, -87.01,
		-87.33, -87.34, -100, -103.99, -104, -104.01, -150, -1e30, float32(math.Inf(-1)), float32(math.NaN()), 0.5, 1e-8,
		float32(math.Inf(1))}
	const n = 1 << 20
	d := make([]float32, n)
	var inRange, left int
	for round := range 4 {
		for i := range d {
			switch {
			case i < len(specials):
				d[i] = specials[i]
			case round == 0:
				d[i] = -r.Float32() * 110
			case round == 1:
				d[i] = -r.Float32()
			case round == 2: // the ends of the kept range
				d[i] = -87 + r.Float32()*0.01
			default: // float32 values next to powers of two, where neighbours' gaps change
				d[i] = -float32(math.Ldexp(1+float64(r.IntN(3)-1)*0x1p-23, -r.IntN(30))) * float32(1+r.IntN(80))
			}
		}
		p := append([]float32(nil), d...)
		sum, flag := expshift_avx2(&p[0], n, 0)
		sawLeft := false
		var want32 float32
		for _, e := range p {
			want32 += e
		}
		if flag == 0 && math.Float32bits(sum) != math.Float32bits(want32) {
			t.Fatalf("round %d: kernel's sum %v, the lanes added in order %v", round, sum, want32)
		}
		for i, got := range p {
			want := float32(math.Exp(float64(d[i])))
			x := float64(d[i])
			// The rate counts the random rounds: round 3's values sit next
			// to midpoints on purpose (exp(-2^-25) is 2^-51 from one).
			counted := round < 3 && x >= softmaxLowTest && x <= 0
			if counted {
				inRange++
			}
			if got == -1 {
				if counted {
					left++
				}
				sawLeft = true
				if x <= softmaxZeroLimTest {
					t.Fatalf("d %v ≤ -104 was left for math.Exp, want 0", d[i])
				}
				continue
			}
			if math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("round %d, d %v (%#x): kernel %v (%#x), math.Exp %v (%#x)", round, d[i], math.Float32bits(d[i]), got, math.Float32bits(got), want, math.Float32bits(want))
			}
		}
		if sawLeft != (flag != 0) {
			t.Fatalf("round %d: lanes left -1: %v, kernel's flag %d", round, sawLeft, flag)
		}
	}
	// Inside [-87, 0] about one lane in 2^16 is left.
	t.Logf("%d of %d random lanes in [-87, 0] left for math.Exp", left, inRange)
	if rate := float64(left) / float64(inRange); rate > 1e-3 {
		t.Fatalf("%d of %d lanes left for math.Exp: the fast path is not doing its job", left, inRange)
	}
}

// The kernel's constants, restated for the test.
const softmaxLowTest, softmaxZeroLimTest = -87, -104

// expModel is expshift_avx2 for one lane, operation for operation (math.FMA
// where the kernel fuses): the value y it computes in float64 and its lane.
func expModel(d float32) (y float64, lane float32) {
	const shifter = 0x1.8p52
	x := float64(d)
	kd := float64(x*math.Log2E) + shifter
	kf := kd - shifter
	r := math.FMA(-kf, 6.93147180369123816490e-01, x)
	r = math.FMA(-kf, 1.90821492927058770002e-10, r)
	cf := func(j int) float64 {
		f := 1.0
		for i := 2; i <= j; i++ {
			f *= float64(i)
		}
		return 1 / f
	}
	pair := func(j int) float64 { return math.FMA(r, cf(j+1), cf(j)) }
	r2 := r * r
	lo := math.FMA(r2, pair(2), pair(0))
	hi := math.FMA(r2, pair(6), pair(4))
	r4 := r2 * r2
	lo = math.FMA(r4, hi, lo)
	hi = math.FMA(r2, pair(10), pair(8))
	hi = math.FMA(r4, cf(12), hi)
	r8 := r4 * r4
	e := math.FMA(r8, hi, lo)
	y = e * math.Float64frombits((math.Float64bits(kd)+1023)<<52)
	dropped := int64(math.Float64bits(y)&(1<<29-1)) - 1<<28
	switch {
	case x <= softmaxZeroLimTest:
		return y, 0
	case (dropped > 256 || dropped < -256) && x >= softmaxLowTest && x <= 0:
		return y, float32(y)
	}
	return y, -1
}

// TestExpModel: over [-87, 0] the kernel's float64 exponential is within
// 2^-46 of math.Exp (itself within 2^-52 of e^x), the premise of its
// check, and the kernel gives the model's lanes bit for bit.
func TestExpModel(t *testing.T) {
	if !cpu.Supports(cpu.AVX2) {
		t.Skip("no AVX2 on this machine: the kernel cannot run")
	}
	r := rand.New(rand.NewPCG(9, 10))
	const n = 1 << 18
	d := make([]float32, n)
	for i := range d {
		if i%2 == 0 {
			d[i] = -r.Float32() * 87
		} else {
			d[i] = -r.Float32() * 0.7
		}
	}
	p := append([]float32(nil), d...)
	if _, bad := expshift_avx2(&p[0], n, 0); bad == 0 {
		t.Log("no lane left for math.Exp")
	}
	worst := 0.0
	for i, x := range d {
		y, lane := expModel(x)
		if math.Float32bits(lane) != math.Float32bits(p[i]) {
			t.Fatalf("d %v: kernel %v, model %v", x, p[i], lane)
		}
		want := math.Exp(float64(x))
		worst = max(worst, math.Abs(y-want)/want)
	}
	if worst >= 0x1p-46 {
		t.Fatalf("the float64 exponential is within %g of math.Exp, want < 2^-46 = %g", worst, 0x1p-46)
	}
	t.Logf("largest relative difference from math.Exp: %g (2^%.1f)", worst, math.Log2(worst))
}

// TestSoftmaxAsmMatchesGo: expAsm gives expGo's bits for logits of every
// spread and temperature, lengths around the vector steps, NaNs and
// infinities anywhere.
func TestSoftmaxAsmMatchesGo(t *testing.T) {
	if !cpu.Supports(cpu.AVX2) {
		t.Skip("no AVX2 on this machine: the kernel cannot run")
	}
	r := rand.New(rand.NewPCG(5, 6))
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, 3.4e38, -3.4e38}
	for _, n := range []int{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 512, 32000} {
		for trial := range 24 {
			sigma := []float64{0.1, 1, 5, 30}[trial%4]
			temp := []float32{0.05, 0.7, 1, 3}[trial/4%4]
			l := make([]float32, n)
			for i := range l {
				l[i] = float32(r.NormFloat64() * sigma)
			}
			if trial >= 16 {
				for range 1 + n/100 {
					l[r.IntN(n)] = specials[r.IntN(len(specials))]
				}
			}
			got, want := make([]float32, n), make([]float32, n)
			gotSum, ok := expAsm(got, l, temp)
			if !ok {
				t.Fatal("expAsm declined on an AVX2 machine")
			}
			wantSum := expGo(want, l, temp)
			if !sameBits(gotSum, wantSum) {
				t.Fatalf("n %d trial %d (σ %v, temperature %v): asm sum %v, Go sum %v", n, trial, sigma, temp, gotSum, wantSum)
			}
			scaled := append([]float32(nil), want...)
			if !scaleAsm(scaled, 1/wantSum) {
				t.Fatal("scaleAsm declined on an AVX2 machine")
			}
			for i := range scaled {
				if !sameBits(scaled[i], want[i]*(1/wantSum)) {
					t.Fatalf("n %d trial %d: scaled lane %d %v, Go %v", n, trial, i, scaled[i], want[i]*(1/wantSum))
				}
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
					t.Fatalf("n %d trial %d (σ %v, temperature %v), logit %d = %v: asm %v, Go %v", n, trial, sigma, temp, i, l[i], got[i], want[i])
				}
			}
		}
	}
}

// TestSoftmaxGeneratedUpToDate: softmax_amd64.{s,go} are asm.SoftmaxAMD64's
// output (run go generate ./runtime/sample).
func TestSoftmaxGeneratedUpToDate(t *testing.T) {
	s, stubs, err := asm.SoftmaxAMD64("sample")
	if err != nil {
		t.Fatal(err)
	}
	gentest.Match(t, ".", map[string][]byte{"softmax_amd64.s": s, "softmax_amd64.go": stubs}, "go generate ./runtime/sample")
}

// BenchmarkSoftmax times the sampler's whole softmax (scale, maximum,
// exponentials, sum, normalisation) with the kernels and with the Go loops.
func BenchmarkSoftmax(b *testing.B) {
	defer func(v bool) { softmaxAVX2 = v }(softmaxAVX2)
	for _, n := range []int{512, 32000} {
		r := rand.New(rand.NewPCG(1, 2))
		l := make([]float32, n)
		for i := range l {
			l[i] = float32(r.NormFloat64() * 2)
		}
		s := mustNew(b, Params{Temperature: 1, TopP: 1})
		name := map[int]string{512: "512", 32000: "32000"}[n]
		for _, asm := range []bool{true, false} {
			b.Run(name+map[bool]string{true: "/asm", false: "/go"}[asm], func(b *testing.B) {
				softmaxAVX2 = asm && cpu.Supports(cpu.AVX2)
				for b.Loop() {
					s.softmax(l)
				}
			})
		}
	}
}

// FuzzSoftmaxBits: for any logits and temperature, expAsm gives expGo's bits.
func FuzzSoftmaxBits(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 128, 191, 0, 0, 192, 127, 0, 0, 128, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, float32(1))
	f.Add([]byte{0, 0, 32, 65, 0, 0, 32, 193}, float32(0.01))
	f.Fuzz(func(t *testing.T, raw []byte, temp float32) {
		if !softmaxAVX2 || !(temp > 0) || math.IsInf(float64(temp), 0) {
			return
		}
		l := make([]float32, len(raw)/4)
		for i := range l {
			l[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		if len(l) == 0 {
			return
		}
		got, want := make([]float32, len(l)), make([]float32, len(l))
		gotSum, _ := expAsm(got, l, temp)
		if wantSum := expGo(want, l, temp); !sameBits(gotSum, wantSum) {
			t.Fatalf("logits %v, temperature %v: asm sum %v, Go sum %v", l, temp, gotSum, wantSum)
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
				t.Fatalf("logits %v, temperature %v: lane %d asm %v, Go %v", l, temp, i, got[i], want[i])
			}
		}
	})
}

// sameBits: a and b are the same float32, NaNs being all alike.
func sameBits(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}
