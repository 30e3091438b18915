// Command gen writes the kernels of package quanttest into the current
// directory; run by go generate there.
package main

import (
	"fmt"
	"os"

	"github.com/modelc/modelc/asm/internal/quanttest/shapes"
)

func main() {
	if err := shapes.Generate("."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
