package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"

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
}

// OpenBolt opens or creates the store file at path. Another process holding
// it (an ingest, or a search while this one would write) makes this fail
// after o.LockTimeout with an error that says so.
func OpenBolt(path string, o Options) (*Bolt, error) {
	o = o.withDefaults()
	if o.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("store %s: %w (ingest some files first)", path, err)
		}
	}
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: o.LockTimeout, ReadOnly: o.ReadOnly})
	if err != nil {
		if errors.Is(err, bolterr.ErrTimeout) {
			return nil, fmt.Errorf("store %s is locked by another process (an ingest running?); gave up after %v", path, o.LockTimeout)
		}
		return nil, fmt.Errorf("store %s: cannot open: %w", path, err)
	}
	s := &Bolt{db: db, path: path, o: o}
	if !o.ReadOnly {
		err = db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bMeta, bChunks, bSources, bPost, bDF, bVec} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		})
	} else {
		err = db.View(func(tx *bolt.Tx) error {
			if tx.Bucket(bMeta) == nil {
				return errors.New("not a rag store (no meta bucket)")
			}
			return nil
		})
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return s, nil
}

// Location is the file path.
func (s *Bolt) Location() string { return s.path }

// Close releases the file.
func (s *Bolt) Close() error { return s.db.Close() }

func (s *Bolt) errf(format string, a ...any) error {
	return fmt.Errorf("store %s: %s", s.path, fmt.Sprintf(format, a...))
}

// Meta reads how the collection was built.
func (s *Bolt) Meta(ctx context.Context) (m Meta, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		m, ok, err = readMeta(tx)
		return err
	})
	if err != nil {
		err = s.errf("%v", err)
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
		return m, false, fmt.Errorf("metadata: %w", err)
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
		return boltStats{}, fmt.Errorf("statistics record of %d bytes, want 24", len(v))
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
func (s *Bolt) Stats(ctx context.Context) (Stats, error) {
	var st boltStats
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		st, err = readStats(tx)
		return err
	})
	if err != nil {
		return Stats{}, s.errf("%v", err)
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
func (s *Bolt) Keyword(ctx context.Context, terms []string, k int) ([]topk.Hit, error) {
	var hits []topk.Hit
	err := s.db.View(func(tx *bolt.Tx) error {
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
					return fmt.Errorf("posting %q of chunk %d is damaged", t.term, id)
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
		return nil, s.errf("keyword search: %v", err)
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
func (s *Bolt) Dense(ctx context.Context, vec []float32, k int) ([]topk.Hit, error) {
	var (
		idx dense.Index
		dim int
	)
	err := s.db.View(func(tx *bolt.Tx) error {
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
			return indexFor(f, tx.Bucket(bMeta).Get(kGraph), s.o)
		})
		return err
	})
	if err != nil {
		if errors.Is(err, ErrEmpty) {
			return nil, err
		}
		return nil, s.errf("dense search: %v", err)
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
			return nil, fmt.Errorf("chunk %d: %w", binary.BigEndian.Uint64(k), err)
		}
	}
	return f, nil
}

// Chunks reads chunks by id.
func (s *Bolt) Chunks(ctx context.Context, ids []uint64) ([]Chunk, error) {
	out := make([]Chunk, 0, len(ids))
	err := s.db.View(func(tx *bolt.Tx) error {
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
		return nil, s.errf("%v", err)
	}
	return out, nil
}

// Begin starts the write transaction of an ingest.
func (s *Bolt) Begin(ctx context.Context) (Tx, error) {
	if s.o.ReadOnly {
		return nil, s.errf("opened read-only")
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		return nil, s.errf("begin: %v", err)
	}
	st, err := readStats(tx)
	if err != nil {
		tx.Rollback()
		return nil, s.errf("%v", err)
	}
	m, _, err := readMeta(tx)
	if err != nil {
		tx.Rollback()
		return nil, s.errf("%v", err)
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

// source reads a source record, buffered or stored.
func (t *boltTx) source(name string) []byte {
	if v, ok := t.src[name]; ok {
		return v
	}
	return t.tx.Bucket(bSources).Get([]byte(name))
}

func (t *boltTx) SetMeta(m Meta) error {
	b, _ := json.Marshal(m)
	t.meta = m
	return t.tx.Bucket(bMeta).Put(kMeta, b)
}

func (t *boltTx) SourceHash(source string) (string, bool, error) {
	v := t.source(source)
	if v == nil {
		return "", false, nil
	}
	h, _, err := decodeSource(v)
	return h, err == nil, err
}

func (t *boltTx) Delete(source string) error {
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
			return fmt.Errorf("source %s lists chunk %d, which is missing", source, id)
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

func (t *boltTx) Put(d Doc) error {
	if err := checkDoc(d, t.meta.Dim); err != nil {
		return err
	}
	if err := t.Delete(d.Source); err != nil {
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

func (t *boltTx) Commit() error {
	if t.done {
		return errors.New("store: transaction already ended")
	}
	t.done = true
	meta := t.tx.Bucket(bMeta)
	err := t.flush()
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
		return t.s.errf("commit: %v", err)
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
	return t.tx.Rollback()
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
		r.err = errors.New("damaged record")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errors.New("damaged record")
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
		return c, errors.New("damaged record")
	}
	c.terms = make([]string, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		c.terms = append(c.terms, r.string())
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errors.New("damaged record (trailing bytes)")
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
		return "", nil, errors.New("damaged source record")
	}
	ids := make([]uint64, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		ids = append(ids, r.uvarint())
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errors.New("damaged source record (trailing bytes)")
	}
	return h, ids, r.err
}
