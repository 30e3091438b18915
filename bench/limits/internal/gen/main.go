// Command gen writes package limits' kernels into the current directory
// (run by go generate in bench/limits).
package main

import (
	"fmt"
	"os"

	"github.com/modelc/modelc/bench/limits/internal/limitgen"
)

func main() {
	if err := limitgen.Generate("."); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
