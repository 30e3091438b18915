// Package screen finds a greedy token without reading the whole classifier.
//
// Greedy decoding needs only the index of the largest logit. An int8 copy of
// the classifier's rows (a quarter of its bytes) gives every logit to within
// a bound proven from the quantisation errors and the float rounding; only
// the rows whose upper bound reaches the best lower bound can hold the
// largest logit, and those alone are computed in F32 by the model's own
// classifier kernel. The answer is the index sample.Argmax would pick from
// the full logits, the first of equal ones: every row equal to the largest
// is among the candidates, and they are compared as the kernel computes
// them. The screen runs on AVX-512 with VNNI, on AVX2 and on arm64 NEON with
// SDOT; elsewhere Available is false and the model computes every logit.
package screen

import (
	"errors"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/modelc/modelc/runtime/cpu"
)

// Block is the most rows Exact computes at once.
const Block = 8

// slack bounds, relative to ‖w_r‖·‖xn‖, the roundings between the exact dot
// product of row r with the screen's xn and the two computed values: the
// F32 kernel's sum (at most cols·2^-24 of Σ|w_i·xn_i| ≤ ‖w_r‖·‖xn‖), its own
// RMS normalisation (its sum of squares, half that again, and a few
// roundings per element), the approximation's conversion and two products,
// and the bound's own sums. Together they stay under 2·(cols+64)·2^-24;
// twice that is kept.
func slack(cols int) float64 { return 4 * float64(cols+64) * 0x1p-24 }

// Exact computes classifier rows in F32, each with the bits the model's full
// classifier gives it: ExactBlock computes the block of at most Block rows
// holding row r into out[:n] and returns its first row; a block is one the
// full call's kernel takes whole, so that its rows take the same path.
type Exact interface {
	ExactBlock(r int, out *[Block]float32) (base, n int)
}

// Classifier is the int8 copy of a classifier's rows with the per-row
// factors of their bound. It is read-only and shared by sessions.
type Classifier struct {
	rows, cols    int
	groups, quads int
	w             []byte    // panels: 16 rows × 4 columns per 64 bytes, q+128
	row           []float32 // per group: 16 scales, 16 a, 16 n
}

// kernels is one implementation of the screen: run computes every row's
// upper bound and the mask of candidates (asm.ScreenAMD64), over an input
// quantised to ±levels; prep, when set, is prepare's kernel (done false
// where it does not apply).
type kernels struct {
	name   string
	levels int32
	run    func(hi *float32, mask *uint16, w *byte, x *int32, row *float32, groups, quads int, tok *uint32)
	prep   func(s *Scratch, x, g []float32, eps float32) (ok, done bool)
}

// kern is the kernel in use: the one for the widest model kernels this
// machine runs (Use changes it), nil where there is none.
var kern = forLevel(cpu.Best())

// Available reports whether this machine runs the screen.
func Available() bool { return kern != nil }

// Path names the screen's kernel ("avx512vnni", "avx2", "neon"), "" when
// it does not run.
func Path() string {
	if kern == nil {
		return ""
	}
	return kern.name
}

// Use switches the screen to the kernel that runs beside model kernels of
// level l (none for the pure-Go path, nor for NEON without SDOT): the tests
// call it beside a generated model's UseKernels to run each path as a
// machine of that level would. Not while sessions decode.
func Use(l cpu.Level) {
	kern = forLevel(l)
}

// levels is the input's quantisation range for kernel k.
func levels(k *kernels) int32 {
	if k == nil {
		return 127
	}
	return k.levels
}

// New quantises the rows×cols classifier w (row-major) on up to workers
// goroutines. It refuses a classifier with a value that is not finite,
// since its bound would not be.
func New(w []float32, rows, cols, workers int) (*Classifier, error) {
	if rows <= 0 || cols <= 0 || len(w) != rows*cols {
		return nil, errors.New("screen: classifier shape does not match its weights")
	}
	groups, quads := (rows+15)/16, (cols+15)/16*4
	c := &Classifier{rows: rows, cols: cols, groups: groups, quads: quads,
		w: make([]byte, groups*quads*64), row: make([]float32, groups*48)}
	for i := range c.w {
		c.w[i] = 128
	}
	// Rows are independent: a 32000×768 classifier takes a third of a second
	// on one core, paid by the first greedy token.
	var bad atomic.Bool
	var wg sync.WaitGroup
	workers = max(1, min(workers, groups))
	for k := range workers {
		wg.Go(func() {
			if !c.quantRows(w, k*groups/workers, (k+1)*groups/workers) {
				bad.Store(true)
			}
		})
	}
	wg.Wait()
	if bad.Load() {
		return nil, errors.New("screen: classifier holds a value that is not finite")
	}
	return c, nil
}

// quantRows fills the panels and factors of groups [g0, g1); false if a
// weight there is not finite.
func (c *Classifier) quantRows(w []float32, g0, g1 int) bool {
	inf := float32(math.Inf(1))
	sl := slack(c.cols)
	for r := g0 * 16; r < g1*16; r++ {
		g, lane := r/16, r%16
		scale, a, n := &c.row[g*48+lane], &c.row[g*48+16+lane], &c.row[g*48+32+lane]
		if r >= c.rows {
			*scale, *a, *n = 1, inf, 0 // never the best lower bound; a candidate the caller skips
			continue
		}
		wr := w[r*c.cols : (r+1)*c.cols]
		var mx float64
		for _, v := range wr {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return false
			}
			mx = max(mx, math.Abs(float64(v)))
		}
		s := float32(mx / 127)
		if s == 0 {
			s = 1
		}
		if mx > 0 && mx < tiny || mx >= huge {
			// Products of so small a row may reach the float32 subnormals,
			// whose rounding is not relative, and so large a one's bound may
			// overflow: always a candidate instead.
			*scale, *a, *n = 1, inf, 0
			continue
		}
		inv := 1 / float64(s)
		var e2, n2, w2 float64
		for i, v := range wr {
			q := max(-127, min(127, math.RoundToEven(float64(v)*inv)))
			c.w[(g*c.quads+i/4)*64+lane*4+i%4] = byte(int(q) + 128)
			d := float64(s) * q
			e2 += (float64(v) - d) * (float64(v) - d)
			n2 += d * d
			w2 += float64(v) * float64(v)
		}
		*scale = s
		*a = up(math.Sqrt(e2) + sl*math.Sqrt(w2))
		*n = up(math.Sqrt(n2))
	}
	return true
}

// prepare normalises x into s.xn, quantises it into s.x and sets the token's
// factors s.tok (and the normalisation's factor in s.tok[4]); false when the
// bound cannot cover it. The model's kernel normalises after its dot
// product (inv·Σ w_i·x_i·g_i) and with its own rounding: an inv off from
// this one by a factor scales every row's logit alike, which keeps their
// order, and the rest is the slack's. The input is quantised to ±levels(k),
// kernel k's range. Kernel k's own prep does it where it has one and the
// width suits it (screenprep_avx512: multiples of 16; screenprep_avx2: of
// 8; screenprep_neon: of 4) and is at most maxPrep; otherwise prepareGo.
func (c *Classifier) prepare(k *kernels, s *Scratch, x, g []float32, eps float32) bool {
	if k != nil && k.prep != nil && len(x) <= maxPrep {
		if ok, done := k.prep(s, x, g, eps); done {
			return ok
		}
	}
	return c.prepareGo(s, x, g, eps, levels(k))
}

// maxPrep is the widest input the prep kernels take: they grow X and D by
// a fixed 2^-11 for their float32 sums' rounding, which covers sums of up to
// 2^13 terms a lane (8 lanes on AVX2; prepareGo grows with n).
const maxPrep = 1 << 15

// prepareGo is prepare in Go, quantising to ±lv.
func (c *Classifier) prepareGo(s *Scratch, x, g []float32, eps float32, lv int32) bool {
	// Four partial sums in named variables: the loops wait on their adds
	// otherwise (an indexed array of sums lives in memory).
	n := len(x)
	n4 := n &^ 3
	var s0, s1, s2, s3 float32
	for i := 0; i < n4; i += 4 {
		v := x[i : i+4 : i+4]
		s0 += v[0] * v[0]
		s1 += v[1] * v[1]
		s2 += v[2] * v[2]
		s3 += v[3] * v[3]
	}
	for _, v := range x[n4:] {
		s0 += v * v
	}
	inv := 1 / float32(math.Sqrt(float64((s0+s1+s2+s3)/float32(n)+eps)))
	var x2a, x2b float32
	var mb uint32 // the largest |xn| as bits: their order is the floats' (a NaN above +Inf)
	xn := s.xn[:n]
	for i, v := range x {
		t := v * g[i] * inv
		xn[i] = t
		if i&1 == 0 {
			x2a += t * t
		} else {
			x2b += t * t
		}
		mb = max(mb, math.Float32bits(t)&^(1<<31))
	}
	x2 := x2a + x2b
	mx := math.Float32frombits(mb)
	if !(mx >= tiny && mx < huge) { // zero or tiny, too large for the bound's float32, or NaN
		return false
	}
	sx := mx / float32(lv)
	r := 1 / sx
	var d2 [4]float32
	var sum int32
	for i := range s.x {
		var word uint32
		var d [4]float32
		for j := range min(4, n-4*i) {
			t := xn[4*i+j]
			f := t * r
			// Any rounding will do (D measures the one made): ±0.5 by the
			// sign bit, then a truncating conversion, with no branch on the
			// sign (it is random, and mispredicted half the time).
			half := math.Float32frombits(0x3f000000 | math.Float32bits(f)&(1<<31))
			q := max(-lv, min(lv, int32(f+half)))
			d[j] = t - sx*float32(q)
			sum += q
			word |= uint32(uint8(int8(q))) << (8 * j)
		}
		s.x[i] = int32(word)
		d2[0] += d[0] * d[0]
		d2[1] += d[1] * d[1]
		d2[2] += d[2] * d[2]
		d2[3] += d[3] * d[3]
	}
	// The float32 sums of squares are within n·2^-24 of the exact ones
	// (relative; every term is non-negative): grow covers that. Each d is off by at most 2^-23·|xn_i| (the rounding
	// of sx·q and of the difference), which moves D by at most 2^-23·X: the
	// slack holds that.
	grow := 1 + float64(n)*0x1p-23
	s.tok = [5]uint32{math.Float32bits(sx), math.Float32bits(up(math.Sqrt(float64(x2)) * grow)),
		math.Float32bits(up(math.Sqrt(float64(d2[0]+d2[1]+d2[2]+d2[3])) * grow)), uint32(-128 * sum), math.Float32bits(inv)}
	return true
}

// tiny is the least max|w_r| and max|xn| the bound is kept for. With both at
// least this, every float32 product of the approximation and the bound
// (≥ (tiny/127)²·slack) stays far above the subnormals, and what the
// subnormals lose in the sums (cols·2^-149 at most) far below the slack;
// real models' rows and normalised inputs are many orders of magnitude
// larger.
const tiny = 1e-10

// huge is the largest max|w_r| and max|xn| the bound is kept for: products
// and sums of the bound then stay far below the float32 range.
const huge = 1e15

// noOverflow reports, for an input quantised to ±lv, whether the model's F32
// kernel computes every row that is not always a candidate without
// overflow, which the bound assumes: its Σx² below 1e30 and max|x_i·g_i|
// below 1e18, so that with max|w| below huge no product or sum comes near
// the float32 range. (Candidates are computed and checked for themselves.)
func (c *Classifier) noOverflow(s *Scratch, lv int32) bool {
	norm := 1 / float64(math.Float32frombits(s.tok[4])) // sqrt(Σx²/n + eps)
	mx := float64(lv) * float64(math.Float32frombits(s.tok[0]))
	return norm*norm*float64(c.cols) < 1e30 && mx*norm < 1e18
}

// up is v as a float32 no smaller than v, and a little larger, so that the
// float32 arithmetic of the bound stays above the exact bound.
func up(v float64) float32 { return float32(v * (1 + 0x1p-20)) }

// Scratch is one session's working memory for Argmax.
type Scratch struct {
	hi   []float32
	mask []uint16
	x    []int32
	xn   []float32
	out  [Block]float32
	cand []int32   // candidate rows
	tok  [5]uint32 // sx, X, D, -128·Σq (read by the kernel), inv

	// A chunked screen's job: made once, so that a token allocates nothing;
	// Argmax sets its classifier and kernel.
	c     *Classifier
	k     *kernels
	chunk func(g0, g1 int)
}

// screenGroups screens groups [g0, g1) of s.c with kernel s.k.
func (s *Scratch) screenGroups(g0, g1 int) {
	c := s.c
	s.k.run(&s.hi[g0*16], &s.mask[g0], &c.w[g0*c.quads*64], &s.x[0], &c.row[g0*48], g1-g0, c.quads, &s.tok[0])
}

// NewScratch returns working memory for c's Argmax, faulted in (a page
// fault costs as much as a small model's token).
func (c *Classifier) NewScratch() *Scratch {
	s := &Scratch{hi: make([]float32, c.groups*16), mask: make([]uint16, c.groups),
		x: make([]int32, c.quads), xn: make([]float32, c.cols), cand: make([]int32, 0, 64)}
	s.chunk = s.screenGroups
	cpu.FaultIn(unsafe.Pointer(&s.hi[0]), uintptr(4*len(s.hi)))
	return s
}

// Runner runs fn over chunks [lo, hi) covering [0, n), each at least grain
// long, on its workers, and returns when all are done (*cpu.Pool).
type Runner interface {
	RunGrain(n, grain int, fn func(lo, hi int))
}

// minGroups is the fewest groups of 16 rows a worker screens (2048 rows):
// the 15M shape's 32000 rows take 100 µs on one core, stories260K's 512
// take 0.2 µs, less than waking a worker.
const minGroups = 128

// Argmax returns the index of the largest logit of the classifier applied
// to RMSNorm(x)·g (eps as the model's norm), the first of equal ones, as
// sample.Argmax over the full logits would; e computes the candidate rows.
// A large classifier is screened in chunks on p's workers (nil: here). It
// declines (ok false) when the screen is not available or the input or a
// candidate logit is not finite; the caller then computes every logit.
func (c *Classifier) Argmax(s *Scratch, x, g []float32, eps float32, e Exact, p Runner) (tok int, ok bool) {
	k := kern
	if k == nil || len(x) != c.cols || len(g) != c.cols {
		return 0, false
	}
	if !c.prepare(k, s, x, g, eps) || !c.noOverflow(s, k.levels) {
		return 0, false
	}
	if p == nil || c.groups < 2*minGroups {
		k.run(&s.hi[0], &s.mask[0], &c.w[0], &s.x[0], &c.row[0], c.groups, c.quads, &s.tok[0])
	} else {
		// Each chunk's mask holds the rows reaching its own best lower
		// bound, at most the whole classifier's: a superset of the
		// candidates, thinned below by their upper bounds.
		s.c, s.k = c, k
		p.RunGrain(c.groups, minGroups, s.chunk)
	}

	s.cand = s.cand[:0]
	top := -1 // the candidate with the highest upper bound, the first of equal ones
	for gi, m := range s.mask {
		for m != 0 {
			r := gi*16 + bits.TrailingZeros16(m)
			m &= m - 1
			if r >= c.rows {
				break
			}
			s.cand = append(s.cand, int32(r))
			if top < 0 || s.hi[r] > s.hi[top] {
				top = r
			}
		}
	}
	if top < 0 {
		return 0, false
	}
	// The top candidate's block first: it usually holds the best value, and
	// a row whose upper bound is below the best value found cannot reach
	// it. Then the other candidates in row order, a block computed once.
	best, bi := float32(0), -1
	b0, n0 := c.exactBlock(e, s, top)
	for _, r32 := range s.cand {
		if r := int(r32); r >= b0 && r < b0+n0 {
			v := s.out[r-b0]
			if !finite(v) {
				return 0, false // the bound assumed finite logits
			}
			if bi < 0 || v > best {
				best, bi = v, r
			}
		}
	}
	base, n := b0, n0
	for _, r32 := range s.cand {
		r := int(r32)
		if r >= b0 && r < b0+n0 || s.hi[r] < best {
			continue
		}
		if r < base || r >= base+n {
			base, n = c.exactBlock(e, s, r)
		}
		v := s.out[r-base]
		if !finite(v) {
			return 0, false
		}
		if v > best || v == best && r < bi { // the first of equal ones
			best, bi = v, r
		}
	}
	return bi, bi >= 0
}

// exactBlock has e compute the block holding row r into s.out and returns
// its first row and length.
func (c *Classifier) exactBlock(e Exact, s *Scratch, r int) (base, n int) {
	base, n = e.ExactBlock(r, &s.out)
	if r < base || r >= base+n || n > Block {
		panic("screen: ExactBlock did not compute the row asked for")
	}
	return base, n
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

// Lazy is a model's screen, made on first use and shared by its sessions;
// the zero value is ready. A model whose weights are about to change in
// place (a trainer) stops it for good, since the copy would not see them.
type Lazy struct {
	once    sync.Once
	c       atomic.Pointer[Classifier]
	stopped atomic.Bool
}

// Get returns the screen of the rows×cols classifier w, made on the first
// call (New on workers goroutines); nil where the screen does not run, once
// Stop was called, or when New refused w.
func (l *Lazy) Get(w []float32, rows, cols, workers int) *Classifier {
	if !Available() || l.stopped.Load() {
		return nil
	}
	l.once.Do(func() {
		if c, err := New(w, rows, cols, workers); err == nil {
			l.c.Store(c)
		}
	})
	return l.c.Load()
}

// Made returns the screen if an earlier Get made it, else nil.
func (l *Lazy) Made() *Classifier { return l.c.Load() }

// Stop turns the screen off: Get returns nil from now on.
func (l *Lazy) Stop() { l.stopped.Store(true) }
