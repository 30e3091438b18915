// Command sidebyside runs modelc's compiled models and llama.cpp on the same
// GGUFs, interleaved, and prints the figures of bench/RESULTS-e2e.md as
// Markdown: decode and prefill tokens/s at each thread count (best and
// median of the rounds, ratios), each modelc decode figure as a fraction of
// the machine's read-bandwidth and FMA-peak bounds, compiled vs generic on
// stories260k, and the greedy token ids of both engines, which must agree.
// `make bench-llamacpp` builds its inputs and runs it.
//
// Every round runs each engine once, in a fresh process, in turn (modelc,
// llama.cpp, llama.cpp with F32 KV, modelc, ...), so that load from other
// processes on a shared machine falls on all of them alike.
//
// Protocol, the same in both engines (modelc's `bench`, run.mjs): a warm-up
// of 4 decoded tokens and one batch as long as the prefill's; decode =
// greedy from BOS for --steps positions, one token per
// forward pass, timed over every pass and its sampling; prefill = those
// --steps tokens as one batch, up to the logits of the last.
//
// It exits non-zero when the ids of llama.cpp with F32 keys and values and no
// flash attention (the arithmetic modelc does) differ from modelc's, or when
// the binary's `generate` text differs from the ids' text.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modelc/modelc/bench/limits"
	"github.com/modelc/modelc/spec"
)

type config struct {
	bin, dir, runner, node, greedy, specs string
	models                                []string
	// lenient are models whose greedy ids may part from llama.cpp's: the
	// divergence is reported, not failed.
	lenient               map[string]bool
	threads               []int
	steps, rounds, passes int
}

func main() {
	var c config
	var models, threads string
	flag.StringVar(&c.bin, "bin", "bin", "directory of the compiled model binaries")
	flag.StringVar(&c.dir, "dir", "bench/llamacpp/out", "directory of the GGUFs (<model>.gguf)")
	flag.StringVar(&c.runner, "runner", "bench/llamacpp/run.mjs", "the llama.cpp runner")
	flag.StringVar(&c.node, "node", "node", "Node.js")
	flag.StringVar(&c.greedy, "greedy", "", "the greedy-ids helper (default: DIR/greedy)")
	flag.StringVar(&c.specs, "specs", "generated", "directory of the bundled specs (<model>/model.yaml)")
	flag.StringVar(&models, "models", "stories260k,llama15m,llama110m", "models to run")
	flag.StringVar(&threads, "threads", "1,2", "thread counts")
	flag.IntVar(&c.steps, "steps", 128, "decode positions from BOS, and prefill length")
	flag.IntVar(&c.rounds, "rounds", 5, "interleaved rounds per model and thread count")
	flag.IntVar(&c.passes, "passes", 5, "passes of each machine-limit measurement")
	var lenient string
	flag.StringVar(&lenient, "lenient", "", "models whose greedy ids may part from llama.cpp's (quantised files: a float difference of an ulp can round an 8-bit activation code the other way, and a random network amplifies it; runtime/quant/RESULTS.md); reported, not failed")
	flag.Parse()
	c.lenient = map[string]bool{}
	for _, m := range strings.Split(lenient, ",") {
		if m != "" {
			c.lenient[m] = true
		}
	}
	if c.greedy == "" {
		c.greedy = filepath.Join(c.dir, "greedy")
	}
	c.models = strings.Split(models, ",")
	for _, f := range strings.Split(threads, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			fatal(fmt.Errorf("-threads: %q is not a positive integer", f))
		}
		c.threads = append(c.threads, n)
	}
	if c.steps < 2 || c.rounds < 1 || c.passes < 1 {
		fatal(fmt.Errorf("-steps must be ≥ 2, -rounds and -passes ≥ 1"))
	}
	r, err := measure(c)
	if err != nil {
		fatal(err)
	}
	r.print(os.Stdout, c)
	if len(r.failures) > 0 {
		fatal(errors.New(strings.Join(r.failures, "; ")))
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "sidebyside:", err)
	os.Exit(1)
}

// series are the per-round figures of one engine in one setting.
type series []float64

func (s series) best() float64 { return slices.Max(s) }

// per divides s by d round by round: the two engines of a round run minutes
// apart at most, so their ratio drifts less with the machine than a ratio of
// bests or of medians taken over the whole run.
func (s series) per(d series) series {
	out := make(series, min(len(s), len(d)))
	for i := range out {
		out[i] = s[i] / d[i]
	}
	return out
}

func (s series) median() float64 {
	t := slices.Clone(s)
	slices.Sort(t)
	if n := len(t); n%2 == 1 {
		return t[n/2]
	} else {
		return (t[n/2-1] + t[n/2]) / 2
	}
}

// engines, in the order each round runs them.
// "modelc" decodes greedily as its binary does by default (the classifier
// screened where the CPU can, runtime/screen); "modelc full" makes every
// logit each token (bench --full-logits), as llama.cpp does.
var engines = []string{"modelc", "modelc full", "llama.cpp", "llama.cpp f32kv"}

type setting struct {
	model   string
	threads int
}

type figures struct {
	decode, prefill series
	// paired: modelc's decode of each round ÷ the bandwidth bound read just
	// before and after that run (the better of the two): on a shared machine
	// whose bandwidth drifts, a fraction whose two terms are minutes apart
	// says more about the neighbours than about the kernels.
	paired series
}

type modelInfo struct {
	name, gguf  string
	spec        *spec.Spec
	bytesPerTok float64 // at the run's mean context
	// screenBytes: bytesPerTok with the classifier's int8 copy (vocab·dim
	// bytes) in place of its F32 rows, what a screened token reads; equal to
	// bytesPerTok when modelc's decode was not screened.
	screenBytes  float64
	flopsPerTok  float64
	meanContext  float64
	greedy       greedyOut
	llamaIDs     map[string][]int // engine → ids of its first run
	backend      string
	textMatches  bool
	bandwidth    map[int]float64 // threads → B/s over a buffer of bytesPerTok
	workingBytes int64
}

type greedyOut struct {
	Model   string    `json:"model"`
	Kernels string    `json:"kernels"`
	IDs     []int     `json:"ids"`
	Margins []float64 `json:"margins"`
	Text    string    `json:"text"`
}

type runnerOut struct {
	Backend string `json:"backend"`
	Threads int    `json:"threads"`
	Decode  struct {
		TokPerSec float64 `json:"tokPerSec"`
	} `json:"decode"`
	Prefill struct {
		TokPerSec float64 `json:"tokPerSec"`
	} `json:"prefill"`
	IDs []int `json:"ids"`
}

type results struct {
	start, end         time.Time
	loadStart, loadEnd string
	nodeVersion, cpu   string
	models             []*modelInfo
	runs               map[setting]map[string]*figures
	compare            map[string]series // compiled/generic decode and prefill
	dram               map[int]float64   // threads → B/s over 1 GiB
	peak               map[int]float64   // threads → FLOP/s
	path               string
	failures           []string
}

func measure(c config) (*results, error) {
	r := &results{
		start: time.Now(), loadStart: loadavg(), cpu: cpuName(),
		runs: map[setting]map[string]*figures{}, compare: map[string]series{},
		dram: map[int]float64{}, peak: map[int]float64{},
	}
	if out, err := exec.Command(c.node, "--version").Output(); err == nil {
		r.nodeVersion = strings.TrimSpace(string(out))
	}
	for _, name := range c.models {
		m, err := prepare(c, name)
		if err != nil {
			return nil, err
		}
		r.models = append(r.models, m)
	}
	r.path = limits.Paths()[0]
	if err := r.measureLimits(c); err != nil {
		return nil, err
	}
	for _, m := range r.models {
		// The bounds are measured in every round too, beside the runs, so that
		// the best of them sees the machine as quiet as the best runs did.
		buf, err := limits.NewBuffer(m.workingBytes)
		if err != nil {
			return nil, err
		}
		for _, t := range c.threads {
			st := setting{m.name, t}
			r.runs[st] = map[string]*figures{}
			for _, e := range engines {
				r.runs[st][e] = &figures{}
			}
			for round := range c.rounds {
				progress("%s, %d thread(s), round %d/%d", m.name, t, round+1, c.rounds)
				for _, e := range engines {
					var before float64
					mc := strings.HasPrefix(e, "modelc")
					if mc {
						if before, err = buf.ReadBandwidth(r.path, t, 3); err != nil {
							return nil, err
						}
					}
					dec, pre, err := r.runEngine(c, m, e, t)
					if err != nil {
						return nil, err
					}
					f := r.runs[st][e]
					f.decode = append(f.decode, dec)
					f.prefill = append(f.prefill, pre)
					if mc {
						after, err := buf.ReadBandwidth(r.path, t, 3)
						if err != nil {
							return nil, err
						}
						f.paired = append(f.paired, dec/(max(before, after)/m.bytesOf(e)))
					}
				}
				bw, err := buf.ReadBandwidth(r.path, t, 3)
				if err != nil {
					return nil, err
				}
				m.bandwidth[t] = max(m.bandwidth[t], bw)
				fl, err := limits.FMAPeak(r.path, t, 3, 50*time.Millisecond)
				if err != nil {
					return nil, err
				}
				r.peak[t] = max(r.peak[t], fl)
			}
		}
	}
	// Compiled vs generic: each process runs the two in turn (bench --compare),
	// on stories260k when it is among the models.
	for round := range c.rounds {
		if !r.has("stories260k") {
			break
		}
		progress("stories260k compiled vs generic, round %d/%d", round+1, c.rounds)
		out, err := run(exec.Command(filepath.Join(c.bin, "stories260k"), "bench", "--compare", "--rounds", "1",
			"--model", filepath.Join(c.dir, "stories260k.gguf"), "--steps", strconv.Itoa(c.steps), "--threads", "1"))
		if err != nil {
			return nil, err
		}
		for _, label := range []string{"compiled", "generic"} {
			dec, pre, err := parseBench(out, label)
			if err != nil {
				return nil, err
			}
			r.compare[label+" decode"] = append(r.compare[label+" decode"], dec)
			r.compare[label+" prefill"] = append(r.compare[label+" prefill"], pre)
		}
	}
	// Limits again: the better of the two measurements is the bound.
	if err := r.measureLimits(c); err != nil {
		return nil, err
	}
	r.end, r.loadEnd = time.Now(), loadavg()
	return r, nil
}

// prepare reads a model's spec and figures and runs the id checks.
func prepare(c config, name string) (*modelInfo, error) {
	m := &modelInfo{name: name, gguf: filepath.Join(c.dir, name+".gguf"), llamaIDs: map[string][]int{}, bandwidth: map[int]float64{}}
	s, err := spec.Load(filepath.Join(c.specs, name, "model.yaml"))
	if err != nil {
		return nil, err
	}
	m.spec = s
	// Decoding positions 0..steps-1 attends 1..steps positions: on average
	// (steps+1)/2. The formula is spec.Figures' (what `modelc spec show`
	// prints, there at context max_seq), here at the run's mean context.
	f := s.FiguresAt(0)
	m.meanContext = float64(c.steps+1) / 2
	m.bytesPerTok = float64(f.WeightBytesPerToken) + m.meanContext*float64(f.KVCacheBytesPerToken)
	m.flopsPerTok = float64(f.MatmulFLOPsPerToken) + 4*float64(s.Layers*s.Dim)*m.meanContext
	m.workingBytes = max(int64(m.bytesPerTok)/4096*4096, 64<<10)
	m.screenBytes = m.bytesPerTok

	progress("%s: greedy ids (modelc)", name)
	out, err := run(exec.Command(c.greedy, "--model", m.gguf, "--steps", strconv.Itoa(c.steps)))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(out, &m.greedy); err != nil {
		return nil, fmt.Errorf("%s: greedy output: %w", c.greedy, err)
	}
	if m.greedy.Model != name {
		return nil, fmt.Errorf("%s: greedy ran the compiled %s, want %s", m.gguf, m.greedy.Model, name)
	}
	// The binary's stdout is the text of the same ids (plus the final newline).
	text, err := run(exec.Command(filepath.Join(c.bin, name), "generate", "--model", m.gguf,
		"--temperature", "0", "--steps", strconv.Itoa(c.steps), "--threads", "1"))
	if err != nil {
		return nil, err
	}
	m.textMatches = string(text) == m.greedy.Text
	return m, nil
}

func (r *results) measureLimits(c config) error {
	progress("machine limits (%s)", r.path)
	big, err := limits.NewBuffer(1 << 30)
	if err != nil {
		return err
	}
	for _, t := range c.threads {
		bw, err := big.ReadBandwidth(r.path, t, c.passes)
		if err != nil {
			return err
		}
		r.dram[t] = max(r.dram[t], bw)
		f, err := limits.FMAPeak(r.path, t, c.passes, 100*time.Millisecond)
		if err != nil {
			return err
		}
		r.peak[t] = max(r.peak[t], f)
	}
	big = nil
	runtime.GC()
	for _, m := range r.models {
		b, err := limits.NewBuffer(m.workingBytes)
		if err != nil {
			return err
		}
		for _, t := range c.threads {
			bw, err := b.ReadBandwidth(r.path, t, c.passes)
			if err != nil {
				return err
			}
			m.bandwidth[t] = max(m.bandwidth[t], bw)
		}
	}
	return nil
}

var benchLine = regexp.MustCompile(`(?m)^(compiled|generic)\s+decode: \d+ tokens, ([\d.]+) tok/s .*prefill: \d+ tokens, ([\d.]+) tok/s`)

func parseBench(out []byte, label string) (dec, pre float64, err error) {
	for _, m := range benchLine.FindAllSubmatch(out, -1) {
		if string(m[1]) == label {
			dec, _ = strconv.ParseFloat(string(m[2]), 64)
			pre, _ = strconv.ParseFloat(string(m[3]), 64)
			return dec, pre, nil
		}
	}
	return 0, 0, fmt.Errorf("no %q figures in bench output:\n%s", label, out)
}

// bytesOf is what one token of engine e (a modelc one) reads.
func (m *modelInfo) bytesOf(e string) float64 {
	if e == "modelc" {
		return m.screenBytes
	}
	return m.bytesPerTok
}

func (r *results) runEngine(c config, m *modelInfo, engine string, threads int) (dec, pre float64, err error) {
	steps, th := strconv.Itoa(c.steps), strconv.Itoa(threads)
	if strings.HasPrefix(engine, "modelc") {
		args := []string{"bench", "--model", m.gguf, "--steps", steps, "--threads", th, "--rounds", "1"}
		if engine == "modelc full" {
			args = append(args, "--full-logits")
		}
		out, err := run(exec.Command(filepath.Join(c.bin, m.name), args...))
		if err != nil {
			return 0, 0, err
		}
		if engine == "modelc" && bytes.Contains(out, []byte(", screened)")) {
			s := m.spec
			m.screenBytes = m.bytesPerTok - 3*float64(s.Vocab*s.Dim)
		}
		return parseBench(out, "compiled")
	}
	args := []string{c.runner, "--model", m.gguf, "--steps", steps, "--threads", th}
	if engine == "llama.cpp f32kv" {
		args = append(args, "--kv", "f32", "--fa", "off")
	}
	out, err := run(exec.Command(c.node, args...))
	if err != nil {
		return 0, 0, err
	}
	var o runnerOut
	if err := json.Unmarshal(out, &o); err != nil {
		return 0, 0, fmt.Errorf("%s output: %w\n%s", c.runner, err, out)
	}
	if o.Threads != threads {
		return 0, 0, fmt.Errorf("%s ran %d threads, asked for %d", c.runner, o.Threads, threads)
	}
	m.backend = o.Backend
	if prev, ok := m.llamaIDs[engine]; !ok {
		m.llamaIDs[engine] = o.IDs
	} else if !slices.Equal(prev, o.IDs) {
		r.failures = append(r.failures, fmt.Sprintf("%s: %s gave different ids from run to run (%d threads)", m.name, engine, threads))
	}
	return o.Decode.TokPerSec, o.Prefill.TokPerSec, nil
}

// run executes cmd and returns its stdout; a failure carries its stderr.
func run(cmd *exec.Cmd) ([]byte, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	return out, nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "sidebyside: "+format+"\n", args...)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cpuName() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// agreement compares llama.cpp's ids with modelc's, which stop after a
// sampled BOS or EOS (generate's rule) while llama.cpp's run on: the common
// prefix is what must agree. It returns how many agree, out of how many, and
// the first differing position (-1 if none).
func agreement(modelc, llama []int) (same, of, first int) {
	of = min(len(modelc), len(llama))
	for i := range of {
		if modelc[i] != llama[i] {
			return i, of, i
		}
	}
	return of, of, -1
}

func (r *results) print(w io.Writer, c config) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("<!-- generated by bench/llamacpp/sidebyside (make bench-llamacpp) -->\n\n")
	p("Run %s, %s. CPU: %s, %d logical cores (runtime.NumCPU). %s, Node.js %s, node-llama-cpp 3.21.1",
		r.start.Format("2006-01-02 15:04"), r.end.Sub(r.start).Round(time.Second), r.cpu, runtime.NumCPU(), runtime.Version(), r.nodeVersion)
	if len(r.models) > 0 && r.models[0].backend != "" {
		p(" (llama.cpp CPU backend %s)", r.models[0].backend)
	}
	p(". Load average at start %s, at end %s. ", r.loadStart, r.loadEnd)
	p("%d interleaved rounds per model and thread count (modelc, modelc with every logit, llama.cpp, llama.cpp F32 KV, modelc, ...; one process per run); best and median of the rounds, and \"per round\": each round's modelc run ÷ the llama.cpp run of the same round, median and range over the rounds (the ratio least moved by the machine's drift). Decode: %d positions from BOS, greedy; prefill: %d tokens in one batch. modelc's greedy decode screens the classifier (an int8 copy finds the rows that can hold the largest logit, only those are computed in F32: the same tokens, `runtime/screen`) where the CPU has a screen kernel (AVX-512 VNNI, AVX2, arm64 SDOT); the \"every logit\" rows (`bench --full-logits`) make all the logits each token as llama.cpp does, which is what sampling with a temperature costs.\n\n", c.rounds, c.steps, c.steps)

	p("## Machine limits (%s kernels; best of %d passes before and after the runs, and of 3 passes in every round beside the runs)\n\n", r.path, c.passes)
	p("| | 1 GiB read, GB/s | FMA peak, GFLOP/s |")
	for _, m := range r.models {
		p(" %s working set (%s) read, GB/s |", m.name, sizeString(m.workingBytes))
	}
	p("\n|---|---:|---:|%s\n", strings.Repeat("---:|", len(r.models)))
	for _, t := range c.threads {
		p("| %d thread%s | %.1f | %.1f |", t, plural(t), r.dram[t]/1e9, r.peak[t]/1e9)
		for _, m := range r.models {
			p(" %.1f |", m.bandwidth[t]/1e9)
		}
		p("\n")
	}

	for _, phase := range []string{"decode", "prefill"} {
		p("\n## %s tokens/s, F32, same GGUF\n\n", strings.ToUpper(phase[:1])+phase[1:])
		p("| model | threads | modelc | modelc best | modelc median | llama.cpp best | llama.cpp median | modelc ÷ llama.cpp (best, median) | per round: median (range) | llama.cpp F32 KV, no FA: best | median | modelc ÷ it (best) |")
		if phase == "decode" {
			p(" modelc best ÷ bandwidth bound | paired per round: median (best) | ÷ DRAM bound | ÷ FMA bound |")
		}
		p("\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		if phase == "decode" {
			p("---:|---:|---:|---:|")
		}
		p("\n")
		for _, m := range r.models {
			for _, t := range c.threads {
				f := r.runs[setting{m.name, t}]
				get := func(e string) series {
					if phase == "decode" {
						return f[e].decode
					}
					return f[e].prefill
				}
				ll, lf := get("llama.cpp"), get("llama.cpp f32kv")
				variants := []string{"modelc"}
				if phase == "decode" {
					variants = append(variants, "modelc full")
				}
				for _, e := range variants {
					mc := get(e)
					rr := mc.per(ll)
					label := "greedy"
					if phase == "prefill" {
						label = "—" // the same batched pass either way
					} else if e == "modelc full" {
						label = "every logit"
					} else if phase == "decode" && m.screenBytes != m.bytesPerTok {
						label = "greedy, screened"
					}
					p("| %s | %d | %s | %.1f | %.1f | %.1f | %.1f | %.2f×, %.2f× | %.2f× (%.2f–%.2f×) | %.1f | %.1f | %.2f× |", m.name, t, label,
						mc.best(), mc.median(), ll.best(), ll.median(), mc.best()/ll.best(), mc.median()/ll.median(),
						rr.median(), slices.Min(rr), slices.Max(rr), lf.best(), lf.median(), mc.best()/lf.best())
					if phase == "decode" {
						bytes := m.bytesOf(e)
						bwBound := m.bandwidth[t] / bytes
						flopBound := r.peak[t] / m.flopsPerTok
						pr := f[e].paired
						dramBound := r.dram[t] / bytes
						p(" %.0f%% (of %.0f tok/s) | %.0f%% (%.0f%%) | %.0f%% (of %.0f tok/s) | %.1f%% (of %.0f tok/s) |", 100*mc.best()/bwBound, bwBound, 100*pr.median(), 100*pr.best(),
							100*mc.best()/dramBound, dramBound, 100*mc.best()/flopBound, flopBound)
					}
					p("\n")
				}
			}
		}
	}
	p("\nBounds: bytes per token (weights read once, the classifier in full, and the KV cache at the run's mean context of %.1f positions: the formula of `modelc spec show`) ÷ the read bandwidth over a buffer of that size on as many threads; FLOPs per token (same formula) ÷ the FMA peak. \"modelc best ÷ bandwidth bound\" divides the best decode by the best bandwidth read before, between and after the rounds; \"paired per round\" divides each round's decode by the better of the two bandwidth readings taken just before and just after it. \"DRAM bound\" is the issues' definition: bytes per token ÷ the read bandwidth over 1 GiB (DRAM); a working set that L3 partly holds can beat it, which is why the bandwidth bound over a buffer of the working set's size is the stricter figure. A screened token's bounds use its own bytes: the classifier's int8 copy (vocab × dim bytes) in place of its F32 rows (the few rows computed in F32 besides are left out), over the bandwidth measured for the F32 working set.\n\n", float64(c.steps+1)/2)
	p("| model | bytes per token | screened, bytes per token | FLOPs per token | modelc kernels |\n|---|---:|---:|---:|---|\n")
	for _, m := range r.models {
		p("| %s | %.0f | %.0f | %.0f | %s |\n", m.name, m.bytesPerTok, m.screenBytes, m.flopsPerTok, m.greedy.Kernels)
	}

	if len(r.compare["compiled decode"]) > 0 {
		cd, gd, cp, gp := r.compare["compiled decode"], r.compare["generic decode"], r.compare["compiled prefill"], r.compare["generic prefill"]
		p("\n## Compiled vs generic Go model, stories260k, 1 thread\n\n")
		p("| | compiled best | compiled median | generic best | generic median | compiled ÷ generic (best, median) |\n|---|---:|---:|---:|---:|---:|\n")
		p("| decode tok/s | %.1f | %.1f | %.1f | %.1f | %.2f×, %.2f× |\n", cd.best(), cd.median(), gd.best(), gd.median(), cd.best()/gd.best(), cd.median()/gd.median())
		p("| prefill tok/s | %.1f | %.1f | %.1f | %.1f | %.2f×, %.2f× |\n", cp.best(), cp.median(), gp.best(), gp.median(), cp.best()/gp.best(), cp.median()/gp.median())
	}

	p("\n## Greedy token ids\n\n")
	p("modelc's ids come from `bench/llamacpp/greedy` (the `generate` loop over the same compiled package, recording each sampled id); `generate`'s stdout must equal their text. llama.cpp's come from every timed run (all runs of one setting must give the same ids).\n\n")
	p("| model | modelc ids | generate text = ids' text | llama.cpp F32 KV, no FA: agree | llama.cpp default (F16 KV, flash attention): agree | modelc's top-2 logit gap there (median gap) |\n|---|---:|---|---:|---:|---:|\n")
	var parted []string
	for _, m := range r.models {
		g := m.greedy
		sameF, ofF, _ := agreement(g.IDs, m.llamaIDs["llama.cpp f32kv"])
		sameD, ofD, firstD := agreement(g.IDs, m.llamaIDs["llama.cpp"])
		gap := "—"
		med := series(g.Margins).median()
		if firstD >= 0 {
			gap = fmt.Sprintf("%.4f at position %d (%.3f)", g.Margins[firstD], firstD, med)
		}
		p("| %s | %d | %s | %d/%d | %d/%d | %s |\n", m.name, len(g.IDs), yesNo(m.textMatches), sameF, ofF, sameD, ofD, gap)
		if !m.textMatches {
			r.failures = append(r.failures, fmt.Sprintf("%s: generate's stdout differs from the text of the greedy ids", m.name))
		}
		if (sameF != ofF || ofF == 0) && !c.lenient[m.name] {
			r.failures = append(r.failures, fmt.Sprintf("%s: llama.cpp (F32 KV) ids differ from modelc's at position %d", m.name, sameF))
		}
		if sameF != ofF && c.lenient[m.name] {
			parted = append(parted, fmt.Sprintf("%s at position %d", m.name, sameF))
		}
	}
	if len(parted) > 0 {
		p("\nAllowed by -lenient (quantised files): ids part from llama.cpp's (F32 KV) for %s.\n", strings.Join(parted, ", "))
	}
	for _, m := range r.models {
		p("\n%s, modelc:              %s\n", m.name, ids(m.greedy.IDs))
		p("%s, llama.cpp F32 KV:    %s\n", m.name, ids(m.llamaIDs["llama.cpp f32kv"]))
		p("%s, llama.cpp default:   %s\n", m.name, ids(m.llamaIDs["llama.cpp"]))
	}

	p("\n## Commands\n\n```\n")
	for _, m := range r.models {
		p("%s/%s bench --model %s --steps %d --threads T --rounds 1 [--full-logits]\n", c.bin, m.name, m.gguf, c.steps)
		p("%s %s --model %s --steps %d --threads T [--kv f32 --fa off]\n", c.node, c.runner, m.gguf, c.steps)
		p("%s --model %s --steps %d\n", c.greedy, m.gguf, c.steps)
		p("%s/%s generate --model %s --temperature 0 --steps %d --threads 1\n", c.bin, m.name, m.gguf, c.steps)
	}
	if r.has("stories260k") {
		p("%s/stories260k bench --compare --rounds 1 --model %s --steps %d --threads 1\n", c.bin, filepath.Join(c.dir, "stories260k.gguf"), c.steps)
	}
	p("```\n")
	if len(r.failures) > 0 {
		p("\n**FAILED:** %s\n", strings.Join(r.failures, "; "))
	}
}

func ids(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return "[" + strings.Join(s, " ") + "]"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
}

// has reports whether the run includes the model called name.
func (r *results) has(name string) bool {
	for _, m := range r.models {
		if m.name == name {
			return true
		}
	}
	return false
}
