package update

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// bom is the UTF-8 byte order mark. yaml.v3 skips it at the start of a
// stream without counting it as a column; the splicer keeps its bytes.
var bom = []byte("\ufeff")

// parseDocs parses every document of data into nodes, in the order yaml.v3's
// Decoder yields them. That order defines the document index used by Find,
// SetScalar and Locator: an explicitly empty document ("---" followed by
// nothing or only comments) counts, and holds a null scalar; a file of only
// comments has no documents.
//
// Only UTF-8 is accepted: yaml.v3 also reads UTF-16, but its positions would
// then not be byte positions of data.
func parseDocs(data []byte) (docs []*yaml.Node, err error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not UTF-8 text")
	}
	// yaml.v3 reports errors by panicking and recovering internally; any
	// other panic would be a parser bug, which must not take the caller down.
	defer func() {
		if r := recover(); r != nil {
			docs, err = nil, fmt.Errorf("yaml parser failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		n := new(yaml.Node)
		err := dec.Decode(n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, n)
	}
}

// docRoot returns the content of a document node, or nil for an empty one.
func docRoot(doc *yaml.Node) *yaml.Node {
	if doc == nil {
		return nil
	}
	if doc.Kind != yaml.DocumentNode {
		return doc
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

// nodeAt walks path (mapping keys, and "[i]" for sequence items) from the
// root of doc and returns the scalar node there. It refuses what the splicer
// cannot change safely: aliases, and anchored nodes on the way or at the end
// (an edit would also change every alias of the anchor), duplicate keys (which
// one wins depends on the reader), and a path that ends on a collection.
func nodeAt(doc *yaml.Node, path []string) (*yaml.Node, error) {
	n, err := walk(doc, path)
	if err != nil {
		return nil, err
	}
	if n.Kind != yaml.ScalarNode {
		return nil, fmt.Errorf("%s: not a scalar", pathString(path))
	}
	return n, nil
}

// walk follows path (mapping keys and sequence indexes) from the root of
// doc, refusing aliases, anchors and duplicate keys on the way and at the
// end; nodeAt and mappingAt check what it ends on.
func walk(doc *yaml.Node, path []string) (*yaml.Node, error) {
	n := docRoot(doc)
	if n == nil {
		return nil, errors.New("document is empty")
	}
	for i, p := range path {
		if err := editable(n, path[:i]); err != nil {
			return nil, err
		}
		switch n.Kind {
		case yaml.MappingNode:
			v, err := mapValue(n, p)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", pathString(path[:i+1]), err)
			}
			n = v
		case yaml.SequenceNode:
			idx, ok := parseIndex(p)
			if !ok || idx >= len(n.Content) {
				return nil, fmt.Errorf("%s: no such sequence item", pathString(path[:i+1]))
			}
			n = n.Content[idx]
		default:
			return nil, fmt.Errorf("%s: not a mapping or sequence", pathString(path[:i]))
		}
	}
	if err := editable(n, path); err != nil {
		return nil, err
	}
	return n, nil
}

func editable(n *yaml.Node, at []string) error {
	if n.Kind == yaml.AliasNode {
		return fmt.Errorf("%s: is an alias; edit the anchor instead", pathString(at))
	}
	if n.Anchor != "" {
		return fmt.Errorf("%s: is anchored (&%s); an edit would also change its aliases", pathString(at), n.Anchor)
	}
	return nil
}

// mapValue returns the value of key in the mapping m.
func mapValue(m *yaml.Node, key string) (*yaml.Node, error) {
	var found *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if k.Kind != yaml.ScalarNode || k.Value != key {
			continue
		}
		if found != nil {
			return nil, errors.New("duplicate key")
		}
		found = m.Content[i+1]
	}
	if found == nil {
		return nil, errors.New("no such key")
	}
	return found, nil
}

func parseIndex(p string) (int, bool) {
	if len(p) < 3 || p[0] != '[' || p[len(p)-1] != ']' {
		return 0, false
	}
	digits := p[1 : len(p)-1]
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil
}

func index(i int) string { return "[" + strconv.Itoa(i) + "]" }

// pathString renders a node path for messages: "spec.values.image.tag",
// "spec.containers[0].image".
func pathString(path []string) string {
	if len(path) == 0 {
		return "(document root)"
	}
	var b strings.Builder
	for i, p := range path {
		if _, ok := parseIndex(p); ok {
			b.WriteString(p)
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// lineStarts returns the byte offset at which each line of data starts,
// breaking lines exactly where yaml.v3 counts a line: at "\r\n", a lone
// "\r", "\n", and NEL, LS and PS (U+0085, U+2028, U+2029). The "\r" of a
// CRLF stays part of its line, so lines and their endings are kept as they
// are. A leading byte order mark is not part of line 1: yaml.v3 does not
// count it as a column.
func lineStarts(data []byte) []int {
	starts := []int{0}
	if bytes.HasPrefix(data, bom) {
		starts[0] = len(bom)
	}
	for i := starts[0]; i < len(data); {
		n := breakLen(data, i)
		if n == 0 {
			i++
			continue
		}
		i += n
		starts = append(starts, i)
	}
	return starts
}

// breakLen returns the length of the line break at data[i], or 0.
func breakLen(data []byte, i int) int {
	switch c := data[i]; {
	case c == '\r':
		if i+1 < len(data) && data[i+1] == '\n' {
			return 2
		}
		return 1
	case c == '\n':
		return 1
	case c == 0xC2 && i+1 < len(data) && data[i+1] == 0x85:
		return 2
	case c == 0xE2 && i+2 < len(data) && data[i+1] == 0x80 && (data[i+2] == 0xA8 || data[i+2] == 0xA9):
		return 3
	}
	return 0
}

// offset converts yaml.v3's 1-based line and column (which counts
// characters, not bytes) into a byte offset in data.
func offset(data []byte, starts []int, line, column int) (int, error) {
	if line < 1 || line > len(starts) || column < 1 {
		return 0, fmt.Errorf("position %d:%d is outside the file", line, column)
	}
	off := starts[line-1]
	for c := 1; c < column; c++ {
		if off >= len(data) || breakLen(data, off) > 0 {
			return 0, fmt.Errorf("position %d:%d is past the end of its line", line, column)
		}
		_, size := utf8.DecodeRune(data[off:])
		off += size
	}
	return off, nil
}

// scalarSpan returns the bytes [start, end) of data that hold the scalar n:
// the plain text, or the quoted text including its quotes. It refuses the
// scalars it cannot replace in place, and checks that the bytes it found
// really read as n's value, so a position yaml.v3 reported differently from
// what the splicer expects gives an error, never a wrong edit.
func scalarSpan(data []byte, starts []int, n *yaml.Node) (int, int, error) {
	switch {
	case n.Style&yaml.TaggedStyle != 0:
		return 0, 0, errors.New("scalar has an explicit tag (!!str, !foo); not editable in place")
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return 0, 0, errors.New("block scalar (| or >); not editable in place")
	}
	start, err := offset(data, starts, n.Line, n.Column)
	if err != nil {
		return 0, 0, err
	}
	switch {
	case n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0:
		end, err := quotedEnd(data, start)
		if err != nil {
			return 0, 0, err
		}
		if v, ok := readScalar(data[start:end]); !ok || v != n.Value {
			return 0, 0, errors.New("quoted scalar is not where the parser reported it")
		}
		return start, end, nil
	default:
		if n.Value == "" {
			return 0, 0, errors.New("empty value has no text to replace; write a quoted value first")
		}
		end := start + len(n.Value)
		if end > len(data) || string(data[start:end]) != n.Value || hasBreak(n.Value) {
			return 0, 0, errors.New("plain scalar spans several lines or is not where the parser reported it")
		}
		return start, end, nil
	}
}

// quotedEnd returns the offset just after the closing quote of the quoted
// scalar that starts at data[start]. A line break before it means a
// multi-line scalar, which is refused.
func quotedEnd(data []byte, start int) (int, error) {
	if start >= len(data) || (data[start] != '\'' && data[start] != '"') {
		return 0, errors.New("quoted scalar is not where the parser reported it")
	}
	q := data[start]
	for i := start + 1; i < len(data); {
		if breakLen(data, i) > 0 {
			return 0, errors.New("quoted scalar spans several lines; not editable in place")
		}
		switch c := data[i]; {
		case q == '"' && c == '\\':
			i++
			if i >= len(data) || breakLen(data, i) > 0 {
				return 0, errors.New("quoted scalar spans several lines; not editable in place")
			}
			_, size := utf8.DecodeRune(data[i:])
			i += size
		case q == '\'' && c == '\'' && i+1 < len(data) && data[i+1] == '\'':
			i += 2
		case c == q:
			return i + 1, nil
		default:
			i++
		}
	}
	return 0, errors.New("quoted scalar is not terminated")
}

// readScalar parses text as a lone YAML scalar.
func readScalar(text []byte) (string, bool) {
	docs, err := parseDocs(text)
	if err != nil || len(docs) != 1 {
		return "", false
	}
	n := docRoot(docs[0])
	if n == nil || n.Kind != yaml.ScalarNode {
		return "", false
	}
	return n.Value, true
}

func hasBreak(s string) bool {
	return strings.ContainsAny(s, "\r\n\u0085\u2028\u2029")
}

// SetScalar replaces the value of the scalar at path (mapping keys, and
// "[i]" for sequence items) in document doc (0-based, as yaml.v3's Decoder
// yields documents; an explicitly empty document counts) of data, and
// leaves every other byte as it was. It is the one place that writes YAML:
// Apply uses it, and it is exported so it can be fuzzed and reused.
//
// The scalar keeps its style where that style can hold the new value on one
// line: a single-quoted value doubles its quotes, a double-quoted one escapes
// '"', '\' and control characters. A plain scalar stays plain only while the
// new value reads back as that same string in plain style under both YAML
// 1.2 (yaml.v3) and YAML 1.1 (what sigs.k8s.io/yaml, and so Helm and
// kubectl, use); otherwise it becomes double-quoted. So "1.9" written plain
// becomes "1.10" quoted, not the float 1.1.
//
// Block scalars, multi-line flow scalars, explicitly tagged scalars, aliases
// and anchored nodes (or nodes inside an anchored collection) are refused
// with an error, as is a path that does not exist or does not end on a
// scalar. The result is parsed again before it is returned: if the new
// document would not hold value at path, SetScalar returns an error instead.
func SetScalar(data []byte, doc int, path []string, value string) ([]byte, error) {
	if !utf8.ValidString(value) {
		return nil, errors.New("value is not valid UTF-8")
	}
	docs, err := parseDocs(data)
	if err != nil {
		return nil, err
	}
	if doc < 0 || doc >= len(docs) {
		return nil, fmt.Errorf("document %d: the file has %d", doc, len(docs))
	}
	n, err := nodeAt(docs[doc], path)
	if err != nil {
		return nil, err
	}
	start, end, err := scalarSpan(data, lineStarts(data), n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pathString(path), err)
	}
	for _, text := range encodings(n.Style, value) {
		out := make([]byte, 0, len(data)-(end-start)+len(text))
		out = append(out, data[:start]...)
		out = append(out, text...)
		out = append(out, data[end:]...)
		if readsBack(out, len(docs), doc, path, value) {
			return out, nil
		}
	}
	return nil, fmt.Errorf("%s: the new value cannot be written in place without changing the document", pathString(path))
}

// readsBack reports whether out still has ndocs documents and holds value at
// path in document doc.
func readsBack(out []byte, ndocs, doc int, path []string, value string) bool {
	docs, err := parseDocs(out)
	if err != nil || len(docs) != ndocs {
		return false
	}
	n, err := nodeAt(docs[doc], path)
	return err == nil && n.Value == value && n.Tag == "!!str"
}

// encodings returns the texts to try for value, best first: the old style
// when it can hold value, then double quotes, which can hold anything.
func encodings(old yaml.Style, value string) []string {
	dq := doubleQuoted(value)
	switch {
	case old&yaml.DoubleQuotedStyle != 0:
		return []string{dq}
	case old&yaml.SingleQuotedStyle != 0:
		if singleQuotable(value) {
			return []string{"'" + strings.ReplaceAll(value, "'", "''") + "'", dq}
		}
		return []string{dq}
	default:
		if plainSafe(value) {
			return []string{value, dq}
		}
		return []string{dq}
	}
}

func doubleQuoted(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == 0x85:
			b.WriteString(`\N`)
		case r == 0x2028:
			b.WriteString(`\L`)
		case r == 0x2029:
			b.WriteString(`\P`)
		case r < 0x20 || (r >= 0x7f && r <= 0x9f):
			fmt.Fprintf(&b, `\x%02X`, r)
		case !printable(r):
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// printable reports whether r may appear as itself in a one-line quoted
// scalar (YAML's c-printable less the line breaks and the BOM).
func printable(r rune) bool {
	switch {
	case r == '\t', r >= 0x20 && r <= 0x7e:
		return true
	case r == 0x2028, r == 0x2029, r == 0xfeff:
		return false
	case r >= 0xa0 && r <= 0xd7ff, r >= 0xe000 && r <= 0xfffd, r >= 0x10000 && r <= 0x10ffff:
		return true
	}
	return false
}

func singleQuotable(s string) bool {
	for _, r := range s {
		if !printable(r) {
			return false
		}
	}
	return true
}

var (
	// plainChars is a deliberately small alphabet: image names and tags, and
	// nothing that is a YAML indicator in any position.
	plainChars = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_./+@:-]*$`)
	// yaml11Number matches what a YAML 1.1 reader (yaml.v2, sigs.k8s.io/yaml)
	// takes for an int or a float, underscores and sexagesimals included.
	yaml11Number = regexp.MustCompile(`^[-+]?(0b[01_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*(:[0-5]?[0-9])*(\.[0-9_]*)?([eE][-+]?[0-9]+)?|\.[0-9_]+([eE][-+]?[0-9]+)?)$`)
	yaml11Words  = map[string]bool{
		"y": true, "yes": true, "n": true, "no": true, "on": true, "off": true,
		"true": true, "false": true, "null": true, "~": true,
	}
)

// plainSafe reports whether value, written as a plain scalar, reads back as
// the string value under YAML 1.2 and YAML 1.1 alike, in block and flow
// context.
func plainSafe(value string) bool {
	if !plainChars.MatchString(value) || strings.HasSuffix(value, ":") {
		return false
	}
	if yaml11Words[strings.ToLower(value)] || yaml11Number.MatchString(value) {
		return false
	}
	docs, err := parseDocs([]byte(value))
	if err != nil || len(docs) != 1 {
		return false
	}
	n := docRoot(docs[0])
	return n != nil && n.Kind == yaml.ScalarNode && n.Tag == "!!str" && n.Value == value
}
