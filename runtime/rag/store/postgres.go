package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modelc/modelc/runtime/rag/bm25"
	"github.com/modelc/modelc/runtime/rag/dense"
	"github.com/modelc/modelc/runtime/rag/topk"
)

// Postgres is the PostgreSQL store. Keyword search is BM25 computed in SQL
// over a postings table (the same figures as the embedded store), and
// PostgreSQL's own full-text search (a tsvector column with a GIN index,
// ranked by ts_rank_cd) is there too as KeywordFTS. Vectors are float32
// bytea; cosine is computed in Go over vectors loaded once per ingest
// generation (or through the HNSW graph stored at commit).
type Postgres struct {
	pool  *pgxpool.Pool
	loc   string
	o     Options
	cache vecCache
}

// ingestLock is the advisory lock key that serialises ingests.
const ingestLock = 0x7261675f696e67 // "rag_ing"

const schema = `
CREATE TABLE IF NOT EXISTS rag_meta (key text PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE IF NOT EXISTS rag_stats (one bool PRIMARY KEY DEFAULT true CHECK (one),
	sources bigint NOT NULL, chunks bigint NOT NULL, terms bigint NOT NULL, gen bigint NOT NULL);
INSERT INTO rag_stats VALUES (true, 0, 0, 0, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS rag_sources (source text PRIMARY KEY, hash text NOT NULL);
CREATE TABLE IF NOT EXISTS rag_chunks (
	id bigserial PRIMARY KEY,
	source text NOT NULL REFERENCES rag_sources(source) ON DELETE CASCADE,
	start_off bigint NOT NULL, end_off bigint NOT NULL, tokens int NOT NULL, dl int NOT NULL,
	body text NOT NULL, vec bytea NOT NULL,
	tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', body)) STORED);
CREATE INDEX IF NOT EXISTS rag_chunks_source ON rag_chunks (source);
CREATE INDEX IF NOT EXISTS rag_chunks_tsv ON rag_chunks USING gin (tsv);
CREATE TABLE IF NOT EXISTS rag_postings (
	term text NOT NULL, chunk_id bigint NOT NULL REFERENCES rag_chunks(id) ON DELETE CASCADE,
	tf int NOT NULL, dl int NOT NULL, PRIMARY KEY (term, chunk_id));
CREATE INDEX IF NOT EXISTS rag_postings_chunk ON rag_postings (chunk_id);
CREATE TABLE IF NOT EXISTS rag_terms (term text PRIMARY KEY, df bigint NOT NULL);
`

// redact hides a password in a URL for messages.
func redact(loc string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return "postgres://…"
	}
	return u.Redacted()
}

// OpenPostgres connects to the database at url and creates the tables if
// they are missing.
func OpenPostgres(ctx context.Context, loc string, o Options) (*Postgres, error) {
	o = o.withDefaults()
	name := redact(loc)
	cfg, err := pgxpool.ParseConfig(loc)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", name, err)
	}
	cfg.ConnConfig.ConnectTimeout = max(o.LockTimeout, 5*time.Second)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", name, err)
	}
	s := &Postgres{pool: pool, loc: name, o: o}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store %s: cannot connect: %w", name, err)
	}
	if !o.ReadOnly {
		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			// Two first ingests at once must not both create the tables.
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(ingestLock+1)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, schema)
			return err
		})
		if err != nil {
			pool.Close()
			return nil, fmt.Errorf("store %s: create tables: %w", name, err)
		}
	} else {
		var ok bool
		if err := pool.QueryRow(ctx, "SELECT to_regclass('rag_stats') IS NOT NULL").Scan(&ok); err != nil || !ok {
			pool.Close()
			if err == nil {
				err = errors.New("no rag tables (ingest some files first)")
			}
			return nil, fmt.Errorf("store %s: %w", name, err)
		}
	}
	return s, nil
}

// Location is the URL without its password.
func (s *Postgres) Location() string { return s.loc }

// Close closes the connections.
func (s *Postgres) Close() error { s.pool.Close(); return nil }

func (s *Postgres) errf(err error, what string) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrEmpty) {
		return err
	}
	return fmt.Errorf("store %s: %s: %w", s.loc, what, err)
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func pgMeta(ctx context.Context, q querier) (Meta, bool, error) {
	var m Meta
	var b []byte
	err := q.QueryRow(ctx, "SELECT value FROM rag_meta WHERE key = 'meta'").Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return m, false, nil
	}
	if err != nil {
		return m, false, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, false, fmt.Errorf("metadata: %w", err)
	}
	return m, true, nil
}

// Meta reads how the collection was built.
func (s *Postgres) Meta(ctx context.Context) (Meta, bool, error) {
	m, ok, err := pgMeta(ctx, s.pool)
	if err != nil {
		return m, ok, s.errf(err, "metadata")
	}
	return m, ok, nil
}

type pgStats struct{ sources, chunks, terms, gen int64 }

func readPgStats(ctx context.Context, q querier) (pgStats, error) {
	var st pgStats
	err := q.QueryRow(ctx, "SELECT sources, chunks, terms, gen FROM rag_stats").Scan(&st.sources, &st.chunks, &st.terms, &st.gen)
	return st, err
}

// Stats counts the collection.
func (s *Postgres) Stats(ctx context.Context) (Stats, error) {
	st, err := readPgStats(ctx, s.pool)
	if err != nil {
		return Stats{}, s.errf(err, "statistics")
	}
	return Stats{Sources: int(st.sources), Chunks: int(st.chunks), Terms: st.terms}, nil
}

const bm25SQL = `
WITH q(term, qtf) AS (SELECT * FROM unnest($1::text[], $2::int[])),
st AS (SELECT chunks::float8 AS n, terms::float8 / greatest(chunks, 1) AS avgdl FROM rag_stats),
d AS (SELECT t.term, t.df::float8 AS df FROM rag_terms t JOIN q ON t.term = q.term WHERE t.df > 0)
SELECT p.chunk_id, sum(q.qtf * ln(1 + (st.n - d.df + 0.5) / (d.df + 0.5)) * p.tf * ($3::float8 + 1)
	/ (p.tf + $3::float8 * (1 - $4::float8 + $4::float8 * p.dl / st.avgdl))) AS score
FROM rag_postings p JOIN q ON p.term = q.term JOIN d ON d.term = p.term CROSS JOIN st
GROUP BY p.chunk_id ORDER BY score DESC, p.chunk_id LIMIT $5`

// Keyword scores BM25 in SQL.
func (s *Postgres) Keyword(ctx context.Context, terms []string, k int) ([]topk.Hit, error) {
	st, err := readPgStats(ctx, s.pool)
	if err != nil {
		return nil, s.errf(err, "keyword search")
	}
	if st.chunks == 0 {
		return nil, ErrEmpty
	}
	qs := sortedTerms(terms)
	ts, ns := make([]string, len(qs)), make([]int32, len(qs))
	for i, q := range qs {
		ts[i], ns[i] = q.term, int32(q.qtf)
	}
	rows, err := s.pool.Query(ctx, bm25SQL, ts, ns, s.o.BM25.K1, s.o.BM25.B, k)
	if err != nil {
		return nil, s.errf(err, "keyword search")
	}
	hits, err := scanHits(rows)
	if err != nil {
		return nil, s.errf(err, "keyword search")
	}
	return hits, nil
}

func scanHits(rows pgx.Rows) ([]topk.Hit, error) {
	var hits []topk.Hit
	for rows.Next() {
		var id int64
		var sc float64
		if err := rows.Scan(&id, &sc); err != nil {
			rows.Close()
			return nil, err
		}
		hits = append(hits, topk.Hit{ID: uint64(id), Score: sc})
	}
	return hits, rows.Err()
}

// FTSAnalyzer is how words for KeywordFTS are made: PostgreSQL stems them
// itself (the 'english' configuration), so they are passed unstemmed.
var FTSAnalyzer = bm25.Analyzer{StopWords: true}

// KeywordFTS ranks with PostgreSQL's full-text search: any of the words
// (FTSAnalyzer's terms) matched through the GIN index, ranked by ts_rank_cd.
func (s *Postgres) KeywordFTS(ctx context.Context, words []string, k int) ([]topk.Hit, error) {
	st, err := readPgStats(ctx, s.pool)
	if err != nil {
		return nil, s.errf(err, "full-text search")
	}
	if st.chunks == 0 {
		return nil, ErrEmpty
	}
	if len(words) == 0 {
		return nil, nil
	}
	// The words are runs of letters and digits (the analyzer's), so joining
	// them with | cannot inject tsquery syntax.
	rows, err := s.pool.Query(ctx, `SELECT id, ts_rank_cd(tsv, q)::float8 AS r FROM rag_chunks, to_tsquery('english', $1) q
		WHERE tsv @@ q ORDER BY r DESC, id LIMIT $2`, strings.Join(words, " | "), k)
	if err != nil {
		return nil, s.errf(err, "full-text search")
	}
	hits, err := scanHits(rows)
	if err != nil {
		return nil, s.errf(err, "full-text search")
	}
	return hits, nil
}

// Dense ranks by cosine over the collection's vectors.
func (s *Postgres) Dense(ctx context.Context, vec []float32, k int) ([]topk.Hit, error) {
	m, ok, err := pgMeta(ctx, s.pool)
	if err != nil {
		return nil, s.errf(err, "dense search")
	}
	st, err := readPgStats(ctx, s.pool)
	if err != nil {
		return nil, s.errf(err, "dense search")
	}
	if !ok || st.chunks == 0 {
		return nil, ErrEmpty
	}
	idx, err := s.cache.get(uint64(st.gen), func() (dense.Index, error) {
		var f *dense.Flat
		var graph []byte
		// One snapshot for the vectors and the graph built over them.
		err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			var err error
			if f, err = pgFlat(ctx, tx, m.Dim); err != nil {
				return err
			}
			err = tx.QueryRow(ctx, "SELECT value FROM rag_meta WHERE key = 'hnsw'").Scan(&graph)
			if errors.Is(err, pgx.ErrNoRows) {
				err = nil
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		return indexFor(f, graph, s.o)
	})
	if err != nil {
		return nil, s.errf(err, "dense search")
	}
	return denseSearch(idx, vec, k, m.Dim)
}

func pgFlat(ctx context.Context, tx pgx.Tx, dim int) (*dense.Flat, error) {
	rows, err := tx.Query(ctx, "SELECT id, vec FROM rag_chunks ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	f := dense.NewFlat(dim)
	for rows.Next() {
		var id int64
		var b []byte
		if err := rows.Scan(&id, &b); err != nil {
			return nil, err
		}
		f.IDs = append(f.IDs, uint64(id))
		if f.Vecs, err = decodeVec(b, dim, f.Vecs); err != nil {
			return nil, fmt.Errorf("chunk %d: %w", id, err)
		}
	}
	return f, rows.Err()
}

// Chunks reads chunks by id.
func (s *Postgres) Chunks(ctx context.Context, ids []uint64) ([]Chunk, error) {
	qs := make([]int64, len(ids))
	for i, id := range ids {
		qs[i] = int64(id)
	}
	rows, err := s.pool.Query(ctx, "SELECT id, source, start_off, end_off, tokens, body FROM rag_chunks WHERE id = ANY($1)", qs)
	if err != nil {
		return nil, s.errf(err, "chunks")
	}
	byID := map[uint64]Chunk{}
	for rows.Next() {
		var c Chunk
		var id int64
		var tokens int32
		if err := rows.Scan(&id, &c.Source, &c.Start, &c.End, &tokens, &c.Text); err != nil {
			rows.Close()
			return nil, s.errf(err, "chunks")
		}
		c.ID, c.Tokens = uint64(id), int(tokens)
		byID[c.ID] = c
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf(err, "chunks")
	}
	out := make([]Chunk, 0, len(ids))
	for _, id := range ids {
		c, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("store %s: no chunk %d", s.loc, id)
		}
		out = append(out, c)
	}
	return out, nil
}

// Begin starts an ingest: one SQL transaction holding the ingest lock. When
// another ingest holds it, Begin waits up to LockTimeout, then fails.
func (s *Postgres) Begin(ctx context.Context) (Tx, error) {
	if s.o.ReadOnly {
		return nil, fmt.Errorf("store %s: opened read-only", s.loc)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, s.errf(err, "begin")
	}
	deadline := time.Now().Add(s.o.LockTimeout)
	for {
		var got bool
		if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", int64(ingestLock)).Scan(&got); err != nil {
			tx.Rollback(ctx)
			return nil, s.errf(err, "lock")
		}
		if got {
			break
		}
		if time.Now().After(deadline) {
			tx.Rollback(ctx)
			return nil, fmt.Errorf("store %s is locked by another ingest; gave up after %v", s.loc, s.o.LockTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := readPgStats(ctx, tx)
	if err == nil {
		var m Meta
		m, _, err = pgMeta(ctx, tx)
		if err == nil {
			t := &pgTx{s: s, ctx: ctx, tx: tx, st: st, meta: m, sources: map[string]string{}, pending: map[string]bool{}}
			if err = t.loadSources(); err == nil {
				return t, nil
			}
		}
	}
	tx.Rollback(ctx)
	return nil, s.errf(err, "begin")
}

// pgTx buffers new rows and sends them by COPY in batches: one round trip
// per chunk would bound an ingest by the network, not the database.
type pgTx struct {
	s       *Postgres
	ctx     context.Context
	tx      pgx.Tx
	st      pgStats
	meta    Meta
	done    bool
	sources map[string]string // every source in the store, with its hash
	pending map[string]bool   // sources whose rows are still buffered
	ids     []int64           // chunk ids reserved from the sequence
	srows   [][]any
	crows   [][]any
	prows   [][]any
	df      map[string]int64
}

// flushRows is how many chunk rows are buffered before a COPY.
const flushRows = 4000

func (t *pgTx) loadSources() error {
	rows, err := t.tx.Query(t.ctx, "SELECT source, hash FROM rag_sources")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var src, h string
		if err := rows.Scan(&src, &h); err != nil {
			return err
		}
		t.sources[src] = h
	}
	return rows.Err()
}

func (t *pgTx) SetMeta(m Meta) error {
	b, _ := json.Marshal(m)
	t.meta = m
	_, err := t.tx.Exec(t.ctx, "INSERT INTO rag_meta VALUES ('meta', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", b)
	return err
}

func (t *pgTx) SourceHash(source string) (string, bool, error) {
	h, ok := t.sources[source]
	return h, ok, nil
}

func (t *pgTx) Delete(source string) error {
	if _, ok := t.sources[source]; !ok {
		return nil
	}
	if t.pending[source] {
		if err := t.flush(); err != nil {
			return err
		}
	}
	// Document frequencies drop by the chunks that go.
	_, err := t.tx.Exec(t.ctx, `UPDATE rag_terms t SET df = t.df - d.n FROM (
		SELECT p.term, count(*) AS n FROM rag_postings p JOIN rag_chunks c ON c.id = p.chunk_id
		WHERE c.source = $1 GROUP BY p.term) d WHERE t.term = d.term`, source)
	if err != nil {
		return err
	}
	var n, dl int64
	err = t.tx.QueryRow(t.ctx, `WITH d AS (DELETE FROM rag_chunks WHERE source = $1 RETURNING dl)
		SELECT count(*), coalesce(sum(dl), 0) FROM d`, source).Scan(&n, &dl)
	if err != nil {
		return err
	}
	tag, err := t.tx.Exec(t.ctx, "DELETE FROM rag_sources WHERE source = $1", source)
	if err != nil {
		return err
	}
	delete(t.sources, source)
	t.st.sources -= tag.RowsAffected()
	t.st.chunks -= n
	t.st.terms -= dl
	return nil
}

func (t *pgTx) nextID() (int64, error) {
	if len(t.ids) == 0 {
		rows, err := t.tx.Query(t.ctx, "SELECT nextval('rag_chunks_id_seq') FROM generate_series(1, 1000)")
		if err != nil {
			return 0, err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return 0, err
			}
			t.ids = append(t.ids, id)
		}
		if err := rows.Err(); err != nil {
			return 0, err
		}
		sort.Slice(t.ids, func(i, j int) bool { return t.ids[i] < t.ids[j] })
	}
	id := t.ids[0]
	t.ids = t.ids[1:]
	return id, nil
}

func (t *pgTx) Put(d Doc) error {
	if err := checkDoc(d, t.meta.Dim); err != nil {
		return err
	}
	if err := t.Delete(d.Source); err != nil {
		return err
	}
	if t.df == nil {
		t.df = map[string]int64{}
	}
	t.srows = append(t.srows, []any{d.Source, d.Hash})
	for _, c := range d.Chunks {
		id, err := t.nextID()
		if err != nil {
			return err
		}
		v := append([]float32(nil), c.Vec...)
		dense.Normalize(v)
		t.crows = append(t.crows, []any{id, d.Source, c.Start, c.End, int32(c.Tokens), int32(len(c.Terms)), c.Text, encodeVec(v)})
		for term, tf := range bm25.QueryTerms(c.Terms) {
			t.prows = append(t.prows, []any{term, id, int32(tf), int32(len(c.Terms))})
			t.df[term]++
		}
		t.st.terms += int64(len(c.Terms))
	}
	t.sources[d.Source] = d.Hash
	t.pending[d.Source] = true
	t.st.sources++
	t.st.chunks += int64(len(d.Chunks))
	if len(t.crows) >= flushRows {
		return t.flush()
	}
	return nil
}

// flush sends the buffered rows.
func (t *pgTx) flush() error {
	if len(t.srows) > 0 {
		if _, err := t.tx.CopyFrom(t.ctx, pgx.Identifier{"rag_sources"}, []string{"source", "hash"}, pgx.CopyFromRows(t.srows)); err != nil {
			return err
		}
	}
	if len(t.crows) > 0 {
		if _, err := t.tx.CopyFrom(t.ctx, pgx.Identifier{"rag_chunks"},
			[]string{"id", "source", "start_off", "end_off", "tokens", "dl", "body", "vec"}, pgx.CopyFromRows(t.crows)); err != nil {
			return err
		}
	}
	if len(t.prows) > 0 {
		if _, err := t.tx.CopyFrom(t.ctx, pgx.Identifier{"rag_postings"},
			[]string{"term", "chunk_id", "tf", "dl"}, pgx.CopyFromRows(t.prows)); err != nil {
			return err
		}
	}
	if len(t.df) > 0 {
		terms := make([]string, 0, len(t.df))
		for k := range t.df {
			terms = append(terms, k)
		}
		sort.Strings(terms) // a fixed lock order
		ns := make([]int64, len(terms))
		for i, k := range terms {
			ns[i] = t.df[k]
		}
		if _, err := t.tx.Exec(t.ctx, `INSERT INTO rag_terms SELECT * FROM unnest($1::text[], $2::bigint[])
			ON CONFLICT (term) DO UPDATE SET df = rag_terms.df + excluded.df`, terms, ns); err != nil {
			return err
		}
	}
	t.srows, t.crows, t.prows = t.srows[:0], t.crows[:0], t.prows[:0]
	clear(t.df)
	clear(t.pending)
	return nil
}

func (t *pgTx) Commit() error {
	if t.done {
		return errors.New("store: transaction already ended")
	}
	t.done = true
	err := t.flush()
	if err == nil {
		err = t.storeGraph()
	}
	if err == nil {
		_, err = t.tx.Exec(t.ctx, "UPDATE rag_stats SET sources = $1, chunks = $2, terms = $3, gen = gen + 1",
			t.st.sources, t.st.chunks, t.st.terms)
	}
	if err == nil {
		err = t.tx.Commit(t.ctx)
	}
	if err != nil {
		t.tx.Rollback(context.Background())
		return t.s.errf(err, "commit")
	}
	return nil
}

func (t *pgTx) storeGraph() error {
	if t.s.o.HNSWMin <= 0 || int(t.st.chunks) < t.s.o.HNSWMin {
		_, err := t.tx.Exec(t.ctx, "DELETE FROM rag_meta WHERE key = 'hnsw'")
		return err
	}
	f, err := pgFlat(t.ctx, t.tx, t.meta.Dim)
	if err != nil {
		return err
	}
	g, err := graphFor(f, t.s.o)
	if err != nil {
		return err
	}
	_, err = t.tx.Exec(t.ctx, "INSERT INTO rag_meta VALUES ('hnsw', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", g)
	return err
}

func (t *pgTx) Rollback() error {
	if t.done {
		return nil
	}
	t.done = true
	return t.tx.Rollback(context.Background())
}
