package update

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/helmflux/helmflux/pkg/policy"
)

// seedFiles returns the golden inputs, so the fuzzers start from realistic
// manifests.
func seedFiles(f *testing.F) [][]byte {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// scalarPath is a scalar in a parsed stream, addressed as SetScalar does.
type scalarPath struct {
	doc  int
	path []string
}

// scalarPaths lists the paths of the scalar values (not keys) of docs,
// depth-limited.
func scalarPaths(docs []*yaml.Node) []scalarPath {
	var out []scalarPath
	var walk func(doc int, n *yaml.Node, at []string)
	walk = func(doc int, n *yaml.Node, at []string) {
		if n == nil || len(at) > 16 {
			return
		}
		switch n.Kind {
		case yaml.ScalarNode:
			out = append(out, scalarPath{doc, at})
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Kind == yaml.ScalarNode {
					walk(doc, n.Content[i+1], appendPath(at, n.Content[i].Value))
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(doc, c, appendPath(at, index(i)))
			}
		}
	}
	for i, d := range docs {
		walk(i, docRoot(d), nil)
	}
	return out
}

func FuzzSetScalar(f *testing.F) {
	for _, b := range seedFiles(f) {
		f.Add(b, uint16(7), "1.10")
	}
	for _, s := range []string{
		"a: 'it''s'\nb: \"x\\\"y\"\n", "\ufeffa: x\r\nb: [1, 2]\r\n", "a: &x 1\nb: *x\n",
		"---\n---\na: x\n", "a: |\n  x\n", "ü: {ö: x}\n", "a: x # \u2028\nb: y\n", "- a\n- b: c\n",
	} {
		f.Add([]byte(s), uint16(1), "v2")
	}
	f.Fuzz(func(t *testing.T, data []byte, pick uint16, value string) {
		docs, err := parseDocs(data)
		if err != nil {
			if _, err := SetScalar(data, 0, []string{"a"}, value); err == nil {
				t.Fatal("SetScalar succeeded on a stream that does not parse")
			}
			return
		}
		paths := scalarPaths(docs)
		if len(paths) == 0 {
			return
		}
		target := paths[int(pick)%len(paths)]
		out, err := SetScalar(data, target.doc, target.path, value)
		if err != nil {
			return
		}

		// The new stream holds value at the path.
		newDocs, err := parseDocs(out)
		if err != nil {
			t.Fatalf("output does not parse: %v\n%q", err, out)
		}
		if len(newDocs) != len(docs) {
			t.Fatalf("documents: %d, were %d", len(newDocs), len(docs))
		}
		n, err := nodeAt(newDocs[target.doc], target.path)
		if err != nil || n.Value != value {
			t.Fatalf("after SetScalar %q: node %v, %v\n%q", value, n, err, out)
		}

		// Outside the old scalar's bytes, nothing changed.
		old, err := nodeAt(docs[target.doc], target.path)
		if err != nil {
			t.Fatal(err)
		}
		start, end, err := scalarSpan(data, lineStarts(data), old)
		if err != nil {
			t.Fatalf("SetScalar succeeded but the span is unknown: %v", err)
		}
		if !bytes.HasPrefix(out, data[:start]) || !bytes.HasSuffix(out, data[end:]) || len(out) < start+len(data)-end {
			t.Fatalf("bytes outside [%d,%d) changed:\n%q\n%q", start, end, data, out)
		}

		// Every other scalar reads as before.
		for _, p := range paths {
			if p.doc == target.doc && pathString(p.path) == pathString(target.path) {
				continue
			}
			was, err1 := nodeAt(docs[p.doc], p.path)
			now, err2 := nodeAt(newDocs[p.doc], p.path)
			if (err1 == nil) != (err2 == nil) || (err1 == nil && (was.Value != now.Value || was.Tag != now.Tag)) {
				t.Fatalf("%s changed: %v %v", pathString(p.path), err1, err2)
			}
		}
	})
}

func FuzzFind(f *testing.F) {
	for _, b := range seedFiles(f) {
		f.Add(b, []byte("image: {repository: a, tag: \"1\"}\n"))
	}
	f.Add([]byte("apiVersion: helm.fluxcd.io/v1\nkind: HelmRelease\nmetadata:\n  annotations: {repository.fluxcd.io/c: a.b, tag.fluxcd.io/c: a.t}\nspec:\n  valuesFrom: [{gitFileRef: {path: values.yaml}}]\n  values: {a: {t: \"2\"}}\n"),
		[]byte("a: {b: x, t: \"1\"}\nimage: y:1\n"))
	f.Fuzz(func(t *testing.T, manifest, values []byte) {
		files := []File{{Path: "m.yaml", Data: manifest}, {Path: "values.yaml", Data: values}}
		ValuesFiles(files)
		images, _ := Find(files)
		if len(images) == 0 {
			return
		}
		// Setting a found image's tag either fails cleanly or is seen by Find.
		im := images[len(manifest)%len(images)]
		out, errs := Apply(files, []Change{{Image: im, NewTag: "9.10"}})
		if len(errs) > 0 {
			return
		}
		next := make([]File, len(files))
		for i, fl := range files {
			next[i] = fl
			if b, ok := out[fl.Path]; ok {
				next[i].Data = b
			}
		}
		after, _ := Find(next)
		for _, a := range after {
			if a.Locator == im.Locator && a.Container == im.Container && a.Object == im.Object {
				if a.Tag != "9.10" {
					t.Fatalf("after Apply the tag is %q", a.Tag)
				}
				return
			}
		}
		t.Fatalf("after Apply, %s %s is gone:\n%s", im.Object, im.Container, out)
	})
}

// FuzzApplyPolicies sets or removes one policy on an object of the input
// and checks that a clean error writes nothing, and that a success writes a
// stream that Find reads with the policy as pkg/policy sees it, which a
// second application leaves alone.
func FuzzApplyPolicies(f *testing.F) {
	for _, b := range seedFiles(f) {
		f.Add(b, "automated", "true", false)
		f.Add(b, "tag.app", "semver:~1.2", false)
		f.Add(b, "locked", "", true)
	}
	for _, s := range []string{
		"kind: Deployment\nmetadata: {name: d, annotations: {fluxcd.io/automated: \"true\"}}\n",
		"kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    fluxcd.io/locked_msg: |\n      x\n",
		"kind: Deployment\nmetadata:\n  name: d\n  annotations: {a: b,\n   c: d} # x\n",
		"kind: List\nitems:\n- kind: Pod\n  metadata:\n    name: p\n",
		"kind: Deployment\r\nmetadata:\r\n  name: d",
	} {
		f.Add([]byte(s), "locked_msg", "why\n\"not\"", false)
		f.Add([]byte(s), "automated", "", true)
		f.Add([]byte(s), "tag_all", "glob:*", false)
	}
	f.Fuzz(func(t *testing.T, data []byte, name, value string, remove bool) {
		ref := ObjectRef{Kind: "Deployment", Name: "d"}
		if docs, err := parseDocs(data); err == nil {
			var refs []ObjectRef
			for _, d := range docs {
				walkObjects(docRoot(d), nil, 0, func(obj *yaml.Node, _ []string) {
					if r, _ := objectMeta(obj); matchObject(obj, r) {
						refs = append(refs, r)
					}
				})
			}
			if len(refs) > 0 {
				ref = refs[len(data)%len(refs)]
			}
		}
		c := PolicyChange{Object: ref, Add: map[string]string{name: value}}
		if remove {
			c = PolicyChange{Object: ref, Remove: map[string]string{name: ""}}
		}
		files := []File{{Path: "a.yaml", Data: data}}
		out, errs := ApplyPolicies(files, []PolicyChange{c})
		if len(errs) > 0 {
			if len(out) > 0 {
				t.Fatalf("failed change wrote a file: %v", errs)
			}
			return
		}
		if len(out) == 0 {
			return
		}
		next := []File{{Path: "a.yaml", Data: out["a.yaml"]}}
		if again, errs := ApplyPolicies(next, []PolicyChange{c}); len(again) > 0 || len(errs) > 0 {
			t.Fatalf("second application: %q %v\n%q", again, errs, next[0].Data)
		}
		docs, err := parseDocs(next[0].Data)
		if err != nil {
			t.Fatalf("output does not parse: %v\n%q", err, next[0].Data)
		}
		var ann map[string]string
		for _, d := range docs {
			walkObjects(docRoot(d), nil, 0, func(obj *yaml.Node, _ []string) {
				if matchObject(obj, ref) {
					_, ann = objectMeta(obj)
				}
			})
		}
		p := policy.FromAnnotations(ann)
		remove = remove || value == "" // an empty Add value removes
		switch {
		case name == "automated" && p.Automated == remove, name == "locked" && p.Locked == remove, name == "ignore" && p.Ignored == remove:
			t.Fatalf("%s not applied (remove %v): %v\n%q", name, remove, ann, next[0].Data)
		case name == "locked_msg" && !remove && p.LockedMsg != value:
			t.Fatalf("locked_msg %q, want %q\n%q", p.LockedMsg, value, next[0].Data)
		case strings.HasPrefix(name, "tag.") && !remove:
			cp, err := p.Container(strings.TrimPrefix(name, "tag."))
			want, _ := policy.ParseFilter(value)
			if err != nil || cp.Filter.Kind != want.Kind || cp.Filter.Pattern != want.Pattern {
				t.Fatalf("%s: %+v %v, want %s\n%q", name, cp.Filter, err, value, next[0].Data)
			}
		}
	})
}
