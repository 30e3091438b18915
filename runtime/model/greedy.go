package model

import "github.com/modelc/modelc/runtime/sample"

// NextGreedy runs token at position pos in s and returns the greedy next
// token: s.Greedy where s has it, else sample.Argmax of s.Forward.
func NextGreedy(s Session, token, pos int) int {
	if g, ok := s.(Greedy); ok {
		return g.Greedy(token, pos)
	}
	return sample.Argmax(s.Forward(token, pos))
}
