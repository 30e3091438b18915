// Command screengen writes runtime/screen's kernels (screen_amd64.s and
// screen_amd64.go: AVX-512 VNNI and AVX2; screen_arm64.s and
// screen_arm64.go: NEON with SDOT) into the current directory; run by go
// generate in runtime/screen.
package main

import (
	"fmt"
	"os"

	"github.com/modelc/modelc/asm"
)

func main() {
	for _, g := range []struct {
		arch string
		gen  func(pkg string) (asmText, stubs []byte, err error)
	}{{"amd64", asm.ScreenAMD64}, {"arm64", asm.ScreenARM64}} {
		s, stubs, err := g.gen("screen")
		if err == nil {
			err = os.WriteFile("screen_"+g.arch+".s", s, 0o644)
		}
		if err == nil {
			err = os.WriteFile("screen_"+g.arch+".go", stubs, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "screengen:", err)
			os.Exit(1)
		}
	}
}
