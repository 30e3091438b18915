package gen

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/modelc/modelc/runtime/cpu"
	"github.com/modelc/modelc/spec"
)

func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// Regenerating every bundled spec reproduces the committed files byte for byte.
func TestGeneratedUpToDate(t *testing.T) {
	root := repoRoot(t)
	specs, err := filepath.Glob(filepath.Join(root, "generated", "*", "model.yaml"))
	if err != nil || len(specs) == 0 {
		t.Fatalf("no bundled specs under generated/: %v", err)
	}
	for _, path := range specs {
		s, err := spec.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Dir(path)
		ip, err := ImportPath(dir)
		if err != nil {
			t.Fatal(err)
		}
		files, err := Files(s, ip)
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range files {
			have, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Errorf("%s: %v (run make generate)", name, err)
				continue
			}
			if !bytes.Equal(have, want) {
				t.Errorf("%s is stale: run make generate and commit", filepath.Join(dir, name))
			}
		}
	}
}

// Generated files carry the header and are gofmt'ed (jennifer formats them).
func TestHeaderAndFormat(t *testing.T) {
	s := &spec.Spec{Name: "tiny", Vocab: 11, Dim: 12, Layers: 1, Heads: 3, KVHeads: 1, FFNDim: 7, MaxSeq: 5}
	s.SetDefaults()
	files, err := Files(s, "example.com/tiny")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if !strings.HasPrefix(string(b), "// "+header+"\n") {
			t.Errorf("%s does not start with the generated-code header", name)
		}
	}
}

// Unsupported features are refused at gen time, never ignored; a quantised
// spec compiles when some matrix has rows of whole 32-blocks.
func TestRefusesUnsupported(t *testing.T) {
	s := &spec.Spec{Name: "q", Vocab: 11, Dim: 24, Layers: 1, Heads: 4, KVHeads: 1, FFNDim: 40, MaxSeq: 5, Quant: "q4_0"}
	s.SetDefaults()
	if _, err := Files(s, "example.com/q"); err == nil || !strings.Contains(err.Error(), "quant: q4_0 needs rows of whole 32-weight blocks") {
		t.Fatalf("gen of a q4_0 spec without 32-multiples: err = %v", err)
	}
	// A quantised mixture needs experts of whole blocks.
	s.MoE = &spec.MoE{Experts: 2, TopK: 1, FFNDim: 40}
	s.Dim = 32
	if _, err := Files(s, "example.com/q"); err == nil || !strings.Contains(err.Error(), "q4_0 with moe needs dim and moe.ffn_dim multiples of 32") {
		t.Fatalf("gen of a q4_0 moe spec of experts of 40: err = %v", err)
	}
	s.MoE.FFNDim, s.MoE.SharedExpert = 32, true
	if files, err := Files(s, "example.com/q"); err != nil || files["qkernels_go.go"] == nil {
		t.Fatalf("gen of a q4_0 moe spec: err = %v", err)
	}
	for _, c := range []struct{ dim, ffn int }{{32, 64}, {32, 40}, {24, 64}} {
		s := &spec.Spec{Name: "q", Vocab: 11, Dim: c.dim, Layers: 1, Heads: 4, KVHeads: 2, FFNDim: c.ffn, MaxSeq: 5, Quant: "q8_0"}
		s.SetDefaults()
		files, err := Files(s, "example.com/q")
		if err != nil {
			t.Fatalf("dim %d ffn %d: %v", c.dim, c.ffn, err)
		}
		if _, ok := files["qkernels_go.go"]; !ok {
			t.Fatalf("dim %d ffn %d: no quantised kernels", c.dim, c.ffn)
		}
	}
}

// Every spec that validates generates: heads and kv_heads may each be 1024,
// and one RoPE call rotates both (up to 2048 heads). Before, a spec of 1024
// heads and any kv_heads validated and then failed in gen ("kernel
// rope_1025x2_go: ... heads in [1, 1024]").
func TestMostHeadsGenerate(t *testing.T) {
	for _, kv := range []int{1, 1024} {
		s := &spec.Spec{Name: "heads", Vocab: 7, Dim: 2048, Layers: 1, Heads: 1024, KVHeads: kv, FFNDim: 5, MaxSeq: 3}
		s.SetDefaults()
		if _, err := Files(s, "example.com/heads"); err != nil {
			t.Errorf("heads 1024, kv_heads %d: %v", kv, err)
		}
	}
}

// Small heads keep a position-minor KV cache only while a layer's cache fits
// the kernel's baked offsets (2^24 floats); the longest contexts a spec
// allows keep it position-major. Before, stories260K's shape with max_seq
// 2^20 validated and then failed in gen ("kernel gattentiont_8_1048576_4x2_go:
// cache capacity ...").
func TestLongContextGenerates(t *testing.T) {
	for _, seq := range []int{512, 1 << 19, 1<<19 + 1, 1 << 20} {
		s := &spec.Spec{Name: "long", Vocab: 512, Dim: 64, Layers: 1, Heads: 8, KVHeads: 4, FFNDim: 172, MaxSeq: seq}
		s.SetDefaults()
		p, err := NewPlan(s)
		if err != nil {
			t.Fatalf("max_seq %d: %v", seq, err)
		}
		if want := kvCap(seq)*s.KVDim() <= posMinorMax; p.PosMinorKV() != want {
			t.Errorf("max_seq %d: position-minor cache %v, want %v", seq, p.PosMinorKV(), want)
		}
		if _, err := Files(s, "example.com/long"); err != nil {
			t.Errorf("max_seq %d: %v", seq, err)
		}
	}
}

// Differential test of the compiler: random small specs with odd shapes are
// generated into a temporary module, built, and their logits compared with
// the generic model's on random weights.
func TestDifferentialRandomSpecs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds several packages")
	}
	root := repoRoot(t)
	r := rand.New(rand.NewPCG(7, 11))
	var specs []*spec.Spec
	shapes := []struct {
		heads, kv, hd, ffn, vocab int
		tie                       bool
	}{
		{3, 1, 6, 13, 37, true},   // dims not a multiple of 8, GQA 3:1
		{2, 2, 10, 29, 50, false}, // untied classifier, MHA
		{4, 2, 4, 9, 23, true},    // tiny heads
		{1, 1, 18, 40, 41, false}, // one head of 18 (> unroll limit)
		{6, 3, 2, 5, 7, true},     // head dim 2
		{5, 1, 24, 70, 97, false}, // wide heads, blocked dot products
		{4, 1, 128, 40, 41, true}, // Llama-7B's heads of 128, GQA 4:1: blocked register plans
		{1024, 1, 2, 5, 7, false}, // the most heads: RoPE rotates 1024 query and 1 key head in one call
	}
	for i, sh := range shapes {
		s := &spec.Spec{
			Name: fmt.Sprintf("rnd%d", i), Vocab: sh.vocab, Dim: sh.heads * sh.hd, Layers: 1 + r.IntN(3),
			Heads: sh.heads, KVHeads: sh.kv, FFNDim: sh.ffn, MaxSeq: 16 + r.IntN(16), TieEmbeddings: sh.tie,
			RopeTheta: 500 + r.Float64()*20000,
		}
		s.SetDefaults()
		specs = append(specs, s)
	}
	// Mixtures of experts, with and without a shared expert.
	for i, m := range []spec.MoE{{Experts: 4, TopK: 2, FFNDim: 13}, {Experts: 5, TopK: 1, FFNDim: 8, SharedExpert: true}} {
		s := &spec.Spec{
			Name: fmt.Sprintf("moe%d", i), Vocab: 29, Dim: 12, Layers: 2, Heads: 2, KVHeads: 1, FFNDim: 16,
			MaxSeq: 20, TieEmbeddings: i == 0, MoE: &m,
		}
		s.SetDefaults()
		specs = append(specs, s)
	}
	// Quantised mixtures (checkQuant): experts in blocks, with and without a
	// shared expert.
	for i, c := range []struct {
		quant string
		m     spec.MoE
	}{{"q8_0", spec.MoE{Experts: 4, TopK: 2, FFNDim: 32, SharedExpert: true}}, {"q4_0", spec.MoE{Experts: 3, TopK: 1, FFNDim: 64}}} {
		s := &spec.Spec{
			Name: fmt.Sprintf("qmoe%d", i), Vocab: 29, Dim: 64, Layers: 2, Heads: 2, KVHeads: 1, FFNDim: 64,
			MaxSeq: 20, TieEmbeddings: i == 0, MoE: &c.m, Quant: c.quant,
		}
		s.SetDefaults()
		specs = append(specs, s)
	}

	mod := t.TempDir()
	gomod := fmt.Sprintf("module example.com/difftest\n\ngo 1.26\n\nrequire github.com/modelc/modelc v0.0.0\n\nreplace github.com/modelc/modelc => %s\n", root)
	must(t, os.WriteFile(filepath.Join(mod, "go.mod"), []byte(gomod), 0o644))
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(mod, "go.sum"), sum, 0o644))

	var imports, checks strings.Builder
	for _, s := range specs {
		ip := "example.com/difftest/" + s.Name
		files, err := Files(s, ip)
		must(t, err)
		for name, b := range files {
			path := filepath.Join(mod, s.Name, name)
			must(t, os.MkdirAll(filepath.Dir(path), 0o755))
			must(t, os.WriteFile(path, b, 0o644))
		}
		fmt.Fprintf(&imports, "\t%q\n", ip)
		fn := "check"
		if s.Quant != "f32" {
			fn = "checkQuant"
		}
		fmt.Fprintf(&checks, "\tfor _, l := range cpu.Levels() {\n\t\tif err := %s.UseKernels(l); err != nil {\n\t\t\tpanic(err)\n\t\t}\n\t\t%s(%q+\"/\"+l.String(), %s.Spec(), %s.New)\n\t}\n", s.Name, fn, s.Name, s.Name, s.Name)
	}
	main := fmt.Sprintf(diffMain, imports.String(), checks.String())
	must(t, os.MkdirAll(filepath.Join(mod, "cmd", "diff"), 0o755))
	must(t, os.WriteFile(filepath.Join(mod, "cmd", "diff", "main.go"), []byte(main), 0o644))

	cmd := exec.Command("go", "run", "-mod=mod", "./cmd/diff")
	cmd.Dir = mod
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("differential run failed: %v\n%s", err, out)
	}
	for _, s := range specs {
		for _, l := range cpu.Levels() {
			if !strings.Contains(string(out), "ok "+s.Name+"/"+l.String()+" ") {
				t.Errorf("no result for %s on the %s kernels:\n%s", s.Name, l, out)
			}
		}
	}
	t.Logf("\n%s", out)
}

const diffMain = `package main

import (
	"fmt"
	"math"
	"os"
	"strings"

%s
	"github.com/modelc/modelc/runtime/cli"
	"github.com/modelc/modelc/runtime/cpu"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
)

// models builds the compiled model and the generic one on p.
func models(name string, p *model.Params, newModel model.Factory) (g, r model.Model) {
	g, err := newModel(p)
	if err != nil {
		fmt.Println(name, err)
		os.Exit(1)
	}
	if r, err = generic.New(p); err != nil {
		fmt.Println(name, err)
		os.Exit(1)
	}
	return g, r
}

func check(name string, s *model.Spec, newModel model.Factory) {
	p := cli.RandomParams(s, 42)
	// Larger weights than an initialised model so that attention is not uniform.
	for i := range p.Data {
		p.Data[i] *= 8
	}
	g, r := models(name, p, newModel)
	gs, rs := g.NewSession(), r.NewSession()
	worst := 0.0
	for pos := 0; pos < s.MaxSeq; pos++ {
		tok := (pos*7 + 3) %% s.Vocab
		gl, rl := gs.Forward(tok, pos), rs.Forward(tok, pos)
		for i := range rl {
			// Relative to the logit's size: float32 sums in another order
			// differ by a few ulps of the largest terms.
			d := math.Abs(float64(gl[i]-rl[i])) / (1 + math.Abs(float64(rl[i])))
			if d > worst || math.IsNaN(d) {
				worst = d
			}
		}
	}
	// Random weights scaled up make a chaotic network that amplifies float32
	// rounding (the two sum in different orders); a wrong kernel is off by O(1).
	// Batched prefill of most of the context, then decoding on from it.
	n := s.MaxSeq - 3
	toks := make([]int, n)
	for i := range toks {
		toks[i] = (i*7 + 3) %% s.Vocab
	}
	ps, rs2 := g.NewSession(), r.NewSession()
	cmp := func(gl, rl []float32) {
		for i := range rl {
			d := math.Abs(float64(gl[i]-rl[i])) / (1 + math.Abs(float64(rl[i])))
			if d > worst || math.IsNaN(d) {
				worst = d
			}
		}
	}
	cmp(ps.Prefill(toks, 0), rs2.Prefill(toks, 0))
	for pos := n; pos < s.MaxSeq; pos++ {
		cmp(ps.Forward(pos%%s.Vocab, pos), rs2.Forward(pos%%s.Vocab, pos))
	}
	if worst > 1e-3 || math.IsNaN(worst) {
		fmt.Println("FAIL", name, "max rel diff", worst)
		os.Exit(1)
	}
	if s.MoE != nil {
		checkExperts(name, s, p, newModel)
	}
	fmt.Println("ok", name, "max rel diff", worst)
}

// checkQuant compares a quantised spec with the generic model on the same
// float weights: quantising the weights and the activations moves the
// logits by a few per cent at Q8_0, tens at Q4_0 (relative RMS; random
// Gaussian weights lose more to 4 bits than trained ones); a wrong kernel
// or expert moves them by O(1) (unrelated logits: about 1.4). The routers
// are scaled up so that both pick the same experts despite that noise.
// Prefill must give decoding's logits bit for bit.
func checkQuant(name string, s *model.Spec, newModel model.Factory) {
	p := cli.RandomParams(s, 42)
	for _, tn := range p.Tensors {
		k := float32(2.5)
		if strings.HasSuffix(tn.Name, "ffn_gate_inp.weight") {
			k = 50
		}
		for i, d := 0, p.T(tn.Name); i < len(d) && !strings.HasSuffix(tn.Name, "_norm.weight"); i++ {
			d[i] *= k
		}
	}
	g, r := models(name, p, newModel)
	gs, rs := g.NewSession(), r.NewSession()
	worst := 0.0
	for pos := 0; pos < s.MaxSeq; pos++ {
		tok := (pos*7 + 3) %% s.Vocab
		gl, rl := gs.Forward(tok, pos), rs.Forward(tok, pos)
		var d2, r2 float64
		for i := range rl {
			d := float64(gl[i] - rl[i])
			d2, r2 = d2+d*d, r2+float64(rl[i])*float64(rl[i])
		}
		if e := math.Sqrt(d2 / r2); e > worst || math.IsNaN(e) {
			worst = e
		}
	}
	bound := 0.15
	if s.Quant == "q4_0" {
		bound = 0.6
	}
	if worst > bound || math.IsNaN(worst) {
		fmt.Println("FAIL", name, "relative RMS", worst)
		os.Exit(1)
	}
	// A batched pass gives each token decoding's logits bit for bit.
	n := s.MaxSeq - 2
	toks := make([]int, n)
	for i := range toks {
		toks[i] = (i*5 + 1) %% s.Vocab
	}
	fs := g.NewSession()
	var last []float32
	for pos, tok := range toks {
		last = fs.Forward(tok, pos)
	}
	pre := g.NewSession().Prefill(toks, 0)
	for i := range last {
		if math.Float32bits(pre[i]) != math.Float32bits(last[i]) {
			fmt.Println("FAIL", name, "prefill logit", i, pre[i], "decoding", last[i])
			os.Exit(1)
		}
	}
	if s.MoE != nil {
		checkExperts(name, s, p, newModel)
	}
	fmt.Println("ok", name, "relative RMS", worst)
}

// checkExperts poisons one expert at a time with NaN: a token's logits stay
// exactly as they were unless the expert was one of its top-k, so the
// compiled code reads no other expert's weights.
func checkExperts(name string, s *model.Spec, p *model.Params, newModel model.Factory) {
	clean, _ := newModel(p)
	want := append([]float32(nil), clean.NewSession().Forward(3, 0)...)
	m := s.MoE
	for l := 0; l < s.Layers; l++ {
		unread := 0
		for e := 0; e < m.Experts; e++ {
			var saved [][]float32
			for _, kind := range []string{model.FFNGateExps, model.FFNUpExps, model.FFNDownExps} {
				t := p.T(model.LayerTensor(l, kind))
				n := len(t) / m.Experts
				part := t[e*n : (e+1)*n]
				saved = append(saved, append([]float32(nil), part...))
				for i := range part {
					part[i] = float32(math.NaN())
				}
			}
			g, _ := newModel(p)
			got := g.NewSession().Forward(3, 0)
			same := true
			for i := range got {
				same = same && math.Float32bits(got[i]) == math.Float32bits(want[i])
			}
			if same {
				unread++
			}
			for k, kind := range []string{model.FFNGateExps, model.FFNUpExps, model.FFNDownExps} {
				t := p.T(model.LayerTensor(l, kind))
				n := len(t) / m.Experts
				copy(t[e*n:(e+1)*n], saved[k])
			}
		}
		if unread != m.Experts-m.TopK {
			fmt.Println("FAIL", name, "layer", l, ":", unread, "experts unread, want", m.Experts-m.TopK)
			os.Exit(1)
		}
	}
}

func main() {
%s}
`

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// avx2High matches a register an AVX2-only CPU lacks (X16-X31, Y16-Y31,
// any Z or K register) in a line of Go assembly.
var avx2High = regexp.MustCompile(`\b(?:[XY](?:1[6-9]|2[0-9]|3[01])|Z[0-9]+|K[1-7])\b`)

// Specs with large heads (Llama-7B's 128, and 256) compile: every kernel
// of the plan, the training kernels among them, generates within its
// register file (avo never spills: 16 YMM on AVX2) and assembles. Before
// the attention kernels blocked large heads, the spec of heads of 128
// generated an AVX2 attention backward using Y16-Y18, which failed in
// `modelc build` (VEXTRACTF128 has no AVX-512 form), and heads of 256 did
// not generate at all.
func TestLargeHeadSpecs(t *testing.T) {
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Skipf("go env GOROOT: %v", err)
	}
	inc := filepath.Join(strings.TrimSpace(string(goroot)), "pkg", "include")
	for _, c := range []struct{ dim, heads, kv int }{{256, 2, 2}, {512, 4, 1}, {512, 2, 1}} {
		s := &spec.Spec{Name: fmt.Sprintf("hd%d", c.dim/c.heads), Vocab: 64, Dim: c.dim, Layers: 1, Heads: c.heads, KVHeads: c.kv, FFNDim: 688, MaxSeq: 64}
		s.SetDefaults()
		files, err := Files(s, "example.com/"+s.Name)
		if err != nil {
			t.Fatalf("dim %d heads %d: %v", c.dim, c.heads, err)
		}
		hd := s.HeadDim()
		if !bytes.Contains(files["tkernels_amd64.s"], []byte(fmt.Sprintf("attbwd_%d_", hd))) {
			t.Errorf("heads of %d: no attention backward kernel", hd)
		}
		dir := t.TempDir()
		for name, b := range files {
			if !strings.HasSuffix(name, ".s") {
				continue
			}
			fn := ""
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "TEXT ") {
					fn = strings.Fields(line)[1]
				} else if code, _, _ := strings.Cut(line, "//"); strings.Contains(fn, "_avx2") && avx2High.MatchString(code) {
					t.Errorf("heads of %d: %s: %s uses a register only AVX-512 has: %s", hd, name, fn, strings.TrimSpace(line))
					fn = ""
				}
			}
			src := filepath.Join(dir, name)
			must(t, os.WriteFile(src, b, 0o644))
			arch := strings.TrimSuffix(name[strings.LastIndex(name, "_")+1:], ".s")
			cmd := exec.Command("go", "tool", "asm", "-p", s.Name, "-I", inc, "-o", src+".o", src)
			cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("heads of %d: %s does not assemble: %v\n%.2000s", hd, name, err, out)
			}
		}
	}
}
