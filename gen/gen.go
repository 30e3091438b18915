package gen

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	. "github.com/dave/jennifer/jen"

	"github.com/modelc/modelc/asm"
	"github.com/modelc/modelc/internal/atomicfile"

	"github.com/modelc/modelc/spec"
)

// Files returns the generated files for spec s, keyed by path relative to the
// package directory; importPath is the package's Go import path.
func Files(s *spec.Spec, importPath string) (map[string][]byte, error) {
	p, err := NewPlan(s)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	render := func(name string, f *File) error {
		var b bytes.Buffer
		if err := f.Render(&b); err != nil {
			return fmt.Errorf("gen %s: %w", name, err)
		}
		out[name] = b.Bytes()
		return nil
	}
	if err := render("model_gen.go", emitModel(p)); err != nil {
		return nil, err
	}
	goSrc, err := asm.GoSource(p.Kernels(asm.Generic), p.Package)
	if err != nil {
		return nil, fmt.Errorf("gen %s: %w", p.Package, err)
	}
	out["kernels_go.go"] = goSrc
	if p.Quant != 0 {
		if out["qkernels_go.go"], err = asm.QuantGo(p.QKernels(asm.Generic, false), p.Package); err != nil {
			return nil, fmt.Errorf("gen %s: %w", p.Package, err)
		}
	}
	var archs []string
	for arch, isas := range p.archISAs() {
		archs = append(archs, arch)
		var ks []asm.Kernel
		for _, isa := range isas {
			ks = append(ks, p.Kernels(isa)...)
		}
		gen := asm.AMD64
		if arch == "arm64" {
			gen = asm.ARM64
		}
		text, stubs, err := gen(ks, p.Package)
		if err != nil {
			return nil, fmt.Errorf("gen %s: %w", p.Package, err)
		}
		out["kernels_"+arch+".s"] = text
		out["kernels_"+arch+".go"] = stubs
		if p.Quant != 0 {
			// The quantised kernels of this GOARCH: AVX2 always (the AVX-512
			// path falls back to it without VNNI), NEON with and without SDOT.
			var qks []asm.QKernel
			qgen := asm.QuantAMD64
			if arch == "arm64" {
				qks = append(p.QKernels(asm.NEON, false), p.QKernels(asm.NEON, true)...)
				qgen = asm.QuantARM64
			} else {
				qks = p.QKernels(asm.AVX2, false)
				if slices.Contains(isas, asm.AVX512) {
					qks = append(qks, p.QKernels(asm.AVX512, false)...)
				}
			}
			qtext, qstubs, err := qgen(qks, p.Package)
			if err != nil {
				return nil, fmt.Errorf("gen %s: %w", p.Package, err)
			}
			out["qkernels_"+arch+".s"] = qtext
			out["qkernels_"+arch+".go"] = qstubs
		}
		if err := render("dispatch_"+arch+".go", emitArchDispatch(p, arch, isas)); err != nil {
			return nil, err
		}
	}
	if err := emitTrain(p, out); err != nil {
		return nil, err
	}
	slices.Sort(archs)
	if err := render("dispatch_other.go", emitNoArchDispatch(p, archs)); err != nil {
		return nil, err
	}
	if err := render(filepath.Join("cmd", p.Package, "main.go"), emitMain(p, importPath)); err != nil {
		return nil, err
	}
	out["gen.go"] = genGo(p.Package, "model.yaml")
	return out, nil
}

// Generate compiles the spec at specPath into the directory that holds it,
// which must lie inside a Go module, and removes the files it generated there
// before that this spec no longer makes. It returns the paths it wrote (those
// whose content changed) and those it removed.
func Generate(specPath string) (written, removed []string, err error) {
	s, err := spec.Load(specPath)
	if err != nil {
		return nil, nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(specPath))
	if err != nil {
		return nil, nil, err
	}
	importPath, err := ImportPath(dir)
	if err != nil {
		return nil, nil, err
	}
	files, err := Files(s, importPath)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", specPath, err)
	}
	specFile := filepath.Base(specPath)
	files["gen.go"] = genGo(s.Name, specFile)
	stale, err := planDir(dir, specFile, s.Name, files)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", specPath, err)
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		path := filepath.Join(dir, name)
		changed, err := writeAtomic(path, files[name])
		if err != nil {
			return written, nil, err
		}
		if changed {
			written = append(written, path)
		}
	}
	return written, stale, removeStale(stale)
}

// ImportPath finds the Go import path of dir from the nearest go.mod above it.
func ImportPath(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
					rel, err := filepath.Rel(d, dir)
					if err != nil {
						return "", err
					}
					if rel == "." {
						return f[1], nil
					}
					return f[1] + "/" + filepath.ToSlash(rel), nil
				}
			}
			return "", fmt.Errorf("%s: no module line", filepath.Join(d, "go.mod"))
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%s is not inside a Go module (no go.mod above it)", dir)
		}
	}
}

// writeAtomic writes data to path unless it holds data already, and says
// whether it wrote.
func writeAtomic(path string, data []byte) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil // unchanged: keep the file's time so builds stay cached
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	return true, atomicfile.WriteFile(path, data)
}
