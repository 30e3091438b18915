package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.txt")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "new" {
		t.Fatalf("read %q, %v", b, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	// An aborted file leaves the old one and no temporary file.
	f, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("half")
	f.Abort()
	f.Abort() // twice is harmless
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("after Abort the file holds %q", b)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("%d entries in the folder after Abort, want 1", len(es))
	}
	// A path that is a folder is refused before anything is written.
	if _, err := Create(dir); err == nil || !strings.Contains(err.Error(), dir+": is a directory") {
		t.Errorf("create over a folder: %v", err)
	}
	if es, _ := os.ReadDir(filepath.Dir(dir)); len(es) != 1 {
		t.Errorf("%d entries beside the folder, want 1", len(es))
	}
	// A folder that does not exist is an error naming the path.
	if err := WriteFile(filepath.Join(dir, "no", "b.txt"), nil); err == nil {
		t.Error("write into a missing folder succeeded")
	}
}

func TestNotInput(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("a"), 0o644)
	os.WriteFile(b, []byte("b"), 0o644)
	if err := NotInput("-o", filepath.Join(dir, "new"), a); err != nil {
		t.Errorf("a new output: %v", err)
	}
	if err := NotInput("-o", b, a); err != nil {
		t.Errorf("another file: %v", err)
	}
	// The same file under another spelling of its path.
	if err := NotInput("-o", filepath.Join(dir, ".", "a"), b, a); err == nil {
		t.Error("an output that is an input was accepted")
	}
}

// TestRemoveTemps is what a command stopped by a signal relies on: the
// unfinished file's temporary name is gone, the old output is intact, and
// nothing written afterwards lands.
func TestRemoveTemps(t *testing.T) {
	t.Cleanup(func() { tempsMu.Lock(); stopping = false; tempsMu.Unlock() })
	dir := t.TempDir()
	path := filepath.Join(dir, "out.gguf")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("half")
	RemoveTemps()
	if _, err := os.Stat(f.Name()); !os.IsNotExist(err) {
		t.Errorf("temporary file %s after RemoveTemps: %v", f.Name(), err)
	}
	if err := f.Commit(); err == nil {
		t.Error("Commit after RemoveTemps succeeded")
	}
	if _, err := Create(filepath.Join(dir, "later")); err == nil {
		t.Error("Create after RemoveTemps succeeded")
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("the old output holds %q", b)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("%d entries in the folder after RemoveTemps, want 1 (the old output)", len(es))
	}
}

// TestTrack: a tracked file made outside Create is removed by RemoveTemps
// unless it was untracked first.
func TestTrack(t *testing.T) {
	t.Cleanup(func() { tempsMu.Lock(); stopping = false; tempsMu.Unlock() })
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, nil, 0o644)
	os.WriteFile(b, nil, 0o644)
	Track(a)
	Track(b)()
	RemoveTemps()
	if _, err := os.Stat(a); !os.IsNotExist(err) {
		t.Errorf("tracked file after RemoveTemps: %v", err)
	}
	if _, err := os.Stat(b); err != nil {
		t.Errorf("untracked file after RemoveTemps: %v", err)
	}
}

// TestTrackDir: a tracked folder is removed by RemoveTemps unless it holds
// its keep file, or was untracked first.
func TestTrackDir(t *testing.T) {
	t.Cleanup(func() { tempsMu.Lock(); stopping = false; tempsMu.Unlock() })
	root := t.TempDir()
	gone, kept, untracked := filepath.Join(root, "gone"), filepath.Join(root, "kept"), filepath.Join(root, "untracked")
	for _, d := range []string{gone, kept, untracked} {
		os.Mkdir(d, 0o755)
		os.WriteFile(filepath.Join(d, "run.json"), nil, 0o644)
		TrackDir(d, "state.bin")
	}
	os.WriteFile(filepath.Join(kept, "state.bin"), nil, 0o644)
	TrackDir(untracked, "state.bin")()
	RemoveTemps()
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Errorf("a tracked folder without its keep file after RemoveTemps: %v", err)
	}
	for _, d := range []string{kept, untracked} {
		if _, err := os.Stat(filepath.Join(d, "run.json")); err != nil {
			t.Errorf("%s after RemoveTemps: %v", d, err)
		}
	}
}

// TestCreateOddPaths: a symbolic link is written through; a pipe or device
// is refused before anything is written (the rename would replace it: once
// /dev/null); an empty name and a missing folder are named as such.
func TestCreateOddPaths(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.gguf")
	os.WriteFile(target, []byte("old"), 0o644)
	link := filepath.Join(dir, "link.gguf")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(link, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "new" {
		t.Errorf("the link's target holds %q", b)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", st.Mode(), err)
	}
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("create over a pipe: %v", err)
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the pipe was replaced: %v", err)
	}
	if _, err := Create(""); err == nil || err.Error() != "create: the output file name is empty" {
		t.Errorf("empty name: %v", err)
	}
	missing := filepath.Join(dir, "nodir", "o.gguf")
	if _, err := Create(missing); err == nil || err.Error() != "create "+missing+": folder "+filepath.Join(dir, "nodir")+" does not exist" {
		t.Errorf("missing folder: %v", err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 3 {
		t.Errorf("%d entries in the folder, want 3 (target, link, pipe)", len(es))
	}
}
