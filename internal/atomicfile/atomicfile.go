// Package atomicfile writes a file under a temporary name beside its final
// path, renamed into place only once complete and synced: a reader, or a run
// resumed after a crash, sees the old file or the new one, never half of one.
// It uses the standard library only, so that every package may use it.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// File is a file being written; Commit puts it in place, Abort drops it.
type File struct {
	*os.File
	path string
	done bool
}

// Create starts the file that will become path.
func Create(path string) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
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
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	if err := os.Rename(f.Name(), f.path); err != nil {
		os.Remove(f.Name())
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
