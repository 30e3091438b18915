package main

import "testing"

func TestParseBench(t *testing.T) {
	out := []byte("compiled  decode: 128 tokens, 67745.4 tok/s (0.015 ms/token); prefill: 128 tokens, 48801.1 tok/s\n" +
		"generic   decode: 128 tokens, 6595.5 tok/s (0.152 ms/token); prefill: 128 tokens, 6654.7 tok/s\n" +
		"compiled/generic: decode 10.27x, prefill 11.35x\n")
	for _, c := range []struct {
		label    string
		dec, pre float64
	}{{"compiled", 67745.4, 48801.1}, {"generic", 6595.5, 6654.7}} {
		dec, pre, err := parseBench(out, c.label)
		if err != nil || dec != c.dec || pre != c.pre {
			t.Errorf("%s: %g, %g, %v; want %g, %g", c.label, dec, pre, err, c.dec, c.pre)
		}
	}
	if _, _, err := parseBench([]byte("stories260k: unknown flag: --rounds\n"), "compiled"); err == nil {
		t.Error("output without figures was accepted")
	}
}

func TestAgreement(t *testing.T) {
	for _, c := range []struct {
		modelc, llama      []int
		same, of, firstBad int
	}{
		{[]int{5, 6, 7}, []int{5, 6, 7, 8}, 3, 3, -1}, // modelc stopped at EOS
		{[]int{5, 6, 7}, []int{5, 9, 7}, 1, 3, 1},
		{[]int{5}, nil, 0, 0, -1},
	} {
		s, o, f := agreement(c.modelc, c.llama)
		if s != c.same || o != c.of || f != c.firstBad {
			t.Errorf("agreement(%v, %v) = %d, %d, %d; want %d, %d, %d", c.modelc, c.llama, s, o, f, c.same, c.of, c.firstBad)
		}
	}
}

func TestSeries(t *testing.T) {
	s := series{3, 1, 2, 10}
	if s.best() != 10 || s.median() != 2.5 {
		t.Errorf("best %g, median %g; want 10, 2.5", s.best(), s.median())
	}
	if s[0] != 3 {
		t.Error("median reordered the series")
	}
	if (series{4, 1, 9}).median() != 4 {
		t.Error("odd median")
	}
	// Round by round: 30/10, 20/5, 12/6; the shorter series sets the length.
	r := series{30, 20, 12}.per(series{10, 5, 6, 99})
	if len(r) != 3 || r[0] != 3 || r[1] != 4 || r[2] != 2 || r.median() != 3 {
		t.Errorf("per = %v, want [3 4 2] (median 3)", r)
	}
}
