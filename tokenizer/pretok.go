package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// GPT-2 splits text into "words" before BPE with the regular expression
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// Go's RE2 has no look-ahead, and a regexp engine is slow anyway, so
// gpt2Next is a hand-written scanner with the same leftmost-first semantics.
// \s is Unicode White_Space (unicode.IsSpace), as in Python's regex module
// and llama.cpp; \p{L} and \p{N} are the Unicode categories. A byte that is
// not valid UTF-8 counts as one character of the "other" class, so every
// byte string splits (and byte-level BPE round-trips it).

// Character classes of the pre-tokenizer.
const (
	clsOther  = iota // [^\s\p{L}\p{N}]
	clsLetter        // \p{L}
	clsNumber        // \p{N}
	clsSpace         // \s
)

// asciiClass classifies the ASCII bytes without a Unicode table look-up.
var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for c := 0; c < utf8.RuneSelf; c++ {
		t[c] = runeClass(rune(c))
	}
	return t
}()

func runeClass(r rune) uint8 {
	switch {
	case unicode.IsLetter(r):
		return clsLetter
	case unicode.IsNumber(r):
		return clsNumber
	case unicode.IsSpace(r):
		return clsSpace
	}
	return clsOther // includes utf8.RuneError for invalid bytes
}

// classAt returns the class of the character at s[i] and its width in bytes.
func classAt(s string, i int) (uint8, int) {
	c := s[i]
	if c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && w == 1 {
		return clsOther, 1
	}
	return runeClass(r), w
}

// gpt2Next returns the end of the pre-token that starts at s[i] (i < len(s)).
func gpt2Next(s string, i int) int {
	n := len(s)
	c := s[i]
	if c == '\'' && i+1 < n {
		switch s[i+1] {
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r', 'v':
			if i+2 < n && s[i+2] == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < n && s[i+2] == 'l' {
				return i + 3
			}
		}
	}
	cls, w := classAt(s, i)
	j := i + w
	if c == ' ' && j < n {
		// " ?X+": a single space joins the run of letters, digits or
		// "other" characters after it.
		if c2, w2 := classAt(s, j); c2 != clsSpace {
			cls = c2
			j += w2
		}
	}
	switch cls {
	case clsLetter, clsNumber:
		// Runs of letters and digits are mostly ASCII: stay on the table.
		for j < n {
			if b := s[j]; b < utf8.RuneSelf {
				if asciiClass[b] != cls {
					break
				}
				j++
				continue
			}
			c2, w2 := classAt(s, j)
			if c2 != cls {
				break
			}
			j += w2
		}
		return j
	case clsOther:
		for j < n {
			c2, w2 := classAt(s, j)
			if c2 != clsOther {
				break
			}
			j += w2
		}
		return j
	}
	// Whitespace: "\s+(?!\S)" takes the run but leaves its last character
	// when a non-space follows (that character then prefixes the next word
	// or stands alone); a run of one character falls through to "\s+".
	last := i
	for j < n {
		c2, w2 := classAt(s, j)
		if c2 != clsSpace {
			break
		}
		last = j
		j += w2
	}
	if j < n && last > i {
		return last
	}
	return j
}
