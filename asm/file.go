package asm

import "github.com/modelc/modelc/internal/atomicfile"

// writeFile replaces path atomically: a temp file in the same directory,
// synced, then renamed over it.
func writeFile(path string, data []byte) error { return atomicfile.WriteFile(path, data) }
