// Package moe8x256 is the moe8x256 model compiled by modelc from model.yaml.
package moe8x256

//go:generate go run github.com/modelc/modelc/cmd/modelc gen model.yaml
