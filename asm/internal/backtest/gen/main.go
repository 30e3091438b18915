// Command gen writes the kernels of package backtest into the current
// directory; run by go generate there.
package main

import (
	"fmt"
	"os"

	"github.com/modelc/modelc/asm/internal/backtest/shapes"
)

func main() {
	if err := shapes.Generate("."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
