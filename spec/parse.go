package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxSpecBytes bounds what Load reads: a spec is a page of text, so anything
// larger is the wrong file (a checkpoint passed by mistake).
const maxSpecBytes = 1 << 20

// importHint follows the errors of a file that is no spec at all.
const importHint = " (a model file? modelc spec import writes the spec of one)"

// Load reads, defaults and validates the spec in the file at path (YAML or JSON).
func Load(path string) (*Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSpecBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxSpecBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes; not a spec%s", path, maxSpecBytes, importHint)
	}
	// YAML is text: a zero byte means a binary file, most likely a model.
	if bytes.IndexByte(data[:min(len(data), 4096)], 0) >= 0 {
		return nil, fmt.Errorf("%s: a binary file, not a YAML spec%s", path, importHint)
	}
	return Parse(data, path)
}

// Parse decodes a spec from YAML (or JSON, which YAML reads too), applies the
// defaults to every field the input leaves out, and validates the result.
// source names the input in error messages. Unknown fields, wrong types,
// duplicate fields and invalid values are errors of one line that name the
// source, the line when known and the field path.
func Parse(data []byte, source string) (*Spec, error) {
	root, err := parseNode(data, source)
	if err != nil {
		return nil, err
	}
	info := &nodeInfo{fields: map[string]fieldPos{}}
	if err := info.walk(root, reflect.TypeOf(Spec{}), ""); err != nil {
		return nil, locate(err, source, info)
	}

	// The walk above already checked structure and types; the decoder is the
	// one that fills the struct, strict about fields as a second guard.
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, yamlError(err, data, source)
	}
	s.applyDefaults(info.present)
	// Said as missing, not as "must be ≥ 1, got 0" of a value never written.
	for _, path := range []string{"name", "vocab", "dim", "layers", "heads", "ffn_dim", "max_seq"} {
		if !info.present(path) && (path != "ffn_dim" || !info.present("moe.ffn_dim")) {
			return nil, &FieldError{Source: source, Path: path, Msg: "required field missing"}
		}
	}
	if err := s.Validate(); err != nil {
		return nil, locate(err, source, info)
	}
	return &s, nil
}

// parseNode parses exactly one YAML document and returns its top node.
func parseNode(data []byte, source string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FieldError{Source: source, Msg: "empty spec"}
		}
		return nil, yamlError(err, data, source)
	}
	// Later documents are an error unless empty (a stray trailing "---").
	for {
		var more yaml.Node
		err := dec.Decode(&more)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, yamlError(err, data, source)
		}
		if len(more.Content) > 0 && !isNull(more.Content[0]) {
			return nil, &FieldError{Source: source, Line: more.Line, Msg: "more than one YAML document; a spec is one"}
		}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, &FieldError{Source: source, Msg: "empty spec"}
	}
	return doc.Content[0], nil
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns a yaml error into one line of `source:line: message`,
// with yaml's line number put right (yamlLine).
func yamlError(err error, data []byte, source string) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(strings.TrimSpace(msg), "yaml: ")
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &FieldError{Source: source, Line: yamlLine(data, line, m[2]), Msg: m[2]}
	}
	return &FieldError{Source: source, Msg: msg}
}

// yamlParserErrors are the messages of yaml's parser (not its scanner),
// whose line it reports counted from 0.
var yamlParserErrors = []string{"did not find expected <document start>", "did not find expected node content",
	"did not find expected key", "did not find expected '-' indicator", "did not find expected ',' or ']'",
	"did not find expected ',' or '}'", "found undefined tag handle", "found duplicate %YAML directive",
	"found incompatible YAML document", "found duplicate %TAG directive"}

// yamlLine corrects the line yaml reports for msg: its parser counts from 0
// (an error at the end of the input is put on the last line with text),
// and a tab in an indentation is reported at the line of the value before
// it (the first line at or after that one whose indentation holds a tab is
// the one to fix).
func yamlLine(data []byte, line int, msg string) int {
	for _, p := range yamlParserErrors {
		if strings.HasPrefix(msg, p) {
			// Found at the end of the input: the last line that has text.
			last := strings.Count(strings.TrimRight(string(data), " \t\r\n"), "\n") + 1
			return min(line+1, last)
		}
	}
	if strings.HasPrefix(msg, "found a tab character") {
		for i, l := range strings.Split(string(data), "\n") {
			if i+1 >= line && strings.Contains(l[:len(l)-len(strings.TrimLeft(l, " \t"))], "\t") {
				return i + 1
			}
		}
	}
	return line
}

// locate adds the source and, when the field appeared in the input, its line.
func locate(err error, source string, info *nodeInfo) error {
	var fe *FieldError
	if !errors.As(err, &fe) {
		return fmt.Errorf("%s: %w", source, err)
	}
	out := *fe
	out.Source = source
	// A defaulted field has no line of its own; point at the nearest
	// enclosing field that was written (moe.experts under `moe:`).
	for path := out.Path; out.Line == 0 && path != ""; path = parentPath(path) {
		if p, ok := info.fields[path]; ok {
			out.Line = p.line
		}
	}
	return &out
}

type fieldPos struct {
	line int
	null bool // written as null or left empty: treated as absent
}

// nodeInfo records, for every field path in the input, where it was written.
type nodeInfo struct {
	fields map[string]fieldPos
}

// present reports whether the input gave the field at path a value.
func (n *nodeInfo) present(path string) bool {
	p, ok := n.fields[path]
	return ok && !p.null
}

// parentPath drops the last element of a field path: "moe.top_k" -> "moe",
// "targets[1]" -> "targets", "dim" -> "".
func parentPath(path string) string {
	if i := strings.LastIndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return ""
}

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// walk checks node against the Go type t the way the decoder will read it,
// but with messages that name the field path: unknown and duplicate fields,
// mappings where scalars belong, values that do not fit the type (including
// fractions and overflow in integer fields, which yaml would truncate).
func (n *nodeInfo) walk(node *yaml.Node, t reflect.Type, path string) error {
	if node.Kind == yaml.AliasNode {
		if node.Alias == nil {
			return &FieldError{Line: node.Line, Path: path, Msg: "unresolved alias"}
		}
		node = node.Alias
	}
	if isNull(node) {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return n.walk(node, t.Elem(), path)
	case reflect.Struct:
		if node.Kind != yaml.MappingNode {
			return &FieldError{Line: node.Line, Path: path, Msg: "expected a mapping, got " + describe(node)}
		}
		fields := yamlFields(t)
		seen := map[string]int{}
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, v := node.Content[i], node.Content[i+1]
			if k.Kind == yaml.AliasNode && k.Alias != nil {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode {
				return &FieldError{Line: k.Line, Path: path, Msg: "expected a field name, got " + describe(k)}
			}
			name := k.Value
			f, ok := fields[name]
			if !ok {
				msg := fmt.Sprintf("unknown field %q", name)
				if s := suggest(name, fields); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				return &FieldError{Line: k.Line, Path: path, Msg: msg}
			}
			fp := joinPath(path, name)
			if first, dup := seen[name]; dup {
				return &FieldError{Line: k.Line, Path: fp, Msg: fmt.Sprintf("duplicate field (first at line %d)", first)}
			}
			seen[name] = k.Line
			vn := v
			if vn.Kind == yaml.AliasNode && vn.Alias != nil {
				vn = vn.Alias
			}
			n.fields[fp] = fieldPos{line: k.Line, null: isNull(vn)}
			if err := n.walk(v, f.Type, fp); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		if node.Kind != yaml.SequenceNode {
			return &FieldError{Line: node.Line, Path: path, Msg: "expected a list, got " + describe(node)}
		}
		for i, e := range node.Content {
			ep := fmt.Sprintf("%s[%d]", path, i)
			n.fields[ep] = fieldPos{line: e.Line}
			if err := n.walk(e, t.Elem(), ep); err != nil {
				return err
			}
		}
		return nil
	}
	if node.Kind != yaml.ScalarNode {
		return &FieldError{Line: node.Line, Path: path, Msg: "expected " + kindName(t) + ", got " + describe(node)}
	}
	return checkScalar(node, t, path)
}

// checkScalar decodes one scalar into a value of type t and reports what went wrong.
func checkScalar(node *yaml.Node, t reflect.Type, path string) error {
	bad := &FieldError{Line: node.Line, Path: path, Msg: "expected " + kindName(t) + ", got " + describe(node)}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		// yaml turns 1.5 into 1 without a word; insist on integers.
		if node.ShortTag() == "!!float" {
			return bad
		}
	}
	v := reflect.New(t)
	if err := node.Decode(v.Interface()); err != nil {
		return bad
	}
	return nil
}

func isNull(node *yaml.Node) bool {
	return node.Kind == yaml.ScalarNode && node.ShortTag() == "!!null"
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Pointer:
		return "a mapping"
	}
	return t.String()
}

func describe(node *yaml.Node) string {
	switch node.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := node.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return strconv.Quote(v)
	}
	return "something else"
}

// yamlFields maps the yaml names of a struct's fields to the fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	m := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f
	}
	return m
}

// suggest returns the known field closest to name when it is a likely typo.
func suggest(name string, fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	best, bestD := "", math.MaxInt
	for _, k := range names {
		if d := editDistance(strings.ToLower(name), k); d < bestD {
			best, bestD = k, d
		}
	}
	// Allow one edit in short names, more in long ones: "foo" is not "moe".
	if bestD <= max(1, len(name)/3) {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// YAML encodes the spec with every field written out, in the struct's field
// order and without comments. Parse reads it back to an equal Spec.
func (s *Spec) YAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("spec %s: encode yaml: %w", s.Name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("spec %s: encode yaml: %w", s.Name, err)
	}
	return buf.Bytes(), nil
}
