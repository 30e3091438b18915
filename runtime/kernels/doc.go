// Package kernels holds the reference Go implementation of every operation a
// model runs: plain loops over run-time sizes, written for clarity. They are
// the oracle the generated and assembly kernels are tested against, and the
// generic model is built from them.
package kernels
