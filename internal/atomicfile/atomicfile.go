// Package atomicfile writes a file under a temporary name beside its final
// path, renamed into place only once complete and synced: a reader, or a run
// resumed after a crash, sees the old file or the new one, never half of one.
// It uses the standard library only, so that every package may use it.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// The temporary files of Files not yet committed or aborted, so that a
// command stopped by a signal can remove them before it exits; stopping is
// set once RemoveTemps has run, after which no new one is made or renamed.
var (
	tempsMu  sync.Mutex
	temps    = map[string]bool{}
	dirs     = map[string]string{} // TrackDir's folders and the file that keeps each
	stopping bool
)

// File is a file being written; Commit puts it in place, Abort drops it.
type File struct {
	*os.File
	path string
	done bool
}

// Create starts the file that will become path. A symbolic link is written
// through (its target is replaced, the link kept); a path that is not a
// regular file (a folder, a device such as /dev/null, a pipe) is refused,
// since the rename would put a file in its place.
func Create(path string) (*File, error) {
	if path == "" {
		return nil, errors.New("create: the output file name is empty")
	}
	name := path
	if st, err := os.Lstat(path); err == nil && st.Mode()&fs.ModeSymlink != 0 {
		if path, err = filepath.EvalSymlinks(path); err != nil {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
	}
	// Said now, not as the rename's error once the work is done.
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, fmt.Errorf("create %s: is a directory", name)
	} else if err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("create %s: not a regular file (%v); write to a file", name, st.Mode().Type())
	}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("create %s: folder %s does not exist", name, filepath.Dir(path))
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	tempsMu.Lock()
	defer tempsMu.Unlock()
	if stopping {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("create %s: stopping", path)
	}
	temps[f.Name()] = true
	return &File{File: f, path: path}, nil
}

// Path is where Commit puts the file.
func (f *File) Path() string { return f.path }

// Commit syncs, closes and renames the file into place (mode 0644, not the
// temporary file's 0600), then syncs the directory so that the rename
// itself survives a crash.
func (f *File) Commit() error {
	if err := f.Sync(); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	if err := f.Close(); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	f.done = true
	if err := f.rename(); err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	if d, err := os.Open(filepath.Dir(f.path)); err == nil {
		d.Sync() // not every platform allows it; the data is safe regardless
		d.Close()
	}
	return nil
}

// Abort removes the temporary file; after Commit it does nothing.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.Close()
	os.Remove(f.Name())
	tempsMu.Lock()
	delete(temps, f.Name())
	tempsMu.Unlock()
}

// rename puts the closed temporary file in place, under the lock so that
// RemoveTemps sees it either still pending or already renamed.
func (f *File) rename() error {
	tempsMu.Lock()
	defer tempsMu.Unlock()
	delete(temps, f.Name())
	if stopping {
		os.Remove(f.Name())
		return errors.New("stopping")
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), f.path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// Track adds name, a temporary file made without Create (a database built
// beside its final name), to those RemoveTemps removes; the function it
// returns takes it off again once the file is in place or removed.
func Track(name string) (untrack func()) {
	tempsMu.Lock()
	defer tempsMu.Unlock()
	temps[name] = true
	return func() {
		tempsMu.Lock()
		delete(temps, name)
		tempsMu.Unlock()
	}
}

// RemoveTemps removes the temporary file of every File not yet committed or
// aborted, and makes later Creates and Commits fail: a command stopped by a
// signal calls it just before os.Exit, so that it leaves the old outputs and
// nothing beside them.
func RemoveTemps() {
	tempsMu.Lock()
	defer tempsMu.Unlock()
	stopping = true
	for name := range temps {
		os.Remove(name)
	}
	clear(temps)
	for dir, keep := range dirs {
		if _, err := os.Stat(filepath.Join(dir, keep)); err != nil {
			os.RemoveAll(dir)
		}
	}
	clear(dirs)
}

// TrackDir adds dir, a folder this process made for a run, to what
// RemoveTemps removes, with all it holds, unless it then holds the file
// keep (the run's first checkpoint): a run stopped hard before saving leaves
// no folder that the next run would refuse. The function it returns takes
// it off again.
func TrackDir(dir, keep string) (untrack func()) {
	tempsMu.Lock()
	defer tempsMu.Unlock()
	dirs[dir] = keep
	return func() {
		tempsMu.Lock()
		delete(dirs, dir)
		tempsMu.Unlock()
	}
}

// WriteFile writes data to path atomically.
func WriteFile(path string, data []byte) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// NotInput returns an error when out is the same file as one of inputs:
// a command that reads its inputs while it writes (or after it has
// replaced) its output would destroy them.
func NotInput(flag, out string, inputs ...string) error {
	so, err := os.Stat(out)
	if err != nil {
		return nil // no file there yet: nothing to destroy
	}
	for _, in := range inputs {
		if si, err := os.Stat(in); err == nil && os.SameFile(so, si) {
			return fmt.Errorf("%s %s is also an input: writing it would destroy %s; choose another output", flag, out, in)
		}
	}
	return nil
}
