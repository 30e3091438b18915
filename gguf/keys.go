package gguf

// Well-known metadata keys, as llama.cpp writes and reads them.
const (
	KeyArchitecture = "general.architecture"
	KeyName         = "general.name"
	KeyFileType     = "general.file_type"

	// Keys of the llama architecture.
	KeyLlamaContextLength   = "llama.context_length"
	KeyLlamaEmbeddingLength = "llama.embedding_length"
	KeyLlamaBlockCount      = "llama.block_count"
	KeyLlamaFeedForward     = "llama.feed_forward_length"
	KeyLlamaHeadCount       = "llama.attention.head_count"
	KeyLlamaHeadCountKV     = "llama.attention.head_count_kv"
	KeyLlamaRMSEps          = "llama.attention.layer_norm_rms_epsilon"
	KeyLlamaRopeFreqBase    = "llama.rope.freq_base"
	KeyLlamaRopeDimCount    = "llama.rope.dimension_count"
	KeyLlamaVocabSize       = "llama.vocab_size"
	KeyLlamaExpertCount     = "llama.expert_count"
	KeyLlamaExpertUsedCount = "llama.expert_used_count"

	// Tokenizer keys.
	KeyTokenizerModel = "tokenizer.ggml.model"
	KeyTokenizerPre   = "tokenizer.ggml.pre"
	KeyTokens         = "tokenizer.ggml.tokens"
	KeyScores         = "tokenizer.ggml.scores"
	KeyTokenType      = "tokenizer.ggml.token_type"
	KeyMerges         = "tokenizer.ggml.merges"
	KeyBOS            = "tokenizer.ggml.bos_token_id"
	KeyEOS            = "tokenizer.ggml.eos_token_id"
	KeyUNK            = "tokenizer.ggml.unknown_token_id"
	KeyPAD            = "tokenizer.ggml.padding_token_id"
	KeyMask           = "tokenizer.ggml.mask_token_id"
	KeyAddBOS         = "tokenizer.ggml.add_bos_token"
	KeyAddEOS         = "tokenizer.ggml.add_eos_token"
	KeyChatTemplate   = "tokenizer.chat_template"
)

// File types (general.file_type, llama.cpp's llama_ftype) of the formats
// this project writes.
const (
	FileTypeAllF32    uint32 = 0
	FileTypeMostlyF16 uint32 = 1
	FileTypeQ4_0      uint32 = 2
	FileTypeQ8_0      uint32 = 7
)
