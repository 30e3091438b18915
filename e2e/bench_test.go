package e2e

import (
	"path/filepath"
	"testing"

	"github.com/modelc/modelc/generated/stories260k"
	"github.com/modelc/modelc/runtime/checkpoint"
	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/sample"
)

// BenchmarkDecode260K measures one decoded token of stories260K at positions
// 0..255 (a 256-token story), compiled against generic.
func BenchmarkDecode260K(b *testing.B) {
	p, _, err := checkpoint.Load(filepath.Join(sharedData(b), "models", "stories260K.bin"))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		new  model.Factory
	}{{"generated", stories260k.New}, {"generic", generic.New}} {
		b.Run(c.name, func(b *testing.B) {
			m, err := c.new(p)
			if err != nil {
				b.Fatal(err)
			}
			s := m.NewSession()
			pos := 0
			for b.Loop() {
				s.Forward(5, pos)
				pos = (pos + 1) % 256
			}
		})
	}
}

// BenchmarkGreedy260K measures one greedy token of stories260K at positions
// 0..255: every logit made and the argmax taken, against model.Greedy (the
// classifier screened where the CPU can).
func BenchmarkGreedy260K(b *testing.B) {
	p, _, err := checkpoint.Load(filepath.Join(sharedData(b), "models", "stories260K.bin"))
	if err != nil {
		b.Fatal(err)
	}
	m, err := stories260k.New(p)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		next func(model.Session, int, int) int
	}{
		{"full", func(s model.Session, tok, pos int) int { return sample.Argmax(s.Forward(tok, pos)) }},
		{"screened", model.NextGreedy},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := m.NewSession()
			pos, tok := 0, 1
			for b.Loop() {
				tok = c.next(s, tok, pos)
				if pos = (pos + 1) % 256; pos == 0 {
					tok = 1
				}
			}
		})
	}
}
