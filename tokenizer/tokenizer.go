// Package tokenizer turns text into token ids and back: loading vocabularies
// (llama2.c tokenizer.bin, GGUF tokenizer.ggml.* metadata, GPT-2 encoder.json +
// vocab.bpe), encoding, decoding and training BPE vocabularies.
package tokenizer

// Tokenizer is a loaded vocabulary that encodes and decodes.
type Tokenizer interface {
	// Encode turns text into ids, optionally with the BOS and EOS ids around it.
	Encode(text string, bos, eos bool) ([]int, error)
	// Piece returns the bytes token next stands for when it follows token prev,
	// the way llama2.c's run.c decodes (a leading space after BOS is dropped,
	// <0xXX> byte tokens become that byte). An unknown id is an error.
	Piece(prev, next int) ([]byte, error)
	// Decode turns ids back into text (no BOS/EOS output).
	Decode(ids []int) (string, error)
	VocabSize() int
	BOS() int
	EOS() int
}
