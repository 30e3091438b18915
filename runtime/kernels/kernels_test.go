package kernels

import (
	"math"
	"testing"
)

func near(a, b, tol float32) bool { return float32(math.Abs(float64(a-b))) <= tol }

func TestMatVec(t *testing.T) {
	w := []float32{1, 2, 3, 4, 5, 6}
	out := make([]float32, 2)
	MatVec(out, w, []float32{1, 0, -1})
	if out[0] != -2 || out[1] != -2 {
		t.Fatalf("MatVec = %v, want [-2 -2]", out)
	}
}

func TestRMSNorm(t *testing.T) {
	out := make([]float32, 2)
	RMSNorm(out, []float32{3, 4}, []float32{1, 2}, 0)
	// rms = sqrt((9+16)/2)
	r := float32(math.Sqrt(12.5))
	if !near(out[0], 3/r, 1e-6) || !near(out[1], 8/r, 1e-6) {
		t.Fatalf("RMSNorm = %v", out)
	}
}

func TestSoftmax(t *testing.T) {
	x := []float32{1, 2, 3, 1000}
	Softmax(x)
	if !near(x[3], 1, 1e-6) || x[0] != 0 {
		t.Fatalf("Softmax with a dominant logit = %v", x)
	}
	y := []float32{0, float32(math.Log(3))}
	Softmax(y)
	if !near(y[0], 0.25, 1e-6) || !near(y[1], 0.75, 1e-6) {
		t.Fatalf("Softmax = %v, want [0.25 0.75]", y)
	}
}

func TestRoPE(t *testing.T) {
	f := RoPEFreqs(4, 10000)
	if f[0] != 1 || !near(f[1], 0.01, 1e-7) {
		t.Fatalf("freqs = %v, want [1 0.01]", f)
	}
	v := []float32{1, 0, 0, 1, 2, 0, 0, 2}
	RoPE(v, 1, f)
	c, s := float32(math.Cos(1)), float32(math.Sin(1))
	if !near(v[0], c, 1e-6) || !near(v[1], s, 1e-6) || !near(v[4], 2*c, 1e-6) {
		t.Fatalf("RoPE pos 1 = %v", v)
	}
	c2, s2 := float32(math.Cos(0.01)), float32(math.Sin(0.01))
	if !near(v[2], -s2, 1e-6) || !near(v[3], c2, 1e-6) {
		t.Fatalf("RoPE second pair = %v", v[2:4])
	}
}

func TestSwiGLU(t *testing.T) {
	g := []float32{0, 2}
	SwiGLU(g, []float32{5, 3})
	want := float32(2 / (1 + math.Exp(-2)) * 3)
	if g[0] != 0 || !near(g[1], want, 1e-6) {
		t.Fatalf("SwiGLU = %v", g)
	}
}

func TestAttention(t *testing.T) {
	// Two positions, kv stride 4, head at offset 2, head size 2.
	keys := []float32{9, 9, 1, 0, 9, 9, 0, 1}
	values := []float32{9, 9, 10, 20, 9, 9, 30, 40}
	q := []float32{float32(math.Sqrt2) * float32(math.Log(3)), 0}
	out := make([]float32, 2)
	Attention(out, q, keys, values, make([]float32, 2), 1, 4, 2)
	// scores ln3 and 0 -> weights 3/4 and 1/4
	if !near(out[0], 0.75*10+0.25*30, 1e-4) || !near(out[1], 0.75*20+0.25*40, 1e-4) {
		t.Fatalf("Attention = %v", out)
	}
}
