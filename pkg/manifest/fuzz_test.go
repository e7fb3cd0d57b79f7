package manifest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad writes fuzzed bytes to one file of a checkout, as a plain YAML
// file, a JSON file or a kustomization, and loads it. Load must never panic,
// and whatever it returns must be well-formed.
func FuzzLoad(f *testing.F) {
	seeds := []struct {
		kind uint8
		data string
	}{
		{0, cm("a") + "---\n" + cm("b")},
		{0, "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: s}\n"},
		{0, "--- {apiVersion: v1, kind: ConfigMap}\n...\n%YAML 1.2\n---\n"},
		{0, "a: &a [*a]\n"},
		{0, "key: value: broken\n"},
		{0, cm("i") + "  annotations: {fluxcd.io/ignore: \"true\"}\n"},
		{1, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j"}} {"apiVersion":"v1","kind":"List","items":[]}`},
		{1, `{"apiVersion": 1}`},
		{2, "resources: [cm.yaml]\nnamePrefix: x-\n"},
		{2, "resources: [https://example.com/x.yaml]\n"},
		{2, "configMapGenerator:\n- name: c\n  literals: [a=b]\n"},
	}
	for _, s := range seeds {
		f.Add(s.kind, []byte(s.data))
	}
	names := []string{"fuzz.yaml", "fuzz.json", "kustomization.yaml"}
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		root := t.TempDir()
		name := names[int(kind)%len(names)]
		if err := os.WriteFile(filepath.Join(root, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "cm.yaml"), []byte(cm("side")), 0o644); err != nil {
			t.Fatal(err)
		}
		objs, err := Load(context.Background(), root, []string{"."}, Options{MaxFileSize: 1 << 20, MaxObjects: 1000})
		if err != nil {
			return
		}
		for _, o := range objs {
			if o.Object == nil || o.Object.GetAPIVersion() == "" || o.Object.GetKind() == "" {
				t.Fatalf("object without apiVersion or kind from %s", o.Source)
			}
			if o.Source == "" || o.Line < 0 {
				t.Fatalf("object with source %q line %d", o.Source, o.Line)
			}
			if IsIgnored(o.Object) {
				t.Fatalf("ignored object %s returned", o.Object.GetName())
			}
		}
	})
}
