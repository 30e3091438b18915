// Package gentest checks in tests that committed generated files are what
// their generators write today.
package gentest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Match fails t for each file of want whose committed copy in dir differs
// from want[name], saying to run regen (a command) to bring it up to date.
func Match(t testing.TB, dir string, want map[string][]byte, regen string) {
	t.Helper()
	for name, w := range want {
		path := filepath.Join(dir, name)
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("committed %s: %v", path, err)
		}
		if !bytes.Equal(got, w) {
			t.Errorf("%s is stale: run %s", path, regen)
		}
	}
}

// MatchDir is Match for a generator that wrote the files names into the
// directory fresh.
func MatchDir(t testing.TB, dir, fresh string, names []string, regen string) {
	t.Helper()
	want := make(map[string][]byte, len(names))
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(fresh, name))
		if err != nil {
			t.Fatal(err)
		}
		want[name] = b
	}
	Match(t, dir, want, regen)
}
