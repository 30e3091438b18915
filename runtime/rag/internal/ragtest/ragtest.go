// Package ragtest holds helpers the rag tests share.
package ragtest

import (
	"os"
	"path/filepath"
	"testing"
)

// DataDir returns /path/to/shared/data, found by walking up from the
// working directory to the repository root (where go.mod is) and taking
// its sibling "shared/data". The test fails when it cannot be found.
func DataDir(t testing.TB) string {
	t.Helper()
	d, err := Data()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Data is DataDir for programs.
func Data() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			for up := d; ; up = filepath.Dir(up) {
				p := filepath.Join(up, "shared", "data")
				if st, err := os.Stat(p); err == nil && st.IsDir() {
					return p, nil
				}
				if filepath.Dir(up) == up {
					break
				}
			}
		}
		if filepath.Dir(d) == d {
			return "", &os.PathError{Op: "find", Path: "shared/data beside the repository root (from " + wd + ")", Err: os.ErrNotExist}
		}
	}
}
