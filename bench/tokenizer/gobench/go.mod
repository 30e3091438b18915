module github.com/modelc/modelc/bench/tokenizer/gobench

go 1.26.8

require (
	github.com/modelc/modelc v0.0.0
	github.com/tiktoken-go/tokenizer v0.10.0
)

require github.com/dlclark/regexp2/v2 v2.5.1 // indirect

replace github.com/modelc/modelc => ../../..
