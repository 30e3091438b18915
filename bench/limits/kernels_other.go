//go:build purego || !amd64

package limits

func paths() []string { return []string{"go"} }

func kernelsFor(string) kernels { return goKernels }
