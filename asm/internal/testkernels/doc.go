// Package testkernels holds kernels generated for many shapes, odd ones
// included, so that tests can compare every path this machine runs with the
// Go reference in package asm.
package testkernels

//go:generate go run ./gen
