// Package llama15m is the llama15m model compiled by modelc from model.yaml.
package llama15m

//go:generate go run github.com/modelc/modelc/cmd/modelc gen model.yaml
