package generic

import "fmt"

// Embed runs tokens through the model from position 0 and returns the mean
// over positions of the final-normed hidden state (what the classifier would
// read): a dim-sized vector for retrieval and similarity. It does not touch
// any other session and is safe for concurrent use.
func (m *Model) Embed(tokens []int) ([]float32, error) {
	s := &m.p.Spec
	if len(tokens) == 0 {
		return nil, fmt.Errorf("embed: no tokens")
	}
	if len(tokens) > s.MaxSeq {
		return nil, fmt.Errorf("embed: %d tokens, the context holds %d", len(tokens), s.MaxSeq)
	}
	for i, t := range tokens {
		if t < 0 || t >= s.Vocab {
			return nil, fmt.Errorf("embed: token %d is %d, outside the vocabulary of %d", i, t, s.Vocab)
		}
	}
	se := m.NewSession().(*Session)
	rows := make([]row, len(tokens))
	for i, t := range tokens {
		rows[i] = row{se: se, token: t, pos: i}
	}
	sc := m.scratch(len(rows))
	defer scratchPool.Put(sc)
	m.hidden(rows, sc)
	d := s.Dim
	sum := make([]float64, d)
	for i := range rows {
		for j, v := range sc.x[i*d : (i+1)*d] {
			sum[j] += float64(v)
		}
	}
	out := make([]float32, d)
	for j, v := range sum {
		out[j] = float32(v / float64(len(tokens)))
	}
	return out, nil
}
