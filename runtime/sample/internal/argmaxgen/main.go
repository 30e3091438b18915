// Command argmaxgen writes runtime/sample's AVX2 argmax (argmax_amd64.s,
// argmax_amd64.go) into the current directory; run by go generate in
// runtime/sample.
package main

import (
	"fmt"
	"os"

	"github.com/modelc/modelc/asm"
)

func main() {
	s, stubs, err := asm.ArgmaxAMD64("sample")
	if err == nil {
		err = os.WriteFile("argmax_amd64.s", s, 0o644)
	}
	if err == nil {
		err = os.WriteFile("argmax_amd64.go", stubs, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "argmaxgen:", err)
		os.Exit(1)
	}
}
