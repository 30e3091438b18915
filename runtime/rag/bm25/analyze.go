// Package bm25 holds the keyword side of retrieval: the analyzer that turns
// text into index terms and Okapi BM25 scoring, plus an in-memory index that
// serves as the reference the stores are checked against.
package bm25

import (
	"unicode"
	"unicode/utf8"
)

// Analyzer turns text into index terms: lowercase runs of letters and digits,
// optionally without English stop words and reduced by a stemmer.
type Analyzer struct {
	// StopWords drops common English words (the, of, and, …).
	StopWords bool
	// Stem reduces words to a Porter stem (flows, flowing → flow).
	Stem bool
}

// Default is the analyzer every store uses unless told otherwise. Both options
// are on because they measurably help on Cranfield (see RESULTS.md).
var Default = Analyzer{StopWords: true, Stem: true}

// Name identifies the analyzer in a store's metadata, so that a query is
// analyzed the way the collection was.
func (a Analyzer) Name() string {
	n := "words"
	if a.StopWords {
		n += "+stop"
	}
	if a.Stem {
		n += "+porter"
	}
	return n
}

// maxTermBytes bounds a term: longer runs (base64, hashes) are cut, not
// dropped, so that they still match themselves.
const maxTermBytes = 64

// Terms returns the terms of text in order (with repeats).
func (a Analyzer) Terms(text string) []string {
	var out []string
	a.Each(text, func(t string) { out = append(out, t) })
	return out
}

// Each calls f with every term of text in order.
func (a Analyzer) Each(text string, f func(term string)) {
	buf := make([]byte, 0, 32)
	flush := func() {
		if len(buf) == 0 {
			return
		}
		w := buf
		if len(w) > maxTermBytes {
			w = w[:maxTermBytes]
			for len(w) > 0 && !utf8.Valid(w) {
				w = w[:len(w)-1]
			}
		}
		buf = buf[:0]
		s := string(w)
		if a.StopWords && stopWords[s] {
			return
		}
		if a.Stem {
			s = Stem(s)
		}
		f(s)
	}
	for i := 0; i < len(text); {
		r, n := rune(text[i]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(text[i:])
		}
		i += n
		switch {
		case r < utf8.RuneSelf && ('a' <= r && r <= 'z' || '0' <= r && r <= '9'):
			buf = append(buf, byte(r))
		case r < utf8.RuneSelf && 'A' <= r && r <= 'Z':
			buf = append(buf, byte(r+'a'-'A'))
		case r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			buf = utf8.AppendRune(buf, unicode.ToLower(r))
		default:
			flush()
		}
	}
	flush()
}

// stopWords is a short English list: function words that carry no topic.
var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range []string{
		"a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at",
		"be", "because", "been", "before", "being", "below", "between", "both", "but", "by",
		"can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further",
		"had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how",
		"i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself",
		"no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves",
		"out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their",
		"theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too",
		"under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who",
		"whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves",
	} {
		m[w] = true
	}
	return m
}()
