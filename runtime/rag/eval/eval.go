// Package eval measures retrieval: the Cranfield collection's documents,
// queries and graded judgements, and nDCG@k and recall@k over rankings.
package eval

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Doc is one Cranfield document.
type Doc struct {
	ID    int
	Title string
	Text  string // the .W abstract
}

// Query is one query, numbered 1..n in file order (the judgements use that
// number, not the file's .I).
type Query struct {
	ID   int
	Text string
}

// Qrels maps query → document → grade gain (5 − code: 4 for a complete
// answer down to 1 for minimum interest).
type Qrels map[int]map[int]float64

// Collection is a loaded test collection.
type Collection struct {
	Docs    []Doc
	Queries []Query
	Qrels   Qrels
}

// LoadCranfield reads cran.all.1400, cran.qry and cranqrel from dir.
func LoadCranfield(dir string) (*Collection, error) {
	c := &Collection{}
	var err error
	if c.Docs, err = readDocs(filepath.Join(dir, "cran.all.1400")); err != nil {
		return nil, err
	}
	if c.Queries, err = readQueries(filepath.Join(dir, "cran.qry")); err != nil {
		return nil, err
	}
	if c.Qrels, err = readQrels(filepath.Join(dir, "cranqrel"), len(c.Queries), len(c.Docs)); err != nil {
		return nil, err
	}
	return c, nil
}

// record is one .I entry: its id text and its fields by letter.
type record struct {
	id     string
	line   int
	fields map[byte]string
}

// parseSMART splits the SMART format (.I n, then .X field markers).
func parseSMART(path string, r io.Reader) ([]record, error) {
	var (
		out   []record
		cur   *record
		field byte
		buf   strings.Builder
		ln    int
	)
	end := func() {
		if cur != nil && field != 0 {
			cur.fields[field] = strings.TrimSpace(buf.String())
		}
		buf.Reset()
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	for sc.Scan() {
		ln++
		line := sc.Text()
		if strings.HasPrefix(line, ".I ") || line == ".I" {
			end()
			out = append(out, record{id: strings.TrimSpace(line[2:]), line: ln, fields: map[byte]string{}})
			cur, field = &out[len(out)-1], 0
			continue
		}
		if len(line) == 2 && line[0] == '.' && strings.IndexByte("TABW", line[1]) >= 0 {
			end()
			if cur == nil {
				return nil, fmt.Errorf("%s:%d: field %s before any .I", path, ln, line)
			}
			field = line[1]
			continue
		}
		if field != 0 {
			buf.WriteString(line)
			buf.WriteByte('\n')
		}
	}
	end()
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

func readDocs(path string) ([]Doc, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := parseSMART(path, f)
	if err != nil {
		return nil, err
	}
	docs := make([]Doc, 0, len(recs))
	for _, r := range recs {
		id, err := strconv.Atoi(r.id)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: document id %q is not a number", path, r.line, r.id)
		}
		docs = append(docs, Doc{ID: id, Title: r.fields['T'], Text: r.fields['W']})
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no documents", path)
	}
	return docs, nil
}

func readQueries(path string) ([]Query, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := parseSMART(path, f)
	if err != nil {
		return nil, err
	}
	qs := make([]Query, len(recs))
	for i, r := range recs {
		qs[i] = Query{ID: i + 1, Text: r.fields['W']}
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("%s: no queries", path)
	}
	return qs, nil
}

func readQrels(path string, nq, nd int) (Qrels, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	q := Qrels{}
	sc := bufio.NewScanner(f)
	ln := 0
	for sc.Scan() {
		ln++
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		if len(fs) != 3 {
			return nil, fmt.Errorf("%s:%d: want 3 fields (query doc code), got %d", path, ln, len(fs))
		}
		var v [3]int
		for i, s := range fs {
			if v[i], err = strconv.Atoi(s); err != nil {
				return nil, fmt.Errorf("%s:%d: field %d %q is not a number", path, ln, i+1, s)
			}
		}
		qid, did, code := v[0], v[1], v[2]
		if code == -1 {
			continue
		}
		if qid < 1 || qid > nq || did < 1 || did > nd || code < 1 || code > 4 {
			return nil, fmt.Errorf("%s:%d: query %d, doc %d, code %d out of range", path, ln, qid, did, code)
		}
		if q[qid] == nil {
			q[qid] = map[int]float64{}
		}
		q[qid][did] = float64(5 - code)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return q, nil
}

// NDCG is nDCG@k of a ranking (document ids, best first) against graded
// relevance rel (doc → gain), with gain/log2(rank+1) discounting. A query
// without relevant documents scores 0.
func NDCG(ranking []int, rel map[int]float64, k int) float64 {
	dcg := 0.0
	for i, d := range ranking[:min(k, len(ranking))] {
		dcg += rel[d] / math.Log2(float64(i+2))
	}
	gains := make([]float64, 0, len(rel))
	for _, g := range rel {
		gains = append(gains, g)
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(gains)))
	idcg := 0.0
	for i, g := range gains[:min(k, len(gains))] {
		idcg += g / math.Log2(float64(i+2))
	}
	if idcg == 0 {
		return 0
	}
	return dcg / idcg
}

// Recall is recall@k: the share of relevant documents in the first k.
func Recall(ranking []int, rel map[int]float64, k int) float64 {
	if len(rel) == 0 {
		return 0
	}
	n := 0
	for _, d := range ranking[:min(k, len(ranking))] {
		if rel[d] > 0 {
			n++
		}
	}
	return float64(n) / float64(len(rel))
}

// Scores are mean figures over the judged queries.
type Scores struct {
	NDCG10, Recall10 float64
	Queries          int
}

func (s Scores) String() string {
	return fmt.Sprintf("nDCG@10 %.4f, recall@10 %.4f over %d queries", s.NDCG10, s.Recall10, s.Queries)
}

// Run ranks every judged query with search (which returns document ids,
// best first) and averages nDCG@10 and recall@10.
func (c *Collection) Run(search func(q Query) ([]int, error)) (Scores, error) {
	var s Scores
	for _, q := range c.Queries {
		rel := c.Qrels[q.ID]
		if len(rel) == 0 {
			continue
		}
		r, err := search(q)
		if err != nil {
			return s, fmt.Errorf("query %d: %w", q.ID, err)
		}
		s.NDCG10 += NDCG(r, rel, 10)
		s.Recall10 += Recall(r, rel, 10)
		s.Queries++
	}
	if s.Queries > 0 {
		s.NDCG10 /= float64(s.Queries)
		s.Recall10 /= float64(s.Queries)
	}
	return s, nil
}
