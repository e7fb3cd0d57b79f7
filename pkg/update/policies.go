package update

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/helmflux/helmflux/pkg/policy"
)

// TagAllPolicy is the pseudo-policy fluxctl's policy --tag-all sends: it
// sets (or, with glob:*, removes) the tag policy of every container of the
// object, and is never written as an annotation itself.
const TagAllPolicy = "tag_all"

const (
	// maxPoliciesPerChange bounds the policies one change may name (tag_all
	// expands to one per container on top).
	maxPoliciesPerChange = 256
	// maxPolicyValue bounds a policy value in bytes: a tag filter or a lock
	// message, not a document.
	maxPolicyValue = 4096
)

// PolicyChange adds and removes Flux v1 policies on one object, as one
// entry of fluxd's policy update ({"add": {...}, "remove": {...}}).
//
// Policy names are automated, locked, locked_msg, locked_user, ignore,
// tag.<container> and tag_all. Add values are "true" for automated, locked
// and ignore; free text for locked_msg and locked_user; a tag filter
// ("glob:...", "semver:...", "regex:...", "regexp:...", or a bare glob) for
// tag.<container> and tag_all. An empty Add value removes the policy, as it
// did in fluxd (fluxctl lock sends an empty locked_msg when no message is
// given). Remove values are ignored.
type PolicyChange struct {
	// Object is the workload or HelmRelease, as Find reports it (Kind is
	// compared case-insensitively, so "deployment" from a resource ID works;
	// Namespace as written in the file, "" when it names none).
	Object ObjectRef
	// Add maps policy name to value.
	Add map[string]string
	// Remove holds the policy names to remove; values are ignored.
	Remove map[string]string
}

// ApplyPolicies applies policy changes to the annotations of the objects in
// files and returns only the files whose bytes changed, by path as given,
// like Apply does for tags. Only the annotation entries that change are
// written; every other byte of the file stays (see the package
// documentation).
//
// Each change is validated as a whole and either applied as a whole or not
// at all, with one error naming the object: an unknown policy or bad value,
// an object not found or found more than once, metadata or annotations that
// are not plain mappings, or an edit that cannot be made in place. A change
// that changes nothing (the object is already automated) writes nothing.
// Changes apply in order, each to the result of the ones before.
func ApplyPolicies(files []File, changes []PolicyChange) (map[string][]byte, []error) {
	type entry struct {
		path      string
		orig, cur []byte
		docs      []*yaml.Node
		err       error
		parsed    bool
	}
	byKey := map[string]*entry{}
	var order []*entry
	for _, f := range files {
		k := cleanKey(f.Path)
		e, ok := byKey[k]
		if !ok {
			e = &entry{}
			byKey[k] = e
			order = append(order, e)
		}
		*e = entry{path: f.Path, orig: f.Data, cur: f.Data}
	}
	memo := &parseMemo{}
	parse := func(e *entry) {
		if !e.parsed {
			e.docs, e.err = memo.parse(e.cur)
			e.parsed = true
		}
	}
	current := func() []File {
		out := make([]File, len(order))
		for i, e := range order {
			out[i] = File{Path: e.path, Data: e.cur}
		}
		return out
	}

	var errs []error
	for _, c := range changes {
		plan, err := parsePolicyChange(c)
		if err != nil {
			errs = append(errs, fmt.Errorf("update policies of %s: %w", c.Object, err))
			continue
		}
		var found []objectPos
		var where []string
		var unreadable error
		for _, e := range order {
			parse(e)
			if e.err != nil {
				if unreadable == nil {
					unreadable = fmt.Errorf("%s: %w", e.path, e.err)
				}
				continue
			}
			for di, d := range e.docs {
				walkObjects(docRoot(d), nil, 0, func(obj *yaml.Node, at []string) {
					if matchObject(obj, c.Object) {
						found = append(found, objectPos{doc: di, path: at, obj: obj, file: e.path})
						where = append(where, fmt.Sprintf("%s document %d", e.path, di))
					}
				})
			}
		}
		switch {
		case len(found) == 0 && unreadable != nil:
			errs = append(errs, fmt.Errorf("update policies of %s: not found (and %w)", c.Object, unreadable))
			continue
		case len(found) == 0:
			errs = append(errs, fmt.Errorf("update policies of %s: not found", c.Object))
			continue
		case len(found) > 1:
			errs = append(errs, fmt.Errorf("update policies of %s: found %d times (%s); refusing to guess", c.Object, len(found), strings.Join(where, ", ")))
			continue
		}
		pos := found[0]
		e := byKey[cleanKey(pos.file)]
		out, err := applyPlan(memo, e.cur, pos, plan, func() []string { return objectContainers(pos.obj, current) })
		if err != nil {
			errs = append(errs, fmt.Errorf("update policies of %s: %s: %w", c.Object, e.path, err))
			continue
		}
		if !bytes.Equal(out, e.cur) {
			e.cur, e.parsed = out, false
		}
	}

	changed := map[string][]byte{}
	for _, e := range order {
		if !bytes.Equal(e.cur, e.orig) {
			changed[e.path] = e.cur
		}
	}
	return changed, errs
}

// parseMemo remembers the last few parses of one ApplyPolicies call: each
// step of an edit reads the bytes the step before wrote, and the check of a
// change's result parses what the next change starts from, so a change
// costs about one parse of its file instead of one per step. Parsed nodes
// are only read, never changed.
type parseMemo struct {
	data [2][]byte
	docs [2][]*yaml.Node
	next int
}

func (m *parseMemo) parse(data []byte) ([]*yaml.Node, error) {
	for i := range m.data {
		if m.docs[i] != nil && bytes.Equal(m.data[i], data) {
			return m.docs[i], nil
		}
	}
	docs, err := parseDocs(data)
	if err != nil {
		return nil, err
	}
	m.data[m.next], m.docs[m.next] = data, docs
	m.next = (m.next + 1) % len(m.data)
	return docs, nil
}

// objectPos is where an object is: its file, document and node path.
type objectPos struct {
	file string
	doc  int
	path []string
	obj  *yaml.Node // in the parse the position was found in
}

// walkObjects calls fn for every object Find would read in the document
// root n: n itself and the items of Lists, to maxListDepth.
func walkObjects(n *yaml.Node, at []string, depth int, fn func(obj *yaml.Node, at []string)) {
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	if scalarValue(get(n, "kind")) != "List" {
		fn(n, at)
		return
	}
	items := get(n, "items")
	if depth >= maxListDepth || items == nil || items.Kind != yaml.SequenceNode {
		return
	}
	for i, it := range items.Content {
		walkObjects(it, appendPath(at, "items", index(i)), depth+1, fn)
	}
}

// matchObject reports whether obj is a supported object named by ref.
func matchObject(obj *yaml.Node, ref ObjectRef) bool {
	kind := scalarValue(get(obj, "kind"))
	if !strings.EqualFold(kind, ref.Kind) {
		return false
	}
	hr := kind == "HelmRelease" && scalarValue(get(obj, "apiVersion")) == helmReleaseAPIVersion
	if !hr && podSpecPaths[kind] == nil {
		return false
	}
	meta := get(obj, "metadata")
	return scalarValue(get(meta, "name")) == ref.Name && scalarValue(get(meta, "namespace")) == ref.Namespace
}

// objectContainers returns the container names tag_all expands to: for a
// workload those of its containers and initContainers (digest-pinned ones
// too, as fluxd did), for a HelmRelease those Find reports for it in files.
func objectContainers(obj *yaml.Node, files func() []File) []string {
	var names []string
	add := func(n string) {
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	kind := scalarValue(get(obj, "kind"))
	if p, ok := podSpecPaths[kind]; ok {
		spec := obj
		for _, k := range p {
			spec = get(spec, k)
		}
		for _, list := range []string{"containers", "initContainers"} {
			if l := get(spec, list); l != nil && l.Kind == yaml.SequenceNode {
				for _, c := range l.Content {
					add(scalarValue(get(c, "name")))
				}
			}
		}
		return names
	}
	ref, _ := objectMeta(obj)
	images, _ := Find(files())
	for _, im := range images {
		if im.Object == ref {
			add(im.Container)
		}
	}
	return names
}

// policyPlan is a validated PolicyChange, by policy name (tag policies as
// "tag.<container>").
type policyPlan struct {
	set    map[string]string
	remove map[string]bool
	// tagAll is the tag_all filter to set on every container; tagAllRemove
	// removes every container's tag policy (tag_all glob:*, or tag_all in
	// Remove).
	tagAll       string
	tagAllRemove bool
}

// qualifiedName is the name part of a Kubernetes annotation key (after the
// prefix and '/'), at most 63 characters long.
var qualifiedName = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)

// validKeyName reports whether name can follow fluxcd.io/ in an annotation
// key the API server accepts, so a policy never makes a manifest that
// cannot be applied.
func validKeyName(name string) bool { return len(name) <= 63 && qualifiedName.MatchString(name) }

// parsePolicyChange validates the policy names and values of c.
func parsePolicyChange(c PolicyChange) (policyPlan, error) {
	p := policyPlan{set: map[string]string{}, remove: map[string]bool{}}
	if len(c.Add)+len(c.Remove) > maxPoliciesPerChange {
		return p, fmt.Errorf("%d policies in one change; at most %d", len(c.Add)+len(c.Remove), maxPoliciesPerChange)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Add)) {
		v := c.Add[name]
		if err := checkPolicyName(name); err != nil {
			return p, err
		}
		if v == "" {
			// fluxd wrote an empty value as a removal; for tag_all that
			// removed every container's filter.
			if name == TagAllPolicy {
				p.tagAllRemove = true
			} else {
				p.remove[name] = true
			}
			continue
		}
		if len(v) > maxPolicyValue || !utf8.ValidString(v) {
			return p, fmt.Errorf("policy %s: value is not UTF-8 text of at most %d bytes", name, maxPolicyValue)
		}
		switch {
		case name == policy.AutomatedKey, name == policy.LockedKey, name == policy.IgnoreKey:
			if v != "true" {
				return p, fmt.Errorf("policy %s: value %q; the only value is \"true\" (remove the policy to unset it)", name, v)
			}
		case name == TagAllPolicy, strings.HasPrefix(name, policy.TagKeyPrefix):
			f, err := policy.ParseFilter(v)
			if err != nil {
				return p, fmt.Errorf("policy %s: %w", name, err)
			}
			if name == TagAllPolicy {
				if f.Kind == policy.FilterGlob && f.Pattern == "*" {
					p.tagAllRemove = true
				} else {
					p.tagAll = v
				}
				continue
			}
		}
		p.set[name] = v
	}
	for _, name := range slices.Sorted(maps.Keys(c.Remove)) {
		if err := checkPolicyName(name); err != nil {
			return p, err
		}
		if name == TagAllPolicy {
			p.tagAllRemove, p.tagAll = true, ""
			continue
		}
		p.remove[name] = true
	}
	return p, nil
}

func checkPolicyName(name string) error {
	switch name {
	case policy.AutomatedKey, policy.LockedKey, policy.LockedMsgKey, policy.LockedUserKey, policy.IgnoreKey, TagAllPolicy:
		return nil
	}
	if c, ok := strings.CutPrefix(name, policy.TagKeyPrefix); ok {
		if !validKeyName(name) || c == "" {
			return fmt.Errorf("policy %q: container name %q cannot be part of an annotation key", name, c)
		}
		return nil
	}
	return fmt.Errorf("unknown policy %q (known: automated, locked, locked_msg, locked_user, ignore, tag.<container>, tag_all)", name)
}

// spellings returns the annotation keys that may hold policy name, in the
// order pkg/policy reads them (the first present wins). New policies are
// written with the second spelling for tags (fluxcd.io/tag.<c>) and the
// first for the others (fluxcd.io/<name>).
func spellings(name string) []string {
	if c, ok := strings.CutPrefix(name, policy.TagKeyPrefix); ok {
		return []string{policy.FilterPrefix + c, policy.Prefix + name, policy.LegacyPrefix + name}
	}
	return []string{policy.Prefix + name, policy.LegacyPrefix + name}
}

// annotationEdits is what a plan does to one object's annotations, by
// annotation key.
type annotationEdits struct {
	set    map[string]string // existing keys to rewrite
	insert map[string]string // keys to add
	remove map[string]bool   // keys to delete
}

func (a annotationEdits) empty() bool {
	return len(a.set) == 0 && len(a.insert) == 0 && len(a.remove) == 0
}

// resolve turns a plan into annotation edits against the current
// annotations: a policy already written under some spelling is rewritten
// there (so a legacy flux.weave.works/ or filter.fluxcd.io/ key is edited,
// not duplicated) and its shadowed spellings, which contradict the new
// value, are removed; a policy written nowhere is added with the fluxcd.io/
// prefix; a removed policy loses every spelling. A policy already holding
// its value is left alone. Removal wins over addition, as in fluxd.
func (p policyPlan) resolve(current map[string]string, containers func() []string) (annotationEdits, error) {
	set, remove := maps.Clone(p.set), maps.Clone(p.remove)
	if p.tagAll != "" || p.tagAllRemove {
		for _, c := range containers() {
			name := policy.TagKeyPrefix + c
			if !validKeyName(name) {
				return annotationEdits{}, fmt.Errorf("tag_all: container name %q cannot be part of an annotation key", c)
			}
			if p.tagAllRemove {
				remove[name] = true
			} else {
				set[name] = p.tagAll
			}
		}
	}
	if len(set)+len(remove) > maxPoliciesPerChange {
		return annotationEdits{}, fmt.Errorf("%d policies in one change; at most %d", len(set)+len(remove), maxPoliciesPerChange)
	}
	e := annotationEdits{set: map[string]string{}, insert: map[string]string{}, remove: map[string]bool{}}
	for name := range remove {
		delete(set, name)
		for _, k := range spellings(name) {
			if _, ok := current[k]; ok {
				e.remove[k] = true
			}
		}
	}
	for name, v := range set {
		keys := spellings(name)
		var present []string
		for _, k := range keys {
			if _, ok := current[k]; ok {
				present = append(present, k)
			}
		}
		switch {
		case len(present) == 0:
			e.insert[policy.Prefix+name] = v
		case current[present[0]] != v:
			e.set[present[0]] = v
			for _, k := range present[1:] {
				e.remove[k] = true
			}
		}
	}
	return e, nil
}

// annotationsOf returns the scalar annotations of the object at pos in
// docs by key, refusing what cannot be edited in place: metadata or
// annotations that are not mappings, aliases and anchors on the way, keys
// that are not plain strings, merge keys and keys written twice.
func annotationsOf(docs []*yaml.Node, pos objectPos) (map[string]string, error) {
	if pos.doc >= len(docs) {
		return nil, errors.New("document is gone")
	}
	metaPath := appendPath(pos.path, "metadata")
	meta, err := mappingAt(docs[pos.doc], metaPath)
	if err != nil {
		return nil, err
	}
	cur := map[string]string{}
	if !hasKey(meta, "annotations") {
		return cur, nil
	}
	ann, err := mappingAt(docs[pos.doc], appendPath(metaPath, "annotations"))
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(ann.Content); i += 2 {
		k, v := ann.Content[i], ann.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			return nil, errors.New("metadata.annotations: has a key that is not a plain string (or a << merge); not editable in place")
		}
		if _, dup := cur[k.Value]; dup {
			return nil, fmt.Errorf("metadata.annotations: key %q is written twice", k.Value)
		}
		cur[k.Value] = ""
		if v = deref(v); v.Kind == yaml.ScalarNode {
			cur[k.Value] = v.Value
		}
	}
	return cur, nil
}

// hasKey reports whether mapping m has the scalar key.
func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return true
		}
	}
	return false
}

// mappingAt walks path from the root of doc like nodeAt, but ends on a
// mapping.
func mappingAt(doc *yaml.Node, path []string) (*yaml.Node, error) {
	n, err := walk(doc, path)
	if err != nil {
		return nil, err
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: is not a mapping", pathString(path))
	}
	return n, nil
}

// applyPlan makes the edits of plan to the annotations of the object at pos
// in data and checks the result: the new stream must read exactly as the
// old one outside the object's annotations, and the annotations must hold
// exactly the planned keys and string values.
func applyPlan(memo *parseMemo, data []byte, pos objectPos, plan policyPlan, containers func() []string) ([]byte, error) {
	docs, err := memo.parse(data)
	if err != nil {
		return nil, err
	}
	cur, err := annotationsOf(docs, pos)
	if err != nil {
		return nil, err
	}
	edits, err := plan.resolve(cur, containers)
	if err != nil {
		return nil, err
	}
	if edits.empty() {
		return data, nil
	}
	want := maps.Clone(cur)
	for k := range edits.remove {
		delete(want, k)
	}
	maps.Copy(want, edits.set)
	maps.Copy(want, edits.insert)

	out := data
	metaPath := appendPath(pos.path, "metadata")
	annPath := appendPath(metaPath, "annotations")
	if len(want) == 0 {
		// The last annotation goes: drop the annotations key, as fluxd did.
		if out, err = removeEntry(memo, out, pos.doc, metaPath, "annotations"); err != nil {
			return nil, err
		}
		return out, checkPolicyEdit(memo, data, out, pos, want, edits)
	}
	// Rewrite values in place; a value that cannot be (a block scalar, an
	// empty or explicitly tagged value) has its entry replaced instead.
	replace := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(edits.set)) {
		next, err := SetScalar(out, pos.doc, appendPath(annPath, k), edits.set[k])
		if err != nil {
			replace[k] = edits.set[k]
			continue
		}
		out = next
	}
	// Add before removing, so the mapping is never empty on the way.
	if out, err = insertAnnotations(memo, out, pos, edits.insert); err != nil {
		return nil, err
	}
	remove := edits.remove
	if len(replace) > 0 {
		if len(cur)-len(edits.remove)-len(replace)+len(edits.insert) > 0 {
			for _, k := range slices.Sorted(maps.Keys(replace)) {
				if out, err = removeEntry(memo, out, pos.doc, annPath, k); err != nil {
					return nil, err
				}
			}
		} else {
			// Only entries that go or are replaced: write the annotations
			// anew.
			if out, err = removeEntry(memo, out, pos.doc, metaPath, "annotations"); err != nil {
				return nil, err
			}
			replace, remove = want, nil
		}
		if out, err = insertAnnotations(memo, out, pos, replace); err != nil {
			return nil, err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(remove)) {
		if out, err = removeEntry(memo, out, pos.doc, annPath, k); err != nil {
			return nil, err
		}
	}
	if err := checkPolicyEdit(memo, data, out, pos, want, edits); err != nil {
		return nil, err
	}
	return out, nil
}
