//go:build !unix

package train

func mapFile(path string) ([]byte, func() error, error) { return readWhole(path) }
