// Package e2e tests whole paths through modelc: compiled binaries against the
// generic model and against llama2.c's reference output.
package e2e

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// sharedData finds ../shared/data beside the repository; tests that need it
// fail when it is missing, because CI always has it.
func sharedData(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "shared", "data")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("shared data not found at %s: %v", dir, err)
	}
	return dir
}
