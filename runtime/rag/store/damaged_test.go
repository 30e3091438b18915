package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// goodStore writes a store of n sources and returns its path and the size
// its metadata says the data has.
func goodStore(t *testing.T, n int) (string, int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "good.db")
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ingest(t, s, corpus(1, n))
	var size int64
	s.(*Bolt).db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path, size
}

func copyFile(t *testing.T, from, to string, n int64) []byte {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if n >= 0 {
		b = b[:n]
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// within fails the test if f does not return within d: a store operation
// on a damaged file once waited for ever in Close.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: still running after %v (deadlocked?)", what, d)
	}
}

// TestTruncatedStore: a file cut short is refused on open, read-only or
// not, with an error that says so, and is left as it was.
func TestTruncatedStore(t *testing.T) {
	good, size := goodStore(t, 300)
	if size < 8*4096 {
		t.Fatalf("the test store holds %d bytes, want a few pages", size)
	}
	path := filepath.Join(t.TempDir(), "cut.db")
	cut := size / 2
	before := copyFile(t, good, path, cut)
	for _, ro := range []bool{true, false} {
		_, err := Open(context.Background(), path, Options{ReadOnly: ro})
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "store "+path+" is damaged: the file has ") || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("open (read-only %v) of a truncated store: %v", ro, err)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Errorf("opening the truncated store changed it")
	}
}

// TestFaultIsError reads a truncated file past the open's size check (as a
// file cut while open would be): the fault reading the missing pages of the
// mapping must be an error, not a crash of the process.
func TestFaultIsError(t *testing.T) {
	good, size := goodStore(t, 300)
	path := filepath.Join(t.TempDir(), "cut.db")
	// Just over half: bbolt maps a power of two of at least the file's
	// size, so every missing page is inside the mapping and faults
	// (SIGBUS) rather than landing on some other memory.
	pow := int64(32 << 10)
	for pow < size {
		pow *= 2
	}
	copyFile(t, good, path, pow/2+4096)
	db, err := openDB(path, true, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s := &Bolt{db: db, path: path, o: Options{ReadOnly: true}.withDefaults()}
	defer s.Close()
	_, err = s.Dense(context.Background(), make([]float32, dim), 5)
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "store "+path+" is damaged: a read of the mapped file faulted") {
		t.Errorf("dense search of a truncated file: %v", err)
	}
	// The fault setting is the goroutine's: it must be as it was.
	if old := debug.SetPanicOnFault(false); old {
		t.Errorf("SetPanicOnFault left on")
	}
	// The failed read released its transaction: Close does not wait.
	within(t, 10*time.Second, "close", func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
}

// TestOverwrittenPage overwrites each page of a store in turn with random
// bytes and then searches and re-ingests it: every operation returns (a
// damaged page is an ErrDamaged error), a failed ingest leaves the file as
// it was, and the store closes.
func TestOverwrittenPage(t *testing.T) {
	good, size := goodStore(t, 40)
	docs := corpus(1, 40)
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(3, 4))
	var readFails, writeFails int
	for pg := int64(2); pg < size/4096; pg++ {
		path := filepath.Join(dir, "flip.db")
		before := copyFile(t, good, path, -1)
		junk := make([]byte, 4096)
		for i := range junk {
			junk[i] = byte(r.Uint32())
		}
		copy(before[pg*4096:], junk)
		os.WriteFile(path, before, 0o644)
		within(t, 20*time.Second, fmt.Sprintf("page %d", pg), func() {
			var err error
			checkErr := func(what string) bool {
				if err != nil && !errors.Is(err, ErrDamaged) {
					t.Errorf("page %d: %s: %v, want nil or a damaged error", pg, what, err)
				}
				return err != nil
			}
			// Search, read-only.
			ro, err := Open(context.Background(), path, Options{ReadOnly: true})
			if !checkErr("open read-only") {
				_, err = ro.Keyword(context.Background(), []string{"flow", "wing", "nozzl"}, 10)
				if !checkErr("keyword") {
					_, err = ro.Dense(context.Background(), make([]float32, dim), 10)
					checkErr("dense")
				}
				if err != nil {
					readFails++
				}
				if err := ro.Close(); err != nil {
					t.Errorf("page %d: close after a search: %v", pg, err)
				}
			}
			// Ingest the same documents again.
			s, err := Open(context.Background(), path, Options{})
			if checkErr("open") {
				return
			}
			tx, err := s.Begin(context.Background())
			if !checkErr("begin") {
				for _, d := range docs {
					if err = tx.Put(d); checkErr("put") {
						break
					}
				}
				if err == nil {
					err = tx.Commit()
					checkErr("commit")
				} else {
					tx.Rollback()
				}
			}
			if err != nil {
				writeFails++
				if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
					t.Errorf("page %d: a failed ingest changed the file", pg)
				}
			}
			if err := s.Close(); err != nil {
				t.Errorf("page %d: close after an ingest: %v", pg, err)
			}
		})
	}
	// The test means something only if damage was met in both.
	if readFails == 0 || writeFails == 0 {
		t.Errorf("%d searches and %d ingests met the damage, want some of each", readFails, writeFails)
	}
}

// TestNotAStore: files that are not stores are named as such.
func TestNotAStore(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	os.WriteFile(empty, nil, 0o644)
	if _, err := Open(context.Background(), empty, Options{ReadOnly: true}); err == nil || err.Error() != "store "+empty+" is an empty file, not a store (ingest some files first)" {
		t.Errorf("search of an empty file: %v", err)
	}
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte(strings.Repeat("not a database\n", 500)), 0o644)
	for _, ro := range []bool{true, false} {
		if _, err := Open(context.Background(), text, Options{ReadOnly: ro}); err == nil || err.Error() != "store "+text+" is not a store file (not a bbolt database)" {
			t.Errorf("open (read-only %v) of a text file: %v", ro, err)
		}
	}
	// An empty file is a new store for an ingest, like a missing one.
	s, err := Open(context.Background(), empty, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ingest(t, s, corpus(1, 3))
	if st, err := s.Stats(context.Background()); err != nil || st.Sources != 3 {
		t.Errorf("ingest into an empty file: %+v, %v", st, err)
	}
	s.Close()
}

// TestShortStore: a store cut within its first two pages is damaged, not
// "not a store" (bbolt says the same of both).
func TestShortStore(t *testing.T) {
	good, _ := goodStore(t, 3)
	path := filepath.Join(t.TempDir(), "short.db")
	copyFile(t, good, path, 5000)
	if _, err := Open(context.Background(), path, Options{ReadOnly: true}); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "file size too small") {
		t.Errorf("open of a store cut to 5000 bytes: %v", err)
	}
}
