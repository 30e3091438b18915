//go:build !linux

package server

// totalRAM is the machine's memory in bytes (0: unknown).
func totalRAM() uint64 { return 0 }
