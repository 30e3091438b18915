// Command gen writes the kernels of package testkernels into the current
// directory; run by go generate there.
package main

import (
	"fmt"
	"os"

	"github.com/modelc/modelc/asm/internal/testshapes"
)

func main() {
	if err := testshapes.Generate("."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
