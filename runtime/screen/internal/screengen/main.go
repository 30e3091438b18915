// Command screengen writes runtime/screen's AVX-512 VNNI and AVX2 kernels
// (screen_amd64.s, screen_amd64.go) into the current directory; run by go
// generate in runtime/screen.
package main

import (
	"fmt"
	"os"

	"github.com/modelc/modelc/asm"
)

func main() {
	s, stubs, err := asm.ScreenAMD64("screen")
	if err == nil {
		err = os.WriteFile("screen_amd64.s", s, 0o644)
	}
	if err == nil {
		err = os.WriteFile("screen_amd64.go", stubs, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "screengen:", err)
		os.Exit(1)
	}
}
