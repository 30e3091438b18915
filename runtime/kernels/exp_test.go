package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

func ulps(a, b float32) int64 {
	d := int64(math.Float32bits(a)) - int64(math.Float32bits(b))
	if d < 0 {
		d = -d
	}
	return d
}

func TestExp32(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	worst := int64(0)
	check := func(x float32) {
		want := float32(math.Exp(float64(x)))
		got := Exp32(x)
		if want < 1.1754944e-38 { // subnormal results are flushed
			if got > 1.1754944e-38 {
				t.Fatalf("Exp32(%g) = %g, want ≤ smallest normal", x, got)
			}
			return
		}
		if u := ulps(got, want); u > worst {
			worst = u
			if u > 2 {
				t.Fatalf("Exp32(%g) = %g, want %g (%d ulp)", x, got, want, u)
			}
		}
	}
	for i := 0; i < 1_000_000; i++ {
		check(float32(r.Float64()*176 - 88))
	}
	for _, x := range []float32{0, -0, 1, -1, 88.7, -87.3, 1e-8, -1e-8, 0.5, -0.5} {
		check(x)
	}
	if !math.IsInf(float64(Exp32(100)), 1) || Exp32(-100) != 0 || !math.IsNaN(float64(Exp32(float32(math.NaN())))) {
		t.Fatalf("Exp32 edge cases: %g %g %g", Exp32(100), Exp32(-100), Exp32(float32(math.NaN())))
	}
	t.Logf("worst error %d ulp", worst)
}

func TestSoftmaxFastMatchesSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, 300)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 5)
	}
	y := append([]float32(nil), x...)
	Softmax(x)
	SoftmaxFast(y)
	for i := range x {
		if math.Abs(float64(x[i]-y[i])) > 1e-6*math.Max(1e-3, float64(x[i])) {
			t.Fatalf("SoftmaxFast[%d] = %g, Softmax %g", i, y[i], x[i])
		}
	}
}

func BenchmarkExp(b *testing.B) {
	x := float32(-3.3)
	b.Run("Exp32", func(b *testing.B) {
		var s float32
		for b.Loop() {
			s += Exp32(x)
		}
		_ = s
	})
	b.Run("math.Exp", func(b *testing.B) {
		var s float32
		for b.Loop() {
			s += float32(math.Exp(float64(x)))
		}
		_ = s
	})
}
