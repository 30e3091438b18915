package screen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/internal/gentest"
	"github.com/modelc/modelc/runtime/cpu"
)

// eachPath runs f once with the screen on each kernel level this machine
// runs (AVX-512 VNNI, AVX2, then none), named by the screen's kernel.
func eachPath(t *testing.T, f func(t *testing.T)) {
	t.Cleanup(func() { Use(cpu.Best()) })
	seen := map[string]bool{}
	for _, l := range cpu.Levels() {
		Use(l)
		name := Path()
		if name == "" {
			name = "none"
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		t.Run(name, f)
	}
}

// exact is the classifier computed in float64 and rounded once: the logits
// the screen's bound must hold for (a closer value than any F32 kernel's).
type exact struct {
	w          []float32
	x, g       []float32
	eps        float32
	rows, cols int
	calls      int
}

func (e *exact) logits() []float32 {
	var ss float64
	for _, v := range e.x {
		ss += float64(v) * float64(v)
	}
	inv := 1 / math.Sqrt(ss/float64(e.cols)+float64(e.eps))
	out := make([]float32, e.rows)
	for r := range out {
		var d float64
		for i, v := range e.x {
			d += float64(e.w[r*e.cols+i]) * float64(v) * float64(e.g[i])
		}
		out[r] = float32(d * inv)
	}
	return out
}

func (e *exact) ExactBlock(r int, out *[Block]float32) (base, n int) {
	e.calls++
	base = r &^ (Block - 1)
	n = min(Block, e.rows-base)
	copy(out[:], e.logits()[base:base+n])
	return base, n
}

func argmax(x []float32) int {
	bi := 0
	for i, v := range x {
		if v > x[bi] {
			bi = i
		}
	}
	return bi
}

// TestArgmax: the screened token is the full logits' argmax (the first of
// equal ones) over random classifiers of odd shapes, classifiers with
// duplicated and nearly equal rows, and inputs with outliers; and the
// screen reads few rows in F32 when the logits are spread.
func TestArgmax(t *testing.T) { eachPath(t, testArgmax) }

func testArgmax(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	shapes := [][2]int{{1, 1}, {5, 3}, {16, 16}, {17, 64}, {512, 64}, {100, 100}, {300, 288}, {64, 768}}
	var blocks, spread int
	for _, sh := range shapes {
		rows, cols := sh[0], sh[1]
		for trial := range 40 {
			w := make([]float32, rows*cols)
			for i := range w {
				w[i] = float32(r.NormFloat64() * 0.1)
			}
			switch trial % 4 {
			case 1: // duplicated rows: exact ties, the first must win
				for k := range rows / 2 {
					src := r.IntN(rows)
					dst := r.IntN(rows)
					copy(w[dst*cols:(dst+1)*cols], w[src*cols:(src+1)*cols])
					_ = k
				}
			case 2: // rows one ulp apart
				for k := 0; k+1 < rows; k += 2 {
					copy(w[(k+1)*cols:(k+2)*cols], w[k*cols:(k+1)*cols])
					i := (k + 1) * cols
					w[i] = math.Nextafter32(w[i], float32(math.Inf(1)))
				}
			}
			x, g := make([]float32, cols), make([]float32, cols)
			for i := range x {
				x[i] = float32(r.NormFloat64())
				g[i] = float32(0.5 + r.Float64())
			}
			if trial%5 == 3 {
				x[r.IntN(cols)] *= 50 // an outlier coarsens the input's quantisation
			}
			c, err := New(w, rows, cols, 2)
			if err != nil {
				t.Fatal(err)
			}
			e := &exact{w: w, x: x, g: g, eps: 1e-5, rows: rows, cols: cols}
			want := argmax(e.logits())
			got, ok := c.Argmax(c.NewScratch(), x, g, 1e-5, e, nil)
			if !Available() {
				if ok {
					t.Fatal("Argmax answered without its kernel")
				}
				continue
			}
			if !ok || got != want {
				t.Fatalf("%dx%d trial %d: Argmax = %d, %v; want %d", rows, cols, trial, got, ok, want)
			}
			if rows == 512 && trial%4 == 0 {
				blocks += e.calls
				spread++
			}
		}
	}
	if Available() && blocks > spread*4 {
		t.Errorf("the screen computed %d of 64 blocks a token in F32 on average; want at most 4", blocks/spread)
	}
}

// TestArgmaxParallel: a classifier screened in chunks on a pool's workers
// (each chunk's mask against its own best lower bound) gives the full
// logits' argmax, with as few F32 blocks as one call would need, and
// allocates nothing.
func TestArgmaxParallel(t *testing.T) { eachPath(t, testArgmaxParallel) }

func testArgmaxParallel(t *testing.T) {
	if !Available() {
		return
	}
	p := cpu.NewPool(3)
	defer p.Close()
	r := rand.New(rand.NewPCG(11, 12))
	rows, cols := 16*(2*minGroups+37)+5, 32 // 3 chunks, a ragged last group
	for trial := range 6 {
		w := make([]float32, rows*cols)
		for i := range w {
			w[i] = float32(r.NormFloat64() * 0.1)
		}
		if trial%2 == 1 { // the largest logit twice, in different chunks: the first must win
			src := r.IntN(rows / 3)
			copy(w[(rows-1)*cols:], w[src*cols:(src+1)*cols])
		}
		x, g := make([]float32, cols), make([]float32, cols)
		for i := range x {
			x[i], g[i] = float32(r.NormFloat64()), 1
		}
		if trial%2 == 1 { // x along that row: it holds the largest logit
			src := -1
			for k := range rows / 3 {
				if slices.Equal(w[k*cols:(k+1)*cols], w[(rows-1)*cols:]) {
					src = k
					break
				}
			}
			copy(x, w[src*cols:(src+1)*cols])
		}
		c, err := New(w, rows, cols, 2)
		if err != nil {
			t.Fatal(err)
		}
		e := &exact{w: w, x: x, g: g, eps: 1e-5, rows: rows, cols: cols}
		want := argmax(e.logits())
		one, ok := c.Argmax(c.NewScratch(), x, g, 1e-5, e, nil)
		if !ok || one != want {
			t.Fatalf("trial %d, one call: Argmax = %d, %v; want %d", trial, one, ok, want)
		}
		serial := e.calls
		e.calls = 0
		got, ok := c.Argmax(c.NewScratch(), x, g, 1e-5, e, p)
		if !ok || got != want {
			t.Fatalf("trial %d, in chunks: Argmax = %d, %v; want %d", trial, got, ok, want)
		}
		if e.calls > serial+2 {
			t.Errorf("trial %d: %d blocks in F32 in chunks, %d in one call", trial, e.calls, serial)
		}
		if trial == 0 {
			s := c.NewScratch()
			if n := testing.AllocsPerRun(20, func() { c.Argmax(s, x, g, 1e-5, nopExact{}, p) }); n != 0 {
				t.Errorf("Argmax in chunks allocates %v times a token", n)
			}
		}
	}
}

// TestArgmaxBlocks: with near-tied logits in two blocks, each block is
// computed once or twice (the top candidate's first), not once per
// candidate; and a token allocates nothing on one thread.
func TestArgmaxBlocks(t *testing.T) { eachPath(t, testArgmaxBlocks) }

func testArgmaxBlocks(t *testing.T) {
	if !Available() {
		return
	}
	r := rand.New(rand.NewPCG(13, 14))
	const rows, cols = 16, 64
	base := make([]float32, cols)
	for i := range base {
		base[i] = float32(r.NormFloat64())
	}
	w := make([]float32, rows*cols)
	for k := range rows {
		for i := range cols {
			w[k*cols+i] = base[i] * float32(1+r.NormFloat64()*1e-4)
		}
	}
	g := make([]float32, cols)
	for i := range g {
		g[i] = 1
	}
	c, err := New(w, rows, cols, 1)
	if err != nil {
		t.Fatal(err)
	}
	e := &exact{w: w, x: base, g: g, eps: 1e-5, rows: rows, cols: cols}
	s := c.NewScratch()
	got, ok := c.Argmax(s, base, g, 1e-5, e, nil)
	if want := argmax(e.logits()); !ok || got != want {
		t.Fatalf("Argmax = %d, %v; want %d", got, ok, want)
	}
	if e.calls > 3 {
		t.Errorf("%d F32 blocks computed for a classifier of 2 blocks", e.calls)
	}
	if n := testing.AllocsPerRun(20, func() { c.Argmax(s, base, g, 1e-5, nopExact{}, nil) }); n != 0 {
		t.Errorf("Argmax allocates %v times a token", n)
	}
}

// TestArgmaxDeclines: inputs the bound cannot cover are left to the caller.
func TestArgmaxDeclines(t *testing.T) { eachPath(t, testArgmaxDeclines) }

func testArgmaxDeclines(t *testing.T) {
	w := []float32{1, 2, 3, 4}
	c, err := New(w, 2, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	e := &exact{w: w, rows: 2, cols: 2, g: []float32{1, 1}, eps: 1e-5}
	for _, x := range [][]float32{{0, 0}, {float32(math.NaN()), 1}, {float32(math.Inf(1)), 1}} {
		e.x = x
		if _, ok := c.Argmax(c.NewScratch(), x, e.g, 1e-5, e, nil); ok {
			t.Errorf("Argmax(%v) answered", x)
		}
	}
	if _, err := New([]float32{1, float32(math.NaN())}, 1, 2, 1); err == nil {
		t.Error("New accepted a NaN weight")
	}
	if _, err := New([]float32{1, 2, 3}, 1, 2, 1); err == nil {
		t.Error("New accepted a shape that does not match")
	}
}

// TestGeneratedUpToDate: screen_amd64.{s,go} and screen_arm64.{s,go} are
// asm.ScreenAMD64's and asm.ScreenARM64's output (run go generate
// ./runtime/screen).
func TestGeneratedUpToDate(t *testing.T) {
	s, stubs, err := asm.ScreenAMD64("screen")
	if err != nil {
		t.Fatal(err)
	}
	s64, stubs64, err := asm.ScreenARM64("screen")
	if err != nil {
		t.Fatal(err)
	}
	gentest.Match(t, ".", map[string][]byte{"screen_amd64.s": s, "screen_amd64.go": stubs,
		"screen_arm64.s": s64, "screen_arm64.go": stubs64}, "go generate ./runtime/screen")
}

// TestBound: every row's exact logit lies within the bound the kernel
// computed, for inputs that make the bound's terms tight: x along one row's
// quantisation error (the weight term met with equality) and rows with an
// outlier (a coarse scale).
func TestBound(t *testing.T) { eachPath(t, testBound) }

func testBound(t *testing.T) {
	if !Available() {
		return // no screen kernel on this path: TestArgmax asserts the decline
	}
	r := rand.New(rand.NewPCG(5, 6))
	for _, sh := range [][2]int{{33, 64}, {40, 100}, {20, 768}} {
		rows, cols := sh[0], sh[1]
		for trial := range 30 {
			w := make([]float32, rows*cols)
			for i := range w {
				w[i] = float32(r.NormFloat64() * 0.1)
				if r.IntN(50) == 0 {
					w[i] *= 20
				}
			}
			c, err := New(w, rows, cols, 2)
			if err != nil {
				t.Fatal(err)
			}
			// x along row k's error: xn ∝ w_k - dequantised w_k.
			k := r.IntN(rows)
			x, g := make([]float32, cols), make([]float32, cols)
			gk, lane := k/16, k%16
			sk := c.row[gk*48+lane]
			for i := range x {
				g[i] = float32(0.5 + r.Float64())
				q := float32(int(c.w[(gk*c.quads+i/4)*64+lane*4+i%4]) - 128)
				x[i] = (w[k*cols+i] - sk*q) / g[i]
				if trial%2 == 1 {
					x[i] += float32(r.NormFloat64()) * 1e-3
				}
			}
			s := c.NewScratch()
			if !c.prepare(kern, s, x, g, 1e-5) {
				t.Fatalf("%dx%d trial %d: prepare declined", rows, cols, trial)
			}
			kern.run(&s.hi[0], &s.mask[0], &c.w[0], &s.x[0], &c.row[0], c.groups, c.quads, &s.tok[0])
			sx := float64(math.Float32frombits(s.tok[0]))
			bx, bd := float64(math.Float32frombits(s.tok[1])), float64(math.Float32frombits(s.tok[2]))
			for row := range rows {
				g, lane := row/16, row%16
				var ex float64
				var acc int64
				for i := range cols {
					ex += float64(w[row*cols+i]) * float64(s.xn[i])
					q := int64(c.w[(g*c.quads+i/4)*64+lane*4+i%4]) - 128
					acc += q * int64(int8(s.x[i/4]>>(8*(i%4))))
				}
				approx := float64(acc) * float64(c.row[g*48+lane]) * sx
				b := float64(c.row[g*48+16+lane])*bx + float64(c.row[g*48+32+lane])*bd
				if math.Abs(ex-approx) > b {
					t.Fatalf("%dx%d trial %d row %d: exact %g, approx %g ± %g", rows, cols, trial, row, ex, approx, b)
				}
				if hi := float64(s.hi[row]); math.Abs(hi-(approx+b)) > 1e-5*(math.Abs(approx)+b) {
					t.Fatalf("%dx%d trial %d row %d: kernel's upper bound %g, want %g", rows, cols, trial, row, hi, approx+b)
				}
			}
		}
	}
}

// nopExact answers every row with 0: the benchmark times the screen alone.
type nopExact struct{}

func (nopExact) ExactBlock(r int, out *[Block]float32) (base, n int) {
	clear(out[:])
	return r, 1
}

func BenchmarkArgmax(b *testing.B) {
	b.Cleanup(func() { Use(cpu.Best()) })
	for _, l := range []cpu.Level{cpu.AVX512, cpu.AVX2} {
		if Use(l); Path() == "" {
			continue
		}
		b.Run(Path(), benchmarkArgmax)
	}
}

func benchmarkArgmax(b *testing.B) {
	for _, sh := range [][2]int{{512, 64}, {32000, 288}} {
		rows, cols := sh[0], sh[1]
		b.Run(fmt.Sprintf("%dx%d", rows, cols), func(b *testing.B) {
			r := rand.New(rand.NewPCG(7, 8))
			w := make([]float32, rows*cols)
			for i := range w {
				w[i] = float32(r.NormFloat64() * 0.1)
			}
			x, g := make([]float32, cols), make([]float32, cols)
			for i := range x {
				x[i], g[i] = float32(r.NormFloat64()), 1
			}
			c, err := New(w, rows, cols, 2)
			if err != nil {
				b.Fatal(err)
			}
			s := c.NewScratch()
			b.Run("prepare", func(b *testing.B) { // the kernel where there is one
				for b.Loop() {
					c.prepare(kern, s, x, g, 1e-5)
				}
			})
			if !Available() {
				return
			}
			b.Run("kernel", func(b *testing.B) {
				for b.Loop() {
					kern.run(&s.hi[0], &s.mask[0], &c.w[0], &s.x[0], &c.row[0], c.groups, c.quads, &s.tok[0])
				}
			})
		})
	}
}

// TestPrepare: both forms of prepare normalise x as the model does, round
// each element to a nearest step, and bound ‖xn‖ and the rounding's norm from
// above by no more than a few parts in a thousand (the rounding's norm less
// what the slack holds); and refuse what the bound cannot cover.
func TestPrepare(t *testing.T) { eachPath(t, testPrepare) }

func testPrepare(t *testing.T) {
	lv := levels(kern)
	r := rand.New(rand.NewPCG(9, 10))
	// 8, 24 and 40: an odd number of AVX2 steps; 28 and 100: NEON's
	// four-float tail after (or without) its sixteen-float steps.
	for _, cols := range []int{8, 16, 24, 28, 40, 64, 100, 288, 768} {
		w := make([]float32, cols)
		c, err := New(w, 1, cols, 1)
		if err != nil {
			t.Fatal(err)
		}
		for trial := range 50 {
			x, g := make([]float32, cols), make([]float32, cols)
			for i := range x {
				x[i] = float32(r.NormFloat64() * math.Pow(10, float64(trial%7-3)))
				g[i] = float32(r.NormFloat64())
			}
			if trial%3 == 0 {
				x[r.IntN(cols)] *= 100
			}
			forms := map[string]func(*Scratch) bool{
				"Go":  func(s *Scratch) bool { return c.prepareGo(s, x, g, 1e-5, lv) },
				"asm": func(s *Scratch) bool { return c.prepare(kern, s, x, g, 1e-5) },
			}
			for name, prep := range forms {
				s := c.NewScratch()
				if !prep(s) {
					t.Fatalf("%s cols %d trial %d: declined", name, cols, trial)
				}
				var ss float64
				for _, v := range x {
					ss += float64(v) * float64(v)
				}
				inv := 1 / math.Sqrt(ss/float64(cols)+1e-5)
				sx := float64(math.Float32frombits(s.tok[0]))
				var x2, d2 float64
				var sum int64
				for i, v := range x {
					want := float64(v) * float64(g[i]) * inv
					xn := float64(s.xn[i])
					if math.Abs(xn-want) > 1e-6*math.Abs(want)+1e-30 {
						t.Fatalf("%s cols %d trial %d: xn[%d] = %g, want %g", name, cols, trial, i, xn, want)
					}
					q := float64(int8(s.x[i/4] >> (8 * (i % 4))))
					if math.Abs(xn/sx-q) > 0.5+1e-6 || math.Abs(q) > float64(lv) {
						t.Fatalf("%s cols %d trial %d: q[%d] = %g for %g", name, cols, trial, i, q, xn/sx)
					}
					x2 += xn * xn
					d2 += (xn - sx*q) * (xn - sx*q)
					sum += int64(q)
				}
				// D may fall short by 2^-23·X: each d_i is computed off by up
				// to 2^-23·|xn_i| (two roundings in the Go loop), which the
				// slack holds (prepareGo).
				X := math.Sqrt(x2)
				for k, want := range []float64{X, math.Sqrt(d2)} {
					got := float64(math.Float32frombits(s.tok[1+k]))
					if got < want-float64(k)*0x1p-23*X || got > want*1.002+1e-30 {
						t.Fatalf("%s cols %d trial %d: bound factor %d = %g, want just above %g", name, cols, trial, k, got, want)
					}
				}
				if got := int32(s.tok[3]); int64(got) != -128*sum {
					t.Fatalf("%s cols %d trial %d: correction %d, want %d", name, cols, trial, got, -128*sum)
				}
			}
		}
		for _, x := range [][]float32{make([]float32, cols), append([]float32{float32(math.NaN())}, make([]float32, cols-1)...)} {
			s := c.NewScratch()
			g := make([]float32, cols)
			for i := range g {
				g[i] = 1
			}
			if c.prepare(kern, s, x, g, 1e-5) || c.prepareGo(s, x, g, 1e-5, lv) {
				t.Errorf("cols %d: prepare accepted %v", cols, x[:2])
			}
		}
	}
}

// TestPrepareLimits: the prep kernels accept and decline max|xn| at the
// edges of [tiny, huge) as the Go loop does (the bound is kept over the
// whole range), and the widest inputs go to the Go loop.
func TestPrepareLimits(t *testing.T) { eachPath(t, testPrepareLimits) }

func testPrepareLimits(t *testing.T) {
	lv := levels(kern)
	const cols = 64
	c, err := New(make([]float32, cols), 1, cols, 1)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, cols)
	for i := range x {
		x[i] = 1 // inv ≈ 1: xn = g
	}
	for _, v := range []float32{tiny * 0.999, tiny * 1.001, huge * 0.999, huge * 1.001} {
		g := make([]float32, cols)
		g[0] = v
		want := v >= tiny*1.0001 && v <= huge
		for name, prep := range map[string]func(*Scratch) bool{
			"Go":  func(s *Scratch) bool { return c.prepareGo(s, x, g, 1e-5, lv) },
			"asm": func(s *Scratch) bool { return c.prepare(kern, s, x, g, 1e-5) },
		} {
			if got := prep(c.NewScratch()); got != want {
				t.Errorf("%s: max|xn| ≈ %g: prepare = %v, want %v", name, v, got, want)
			}
		}
	}
	// An input wider than maxPrep: the Go loop's X, whose growth follows n.
	wide := maxPrep + 16
	cw, err := New(make([]float32, wide), 1, wide, 1)
	if err != nil {
		t.Fatal(err)
	}
	xw, gw := make([]float32, wide), make([]float32, wide)
	for i := range xw {
		xw[i], gw[i] = 1, 1
	}
	s1, s2 := cw.NewScratch(), cw.NewScratch()
	if !cw.prepare(kern, s1, xw, gw, 1e-5) || !cw.prepareGo(s2, xw, gw, 1e-5, lv) {
		t.Fatal("prepare declined an input of ones")
	}
	if s1.tok != s2.tok {
		t.Errorf("%d wide: prepare's factors %v, the Go loop's %v", wide, s1.tok, s2.tok)
	}
}

// FuzzArgmax: for any finite classifier and input (odd shapes, huge, tiny
// and subnormal values, exact ties), the screen either declines or returns
// the full logits' argmax, and never panics.
func FuzzArgmax(f *testing.F) {
	f.Add(uint8(5), uint8(3), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add(uint8(40), uint8(16), []byte{0x80, 0x3f, 0, 0, 0x7f, 0x7f, 0xff, 0xff, 0, 0, 0x80, 0})
	f.Add(uint8(17), uint8(64), []byte{0, 0, 0, 1, 0, 0, 0x80, 0x0d, 0x42, 0x60})
	f.Fuzz(func(t *testing.T, rows, cols uint8, data []byte) {
		r, c := int(rows%40)+1, int(cols%70)+1
		if len(data) < 4 {
			return
		}
		// Values cycle through data as float32 bits, then through scales.
		val := func(i int) float32 {
			j := (4 * i) % (len(data) - 3)
			v := math.Float32frombits(uint32(data[j]) | uint32(data[j+1])<<8 | uint32(data[j+2])<<16 | uint32(data[j+3])<<24)
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return float32(i%7) - 3
			}
			return v
		}
		w := make([]float32, r*c)
		for i := range w {
			w[i] = val(i)
		}
		x, g := make([]float32, c), make([]float32, c)
		for i := range x {
			x[i], g[i] = val(r*c+i), val(r*c+c+i)
		}
		cl, err := New(w, r, c, 1)
		if err != nil {
			t.Fatal(err)
		}
		e := &exact{w: w, x: x, g: g, eps: 1e-5, rows: r, cols: c}
		logits := e.logits()
		for _, v := range logits {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return // the model's own logits would not be finite either
			}
		}
		defer Use(cpu.Best())
		for _, l := range cpu.Levels() {
			Use(l)
			got, ok := cl.Argmax(cl.NewScratch(), x, g, 1e-5, e, nil)
			if ok && got != argmax(logits) {
				t.Fatalf("%s %dx%d: Argmax = %d, the logits' argmax %d (%v)", Path(), r, c, got, argmax(logits), logits)
			}
		}
	})
}
