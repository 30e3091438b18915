package spec

import "fmt"

// FieldError is one problem with a spec: which field, what was expected, and
// where in the source it sits when that is known. It prints as one line,
// `model.yaml:4: layers: must be ≥ 1, got 0`.
type FieldError struct {
	Source string // file name or other label of the input; may be empty
	Line   int    // 1-based line in Source; 0 when unknown (a defaulted field)
	Path   string // field path such as "moe.top_k" or "targets[1]"; may be empty
	Msg    string // what was expected and what was found
}

func (e *FieldError) Error() string {
	s := ""
	if e.Source != "" {
		s = e.Source
		if e.Line > 0 {
			s += fmt.Sprintf(":%d", e.Line)
		}
		s += ": "
	} else if e.Line > 0 {
		s = fmt.Sprintf("line %d: ", e.Line)
	}
	if e.Path != "" {
		s += e.Path + ": "
	}
	return s + e.Msg
}

func fieldErr(path, format string, args ...any) *FieldError {
	return &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
}
