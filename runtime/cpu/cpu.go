// Package cpu picks the kernel path for this machine once at start, from the
// CPU features golang.org/x/sys/cpu reads (which honours GODEBUG, so
// GODEBUG=cpu.avx512f=off and cpu.avx2=off force the lower paths), and runs
// parallel work on a persistent worker pool.
package cpu

// Level is a kernel path, ordered from the plainest to the widest.
type Level int

// The kernel paths. Generic is the specialised pure-Go code, always there.
const (
	Generic Level = iota
	NEON          // arm64 Advanced SIMD
	AVX2          // AVX2 + FMA
	AVX512        // AVX-512 F + VL (plus AVX2 + FMA)
)

func (l Level) String() string {
	switch l {
	case Generic:
		return "generic"
	case NEON:
		return "neon"
	case AVX2:
		return "avx2"
	case AVX512:
		return "avx512"
	}
	return "unknown"
}

// Features are the CPU features the kernels care about, as detected (and
// possibly switched off by GODEBUG).
type Features struct {
	AVX2, FMA, BMI2                       bool
	AVX512F, AVX512VL, AVX512BW, AVX512DQ bool
	AVX512VNNI                            bool
	ASIMD, ASIMDDP                        bool // arm64 NEON and its SDOT
	PureGo                                bool // built with -tags purego: no assembly linked
}

var (
	features = detect()
	best     = pick(features)
)

// Detect returns the features read at start.
func Detect() Features { return features }

// Best returns the widest path this machine (and build) can run.
func Best() Level { return best }

// Supports reports whether kernels of level l can run here.
func Supports(l Level) bool { return supports(features, l) }

// Levels returns every path this machine can run, widest first, ending with
// Generic: tests run each of them.
func Levels() []Level {
	var ls []Level
	for l := AVX512; l >= Generic; l-- {
		if Supports(l) {
			ls = append(ls, l)
		}
	}
	return ls
}

func supports(f Features, l Level) bool {
	switch l {
	case Generic:
		return true
	case NEON:
		return !f.PureGo && f.ASIMD
	case AVX2:
		return !f.PureGo && f.AVX2 && f.FMA
	case AVX512:
		return !f.PureGo && f.AVX2 && f.FMA && f.AVX512F && f.AVX512VL
	}
	return false
}

func pick(f Features) Level {
	for l := AVX512; l > Generic; l-- {
		if supports(f, l) {
			return l
		}
	}
	return Generic
}
