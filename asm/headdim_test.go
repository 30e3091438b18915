package asm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
)

// highVector matches a vector or opmask register that only AVX-512 has
// (X16-X31, Y16-Y31, any Z or K register) in a line of Go assembly.
var highVector = regexp.MustCompile(`\b(?:([XY])([0-9]+)|Z[0-9]+|K[1-7])\b`)

// avx2HighRegisters returns, for each function of the Go assembly text
// whose name has _avx2, the first line that uses a register an AVX2-only
// CPU lacks (registers 16-31 assemble to EVEX encodings, when they
// assemble at all).
func avx2HighRegisters(text []byte) []string {
	var bad []string
	fn := ""
	for _, line := range strings.Split(string(text), "\n") {
		switch {
		case strings.HasPrefix(line, "TEXT "):
			fn = strings.Fields(line)[1]
			continue
		case strings.HasPrefix(line, "DATA") || strings.HasPrefix(line, "GLOBL") || strings.HasPrefix(line, "#"):
			fn = ""
			continue
		}
		if !strings.Contains(fn, "_avx2") {
			continue
		}
		code, _, _ := strings.Cut(line, "//")
		for _, m := range highVector.FindAllStringSubmatch(code, -1) {
			if n, err := strconv.Atoi(m[2]); m[1] == "" || err == nil && n >= 16 {
				bad = append(bad, fn+": "+strings.TrimSpace(line))
				fn = "" // one line per function
				break
			}
		}
	}
	return bad
}

// assemble runs the Go assembler for goarch on text, so that an instruction
// the register allocation made unencodable (VEXTRACTF128 of Y18) fails the
// test here rather than in a model's build.
func assemble(t *testing.T, goarch string, text []byte) {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Skipf("go env GOROOT: %v", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "k.s")
	if err := os.WriteFile(src, text, 0o644); err != nil {
		t.Fatal(err)
	}
	inc := filepath.Join(strings.TrimSpace(string(out)), "pkg", "include")
	cmd := exec.Command("go", "tool", "asm", "-p", "p", "-I", inc, "-o", filepath.Join(dir, "k.o"), src)
	cmd.Env = append(os.Environ(), "GOARCH="+goarch, "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s assembly does not assemble: %v\n%s", goarch, err, firstLines(b, 10))
	}
}

func firstLines(b []byte, n int) string {
	ls := strings.SplitN(string(b), "\n", n+1)
	return strings.Join(ls[:min(n, len(ls))], "\n")
}

// Every kernel whose register plan depends on the head size generates for
// heads up to 256 (Llama-7B's 128 among them), within 16 YMM registers on
// AVX2 and 32 on AVX-512 (avo never spills), and assembles; the kernel
// tests (asm/internal/testkernels, asm/internal/backtest) check heads of
// 128 and 256 against the Go references. Before the register plans
// blocked large heads, attbwd_128 used Y16-Y18 on AVX2 (an assembler
// error), attbwd_256 did not allocate at all and four query heads of 16
// took more than AVX2's registers in gattention.
func TestLargeHeadDims(t *testing.T) {
	hds := []int{2, 6, 8, 10, 16, 24, 40, 64, 72, 80, 88, 96, 120, 128, 136, 160, 200, 208, 216, 248, 256}
	if testing.Short() {
		hds = []int{16, 88, 128, 216, 256}
	}
	var ks []Kernel
	var tks []TKernel
	for _, hd := range hds {
		for _, isa := range []ISA{AVX2, AVX512, NEON, Generic} {
			ks = append(ks, Kernel{Op: OpAttention, ISA: isa, HeadDim: hd, KVStride: 3 * hd},
				Kernel{Op: OpRoPE, ISA: isa, HeadDim: hd, Heads: 3})
			for g := 1; g <= 4; g++ {
				ks = append(ks, Kernel{Op: OpGroupAttention, ISA: isa, HeadDim: hd, KVStride: 2 * hd, Heads: 2, Group: g})
			}
			tk := TKernel{Op: TAttBwd, ISA: isa, HeadDim: hd, Stride: 3 * hd}
			if tk.Supported() {
				tks = append(tks, tk)
			}
		}
	}
	var amd, arm, gop []Kernel
	for _, k := range ks {
		switch k.ISA {
		case NEON:
			arm = append(arm, k)
		case Generic:
			gop = append(gop, k)
		default:
			amd = append(amd, k)
		}
	}
	texts := map[string][]byte{}
	var err error
	if texts["amd64 kernels"], _, err = AMD64(amd, "p"); err != nil {
		t.Fatal(err)
	}
	if texts["amd64 training kernels"], _, err = TrainOpsAMD64(tks, "p"); err != nil {
		t.Fatal(err)
	}
	for _, hd := range hds {
		if hd%8 == 0 && !strings.Contains(string(texts["amd64 training kernels"]), fmt.Sprintf("attbwd_%d_%d_avx2", hd, 3*hd)) {
			t.Errorf("no AVX2 attention backward for heads of %d", hd)
		}
	}
	for what, text := range texts {
		if bad := avx2HighRegisters(text); len(bad) > 0 {
			t.Errorf("%s: AVX2 functions use AVX-512's registers:\n%s", what, strings.Join(bad, "\n"))
		}
		assemble(t, "amd64", text)
	}
	neon, _, err := ARM64(arm, "p")
	if err != nil {
		t.Fatal(err)
	}
	assemble(t, "arm64", neon)
	if _, err := GoSource(gop, "p"); err != nil {
		t.Fatal(err)
	}
}

// The allocator gives an AVX2 function registers 0-15 only: a plan that
// needs more fails to generate instead of producing AVX-512 encodings.
func TestAVX2AllocationLimit(t *testing.T) {
	gen := func(name string, live int) error {
		c := build.NewContext()
		c.Function(name)
		c.SignatureExpr("func(x *float32)")
		p := loadParam(c, "x")
		var regs []operand.Op
		for i := range live {
			v := c.YMM()
			c.VMOVUPS(mem(p, 32*i), v)
			regs = append(regs, v)
		}
		for i, v := range regs {
			c.VMOVUPS(v, mem(p, 32*i))
		}
		c.RET()
		_, _, err := printAVO(c, "p", "test")
		return err
	}
	if err := gen("fits_avx2", 16); err != nil {
		t.Errorf("16 live YMM on AVX2: %v", err)
	}
	if err := gen("wide_avx2", 17); err == nil || !strings.Contains(err.Error(), "wide_avx2: failed to allocate registers") {
		t.Errorf("17 live YMM on AVX2: error %v, want a failed allocation", err)
	}
	if err := gen("wide_avx512", 17); err != nil {
		t.Errorf("17 live YMM on AVX-512: %v", err)
	}
}
