package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// The OpenAI wire format: requests are decoded strictly (unknown fields are
// errors) and fields that would change the result in ways this server does
// not implement are refused rather than ignored.

// apiError is an error with the HTTP status and OpenAI's error fields.
type apiError struct {
	Status  int     `json:"-"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
	// RetryAfter, when set, is sent as the Retry-After header (seconds).
	RetryAfter int `json:"-"`
}

func (e *apiError) Error() string { return e.Message }

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func badRequest(param, code, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: strp(param), Code: strp(code), Message: fmt.Sprintf(format, args...)}
}

// bodyTimeout bounds the reading of a request body (a variable for tests).
var bodyTimeout = time.Minute

// decode reads one JSON object of at most limit bytes from r into v. It
// rejects unknown fields, trailing data and bodies over the limit.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) *apiError {
	// A client that stops sending mid-body gets 408 instead of holding its
	// connection for ever. Only the body's reading is bounded (a server-wide
	// ReadTimeout would also cut off a long streamed response).
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(bodyTimeout))
	body := http.MaxBytesReader(w, r.Body, limit)
	data, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: strp("request_too_large"),
				Message: fmt.Sprintf("request body is larger than the limit of %d bytes", mbe.Limit)}
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			// The deadline stays: the server's drain of the unread body
			// then ends at once, and the connection closes after the answer.
			w.Header().Set("Connection", "close")
			return &apiError{Status: http.StatusRequestTimeout, Type: "invalid_request_error", Code: strp("request_timeout"),
				Message: fmt.Sprintf("the request body did not arrive within %v", bodyTimeout)}
		}
		return badRequest("", "", "reading the request body: %v", err)
	}
	rc.SetReadDeadline(time.Time{})
	return decodeBytes(data, v)
}

// decodeBytes is decode's parser (the part the fuzz test drives).
func decodeBytes(data []byte, v any) *apiError {
	if len(bytes.TrimSpace(data)) == 0 {
		return badRequest("", "invalid_json", "the request body is empty; expected a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("", "invalid_json", "malformed JSON: data after the request object at offset %d", dec.InputOffset())
	}
	return nil
}

func jsonError(err error) *apiError {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var fe *fieldError
	switch {
	case errors.As(err, &fe):
		return badRequest(fe.field, "invalid_type", "%s: %s", fe.field, fe.msg)
	case errors.As(err, &se):
		return badRequest("", "invalid_json", "malformed JSON at offset %d: %v", se.Offset, se)
	case errors.As(err, &te):
		field := strings.TrimPrefix(te.Field, "samplingFields.")
		if field == "" {
			return badRequest("", "invalid_json", "the request must be a JSON object, got %s", te.Value)
		}
		return badRequest(field, "invalid_type", "%s: expected %s, got %s (offset %d)", field, typeName(te.Type.String()), te.Value, te.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return badRequest("", "invalid_json", "malformed JSON: the body ends inside the request object")
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		f = strings.Trim(f, `"`)
		return badRequest(f, "unknown_field", "unknown field %q", f)
	}
	return badRequest("", "invalid_json", "malformed JSON: %s", strings.TrimPrefix(msg, "json: "))
}

func typeName(t string) string {
	switch {
	case strings.HasPrefix(t, "*"):
		return typeName(t[1:])
	case t == "float64":
		return "a number"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "an integer"
	case t == "bool":
		return "a boolean"
	case t == "string":
		return "a string"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	}
	return "an object"
}

// fieldError is a union field that holds none of its allowed shapes.
type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// promptField is OpenAI's prompt: a string, an array of strings, an array of
// token ids, or an array of arrays of token ids. Each element is one prompt.
type promptField struct {
	texts  []string
	tokens [][]int
	set    bool
}

func (p *promptField) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	p.set = true
	var s string
	if json.Unmarshal(b, &s) == nil {
		p.texts = []string{s}
		return nil
	}
	var ss []string
	if json.Unmarshal(b, &ss) == nil && len(ss) > 0 {
		p.texts = ss
		return nil
	}
	var ids []int
	if json.Unmarshal(b, &ids) == nil && len(ids) > 0 {
		p.tokens = [][]int{ids}
		return nil
	}
	var idss [][]int
	if json.Unmarshal(b, &idss) == nil && len(idss) > 0 {
		p.tokens = idss
		return nil
	}
	return &fieldError{"prompt", "expected a string, an array of strings, an array of token ids or an array of arrays of token ids"}
}

// count is the number of prompts.
func (p *promptField) count() int { return len(p.texts) + len(p.tokens) }

// stopField is a string or an array of strings.
type stopField []string

func (s *stopField) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = nil
		return nil
	}
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if json.Unmarshal(b, &many) == nil {
		*s = many
		return nil
	}
	return &fieldError{"stop", "expected a string or an array of strings"}
}

// contentField is a message's content: a string or an array of text parts.
type contentField string

func (c *contentField) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*c = ""
		return nil
	}
	var s string
	if json.Unmarshal(b, &s) == nil {
		*c = contentField(s)
		return nil
	}
	var parts []json.RawMessage
	if json.Unmarshal(b, &parts) != nil {
		return &fieldError{"messages.content", "expected a string or an array of content parts"}
	}
	var sb strings.Builder
	for i, raw := range parts {
		var part struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&part); err != nil {
			return &fieldError{"messages.content", fmt.Sprintf("part %d: expected {\"type\": \"text\", \"text\": …}", i)}
		}
		if part.Type != "text" {
			return &fieldError{"messages.content", fmt.Sprintf("part %d has type %q; this model reads text only", i, part.Type)}
		}
		sb.WriteString(part.Text)
	}
	*c = contentField(sb.String())
	return nil
}

// embeddingInput is a string, an array of strings, an array of token ids or
// an array of arrays of token ids.
type embeddingInput struct{ promptField }

// UnmarshalJSON names the field "input" in its errors.
func (p *embeddingInput) UnmarshalJSON(b []byte) error {
	err := p.promptField.UnmarshalJSON(b)
	if fe, ok := err.(*fieldError); ok {
		return &fieldError{"input", fe.msg}
	}
	return err
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
	// IncludeObfuscation is accepted and ignored: no padding is sent.
	IncludeObfuscation *bool `json:"include_obfuscation"`
}

// samplingFields are the request fields both generation endpoints share.
type samplingFields struct {
	Model            string            `json:"model"`
	MaxTokens        *int              `json:"max_tokens"`
	Temperature      *float64          `json:"temperature"`
	TopP             *float64          `json:"top_p"`
	TopK             *int              `json:"top_k"`
	Seed             *int64            `json:"seed"`
	N                *int              `json:"n"`
	Stop             stopField         `json:"stop"`
	Stream           bool              `json:"stream"`
	StreamOptions    *streamOptions    `json:"stream_options"`
	User             string            `json:"user"`
	PresencePenalty  *float64          `json:"presence_penalty"`
	FrequencyPenalty *float64          `json:"frequency_penalty"`
	LogitBias        map[string]any    `json:"logit_bias"`
	Metadata         map[string]string `json:"metadata"`
}

type completionRequest struct {
	samplingFields
	Prompt   promptField `json:"prompt"`
	Echo     bool        `json:"echo"`
	Logprobs *int        `json:"logprobs"`
	BestOf   *int        `json:"best_of"`
	Suffix   *string     `json:"suffix"`
}

type chatMessage struct {
	Role    string       `json:"role"`
	Content contentField `json:"content"`
	Name    string       `json:"name"`
	// Fields of a response's message that clients send back in the next
	// turn (openai-node's stream and parse helpers add refusal and parsed as
	// null, openai-python's model_dump() every field as null). Accepted when
	// empty, as this server neither calls tools nor refuses; a refusal text
	// stands for an assistant message's missing content.
	Refusal      *string         `json:"refusal"`
	Parsed       json.RawMessage `json:"parsed"`
	ToolCalls    json.RawMessage `json:"tool_calls"`
	FunctionCall json.RawMessage `json:"function_call"`
	Audio        json.RawMessage `json:"audio"`
	Annotations  json.RawMessage `json:"annotations"`
}

// emptyJSON reports whether raw is absent, null, [] or {}.
func emptyJSON(raw json.RawMessage) bool {
	switch string(bytes.Join(bytes.Fields(raw), nil)) {
	case "", "null", "[]", "{}":
		return true
	}
	return false
}

type chatRequest struct {
	samplingFields
	Messages            []chatMessage    `json:"messages"`
	MaxCompletionTokens *int             `json:"max_completion_tokens"`
	Logprobs            *bool            `json:"logprobs"`
	TopLogprobs         *int             `json:"top_logprobs"`
	ResponseFormat      *json.RawMessage `json:"response_format"`
	Store               *bool            `json:"store"`
	ParallelToolCalls   *bool            `json:"parallel_tool_calls"`
	RAG                 *ragField        `json:"rag"` // extension: see rag.go
}

type embeddingRequest struct {
	Model          string         `json:"model"`
	Input          embeddingInput `json:"input"`
	EncodingFormat string         `json:"encoding_format"`
	Dimensions     *int           `json:"dimensions"`
	User           string         `json:"user"`
}

type tokenizeRequest struct {
	Content    string `json:"content"`
	AddSpecial *bool  `json:"add_special"`
}

type detokenizeRequest struct {
	Tokens []int `json:"tokens"`
}

// Responses.

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type completionChoice struct {
	Text         string  `json:"text"`
	Index        int     `json:"index"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

type completionResponse struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint,omitempty"`
	Choices           []completionChoice `json:"choices"`
	Usage             *usage             `json:"usage,omitempty"`
}

type chatMessageOut struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content"`
}

// chatDelta omits an empty content (the final chunk's delta is {}).
type chatDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chatChoice struct {
	Index        int             `json:"index"`
	Message      *chatMessageOut `json:"message,omitempty"`
	Delta        *chatDelta      `json:"delta,omitempty"`
	Logprobs     any             `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type chatResponse struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint,omitempty"`
	Choices           []chatChoice `json:"choices"`
	Usage             *usage       `json:"usage,omitempty"`
	Sources           []ragSource  `json:"sources,omitempty"` // extension: retrieved chunks (rag.go)
}

type embeddingData struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"` // []float32, or a base64 string
}

type embeddingResponse struct {
	Object string          `json:"object"`
	Data   []embeddingData `json:"data"`
	Model  string          `json:"model"`
	Usage  struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// Extra facts about the model (non-OpenAI fields, ignored by clients).
	ContextLength int `json:"context_length,omitempty"`
	Vocab         int `json:"vocab_size,omitempty"`
}
