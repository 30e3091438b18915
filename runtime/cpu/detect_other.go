//go:build purego || !(386 || amd64 || arm64)

package cpu

func detect() Features { return Features{PureGo: true} }
