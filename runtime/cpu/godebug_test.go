//go:build amd64 && !purego

package cpu

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestGODEBUG re-runs this test binary with GODEBUG switching x86 features off
// and checks the level each child picks.
func TestGODEBUG(t *testing.T) {
	if os.Getenv("MODELC_CPU_CHILD") != "" {
		os.Stdout.WriteString("level=" + Best().String() + "\n")
		return
	}
	cases := []struct {
		godebug string
		allowed []Level // what the child may pick, depending on this machine
	}{
		{"cpu.avx512f=off", []Level{AVX2, Generic, NEON}},
		{"cpu.avx512f=off,cpu.avx2=off", []Level{Generic, NEON}},
		{"cpu.avx2=off", []Level{Generic, NEON}},
	}
	for _, c := range cases {
		cmd := exec.Command(os.Args[0], "-test.run=^TestGODEBUG$")
		cmd.Env = append(os.Environ(), "MODELC_CPU_CHILD=1", "GODEBUG="+c.godebug)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c.godebug, err, out)
		}
		s := string(out)
		i := strings.Index(s, "level=")
		if i < 0 {
			t.Fatalf("%s: no level in child output:\n%s", c.godebug, s)
		}
		got := strings.Fields(s[i+len("level="):])[0]
		ok := false
		for _, l := range c.allowed {
			ok = ok || got == l.String()
		}
		if !ok {
			t.Errorf("GODEBUG=%s picked %s, want one of %v", c.godebug, got, c.allowed)
		}
		// On this kind of machine the lower path must be the one below.
		if c.godebug == "cpu.avx512f=off" && Supports(AVX2) && got != "avx2" {
			t.Errorf("GODEBUG=%s picked %s on an AVX2 machine", c.godebug, got)
		}
	}
}
