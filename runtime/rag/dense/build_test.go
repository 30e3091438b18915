package dense

import (
	"testing"
	"time"
)

func TestBuildSpeed(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	f := clustered(20000, 256, 200, 1)
	t0 := time.Now()
	h, _ := BuildHNSW(f, DefaultHNSW)
	t.Logf("build 20k×256: %v", time.Since(t0))
	qs := clustered(100, 256, 200, 2)
	t.Logf("recall %.3f", recall(f, h, qs, 10))
}
