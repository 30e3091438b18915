// Package dense512 is the dense512 model compiled by modelc from model.yaml.
package dense512

//go:generate go run github.com/modelc/modelc/cmd/modelc gen model.yaml
