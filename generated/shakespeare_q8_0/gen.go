// Package shakespeare_q8_0 is the shakespeare_q8_0 model compiled by modelc from model.yaml.
package shakespeare_q8_0

//go:generate go run github.com/modelc/modelc/cmd/modelc gen model.yaml
