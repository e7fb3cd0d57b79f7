package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmflux/helmflux/operator/automation"
)

// readDocs reads every object of a multi-document YAML file.
func readDocs(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	var out []*unstructured.Unstructured
	for {
		obj := map[string]any{}
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
		if len(obj) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no object", path)
	}
	return out
}

// wantErrors returns the "# want-error: <text>" lines of a file: the texts a
// user must read in the refusal.
func wantErrors(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "# want-error:"); ok {
			out = append(out, strings.TrimSpace(rest))
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no '# want-error:' line saying what the refusal must say", path)
	}
	return out
}

// kubectl runs ./bin/kubectl against the test control plane.
func kubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	k, err := admin.Kubectl()
	if err != nil {
		t.Fatalf("kubectl for the test user: %v", err)
	}
	stdout, stderr, err := k.Run(args...)
	var out bytes.Buffer
	_, _ = io.Copy(&out, stdout)
	_, _ = io.Copy(&out, stderr)
	return out.String(), err
}

// ensureNamespaces creates the namespaces a file's objects name, as a user's
// cluster would have them.
func ensureNamespaces(t *testing.T, docs []*unstructured.Unstructured) {
	t.Helper()
	for _, d := range docs {
		ns := d.GetNamespace()
		if ns == "" {
			continue
		}
		err := k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
	}
}

func yamlFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no YAML files in %s (%v)", dir, err)
	}
	return files
}

// assertAcceptedUnchanged checks that `kubectl apply --dry-run=server` accepts a
// file, and that each object, created for real with strict field validation,
// reads back with its spec exactly as written: nothing refused, nothing pruned.
func assertAcceptedUnchanged(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	docs := readDocs(t, path)
	assertTemplatesRender(t, docs)
	ensureNamespaces(t, docs)
	if out, err := kubectl(t, "apply", "--dry-run=server", "-f", path); err != nil {
		t.Fatalf("kubectl apply --dry-run=server -f %s: %v\n%s", filepath.Base(path), err, out)
	}

	ns := newNamespace(t)
	var created []*unstructured.Unstructured
	for _, d := range docs {
		obj := d.DeepCopy()
		obj.SetNamespace(ns)
		if err := k8sClient.Create(context.Background(), obj, client.FieldValidation("Strict")); err != nil {
			t.Fatalf("create %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(obj.GroupVersionKind())
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(obj), got); err != nil {
			t.Fatalf("get %s: %v", obj.GetName(), err)
		}
		if want, have := normalized(t, d.Object["spec"]), normalized(t, got.Object["spec"]); !keeps(have, want) {
			t.Errorf("%s: the API server dropped or changed part of the spec\nwritten: %v\nstored:  %v", obj.GetName(), want, have)
		}
		created = append(created, got)
	}
	return created
}

// assertTemplatesRender renders every commit message template of docs
// (a GitSync's writeBack.messageTemplate) as image automation would: one
// that the API server accepts may still fail on every pass with an update.
func assertTemplatesRender(t *testing.T, docs []*unstructured.Unstructured) {
	t.Helper()
	for _, d := range docs {
		if d.GetKind() != "GitSync" {
			continue
		}
		tmpl, _, _ := unstructured.NestedString(d.Object, "spec", "writeBack", "messageTemplate")
		if tmpl == "" {
			continue
		}
		if err := automation.CheckMessageTemplate(tmpl); err != nil {
			t.Errorf("GitSync %s: its messageTemplate does not render: %v", d.GetName(), err)
		}
	}
}

// assertRejected checks that `kubectl apply --dry-run=server` refuses a file and
// that the refusal carries every text of its want-error lines.
func assertRejected(t *testing.T, path string) {
	t.Helper()
	wants := wantErrors(t, path)
	docs := readDocs(t, path)
	ensureNamespaces(t, docs)

	var out string
	var err error
	if _, hasStatus := docs[0].Object["status"]; hasStatus {
		out, err = updateStatus(t, docs[0])
	} else {
		out, err = kubectl(t, "apply", "--dry-run=server", "-f", path)
	}
	if err == nil {
		t.Fatalf("%s was accepted, want a refusal saying %q", filepath.Base(path), wants)
	}
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("refusal of %s does not say %q:\n%s", filepath.Base(path), w, out)
		}
	}
}

// updateStatus creates an object without its status, then writes the status
// through the status subresource, as only the operator does.
func updateStatus(t *testing.T, doc *unstructured.Unstructured) (string, error) {
	t.Helper()
	obj := doc.DeepCopy()
	obj.SetNamespace(newNamespace(t))
	status := obj.Object["status"]
	delete(obj.Object, "status")
	if err := k8sClient.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %s without status: %v", obj.GetName(), err)
	}
	obj.Object["status"] = status
	err := k8sClient.Status().Update(context.Background(), obj)
	if err != nil {
		return err.Error(), err
	}
	return "", nil
}

// keeps tells whether have holds everything in want with the same values; have
// may hold more (fields the API server defaulted).
func keeps(have, want any) bool {
	wm, ok := want.(map[string]any)
	if !ok {
		return reflect.DeepEqual(have, want)
	}
	hm, ok := have.(map[string]any)
	if !ok {
		return false
	}
	for k, w := range wm {
		h, found := hm[k]
		if !found || !keeps(h, w) {
			return false
		}
	}
	return true
}

// normalized turns a decoded object into plain JSON types, so that int64 and
// float64 numbers of equal value compare equal.
func normalized(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
