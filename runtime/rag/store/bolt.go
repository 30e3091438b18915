package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"

	"github.com/modelc/modelc/runtime/rag/bm25"
	"github.com/modelc/modelc/runtime/rag/dense"
	"github.com/modelc/modelc/runtime/rag/topk"
)

// The bbolt file's buckets.
var (
	bMeta    = []byte("meta")    // "meta" → JSON Meta; "stats" → sources, chunks, terms; "gen"; "hnsw"
	bChunks  = []byte("chunks")  // id → chunk record
	bSources = []byte("sources") // source → hash and chunk ids
	bPost    = []byte("post")    // term 0x00 id → tf, dl
	bDF      = []byte("df")      // term → document frequency
	bVec     = []byte("vec")     // id → float32 little-endian
	kMeta    = []byte("meta")
	kStats   = []byte("stats")
	kGen     = []byte("gen")
	kGraph   = []byte("hnsw")
)

// Bolt is the embedded store: one bbolt file.
type Bolt struct {
	db    *bolt.DB
	path  string
	o     Options
	cache vecCache
	stuck atomic.Bool // see rollback
}

// ErrDamaged is in the error of an operation on a store file that bbolt
// cannot read (truncated, or pages overwritten): errors.Is(err, ErrDamaged).
var ErrDamaged = errors.New("damaged")

// OpenBolt opens or creates the store file at path. Another process holding
// it (an ingest, or a search while this one would write) makes this fail
// after o.LockTimeout with an error that says so. A file that is not a
// store, or a damaged one, is an error, never a crash.
func OpenBolt(path string, o Options) (*Bolt, error) {
	o = o.withDefaults()
	fi, statErr := os.Stat(path)
	if o.ReadOnly {
		if statErr != nil {
			return nil, fmt.Errorf("store %s: %w (ingest some files first)", path, statErr)
		}
		// bbolt would try to initialise it, which a read-only file cannot.
		if fi.Size() == 0 {
			return nil, fmt.Errorf("store %s is an empty file, not a store (ingest some files first)", path)
		}
	}
	var db *bolt.DB
	if statErr == nil && fi.Size() > 0 {
		// An existing file is checked read-only first: bbolt's writable
		// open reads the freelist page, which a truncated file lacks.
		var err error
		if db, err = openDB(path, true, o.LockTimeout); err != nil {
			return nil, err
		}
		if err := checkFile(db, path, fi.Size(), !o.ReadOnly); err != nil {
			db.Close()
			return nil, err
		}
		if !o.ReadOnly {
			db.Close()
			db = nil
		}
	}
	if db == nil {
		var err error
		if db, err = openDB(path, false, o.LockTimeout); err != nil {
			return nil, err
		}
	}
	s := &Bolt{db: db, path: path, o: o}
	if err := s.buckets(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// openDB opens the file with bbolt, turning its panics on a damaged file
// into errors.
func openDB(path string, readOnly bool, timeout time.Duration) (db *bolt.DB, err error) {
	var f *os.File
	// A panic inside bolt.Open leaves its file open: close it. Its mapping
	// stays, and holds the file's lock, hence checkFile's look at the one
	// page (the free list) that bbolt's open reads past the meta pages.
	defer protect(path, &err, func() {
		if f != nil {
			f.Close()
		}
	})()
	db, err = bolt.Open(path, 0o644, &bolt.Options{Timeout: timeout, ReadOnly: readOnly,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			var err error
			f, err = os.OpenFile(name, flag, perm)
			return f, err
		}})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, bolterr.ErrTimeout):
		return nil, fmt.Errorf("store %s is locked by another process (an ingest running?); gave up after %v", path, timeout)
	case errors.Is(err, bolterr.ErrChecksum):
		return nil, fmt.Errorf("store %s is %w: %v", path, ErrDamaged, err)
	case errors.Is(err, bolterr.ErrInvalid), errors.Is(err, bolterr.ErrVersionMismatch), strings.Contains(err.Error(), "file size too small"):
		// The same errors for a store cut short and for another file.
		if hasMagic(path) {
			return nil, fmt.Errorf("store %s is %w: %v", path, ErrDamaged, err)
		}
		return nil, fmt.Errorf("store %s is not a store file (not a bbolt database)", path)
	}
	return nil, fmt.Errorf("store %s: cannot open: %w", path, err)
}

// hasMagic reports whether the file starts as a bbolt file does: its first
// meta page, a 16-byte page header and then bbolt's magic number (in the
// machine's byte order, as bbolt writes it).
func hasMagic(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [20]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return false
	}
	return binary.NativeEndian.Uint32(b[16:]) == 0xED0CDAED
}

// checkFile refuses a file shorter than its metadata says: bbolt would map
// the missing pages and crash reading them. With freelist, it also checks
// the page bbolt's writable open reads the free list from, trusting it: a
// panic there is caught, but leaves the file mapped, and so locked, for the
// rest of the process.
func checkFile(db *bolt.DB, path string, size int64, freelist bool) (err error) {
	defer protect(path, &err, nil)()
	var hwm int64
	var txid uint64
	err = db.View(func(tx *bolt.Tx) error {
		hwm, txid = tx.Size(), uint64(tx.ID())
		return nil
	})
	if err != nil {
		return err
	}
	if size < hwm {
		return fmt.Errorf("store %s is %w: the file has %d bytes, its metadata says %d (truncated?)", path, ErrDamaged, size, hwm)
	}
	if !freelist {
		return nil
	}
	if msg := checkFreelist(path, int64(db.Info().PageSize), txid, hwm); msg != "" {
		return fmt.Errorf("store %s is %w: %s", path, ErrDamaged, msg)
	}
	return nil
}

// checkFreelist reads the header of the free list page that the meta page
// of transaction txid names (bbolt's layout, in the machine's byte order:
// a page header of id uint64, flags uint16, count uint16, overflow uint32;
// the meta at offset 16 has the free list's page at 48 and the txid at 64)
// and says what is wrong with it, if anything.
func checkFreelist(path string, pageSize int64, txid uint64, hwm int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	ne := binary.NativeEndian
	var b [72]byte
	free := uint64(0)
	for m := int64(0); m < 2; m++ {
		if _, err := f.ReadAt(b[:], m*pageSize); err == nil && ne.Uint32(b[16:]) == 0xED0CDAED && ne.Uint64(b[64:]) == txid {
			free = ne.Uint64(b[48:])
			break
		}
		if m == 1 {
			return "no meta page of the current transaction"
		}
	}
	if free == 1<<64-1 { // none stored: bbolt rebuilds it by scanning
		return ""
	}
	if free < 2 || int64(free) >= hwm/pageSize {
		return fmt.Sprintf("the free list is said to be on page %d, of %d", free, hwm/pageSize)
	}
	if _, err := f.ReadAt(b[:24], int64(free)*pageSize); err != nil {
		return fmt.Sprintf("free list page %d: %v", free, err)
	}
	id, flags, count, overflow := ne.Uint64(b[:]), ne.Uint16(b[8:]), uint64(ne.Uint16(b[10:])), int64(ne.Uint32(b[12:]))
	if id != free || flags != 0x10 {
		return fmt.Sprintf("page %d, of the free list, has id %d and flags %#x", free, id, flags)
	}
	if count == 0xFFFF { // the count is the first id
		count = ne.Uint64(b[16:]) + 1
	}
	if int64(free)+overflow+1 > hwm/pageSize || count > uint64((overflow+1)*pageSize-16)/8 {
		return fmt.Sprintf("free list page %d has %d ids in %d pages", free, count, overflow+1)
	}
	return ""
}

// buckets checks that the file is a store, creating the buckets of a new
// one. It writes only when a bucket is missing: even an empty commit
// rewrites a meta page, and a failed ingest must leave the file as it was.
func (s *Bolt) buckets() (err error) {
	defer protect(s.path, &err, nil)()
	all := [][]byte{bMeta, bChunks, bSources, bPost, bDF, bVec}
	missing := false
	err = s.db.View(func(tx *bolt.Tx) error {
		for _, b := range all {
			missing = missing || tx.Bucket(b) == nil
		}
		if s.o.ReadOnly && tx.Bucket(bMeta) == nil {
			return errors.New("not a rag store (no meta bucket)")
		}
		return nil
	})
	if err == nil && missing && !s.o.ReadOnly {
		err = s.update(func(tx *bolt.Tx) error {
			for _, b := range all {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		err = s.fail("", err)
	}
	return err
}

// update is db.Update with a panic inside rolled back (without the free
// list reload that bbolt's own recovery does, which reads the file again).
func (s *Bolt) update(fn func(*bolt.Tx) error) (err error) {
	tx, err := s.db.Begin(true)
	if err != nil {
		return err
	}
	defer protect(s.path, &err, func() { s.rollback(tx) })()
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// rollback ends a write transaction after a panic. Should that panic too,
// the transaction keeps bbolt's writer lock, and Close would wait for it
// for ever: stuck makes Close give up instead.
func (s *Bolt) rollback(tx *bolt.Tx) {
	defer func() {
		if recover() != nil {
			s.stuck.Store(true)
		}
	}()
	if tx.DB() != nil {
		tx.Rollback()
	}
}

// protect, deferred as defer protect(path, &err, undo)(), guards a use of
// the mapped file. bbolt trusts the file: on a damaged one it panics (a
// failed assertion) or reads past the mapping, a fault that
// SetPanicOnFault (per goroutine, restored here) makes a panic instead of
// a crash. Either becomes an ErrDamaged error, after undo (if not nil)
// has released what the panic left held.
func protect(path string, err *error, undo func()) func() {
	old := debug.SetPanicOnFault(true)
	return func() {
		defer debug.SetPanicOnFault(old)
		r := recover()
		if r == nil {
			if *err != nil && errors.Is(*err, ErrDamaged) {
				*err = damaged(path, "", *err)
			}
			return
		}
		if undo != nil {
			func() {
				defer func() { recover() }()
				undo()
			}()
		}
		msg := fmt.Sprint(r)
		if f, ok := r.(interface{ Addr() uintptr }); ok {
			msg = fmt.Sprintf("a read of the mapped file faulted at %#x (truncated or overwritten?)", f.Addr())
		}
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		*err = fmt.Errorf("store %s is %w: %s", path, ErrDamaged, msg)
	}
}

// Location is the file path.
func (s *Bolt) Location() string { return s.path }

// Close releases the file.
func (s *Bolt) Close() error {
	if s.stuck.Load() {
		return s.errf("not closed: a write transaction on the damaged file could not be rolled back")
	}
	return s.db.Close()
}

func (s *Bolt) errf(format string, a ...any) error {
	return fmt.Errorf("store %s: %s", s.path, fmt.Sprintf(format, a...))
}

// fail names the store in err, which what (if not "") says more of.
func (s *Bolt) fail(what string, err error) error {
	if what != "" {
		what += ": "
	}
	if errors.Is(err, ErrDamaged) {
		return damaged(s.path, what, err)
	}
	return s.errf("%s%v", what, err)
}

// damaged says that a record read from the file is not what was written,
// as the errors of bbolt's panics do: "store PATH is damaged: ...".
func damaged(path, what string, err error) error {
	msg := err.Error()
	if strings.HasPrefix(msg, "store "+path+" is ") { // said already
		return err
	}
	return fmt.Errorf("store %s is %w: %s%s", path, ErrDamaged, what, msg)
}

// Meta reads how the collection was built.
func (s *Bolt) Meta(ctx context.Context) (m Meta, ok bool, err error) {
	defer protect(s.path, &err, nil)()
	err = s.db.View(func(tx *bolt.Tx) error {
		m, ok, err = readMeta(tx)
		return err
	})
	if err != nil {
		err = s.fail("", err)
	}
	return
}

func readMeta(tx *bolt.Tx) (Meta, bool, error) {
	var m Meta
	v := tx.Bucket(bMeta).Get(kMeta)
	if v == nil {
		return m, false, nil
	}
	if err := json.Unmarshal(v, &m); err != nil {
		return m, false, fmt.Errorf("metadata is %w: %v", ErrDamaged, err)
	}
	return m, true, nil
}

type boltStats struct{ sources, chunks, terms uint64 }

func readStats(tx *bolt.Tx) (boltStats, error) {
	v := tx.Bucket(bMeta).Get(kStats)
	if v == nil {
		return boltStats{}, nil
	}
	if len(v) != 24 {
		return boltStats{}, fmt.Errorf("statistics record is %w: %d bytes, want 24", ErrDamaged, len(v))
	}
	return boltStats{binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), binary.BigEndian.Uint64(v[16:])}, nil
}

func (st boltStats) bytes() []byte {
	b := binary.BigEndian.AppendUint64(nil, st.sources)
	b = binary.BigEndian.AppendUint64(b, st.chunks)
	return binary.BigEndian.AppendUint64(b, st.terms)
}

func readGen(tx *bolt.Tx) uint64 {
	if v := tx.Bucket(bMeta).Get(kGen); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Stats counts the collection.
func (s *Bolt) Stats(ctx context.Context) (_ Stats, err error) {
	defer protect(s.path, &err, nil)()
	var st boltStats
	err = s.db.View(func(tx *bolt.Tx) (err error) {
		st, err = readStats(tx)
		return err
	})
	if err != nil {
		return Stats{}, s.fail("", err)
	}
	return Stats{Sources: int(st.sources), Chunks: int(st.chunks), Terms: int64(st.terms)}, nil
}

func idKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

func postKey(term string, id uint64) []byte {
	k := make([]byte, 0, len(term)+9)
	k = append(k, term...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, id)
}

// Keyword scores BM25 from the postings.
func (s *Bolt) Keyword(ctx context.Context, terms []string, k int) (_ []topk.Hit, err error) {
	defer protect(s.path, &err, nil)()
	var hits []topk.Hit
	err = s.db.View(func(tx *bolt.Tx) error {
		st, err := readStats(tx)
		if err != nil {
			return err
		}
		if st.chunks == 0 {
			return ErrEmpty
		}
		avg := float64(st.terms) / float64(st.chunks)
		df, post := tx.Bucket(bDF), tx.Bucket(bPost)
		scores := map[uint64]float64{}
		for _, t := range sortedTerms(terms) {
			dv := df.Get([]byte(t.term))
			if dv == nil {
				continue
			}
			n, _ := binary.Uvarint(dv)
			idf := bm25.IDF(int64(st.chunks), int64(n))
			prefix := append([]byte(t.term), 0)
			c := post.Cursor()
			for key, v := c.Seek(prefix); len(key) == len(prefix)+8 && string(key[:len(prefix)]) == string(prefix); key, v = c.Next() {
				id := binary.BigEndian.Uint64(key[len(prefix):])
				tf, a := binary.Uvarint(v)
				dl, b := binary.Uvarint(v[max(a, 0):])
				if a <= 0 || b <= 0 {
					return fmt.Errorf("posting %q of chunk %d is %w", t.term, id, ErrDamaged)
				}
				scores[id] += float64(t.qtf) * s.o.BM25.Term(idf, int(tf), int(dl), avg)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		hits = topk.Of(scores, k)
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrEmpty) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, s.fail("keyword search", err)
	}
	return hits, nil
}

type qterm struct {
	term string
	qtf  int
}

// sortedTerms gives the distinct query terms in a fixed order, so that
// scores sum in the same order everywhere.
func sortedTerms(terms []string) []qterm {
	var out []qterm
	for t, n := range bm25.QueryTerms(terms) {
		out = append(out, qterm{t, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].term < out[j].term })
	return out
}

// Dense ranks by cosine, exactly or through the stored HNSW graph.
func (s *Bolt) Dense(ctx context.Context, vec []float32, k int) (_ []topk.Hit, err error) {
	defer protect(s.path, &err, nil)()
	var (
		idx dense.Index
		dim int
	)
	err = s.db.View(func(tx *bolt.Tx) error {
		m, ok, err := readMeta(tx)
		if err != nil {
			return err
		}
		st, err := readStats(tx)
		if err != nil {
			return err
		}
		if !ok || st.chunks == 0 {
			return ErrEmpty
		}
		dim = m.Dim
		idx, err = s.cache.get(readGen(tx), func() (dense.Index, error) {
			f, err := loadFlat(tx, m.Dim)
			if err != nil {
				return nil, err
			}
			idx, err := indexFor(f, tx.Bucket(bMeta).Get(kGraph), s.o)
			if err != nil {
				return nil, fmt.Errorf("HNSW graph is %w: %v", ErrDamaged, err)
			}
			return idx, nil
		})
		return err
	})
	if err != nil {
		if errors.Is(err, ErrEmpty) {
			return nil, err
		}
		return nil, s.fail("dense search", err)
	}
	return denseSearch(idx, vec, k, dim)
}

func loadFlat(tx *bolt.Tx, dim int) (*dense.Flat, error) {
	f := dense.NewFlat(dim)
	var err error
	c := tx.Bucket(bVec).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		f.IDs = append(f.IDs, binary.BigEndian.Uint64(k))
		if f.Vecs, err = decodeVec(v, dim, f.Vecs); err != nil {
			return nil, fmt.Errorf("vector of chunk %d is %w: %v", binary.BigEndian.Uint64(k), ErrDamaged, err)
		}
	}
	return f, nil
}

// Chunks reads chunks by id.
func (s *Bolt) Chunks(ctx context.Context, ids []uint64) (_ []Chunk, err error) {
	defer protect(s.path, &err, nil)()
	out := make([]Chunk, 0, len(ids))
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bChunks)
		for _, id := range ids {
			v := b.Get(idKey(id))
			if v == nil {
				return fmt.Errorf("no chunk %d", id)
			}
			r, err := decodeChunk(v)
			if err != nil {
				return fmt.Errorf("chunk %d: %w", id, err)
			}
			r.Chunk.ID = id
			out = append(out, r.Chunk)
		}
		return nil
	})
	if err != nil {
		return nil, s.fail("", err)
	}
	return out, nil
}

// Begin starts the write transaction of an ingest.
func (s *Bolt) Begin(ctx context.Context) (_ Tx, err error) {
	if s.o.ReadOnly {
		return nil, s.errf("opened read-only")
	}
	var tx *bolt.Tx
	defer protect(s.path, &err, func() {
		if tx != nil {
			s.rollback(tx)
		}
	})()
	tx, err = s.db.Begin(true)
	if err != nil {
		return nil, s.errf("begin: %v", err)
	}
	st, err := readStats(tx)
	if err != nil {
		tx.Rollback()
		return nil, s.fail("", err)
	}
	m, _, err := readMeta(tx)
	if err != nil {
		tx.Rollback()
		return nil, s.fail("", err)
	}
	return &boltTx{s: s, tx: tx, st: st, meta: m, post: map[string][]byte{}, df: map[string]int{}, src: map[string][]byte{}}, nil
}

// boltTx buffers postings and document frequencies and writes them sorted
// at commit: bbolt splits nodes only when a transaction commits, so random
// inserts into one big transaction would each move half of an ever larger
// node (quadratic); sorted, they append.
type boltTx struct {
	s    *Bolt
	tx   *bolt.Tx
	st   boltStats
	meta Meta
	done bool
	post map[string][]byte // posting key → value, nil: delete
	df   map[string]int    // term → change of document frequency
	src  map[string][]byte // source → record, nil: delete
}

// protect guards a method of the transaction (see the function protect):
// after a panic it rolls the transaction back, or Close would wait for
// ever for the writer lock it holds.
func (t *boltTx) protect(err *error) func() {
	return protect(t.s.path, err, func() {
		if !t.done {
			t.done = true
			t.s.rollback(t.tx)
		}
	})
}

// source reads a source record, buffered or stored.
func (t *boltTx) source(name string) []byte {
	if v, ok := t.src[name]; ok {
		return v
	}
	return t.tx.Bucket(bSources).Get([]byte(name))
}

func (t *boltTx) SetMeta(m Meta) (err error) {
	defer t.protect(&err)()
	b, _ := json.Marshal(m)
	t.meta = m
	return t.tx.Bucket(bMeta).Put(kMeta, b)
}

func (t *boltTx) SourceHash(source string) (_ string, _ bool, err error) {
	defer t.protect(&err)()
	v := t.source(source)
	if v == nil {
		return "", false, nil
	}
	h, _, err := decodeSource(v)
	return h, err == nil, err
}

func (t *boltTx) Delete(source string) (err error) {
	defer t.protect(&err)()
	return t.delete(source)
}

func (t *boltTx) delete(source string) error {
	v := t.source(source)
	if v == nil {
		return nil
	}
	_, ids, err := decodeSource(v)
	if err != nil {
		return fmt.Errorf("source %s: %w", source, err)
	}
	chunks, vec := t.tx.Bucket(bChunks), t.tx.Bucket(bVec)
	for _, id := range ids {
		k := idKey(id)
		cv := chunks.Get(k)
		if cv == nil {
			return fmt.Errorf("source %s lists chunk %d, which is missing: %w", source, id, ErrDamaged)
		}
		r, err := decodeChunk(cv)
		if err != nil {
			return fmt.Errorf("chunk %d: %w", id, err)
		}
		for _, term := range r.terms {
			t.post[string(postKey(term, id))] = nil
			t.df[term]--
		}
		t.st.chunks--
		t.st.terms -= uint64(r.dl)
		if err := chunks.Delete(k); err != nil {
			return err
		}
		if err := vec.Delete(k); err != nil {
			return err
		}
	}
	t.st.sources--
	t.src[source] = nil
	return nil
}

func addDF(b *bolt.Bucket, term string, d int) error {
	var n uint64
	if v := b.Get([]byte(term)); v != nil {
		n, _ = binary.Uvarint(v)
	}
	n = uint64(int64(n) + int64(d))
	if n == 0 {
		return b.Delete([]byte(term))
	}
	return b.Put([]byte(term), binary.AppendUvarint(nil, n))
}

func (t *boltTx) Put(d Doc) (err error) {
	defer t.protect(&err)()
	if err := checkDoc(d, t.meta.Dim); err != nil {
		return err
	}
	if err := t.delete(d.Source); err != nil {
		return err
	}
	chunks, vec := t.tx.Bucket(bChunks), t.tx.Bucket(bVec)
	ids := make([]uint64, 0, len(d.Chunks))
	for _, c := range d.Chunks {
		id, err := chunks.NextSequence()
		if err != nil {
			return err
		}
		tfs := bm25.QueryTerms(c.Terms)
		terms := make([]string, 0, len(tfs))
		for term, tf := range tfs {
			terms = append(terms, term)
			v := binary.AppendUvarint(nil, uint64(tf))
			v = binary.AppendUvarint(v, uint64(len(c.Terms)))
			t.post[string(postKey(term, id))] = v
			t.df[term]++
		}
		sort.Strings(terms)
		rec := chunkRecord{Chunk: Chunk{Source: d.Source, Start: c.Start, End: c.End, Tokens: c.Tokens, Text: c.Text}, dl: len(c.Terms), terms: terms}
		k := idKey(id)
		if err := chunks.Put(k, rec.encode()); err != nil {
			return err
		}
		v := append([]float32(nil), c.Vec...)
		dense.Normalize(v)
		if err := vec.Put(k, encodeVec(v)); err != nil {
			return err
		}
		ids = append(ids, id)
		t.st.chunks++
		t.st.terms += uint64(len(c.Terms))
	}
	t.st.sources++
	t.src[d.Source] = encodeSource(d.Hash, ids)
	return nil
}

func (t *boltTx) Commit() (err error) {
	if t.done {
		return errors.New("store: transaction already ended")
	}
	// done only after protect (deferred later, so run first): a panic on
	// the way must still roll back.
	defer func() { t.done = true }()
	defer t.protect(&err)()
	meta := t.tx.Bucket(bMeta)
	err = t.flush()
	if err == nil {
		err = meta.Put(kStats, t.st.bytes())
	}
	if err == nil {
		err = meta.Put(kGen, binary.BigEndian.AppendUint64(nil, readGen(t.tx)+1))
	}
	if err == nil {
		err = t.storeGraph()
	}
	if err != nil {
		t.tx.Rollback()
		return t.s.fail("commit", err)
	}
	if err := t.tx.Commit(); err != nil {
		return t.s.errf("commit: %v", err)
	}
	return nil
}

// flush writes the buffered postings and frequencies in key order.
func (t *boltTx) flush() error {
	post, df := t.tx.Bucket(bPost), t.tx.Bucket(bDF)
	keys := make([]string, 0, len(t.post))
	for k := range t.post {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var err error
		if v := t.post[k]; v == nil {
			err = post.Delete([]byte(k))
		} else {
			err = post.Put([]byte(k), v)
		}
		if err != nil {
			return err
		}
	}
	terms := make([]string, 0, len(t.df))
	for k, d := range t.df {
		if d != 0 {
			terms = append(terms, k)
		}
	}
	sort.Strings(terms)
	for _, k := range terms {
		if err := addDF(df, k, t.df[k]); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(t.src))
	for k := range t.src {
		names = append(names, k)
	}
	sort.Strings(names)
	sb := t.tx.Bucket(bSources)
	for _, k := range names {
		var err error
		if v := t.src[k]; v == nil {
			err = sb.Delete([]byte(k))
		} else {
			err = sb.Put([]byte(k), v)
		}
		if err != nil {
			return err
		}
	}
	clear(t.post)
	clear(t.df)
	clear(t.src)
	return nil
}

// storeGraph rebuilds the HNSW graph for the collection as committed.
func (t *boltTx) storeGraph() error {
	meta := t.tx.Bucket(bMeta)
	if t.s.o.HNSWMin <= 0 || int(t.st.chunks) < t.s.o.HNSWMin {
		return meta.Delete(kGraph)
	}
	f, err := loadFlat(t.tx, t.meta.Dim)
	if err != nil {
		return err
	}
	g, err := graphFor(f, t.s.o)
	if err != nil {
		return err
	}
	return meta.Put(kGraph, g)
}

func (t *boltTx) Rollback() error {
	if t.done {
		return nil
	}
	t.done = true
	t.s.rollback(t.tx)
	return nil
}

// chunkRecord is a chunk as the bbolt file holds it, with the distinct
// terms its postings are under (to delete them) and its length in terms.
type chunkRecord struct {
	Chunk
	dl    int
	terms []string
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (r chunkRecord) encode() []byte {
	b := appendString(nil, r.Source)
	for _, v := range []uint64{uint64(r.Start), uint64(r.End), uint64(r.Tokens), uint64(r.dl)} {
		b = binary.AppendUvarint(b, v)
	}
	b = appendString(b, r.Text)
	b = binary.AppendUvarint(b, uint64(len(r.terms)))
	for _, t := range r.terms {
		b = appendString(b, t)
	}
	return b
}

// errRecord is a record that does not decode.
var errRecord = fmt.Errorf("%w record", ErrDamaged)

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errRecord
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errRecord
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func decodeChunk(b []byte) (chunkRecord, error) {
	r := reader{b: b}
	var c chunkRecord
	c.Source = r.string()
	c.Start, c.End = int64(r.uvarint()), int64(r.uvarint())
	c.Tokens, c.dl = int(r.uvarint()), int(r.uvarint())
	c.Text = r.string()
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		return c, errRecord
	}
	c.terms = make([]string, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		c.terms = append(c.terms, r.string())
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w (trailing bytes)", errRecord)
	}
	return c, r.err
}

func encodeSource(hash string, ids []uint64) []byte {
	b := appendString(nil, hash)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = binary.AppendUvarint(b, id)
	}
	return b
}

func decodeSource(b []byte) (string, []uint64, error) {
	r := reader{b: b}
	h := r.string()
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		return "", nil, fmt.Errorf("source %w", errRecord)
	}
	ids := make([]uint64, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		ids = append(ids, r.uvarint())
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("source %w (trailing bytes)", errRecord)
	}
	return h, ids, r.err
}
