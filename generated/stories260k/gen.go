// Package stories260k is the stories260k model compiled by modelc from model.yaml.
package stories260k

//go:generate go run github.com/modelc/modelc/cmd/modelc gen model.yaml
