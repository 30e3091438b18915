package gen

import (
	"bytes"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// genGo is the package's gen.go: its doc comment and the go:generate line
// that recompiles the package from specFile, the spec beside it.
func genGo(pkg, specFile string) []byte {
	return fmt.Appendf(nil, `// %s

// Package %s is the %s model compiled by modelc from %s.
package %s

//go:generate go run github.com/modelc/modelc/cmd/modelc gen %s
`, header, pkg, pkg, specFile, pkg, specFile)
}

// generatedBy matches gen.go's go:generate line, naming the spec it was
// compiled from.
var generatedBy = regexp.MustCompile(`(?m)^//go:generate go run github\.com/modelc/modelc/cmd/modelc gen (\S+)$`)

// planDir checks that dir may take files, the package pkg compiled from
// specFile (a name in dir), and returns the files modelc generated there
// earlier that files no longer holds (a target dropped, the spec renamed),
// to remove once the new ones are written. It refuses, naming the file, a
// folder compiled from another spec, a file modelc did not write that
// generation would replace, and Go files of another package, any of which
// would otherwise be replaced silently or fail to build.
func planDir(dir, specFile, pkg string, files map[string][]byte) (stale []string, err error) {
	if b, err := os.ReadFile(filepath.Join(dir, "gen.go")); err == nil && isGenerated("gen.go", b) {
		if m := generatedBy.FindSubmatch(b); m != nil && string(m[1]) != specFile {
			return nil, fmt.Errorf("%s holds the package compiled from %s; %s would replace it: give each spec a folder of its own",
				dir, m[1], specFile)
		}
	}
	var names []string
	top, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range top {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	// The commands' folders: cmd/NAME/main.go for this and earlier names.
	if cmds, err := os.ReadDir(filepath.Join(dir, "cmd")); err == nil {
		for _, c := range cmds {
			if !c.IsDir() {
				continue
			}
			es, _ := os.ReadDir(filepath.Join(dir, "cmd", c.Name()))
			for _, e := range es {
				if e.Type().IsRegular() {
					names = append(names, filepath.Join("cmd", c.Name(), e.Name()))
				}
			}
		}
	}
	for _, name := range names {
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		gen := isGenerated(name, b)
		want, ours := files[name]
		switch {
		case ours && !gen && string(b) != string(want):
			return nil, fmt.Errorf("%s was not written by modelc (no %q line) and generation would replace it: move it, or give the spec a folder of its own", path, "// "+header)
		case !ours && gen:
			stale = append(stale, path)
		case !ours && filepath.Dir(name) == "." && strings.HasSuffix(name, ".go"):
			f, err := parser.ParseFile(token.NewFileSet(), path, b, parser.PackageClauseOnly)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			if n := f.Name.Name; n != pkg && n != pkg+"_test" {
				return nil, fmt.Errorf("%s holds package %s (%s), not %s: give each spec a folder of its own", dir, n, name, pkg)
			}
		}
	}
	return stale, nil
}

// isGenerated says whether modelc wrote b: its first line is the header
// (gen.go before it carried one: its doc comment).
func isGenerated(name string, b []byte) bool {
	first, _, _ := bytes.Cut(b, []byte("\n"))
	line := string(first)
	if line == "// "+header {
		return true
	}
	return name == "gen.go" && strings.HasPrefix(line, "// Package ") && strings.Contains(line, " compiled by modelc from ")
}

// removeStale removes the files planDir found stale, and their cmd folder
// when that leaves it empty.
func removeStale(stale []string) error {
	for _, path := range stale {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return err
		}
		if d := filepath.Dir(path); filepath.Base(filepath.Dir(d)) == "cmd" {
			os.Remove(d) // only if empty
		}
	}
	return nil
}
