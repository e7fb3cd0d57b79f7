package update

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// This file adds and removes whole mapping entries, for policy annotations.
// SetScalar rewrites a scalar that is already written; an annotation that is
// added or removed needs a line (block style) or a "key: value" (flow style)
// of its own, and yaml.v3 reports where nodes start but not where they end.
// So the end of an entry is found from the text: in block style an entry
// runs over the lines indented deeper than its key, in flow style to the
// end of its value (the scalar's span, or the matching bracket). As with
// SetScalar, the result is parsed again and compared with what was meant
// (checkPolicyEdit), so a text this reading gets wrong gives an error, never
// a wrong edit.

// splice returns data with [start, end) replaced by text, in a new slice.
func splice(data []byte, start, end int, text string) []byte {
	out := make([]byte, 0, len(data)-(end-start)+len(text))
	out = append(out, data[:start]...)
	out = append(out, text...)
	return append(out, data[end:]...)
}

// lineBounds returns where line (1-based) starts, where its text ends (at
// its line break) and where the next line starts.
func lineBounds(data []byte, starts []int, line int) (start, textEnd, next int) {
	start, next = starts[line-1], len(data)
	if line < len(starts) {
		next = starts[line]
	}
	textEnd = start
	for textEnd < next && breakLen(data, textEnd) == 0 {
		textEnd++
	}
	return start, textEnd, next
}

// lineBreakOf returns the line break that ends line, or else the first one
// of data, or "\n": new lines are written with the file's own line endings.
func lineBreakOf(data []byte, starts []int, line int) string {
	if line >= 1 && line <= len(starts) {
		if _, e, next := lineBounds(data, starts, line); next > e {
			return string(data[e:next])
		}
	}
	for i := range data {
		if n := breakLen(data, i); n > 0 {
			return string(data[i : i+n])
		}
	}
	return "\n"
}

// blockEntryEnd returns the offset just past the last line of the block
// mapping entry whose key is key: the key's line and the lines after it that
// are indented deeper than the key (blank lines between them included, a
// trailing run of blank lines not), and for a block sequence value also the
// "- " lines at the key's own indentation.
func blockEntryEnd(data []byte, starts []int, key, value *yaml.Node) int {
	indent := key.Column - 1
	seq := value.Kind == yaml.SequenceNode && value.Style&yaml.FlowStyle == 0
	last := key.Line
	for l := key.Line + 1; l <= len(starts); l++ {
		s, e, _ := lineBounds(data, starts, l)
		text := string(data[s:e])
		t := strings.TrimLeft(text, " ")
		if strings.TrimSpace(t) == "" {
			continue
		}
		if ind := len(text) - len(t); ind > indent || (seq && ind == indent && t[0] == '-') {
			last = l
			continue
		}
		break
	}
	_, _, next := lineBounds(data, starts, last)
	return next
}

// keyStartsLine checks that only spaces come before key on its line, so
// its entry is whole lines.
func keyStartsLine(data []byte, starts []int, key *yaml.Node) (int, error) {
	ks, err := offset(data, starts, key.Line, key.Column)
	if err != nil {
		return 0, err
	}
	ls := starts[key.Line-1]
	if strings.Trim(string(data[ls:ks]), " ") != "" {
		return 0, fmt.Errorf("key %q does not start its line; not editable in place", key.Value)
	}
	return ls, nil
}

// valueEnd returns the offset just past the value n of a flow collection
// entry: the end of a one-line scalar, or the matching closing bracket of a
// flow collection.
func valueEnd(data []byte, starts []int, n *yaml.Node) (int, error) {
	switch {
	case n.Kind == yaml.ScalarNode:
		_, end, err := scalarSpan(data, starts, n)
		return end, err
	case (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) && n.Style&yaml.FlowStyle != 0 && n.Anchor == "":
		s, err := offset(data, starts, n.Line, n.Column)
		if err != nil {
			return 0, err
		}
		return flowEnd(data, s)
	}
	return 0, errors.New("value next to the edit is an alias, anchored or not one line; not editable in place")
}

// flowEnd returns the offset just past the flow collection that opens at
// data[start], skipping quoted scalars and comments.
func flowEnd(data []byte, start int) (int, error) {
	if start >= len(data) || (data[start] != '{' && data[start] != '[') {
		return 0, errors.New("flow collection is not where the parser reported it")
	}
	depth := 0
	for i := start; i < len(data); i++ {
		switch c := data[i]; c {
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1, nil
			}
		case '"', '\'':
			if !tokenStart(data, i) {
				continue // inside a plain scalar, as in it's
			}
			end, ok := quotedEndAnyLine(data, i)
			if !ok {
				return 0, errors.New("quoted scalar is not terminated")
			}
			i = end - 1
		case '#':
			if i > 0 && !isSpaceOrBreak(data[i-1]) {
				continue
			}
			for i < len(data) && breakLen(data, i) == 0 {
				i++
			}
		}
	}
	return 0, errors.New("flow collection is not closed")
}

// tokenStart reports whether data[i] starts a token in a flow collection:
// it follows whitespace or a flow indicator.
func tokenStart(data []byte, i int) bool {
	return i == 0 || isSpaceOrBreak(data[i-1]) || strings.IndexByte("{[,:", data[i-1]) >= 0
}

func isSpaceOrBreak(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// quotedEndAnyLine returns the offset just past the quoted scalar opening at
// data[start], which may span lines.
func quotedEndAnyLine(data []byte, start int) (int, bool) {
	q := data[start]
	for i := start + 1; i < len(data); i++ {
		switch {
		case q == '"' && data[i] == '\\':
			i++
		case q == '\'' && data[i] == '\'' && i+1 < len(data) && data[i+1] == '\'':
			i++
		case data[i] == q:
			return i + 1, true
		}
	}
	return 0, false
}

// skipBlanks returns the first offset at or after i that is not a space or
// tab (nor a line break, when breaks is set).
func skipBlanks(data []byte, i int, breaks bool) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || (breaks && breakLen(data, i) > 0)) {
		i++
	}
	return i
}

// entrySpan returns the bytes of entry i of mapping m: in block style its
// lines, in flow style "key: value" with the comma that follows it (or, for
// the last entry, the comma that precedes it).
func entrySpan(data []byte, starts []int, m *yaml.Node, i int) (int, int, error) {
	key, value := m.Content[2*i], m.Content[2*i+1]
	if m.Style&yaml.FlowStyle == 0 {
		ls, err := keyStartsLine(data, starts, key)
		if err != nil {
			return 0, 0, err
		}
		return ls, blockEntryEnd(data, starts, key, value), nil
	}
	ks, err := offset(data, starts, key.Line, key.Column)
	if err != nil {
		return 0, 0, err
	}
	ve, err := valueEnd(data, starts, value)
	if err != nil {
		return 0, 0, err
	}
	j := skipBlanks(data, ve, true)
	switch {
	case j < len(data) && data[j] == ',':
		end := skipBlanks(data, j+1, false)
		switch {
		case end < len(data) && data[end] == '#' && (ks == 0 || !isSpaceOrBreak(data[ks-1])):
			end = j + 1 // a comment needs a space before it: keep one
		case end < len(data) && breakLen(data, end) > 0:
			end = j + 1 // keep the line break
		}
		return ks, end, nil
	case j < len(data) && data[j] == '}' && i > 0:
		pe, err := valueEnd(data, starts, m.Content[2*i-1])
		if err != nil {
			return 0, 0, err
		}
		return pe, ve, nil
	}
	return 0, 0, fmt.Errorf("cannot find the end of entry %q; not editable in place", key.Value)
}

// removeEntry removes the entry key from the mapping at mapPath in document
// doc of data. The mapping must keep at least one entry.
func removeEntry(memo *parseMemo, data []byte, doc int, mapPath []string, key string) ([]byte, error) {
	docs, err := memo.parse(data)
	if err != nil {
		return nil, err
	}
	if doc >= len(docs) {
		return nil, errors.New("document is gone")
	}
	m, err := mappingAt(docs[doc], mapPath)
	if err != nil {
		return nil, err
	}
	at := -1
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			at = i / 2
		}
	}
	switch {
	case at < 0:
		return nil, fmt.Errorf("%s: no key %q", pathString(mapPath), key)
	case len(m.Content) == 2:
		return nil, fmt.Errorf("%s: %q is its only key", pathString(mapPath), key)
	}
	start, end, err := entrySpan(data, lineStarts(data), m, at)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pathString(mapPath), err)
	}
	return splice(data, start, end, ""), nil
}

// formatEntry renders one annotation: the key plain where that is safe, the
// value always double-quoted, so "true" stays a string for every reader.
func formatEntry(key, value string) string {
	k := key
	if !plainSafe(key) {
		k = doubleQuoted(key)
	}
	return k + ": " + doubleQuoted(value)
}

// insertAnnotations adds entries to the annotations of the object at pos,
// after the last annotation, creating metadata.annotations (after the last
// metadata entry, in the style of metadata) when there is none. Entries are
// written in key order.
func insertAnnotations(memo *parseMemo, data []byte, pos objectPos, entries map[string]string) ([]byte, error) {
	if len(entries) == 0 {
		return data, nil
	}
	docs, err := memo.parse(data)
	if err != nil {
		return nil, err
	}
	if pos.doc >= len(docs) {
		return nil, errors.New("document is gone")
	}
	metaPath := appendPath(pos.path, "metadata")
	meta, err := mappingAt(docs[pos.doc], metaPath)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(entries)) {
		lines = append(lines, formatEntry(k, entries[k]))
	}
	starts := lineStarts(data)
	step := stepOf(docs[pos.doc], pos.path, meta)
	target, text := meta, func(indent int, eol string) string {
		var b strings.Builder
		b.WriteString(strings.Repeat(" ", indent) + "annotations:" + eol)
		for _, l := range lines {
			b.WriteString(strings.Repeat(" ", indent+step) + l + eol)
		}
		return b.String()
	}
	flowText := "annotations: {" + strings.Join(lines, ", ") + "}"
	if hasKey(meta, "annotations") {
		if target, err = mappingAt(docs[pos.doc], appendPath(metaPath, "annotations")); err != nil {
			return nil, err
		}
		text = func(indent int, eol string) string {
			var b strings.Builder
			for _, l := range lines {
				b.WriteString(strings.Repeat(" ", indent) + l + eol)
			}
			return b.String()
		}
		flowText = strings.Join(lines, ", ")
	}
	if target.Style&yaml.FlowStyle != 0 {
		return flowInsert(data, starts, target, flowText)
	}
	return blockInsert(data, starts, target, text)
}

// stepOf returns how much deeper metadata's entries are indented than the
// metadata key, the indentation step the new annotations follow (2 when it
// cannot be told).
func stepOf(doc *yaml.Node, objPath []string, meta *yaml.Node) int {
	obj, err := mappingAt(doc, objPath)
	if err != nil || len(meta.Content) == 0 {
		return 2
	}
	for i := 0; i+1 < len(obj.Content); i += 2 {
		if obj.Content[i+1] == meta {
			if step := meta.Content[0].Column - obj.Content[i].Column; step > 0 {
				return step
			}
		}
	}
	return 2
}

// blockInsert inserts text, built for the indentation of m's keys and the
// file's line break, after the last entry of the block mapping m.
func blockInsert(data []byte, starts []int, m *yaml.Node, text func(indent int, eol string) string) ([]byte, error) {
	if len(m.Content) < 2 {
		return nil, errors.New("empty block mapping")
	}
	first, lastKey, lastValue := m.Content[0], m.Content[len(m.Content)-2], m.Content[len(m.Content)-1]
	if _, err := keyStartsLine(data, starts, lastKey); err != nil {
		return nil, err
	}
	at := blockEntryEnd(data, starts, lastKey, lastValue)
	eol := lineBreakOf(data, starts, lastKey.Line)
	t := text(first.Column-1, eol)
	if at == len(data) && at > 0 && starts[len(starts)-1] != len(data) {
		t = eol + t // the file's last line has no line break
	}
	return splice(data, at, at, t), nil
}

// flowInsert inserts "key: value" text as the last entry of the flow
// mapping m.
func flowInsert(data []byte, starts []int, m *yaml.Node, text string) ([]byte, error) {
	if len(m.Content) == 0 {
		open, err := offset(data, starts, m.Line, m.Column)
		if err != nil {
			return nil, err
		}
		if open >= len(data) || data[open] != '{' {
			return nil, errors.New("flow mapping is not where the parser reported it")
		}
		return splice(data, open+1, open+1, text), nil
	}
	end, err := valueEnd(data, starts, m.Content[len(m.Content)-1])
	if err != nil {
		return nil, err
	}
	return splice(data, end, end, ", "+text), nil
}

// checkPolicyEdit parses before and after and checks that they read the
// same except for the annotations of the object at pos, which must be
// exactly want: the keys edits wrote as strings with their new values, the
// others as they were. With want empty the annotations key must be gone.
func checkPolicyEdit(memo *parseMemo, before, after []byte, pos objectPos, want map[string]string, edits annotationEdits) error {
	errChanged := errors.New("the edit would change more than the annotations; not editable in place")
	bd, err := memo.parse(before)
	if err != nil {
		return err
	}
	ad, err := memo.parse(after)
	if err != nil {
		return fmt.Errorf("the edit does not parse (%w); not editable in place", err)
	}
	if len(ad) != len(bd) || pos.doc >= len(bd) {
		return errChanged
	}
	target, err := mappingAt(bd[pos.doc], pos.path)
	if err != nil {
		return err
	}
	wrote := func(k string) bool {
		_, set := edits.set[k]
		_, ins := edits.insert[k]
		return set || ins
	}
	sameAnnotations := func(a, b *yaml.Node) bool {
		if len(want) == 0 {
			return b == nil
		}
		if b == nil || b.Kind != yaml.MappingNode || len(b.Content) != 2*len(want) {
			return false
		}
		old := map[string]*yaml.Node{}
		if a != nil {
			for i := 0; i+1 < len(a.Content); i += 2 {
				old[a.Content[i].Value] = a.Content[i+1]
			}
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(b.Content); i += 2 {
			k, v := b.Content[i], b.Content[i+1]
			w, ok := want[k.Value]
			if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" || !ok || seen[k.Value] {
				return false
			}
			seen[k.Value] = true
			if wrote(k.Value) {
				if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" || v.Value != w {
					return false
				}
			} else if !sameNode(old[k.Value], v, nil, nil) {
				return false
			}
		}
		return true
	}
	sameMeta := func(a, b *yaml.Node) bool {
		if a.Kind != yaml.MappingNode || b.Kind != yaml.MappingNode || a.ShortTag() != b.ShortTag() {
			return false
		}
		ae, aAnn := withoutKey(a, "annotations")
		be, bAnn := withoutKey(b, "annotations")
		if len(ae) != len(be) {
			return false
		}
		for i := range ae {
			if !sameNode(ae[i], be[i], nil, nil) {
				return false
			}
		}
		return sameAnnotations(aAnn, bAnn)
	}
	sameObject := func(a, b *yaml.Node) bool {
		if b.Kind != yaml.MappingNode || len(a.Content) != len(b.Content) || a.ShortTag() != b.ShortTag() {
			return false
		}
		for i := 0; i+1 < len(a.Content); i += 2 {
			if !sameNode(a.Content[i], b.Content[i], nil, nil) {
				return false
			}
			if a.Content[i].Value == "metadata" {
				if !sameMeta(a.Content[i+1], b.Content[i+1]) {
					return false
				}
			} else if !sameNode(a.Content[i+1], b.Content[i+1], nil, nil) {
				return false
			}
		}
		return true
	}
	for i := range bd {
		if !sameNode(bd[i], ad[i], target, sameObject) {
			return errChanged
		}
	}
	return nil
}

// withoutKey returns the keys and values of mapping m in order, without
// the entry key, and that entry's value (nil when m has none).
func withoutKey(m *yaml.Node, key string) ([]*yaml.Node, *yaml.Node) {
	var rest []*yaml.Node
	var v *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			v = m.Content[i+1]
			continue
		}
		rest = append(rest, m.Content[i], m.Content[i+1])
	}
	return rest, v
}

// sameNode reports whether a and b read the same: kind, resolved tag,
// value, anchor and children, not style, position or comments. At the node
// skip (of a's tree) it defers to at instead.
func sameNode(a, b, skip *yaml.Node, at func(a, b *yaml.Node) bool) bool {
	if a == nil || b == nil {
		return a == b
	}
	if skip != nil && a == skip {
		return at(a, b)
	}
	if a.Kind != b.Kind || a.ShortTag() != b.ShortTag() || a.Anchor != b.Anchor || len(a.Content) != len(b.Content) {
		return false
	}
	if (a.Kind == yaml.ScalarNode || a.Kind == yaml.AliasNode) && a.Value != b.Value {
		return false
	}
	for i := range a.Content {
		if !sameNode(a.Content[i], b.Content[i], skip, at) {
			return false
		}
	}
	return true
}
