// Command actgen writes runtime/quant's AVX2 activation quantiser
// (act_amd64.s, act_amd64.go) into the current directory; run by go generate
// in runtime/quant.
package main

import (
	"fmt"
	"os"

	"github.com/modelc/modelc/asm"
)

func main() {
	s, stubs, err := asm.QuantActAMD64("quant")
	if err == nil {
		err = os.WriteFile("act_amd64.s", s, 0o644)
	}
	if err == nil {
		err = os.WriteFile("act_amd64.go", stubs, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "actgen:", err)
		os.Exit(1)
	}
}
