// Package llama110m is the llama110m model compiled by modelc from model.yaml.
package llama110m

//go:generate go run github.com/modelc/modelc/cmd/modelc gen model.yaml
