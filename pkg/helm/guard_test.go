package helm

import (
	"errors"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestOutsideAndUnowned(t *testing.T) {
	obj := func(kind, ns, name string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		u.SetKind(kind)
		u.SetNamespace(ns) // Objects gives cluster-scoped kinds the release's namespace too
		u.SetName(name)
		return u
	}
	namespaced := func(gvk schema.GroupVersionKind) (bool, error) {
		switch gvk.Kind {
		case "ClusterRole":
			return false, nil
		case "Unserved":
			return false, &meta.NoKindMatchError{GroupKind: gvk.GroupKind()}
		}
		return true, nil
	}
	objs := []*unstructured.Unstructured{
		obj("ConfigMap", "app", "own"), obj("ClusterRole", "app", "owned"), obj("ClusterRole", "app", "foreign"),
		obj("ClusterRole", "app", "missing"), obj("ConfigMap", "kube-system", "precious"), obj("Unserved", "app", "x"),
	}
	outside, err := Outside(objs, "app", namespaced)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range outside {
		got = append(got, Display(o))
	}
	want := []string{"ClusterRole/owned", "ClusterRole/foreign", "ClusterRole/missing", "ConfigMap/kube-system/precious"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Outside = %v, want %v", got, want)
	}
	ours := map[string]string{ReleaseNameAnnotation: "web", ReleaseNamespaceAnnotation: "app"}
	live := func(o *unstructured.Unstructured) (map[string]string, bool, error) {
		switch o.GetName() {
		case "owned":
			return ours, true, nil
		case "foreign":
			return map[string]string{ReleaseNameAnnotation: "web", ReleaseNamespaceAnnotation: "other"}, true, nil
		case "precious":
			return nil, true, nil
		}
		return nil, false, nil
	}
	for _, tt := range []struct {
		mustExist bool
		want      []string
	}{
		{false, []string{"ClusterRole/foreign", "ConfigMap/kube-system/precious"}},
		{true, []string{"ClusterRole/foreign", "ClusterRole/missing", "ConfigMap/kube-system/precious"}},
	} {
		got, err := Unowned(outside, "app", "web", live, tt.mustExist)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Unowned(mustExist %v) = %v, %v; want %v", tt.mustExist, got, err, tt.want)
		}
	}
	boom := errors.New("boom")
	if _, err := Unowned(outside, "app", "web", func(*unstructured.Unstructured) (map[string]string, bool, error) { return nil, false, boom }, false); !errors.Is(err, boom) {
		t.Errorf("a failed read: %v", err)
	}
	if _, err := Outside(objs, "app", func(schema.GroupVersionKind) (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Errorf("a failed scope lookup: %v", err)
	}
}

// Objects flattens what Helm's decoder takes as a list, any document with
// an `items` array, nested lists too, into the objects Helm acts on; an
// unserved List kind is kept by Outside, to be refused.
func TestObjectsFlattensListsAsHelmDoes(t *testing.T) {
	rel := &Release{Name: "web", Namespace: "app", Manifest: `---
# Source: app/templates/a.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: innocent
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata:
    name: hidden
- apiVersion: v1
  kind: List
  items:
  - apiVersion: v1
    kind: ConfigMap
    metadata:
      name: deeper
      namespace: kube-system
---
# Source: app/templates/b.yaml
apiVersion: v1
kind: List
metadata: {}
`}
	objs, err := rel.Objects()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, Display(o))
	}
	want := []string{"ClusterRoleBinding/app/hidden", "ConfigMap/kube-system/deeper", "List/app/"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Objects = %v, want %v", got, want)
	}
	outside, err := Outside(objs, "app", func(gvk schema.GroupVersionKind) (bool, error) {
		switch gvk.Kind {
		case "ClusterRoleBinding":
			return false, nil
		case "List":
			return false, &meta.NoKindMatchError{GroupKind: gvk.GroupKind()}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	names, err := Unowned(outside, "app", "web", func(o *unstructured.Unstructured) (map[string]string, bool, error) {
		if o.GetKind() == "List" {
			return nil, false, &meta.NoKindMatchError{GroupKind: o.GroupVersionKind().GroupKind()}
		}
		return nil, false, nil
	}, false)
	if err != nil || !reflect.DeepEqual(names, []string{"List/app/"}) {
		t.Errorf("Unowned = %v, %v; want the unservable List", names, err)
	}
}
