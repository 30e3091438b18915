// Package llama110m_q4_0 is the llama110m_q4_0 model compiled by modelc from model.yaml.
package llama110m_q4_0

//go:generate go run github.com/modelc/modelc/cmd/modelc gen model.yaml
