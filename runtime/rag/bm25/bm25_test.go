package bm25

import (
	"math"
	"reflect"
	"testing"
)

func TestStem(t *testing.T) {
	for w, want := range map[string]string{
		"caresses": "caress", "ponies": "poni", "cats": "cat", "feed": "feed", "agreed": "agre",
		"plastered": "plaster", "motoring": "motor", "sing": "sing", "conflated": "conflat",
		"troubled": "troubl", "sized": "size", "hopping": "hop", "falling": "fall", "hissing": "hiss",
		"fizzed": "fizz", "failing": "fail", "filing": "file", "happy": "happi", "sky": "sky",
		"generalizations": "gener", "oscillators": "oscil", "relational": "relat", "conditional": "condit",
		"rational": "ration", "hopeful": "hope", "goodness": "good", "replacement": "replac",
		"adoption": "adopt", "effective": "effect", "probate": "probat", "rate": "rate", "cease": "ceas",
		"controll": "control", "roll": "roll", "electrical": "electr", "flows": "flow", "flowing": "flow",
		"at": "at", "x2": "x2", "café": "café",
	} {
		if got := Stem(w); got != want {
			t.Errorf("Stem(%q) = %q, want %q", w, got, want)
		}
	}
}

func TestAnalyzer(t *testing.T) {
	text := "The Boundary-Layer flows, at Mach 2.5; ÉCOLE naïve."
	for _, c := range []struct {
		a    Analyzer
		want []string
	}{
		{Analyzer{}, []string{"the", "boundary", "layer", "flows", "at", "mach", "2", "5", "école", "naïve"}},
		{Analyzer{StopWords: true}, []string{"boundary", "layer", "flows", "mach", "2", "5", "école", "naïve"}},
		{Default, []string{"boundari", "layer", "flow", "mach", "2", "5", "école", "naïve"}},
	} {
		if got := c.a.Terms(text); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %q, want %q", c.a.Name(), got, c.want)
		}
	}
	long := make([]byte, 100)
	for i := range long {
		long[i] = 'a'
	}
	if got := (Analyzer{}).Terms(string(long)); len(got) != 1 || len(got[0]) != maxTermBytes {
		t.Errorf("a 100-letter word gave %d terms of %d bytes, want one of %d", len(got), len(got[0]), maxTermBytes)
	}
}

// TestIndexScores checks the BM25 arithmetic on a collection small enough
// to work by hand.
func TestIndexScores(t *testing.T) {
	x := NewIndex(DefaultParams)
	x.Add(1, []string{"wing", "lift", "wing"})         // dl 3
	x.Add(2, []string{"lift", "drag", "drag", "drag"}) // dl 4
	x.Add(3, []string{"shock"})                        // dl 1
	avg := 8.0 / 3
	idfWing := math.Log(1 + (3-1+0.5)/(1+0.5))
	idfLift := math.Log(1 + (3-2+0.5)/(2+0.5))
	term := func(idf, tf, dl float64) float64 {
		return idf * tf * 2.2 / (tf + 1.2*(0.25+0.75*dl/avg))
	}
	hits := x.Search([]string{"wing", "lift"}, 10)
	if len(hits) != 2 || hits[0].ID != 1 || hits[1].ID != 2 {
		t.Fatalf("hits %v, want docs 1 then 2", hits)
	}
	want1 := term(idfWing, 2, 3) + term(idfLift, 1, 3)
	want2 := term(idfLift, 1, 4)
	if math.Abs(hits[0].Score-want1) > 1e-12 || math.Abs(hits[1].Score-want2) > 1e-12 {
		t.Errorf("scores %.6f %.6f, want %.6f %.6f", hits[0].Score, hits[1].Score, want1, want2)
	}
	// Replacing a document updates the statistics.
	x.Add(1, []string{"shock"})
	if hits := x.Search([]string{"wing"}, 10); len(hits) != 0 {
		t.Errorf("after replacing doc 1, wing still finds %v", hits)
	}
	x.Remove(3)
	x.Remove(3)
	if x.Len() != 2 || x.total != 5 {
		t.Errorf("after removes: %d docs, %d terms; want 2, 5", x.Len(), x.total)
	}
	if hits := x.Search(nil, 10); len(hits) != 0 {
		t.Errorf("empty query found %v", hits)
	}
}
