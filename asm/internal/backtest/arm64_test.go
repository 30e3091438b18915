//go:build arm64 && !purego

package backtest

import (
	"testing"

	"github.com/modelc/modelc/asm"
)

// NEON is baseline on arm64: the kernels always run (under qemu-aarch64 on
// amd64 hosts).
func TestARM64(t *testing.T) {
	t.Logf("ran %d kernels", runAll(t, asm.NEON, arm64DX, arm64DW))
}
