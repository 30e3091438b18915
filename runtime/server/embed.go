package server

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
)

// embeddings answers /v1/embeddings: for each input, the mean of the model's
// final-normed hidden states over its tokens (BOS first), scaled to unit
// length so that a dot product is the cosine similarity.
func (s *Server) embeddings(w http.ResponseWriter, r *http.Request, st *state) *apiError {
	var req embeddingRequest
	if e := decode(w, r, s.cfg.MaxBody, &req); e != nil {
		return e
	}
	if e := s.checkModel(req.Model); e != nil {
		return e
	}
	if st.embed == nil {
		return &apiError{Status: http.StatusNotImplemented, Type: "invalid_request_error", Code: strp("unsupported"),
			Message: "this model cannot compute embeddings"}
	}
	if !req.Input.set || req.Input.count() == 0 {
		return badRequest("input", "missing_field", "input: required (a string, an array of strings, or token ids)")
	}
	if n := req.Input.count(); n > maxChoices {
		return badRequest("input", "invalid_value", "input: at most %d inputs per request, got %d", maxChoices, n)
	}
	switch req.EncodingFormat {
	case "", "float", "base64":
	default:
		return badRequest("encoding_format", "invalid_value", "encoding_format: %q is not float or base64", req.EncodingFormat)
	}
	dim := st.m.Spec().Dim
	if req.Dimensions != nil && *req.Dimensions != dim {
		return badRequest("dimensions", "unsupported_value", "dimensions: this model's embeddings have %d dimensions, got %d", dim, *req.Dimensions)
	}
	ctxLen, vocab := st.m.Spec().MaxSeq, st.tok.VocabSize()
	var inputs [][]int
	for i, text := range req.Input.texts {
		ids, err := st.tok.Encode(text, true, false)
		if err != nil {
			return badRequest("input", "invalid_value", "input %d: %v", i, err)
		}
		inputs = append(inputs, ids)
	}
	for i, ids := range req.Input.tokens {
		if e := checkTokens(fmt.Sprintf("input[%d]", i), ids, vocab); e != nil {
			return e
		}
		inputs = append(inputs, ids)
	}
	resp := embeddingResponse{Object: "list", Model: s.cfg.ModelName}
	for i, ids := range inputs {
		if len(ids) == 0 {
			return badRequest("input", "invalid_value", "input %d encodes to no tokens", i)
		}
		if len(ids) > ctxLen {
			return badRequest("input", "context_length_exceeded", "input %d is %d tokens, longer than the model's context of %d tokens", i, len(ids), ctxLen)
		}
	}
	if s.shuttingDown.Load() {
		return shuttingDownError()
	}
	for i, ids := range inputs {
		// Embeddings run beside the decode loop, at most one per slot.
		select {
		case s.embedSem <- struct{}{}:
		case <-r.Context().Done():
			return nil
		}
		vec, err := st.embed.Embed(ids)
		<-s.embedSem
		if err != nil {
			return badRequest("input", "invalid_value", "input %d: %v", i, err)
		}
		normalize(vec)
		d := embeddingData{Object: "embedding", Index: i, Embedding: vec}
		if req.EncodingFormat == "base64" {
			b := make([]byte, 4*len(vec))
			for k, v := range vec {
				binary.LittleEndian.PutUint32(b[4*k:], math.Float32bits(v))
			}
			d.Embedding = base64.StdEncoding.EncodeToString(b)
		}
		resp.Data = append(resp.Data, d)
		resp.Usage.PromptTokens += len(ids)
		s.metrics.embeddingTokens.Add(float64(len(ids)))
	}
	resp.Usage.TotalTokens = resp.Usage.PromptTokens
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func normalize(v []float32) {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	if ss == 0 || math.IsNaN(ss) || math.IsInf(ss, 0) {
		return
	}
	inv := 1 / math.Sqrt(ss)
	for i, x := range v {
		v[i] = float32(float64(x) * inv)
	}
}
