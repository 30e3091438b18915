package dense

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"

	"github.com/modelc/modelc/runtime/rag/topk"
)

// HNSW is an approximate index: a hierarchical navigable small-world graph
// (Malkov & Yashunin, 2016: greedy descent through sparse upper layers, a
// beam search of width ef in the bottom one, neighbours chosen by the
// paper's diversity heuristic). Scores are the exact cosines of the
// vectors found.
//
// Why not a library: the only HNSW module the Go proxy serves here,
// github.com/coder/hnsw v0.6.1, finds 0.1–0.4 of the true 10 nearest on
// clustered data whatever its parameters (its heap's Max returns the last
// array slot, not the maximum, so result sets and neighbour lists are pruned
// at random). This one is tested against exact search.
type HNSW struct {
	P     HNSWParams
	flat  *Flat
	nbr   [][][]int32 // nbr[i][l]: neighbours of node i (= flat row i) in layer l
	entry int32
	top   int
	pool  sync.Pool // *visited
}

// HNSWParams shape the graph.
type HNSWParams struct {
	M              int // neighbours per node in upper layers (2M in the bottom one)
	EfConstruction int // beam width while inserting
	EfSearch       int // beam width while searching (raised to k when smaller)
	Seed           uint64
}

// DefaultHNSW trades build time for recall (see the tests and RESULTS.md).
var DefaultHNSW = HNSWParams{M: 16, EfConstruction: 100, EfSearch: 80, Seed: 1}

func (p HNSWParams) validate() error {
	if p.M < 2 || p.M > 1000 || p.EfConstruction < 1 || p.EfSearch < 1 {
		return fmt.Errorf("hnsw: M must be in [2, 1000] and ef ≥ 1, got M %d, ef_construction %d, ef_search %d", p.M, p.EfConstruction, p.EfSearch)
	}
	return nil
}

type visited struct {
	mark []uint32
	gen  uint32
}

type cand struct {
	id  int32
	sim float32
}

// BuildHNSW indexes the vectors of f, which it keeps: f must not change after.
func BuildHNSW(f *Flat, p HNSWParams) (*HNSW, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	h := &HNSW{P: p, flat: f, entry: -1, nbr: make([][][]int32, f.Len())}
	r := rand.New(rand.NewPCG(p.Seed, 0x9e3779b97f4a7c15))
	mL := 1 / math.Log(float64(p.M))
	for i := range f.IDs {
		lv := min(int(-math.Log(1-r.Float64())*mL), 30)
		h.insert(int32(i), lv)
	}
	return h, nil
}

func (h *HNSW) vec(i int32) []float32 {
	d := h.flat.Dim
	return h.flat.Vecs[int(i)*d : int(i+1)*d]
}

func (h *HNSW) maxLinks(l int) int {
	if l == 0 {
		return 2 * h.P.M
	}
	return h.P.M
}

func (h *HNSW) insert(i int32, lv int) {
	h.nbr[i] = make([][]int32, lv+1)
	if h.entry < 0 {
		h.entry, h.top = i, lv
		return
	}
	q := h.vec(i)
	ep := cand{h.entry, Dot(q, h.vec(h.entry))}
	for l := h.top; l > lv; l-- {
		ep = h.greedy(q, ep, l)
	}
	for l := min(h.top, lv); l >= 0; l-- {
		cs := h.searchLayer(q, ep, h.P.EfConstruction, l)
		sel := h.selectNeighbors(cs, h.P.M)
		h.nbr[i][l] = sel
		for _, s := range sel {
			h.link(s, i, l)
		}
		ep = cs[0]
	}
	if lv > h.top {
		h.entry, h.top = i, lv
	}
}

// link adds i to the neighbours of s in layer l; a full list drops its
// farthest member. (Re-running the diversity heuristic here, as hnswlib
// does, took a third of the build time for no measurable recall.)
func (h *HNSW) link(s, i int32, l int) {
	ns := append(h.nbr[s][l], i)
	if len(ns) <= h.maxLinks(l) {
		h.nbr[s][l] = ns
		return
	}
	v := h.vec(s)
	worst, ws := 0, float32(2)
	for j, n := range ns {
		if d := Dot(v, h.vec(n)); d < ws {
			worst, ws = j, d
		}
	}
	ns[worst] = ns[len(ns)-1]
	h.nbr[s][l] = ns[:len(ns)-1]
}

func sortCands(cs []cand) {
	sort.Slice(cs, func(a, b int) bool {
		if cs[a].sim != cs[b].sim {
			return cs[a].sim > cs[b].sim
		}
		return cs[a].id < cs[b].id
	})
}

// selectNeighbors keeps, of candidates sorted best first, those closer to
// the base than to any neighbour already kept (the paper's heuristic: it
// keeps links in many directions), filling up with the rest if short.
func (h *HNSW) selectNeighbors(cs []cand, m int) []int32 {
	out := make([]int32, 0, m)
	var pruned []int32
	for _, c := range cs {
		if len(out) >= m {
			break
		}
		good := true
		cv := h.vec(c.id)
		for _, r := range out {
			if Dot(cv, h.vec(r)) > c.sim {
				good = false
				break
			}
		}
		if good {
			out = append(out, c.id)
		} else {
			pruned = append(pruned, c.id)
		}
	}
	for _, p := range pruned {
		if len(out) >= m {
			break
		}
		out = append(out, p)
	}
	return out
}

// greedy walks layer l to the node most similar to q.
func (h *HNSW) greedy(q []float32, ep cand, l int) cand {
	for changed := true; changed; {
		changed = false
		for _, n := range h.nbr[ep.id][l] {
			if s := Dot(q, h.vec(n)); s > ep.sim {
				ep, changed = cand{n, s}, true
			}
		}
	}
	return ep
}

// searchLayer is the beam search: it returns up to ef nodes of layer l
// most similar to q, best first.
func (h *HNSW) searchLayer(q []float32, ep cand, ef, l int) []cand {
	vis, _ := h.pool.Get().(*visited)
	if vis == nil || len(vis.mark) < len(h.nbr) {
		vis = &visited{mark: make([]uint32, len(h.nbr))}
	}
	vis.gen++
	if vis.gen == 0 {
		clear(vis.mark)
		vis.gen = 1
	}
	defer h.pool.Put(vis)
	vis.mark[ep.id] = vis.gen
	todo := candHeap{best: true}
	res := candHeap{}
	todo.push(ep)
	res.push(ep)
	for len(todo.c) > 0 {
		c := todo.pop()
		if len(res.c) >= ef && c.sim < res.c[0].sim {
			break
		}
		for _, n := range h.nbr[c.id][l] {
			if vis.mark[n] == vis.gen {
				continue
			}
			vis.mark[n] = vis.gen
			s := Dot(q, h.vec(n))
			if len(res.c) < ef || s > res.c[0].sim {
				todo.push(cand{n, s})
				res.push(cand{n, s})
				if len(res.c) > ef {
					res.pop()
				}
			}
		}
	}
	out := res.c
	sortCands(out)
	return out
}

// candHeap is a binary heap of candidates: the best on top when best is
// set, else the worst.
type candHeap struct {
	c    []cand
	best bool
}

func (hp *candHeap) less(a, b int) bool {
	if hp.best {
		return hp.c[a].sim > hp.c[b].sim
	}
	return hp.c[a].sim < hp.c[b].sim
}

func (hp *candHeap) push(x cand) {
	hp.c = append(hp.c, x)
	for i := len(hp.c) - 1; i > 0; {
		p := (i - 1) / 2
		if !hp.less(i, p) {
			break
		}
		hp.c[i], hp.c[p] = hp.c[p], hp.c[i]
		i = p
	}
}

func (hp *candHeap) pop() cand {
	top := hp.c[0]
	n := len(hp.c) - 1
	hp.c[0] = hp.c[n]
	hp.c = hp.c[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && hp.less(l, m) {
			m = l
		}
		if r := l + 1; r < n && hp.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		hp.c[i], hp.c[m] = hp.c[m], hp.c[i]
		i = m
	}
	return top
}

// Len is the number of vectors.
func (h *HNSW) Len() int { return len(h.nbr) }

// Search finds about the k nearest vectors to q.
func (h *HNSW) Search(q []float32, k int) []topk.Hit {
	if len(q) != h.flat.Dim || k <= 0 || h.entry < 0 {
		return nil
	}
	ep := cand{h.entry, Dot(q, h.vec(h.entry))}
	for l := h.top; l > 0; l-- {
		ep = h.greedy(q, ep, l)
	}
	cs := h.searchLayer(q, ep, max(h.P.EfSearch, k), 0)
	hs := topk.New(k)
	for _, c := range cs {
		hs.Push(topk.Hit{ID: h.flat.IDs[c.id], Score: float64(c.sim)})
	}
	return hs.Sorted()
}

const hnswMagic = "HNSW\x01"

// Export encodes the graph (not the vectors, which stay in the Flat).
func (h *HNSW) Export() []byte {
	b := []byte(hnswMagic)
	b = binary.LittleEndian.AppendUint32(b, uint32(h.P.M))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.P.EfConstruction))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(h.nbr)))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.entry))
	for _, ls := range h.nbr {
		b = append(b, byte(len(ls)))
		for _, ns := range ls {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(ns)))
			for _, n := range ns {
				b = binary.LittleEndian.AppendUint32(b, uint32(n))
			}
		}
	}
	return b
}

var errShort = errors.New("truncated")

// ImportHNSW decodes a graph Export wrote for the vectors of f, checking
// every link.
func ImportHNSW(data []byte, f *Flat, efSearch int) (*HNSW, error) {
	fail := func(off int, what string, err error) (*HNSW, error) {
		if err != nil {
			return nil, fmt.Errorf("hnsw graph: byte %d: %s: %w", off, what, err)
		}
		return nil, fmt.Errorf("hnsw graph: byte %d: %s", off, what)
	}
	if len(data) < len(hnswMagic) || string(data[:len(hnswMagic)]) != hnswMagic {
		return fail(0, "not an HNSW graph of this version", nil)
	}
	off := len(hnswMagic)
	u32 := func() (uint32, error) {
		if len(data)-off < 4 {
			return 0, errShort
		}
		v := binary.LittleEndian.Uint32(data[off:])
		off += 4
		return v, nil
	}
	var hdr [4]uint32
	for i := range hdr {
		v, err := u32()
		if err != nil {
			return fail(off, "header", err)
		}
		hdr[i] = v
	}
	p := HNSWParams{M: int(hdr[0]), EfConstruction: int(hdr[1]), EfSearch: efSearch}
	if err := p.validate(); err != nil {
		return fail(len(hnswMagic), err.Error(), nil)
	}
	n := int(hdr[2])
	if n != f.Len() {
		return fail(len(hnswMagic)+8, fmt.Sprintf("graph of %d nodes for %d vectors", n, f.Len()), nil)
	}
	h := &HNSW{P: p, flat: f, entry: int32(hdr[3]), nbr: make([][][]int32, n)}
	if n == 0 {
		h.entry = -1
		return h, nil
	}
	if hdr[3] >= uint32(n) {
		return fail(len(hnswMagic)+12, fmt.Sprintf("entry node %d of %d", hdr[3], n), nil)
	}
	for i := range h.nbr {
		if off >= len(data) {
			return fail(off, fmt.Sprintf("node %d", i), errShort)
		}
		nl := int(data[off])
		off++
		if nl < 1 || nl > 31 {
			return fail(off-1, fmt.Sprintf("node %d has %d layers", i, nl), nil)
		}
		h.nbr[i] = make([][]int32, nl)
		for l := range nl {
			c, err := u32()
			if err != nil {
				return fail(off, fmt.Sprintf("node %d layer %d", i, l), err)
			}
			if int(c) > h.maxLinks(l) || int(c) > (len(data)-off)/4 {
				return fail(off-4, fmt.Sprintf("node %d layer %d: %d links", i, l, c), nil)
			}
			ns := make([]int32, c)
			for j := range ns {
				v, _ := u32()
				if v >= uint32(n) || int(v) == i {
					return fail(off-4, fmt.Sprintf("node %d layer %d links to %d", i, l, v), nil)
				}
				ns[j] = int32(v)
			}
			h.nbr[i][l] = ns
		}
	}
	if off != len(data) {
		return fail(off, "trailing bytes", nil)
	}
	// Every link must point at a node present in its layer.
	for i, ls := range h.nbr {
		for l, ns := range ls {
			for _, v := range ns {
				if len(h.nbr[v]) <= l {
					return fail(0, fmt.Sprintf("node %d layer %d links to node %d, which is not in that layer", i, l, v), nil)
				}
			}
		}
	}
	h.top = len(h.nbr[h.entry]) - 1
	for i, ls := range h.nbr {
		if len(ls)-1 > h.top {
			return fail(0, fmt.Sprintf("node %d is above the entry's top layer %d", i, h.top), nil)
		}
	}
	return h, nil
}
