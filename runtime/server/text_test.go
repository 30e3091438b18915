package server

import (
	"strings"
	"testing"
)

// feed runs pieces through a textStream and returns each step's output.
func feed(stops []string, pieces ...string) (outs []string, hit bool, rest string) {
	ts := newTextStream(stops)
	for _, p := range pieces {
		out, h := ts.add([]byte(p))
		outs = append(outs, string(out))
		if h {
			return outs, true, string(ts.flush())
		}
	}
	return outs, false, string(ts.flush())
}

func TestTextStream(t *testing.T) {
	cases := []struct {
		name   string
		stops  []string
		pieces []string
		outs   []string
		hit    bool
		rest   string
	}{
		{"plain", nil, []string{"a", "bc", " d"}, []string{"a", "bc", " d"}, false, ""},
		{"stop inside a piece", []string{"END"}, []string{"abENDcd"}, []string{"ab"}, true, ""},
		// "E", "N" could begin END: held until it is clear.
		{"stop across pieces", []string{"END"}, []string{"xE", "N", "D!"}, []string{"x", "", ""}, true, ""},
		{"false start released", []string{"END"}, []string{"xE", "N", "o"}, []string{"x", "", "ENo"}, false, ""},
		{"held at the end", []string{"END"}, []string{"abEN"}, []string{"ab"}, false, "EN"},
		{"earliest of two stops", []string{"cd", "b"}, []string{"abcd"}, []string{"a"}, true, ""},
		{"overlapping prefixes", []string{"aab"}, []string{"a", "a", "a", "b"}, []string{"", "", "a", ""}, true, ""},
		// é is C3 A9: the first byte waits for the second.
		{"utf8 split", nil, []string{"x\xc3", "\xa9y"}, []string{"x", "éy"}, false, ""},
		{"utf8 four bytes", nil, []string{"\xf0", "\x9f", "\x98", "\x80!"}, []string{"", "", "", "😀!"}, false, ""},
		{"invalid byte passes", nil, []string{"\xa9", "z"}, []string{"\xa9", "z"}, false, ""},
		{"incomplete at the end", nil, []string{"a\xe2\x82"}, []string{"a"}, false, "\xe2\x82"},
		{"control byte dropped", nil, []string{"a", "\x07", "\n", "b"}, []string{"a", "", "\n", "b"}, false, ""},
		{"empty piece", nil, []string{"", "a"}, []string{"", "a"}, false, ""},
	}
	for _, c := range cases {
		outs, hit, rest := feed(c.stops, c.pieces...)
		if strings.Join(outs, "|") != strings.Join(c.outs, "|") || hit != c.hit || rest != c.rest {
			t.Errorf("%s: outputs %q hit %v rest %q, want %q %v %q", c.name, outs, hit, rest, c.outs, c.hit, c.rest)
		}
	}
	// After a stop nothing more comes out.
	ts := newTextStream([]string{"x"})
	ts.add([]byte("axb"))
	if out, hit := ts.add([]byte("c")); len(out) != 0 || !hit {
		t.Errorf("after the stop: %q %v", out, hit)
	}
	if rest := ts.flush(); len(rest) != 0 {
		t.Errorf("flush after the stop: %q", rest)
	}
}

// TestTextStreamConcatenation: however text is cut into pieces, the output
// is the text up to the first stop.
func TestTextStreamConcatenation(t *testing.T) {
	text := "Once upon a time, ümlaut 😀 there was a STOP sign and more"
	stops := []string{"STOP", "zz"}
	want := text[:strings.Index(text, "STOP")]
	b := []byte(text)
	for size := 1; size <= 7; size++ {
		ts := newTextStream(stops)
		var got []byte
		for i := 0; i < len(b); i += size {
			out, hit := ts.add(b[i:min(i+size, len(b))])
			got = append(got, out...)
			if hit {
				break
			}
		}
		got = append(got, ts.flush()...)
		if string(got) != want {
			t.Errorf("pieces of %d: %q, want %q", size, got, want)
		}
	}
}
