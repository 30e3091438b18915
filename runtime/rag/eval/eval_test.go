package eval

import (
	"math"
	"strings"
	"testing"
)

func TestMetrics(t *testing.T) {
	rel := map[int]float64{1: 4, 2: 1, 9: 2}
	// Ranking 2, 5, 1: DCG = 1/log2(2) + 0 + 4/log2(4) = 3; ideal 4, 2, 1:
	// 4 + 2/log2(3) + 1/2.
	want := 3 / (4 + 2/math.Log2(3) + 0.5)
	if got := NDCG([]int{2, 5, 1}, rel, 10); math.Abs(got-want) > 1e-12 {
		t.Errorf("nDCG %v, want %v", got, want)
	}
	if got := NDCG([]int{1, 9, 2}, rel, 10); math.Abs(got-1) > 1e-12 {
		t.Errorf("ideal ranking nDCG %v, want 1", got)
	}
	if got := Recall([]int{2, 5, 1}, rel, 2); math.Abs(got-1.0/3) > 1e-12 {
		t.Errorf("recall@2 %v, want 1/3", got)
	}
	if NDCG(nil, nil, 10) != 0 || Recall(nil, nil, 10) != 0 {
		t.Error("no judgements should score 0")
	}
}

func FuzzParseSMART(f *testing.F) {
	f.Add(".I 1\n.T\ntitle\n.W\ntext\n.I 2\n.W\nmore\n")
	f.Add(".T\nno id\n")
	f.Fuzz(func(t *testing.T, s string) {
		recs, err := parseSMART("fuzz", strings.NewReader(s))
		if err == nil && strings.Count(s, ".I") < len(recs) {
			t.Fatalf("%d records from %d .I markers", len(recs), strings.Count(s, ".I"))
		}
	})
}
