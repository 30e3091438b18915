// Command softmaxgen writes runtime/sample's AVX2 softmax kernels
// (softmax_amd64.s, softmax_amd64.go) into the current directory; run by go
// generate in runtime/sample.
package main

import (
	"fmt"
	"os"

	"github.com/modelc/modelc/asm"
)

func main() {
	s, stubs, err := asm.SoftmaxAMD64("sample")
	if err == nil {
		err = os.WriteFile("softmax_amd64.s", s, 0o644)
	}
	if err == nil {
		err = os.WriteFile("softmax_amd64.go", stubs, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "softmaxgen:", err)
		os.Exit(1)
	}
}
