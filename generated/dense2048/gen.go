// Package dense2048 is the dense2048 model compiled by modelc from model.yaml.
package dense2048

//go:generate go run github.com/modelc/modelc/cmd/modelc gen model.yaml
