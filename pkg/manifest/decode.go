package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

// decoded is one object read from a file, with the line its document starts on.
type decoded struct {
	line int
	obj  *unstructured.Unstructured
}

// document is one YAML document of a multi-document stream.
type document struct {
	// first is the file line number of body's first line.
	first int
	// start is the file line of the first line with content (not blank, not a
	// comment, not a directive); 0 when the document has none.
	start int
	body  []byte
}

var utf8BOM = []byte("\xef\xbb\xbf")

// splitYAML cuts a YAML stream into documents at "---" and "..." lines,
// remembering where each starts so errors and objects can name their line.
// Splitting by hand, rather than letting the YAML parser walk the stream,
// keeps line numbers exact and lets one broken document be reported without
// the parser's view of the rest.
func splitYAML(data []byte) []document {
	data = bytes.TrimPrefix(data, utf8BOM)
	var docs []document
	cur := document{first: 1}
	bodyStart := 0
	var inline []byte // a "--- content" line, with the marker blanked
	flush := func(end int) {
		body := data[min(bodyStart, end):end]
		if inline != nil {
			body = append(inline, body...)
		}
		if cur.start > 0 {
			cur.body = body
			docs = append(docs, cur)
		}
	}
	lineNo := 1
	for off := 0; off <= len(data); lineNo++ {
		end := bytes.IndexByte(data[off:], '\n')
		next := len(data) + 1
		if end < 0 {
			end = len(data)
		} else {
			end += off
			next = end + 1
		}
		line := data[off:end]
		switch {
		case isMarker(line, "---"):
			flush(off)
			cur = document{first: lineNo + 1}
			bodyStart, inline = next, nil
			if rest := bytes.TrimSpace(line[3:]); len(rest) > 0 && rest[0] != '#' {
				// "--- {a: b}": the document starts on the marker line.
				cur.first, cur.start = lineNo, lineNo
				inline = make([]byte, 0, end-off+1)
				inline = append(inline, "   "...)
				inline = append(inline, line[3:]...)
				inline = append(inline, '\n')
			}
		case isMarker(line, "..."):
			flush(off)
			cur = document{first: lineNo + 1}
			bodyStart, inline = next, nil
		case cur.start == 0 && hasContent(line):
			cur.start = lineNo
		}
		off = next
	}
	flush(len(data))
	return docs
}

// isMarker tells whether line is a document marker: the three characters at
// column 0 followed by nothing or white space.
func isMarker(line []byte, marker string) bool {
	if !bytes.HasPrefix(line, []byte(marker)) {
		return false
	}
	if len(line) == 3 {
		return true
	}
	switch line[3] {
	case ' ', '\t', '\r':
		return true
	}
	return false
}

func hasContent(line []byte) bool {
	t := bytes.TrimSpace(line)
	return len(t) > 0 && t[0] != '#' && t[0] != '%'
}

// yamlLineRE finds the position go-yaml puts in its messages.
var yamlLineRE = regexp.MustCompile(`line (\d+): `)

// yamlError turns a go-yaml error for a document whose body starts on file
// line first into a message without the position plus the file line.
func yamlError(err error, first, fallback int) (int, error) {
	msg := err.Error()
	m := yamlLineRE.FindStringSubmatchIndex(msg)
	if m == nil {
		return fallback, err
	}
	n, convErr := strconv.Atoi(msg[m[2]:m[3]])
	if convErr != nil || n < 1 {
		return fallback, err
	}
	return first + n - 1, errors.New(msg[:m[0]] + msg[m[1]:])
}

// decodeYAML reads every object of a multi-document YAML file.
func decodeYAML(data []byte) ([]decoded, error) {
	var out []decoded
	for _, d := range splitYAML(data) {
		j, err := yaml.YAMLToJSON(d.body)
		if err != nil {
			line, err := yamlError(err, d.first, d.start)
			return nil, &lineError{line: line, err: err}
		}
		objs, err := objectsFromJSON(j)
		if err != nil {
			return nil, &lineError{line: d.start, err: err}
		}
		for _, o := range objs {
			out = append(out, decoded{line: d.start, obj: o})
		}
	}
	return out, nil
}

// decodeJSON reads a JSON file: one value, or several one after another.
func decodeJSON(data []byte) ([]decoded, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	dec := json.NewDecoder(bytes.NewReader(data))
	var out []decoded
	for {
		start := int(dec.InputOffset())
		for start < len(data) && isJSONSpace(data[start]) {
			start++
		}
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			off := start
			var se *json.SyntaxError
			if errors.As(err, &se) {
				off = int(se.Offset)
			}
			return nil, &lineError{line: lineAt(data, off), err: fmt.Errorf("json: %w", err)}
		}
		objs, err := objectsFromJSON(raw)
		if err != nil {
			return nil, &lineError{line: lineAt(data, start), err: err}
		}
		for _, o := range objs {
			out = append(out, decoded{line: lineAt(data, start), obj: o})
		}
	}
}

func isJSONSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// lineAt gives the 1-based line of byte offset off in data.
func lineAt(data []byte, off int) int {
	if off > len(data) {
		off = len(data)
	}
	if off < 0 {
		off = 0
	}
	return bytes.Count(data[:off], []byte{'\n'}) + 1
}

// lineError is a decoding error at a line of the file being decoded; the
// loader turns it into a *FileError naming the file.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }

// objectsFromJSON turns one JSON document into objects: none for null, the
// items of a v1 List, or the object itself.
func objectsFromJSON(j []byte) ([]*unstructured.Unstructured, error) {
	var v interface{}
	// utiljson keeps integers as int64, as the API machinery expects.
	if err := utiljson.Unmarshal(j, &v); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("document is %s, not an object", jsonKind(v))
	}
	u, err := checkObject(m)
	if err != nil {
		return nil, err
	}
	if u.GetAPIVersion() != "v1" || u.GetKind() != "List" {
		return []*unstructured.Unstructured{u}, nil
	}
	rawItems, found := m["items"]
	if !found || rawItems == nil {
		return nil, nil
	}
	items, ok := rawItems.([]interface{})
	if !ok {
		return nil, fmt.Errorf("list items are %s, not an array", jsonKind(rawItems))
	}
	out := make([]*unstructured.Unstructured, 0, len(items))
	for i, it := range items {
		im, ok := it.(map[string]interface{})
		if !ok {
			return nil, fmt.Errorf("list item %d is %s, not an object", i, jsonKind(it))
		}
		iu, err := checkObject(im)
		if err != nil {
			return nil, fmt.Errorf("list item %d: %w", i, err)
		}
		if iu.GetAPIVersion() == "v1" && iu.GetKind() == "List" {
			return nil, fmt.Errorf("list item %d: a List inside a List is not supported", i)
		}
		out = append(out, iu)
	}
	return out, nil
}

// checkObject insists on the two fields every Kubernetes object has; without
// them the apply step could not even name the object.
func checkObject(m map[string]interface{}) (*unstructured.Unstructured, error) {
	var missing []string
	for _, f := range []string{"apiVersion", "kind"} {
		v, found := m[f]
		if !found || v == nil || v == "" {
			missing = append(missing, f)
			continue
		}
		if _, ok := v.(string); !ok {
			return nil, fmt.Errorf("%s is %s, not a string", f, jsonKind(v))
		}
	}
	switch len(missing) {
	case 1:
		return nil, fmt.Errorf("object has no %s", missing[0])
	case 2:
		return nil, errors.New("object has no apiVersion and no kind")
	}
	return &unstructured.Unstructured{Object: m}, nil
}

func jsonKind(v interface{}) string {
	switch v.(type) {
	case map[string]interface{}:
		return "an object"
	case []interface{}:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	default:
		return "a number"
	}
}
