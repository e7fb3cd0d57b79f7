package helm

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Helm's ownership annotations: Helm sets them on every object a release
// creates, and refuses to adopt an object that lacks them.
const (
	ReleaseNameAnnotation      = "meta.helm.sh/release-name"
	ReleaseNamespaceAnnotation = "meta.helm.sh/release-namespace"
)

// OwnedBy tells whether an object's annotations name the release name in
// namespace as its Helm owner: the release created it.
func OwnedBy(annotations map[string]string, namespace, name string) bool {
	return annotations[ReleaseNameAnnotation] == name && annotations[ReleaseNamespaceAnnotation] == namespace
}

// Outside returns the objects of a release record that lie outside the
// release's namespace: cluster-scoped ones (returned without a namespace)
// and those of other namespaces. namespaced tells a kind's scope; a kind
// the cluster does not serve is left out, as Helm cannot act on it either.
// Whoever may write the record (a Secret in the release's namespace) may
// list anything in it, so these are the objects an action must not touch
// on the record's word alone.
func Outside(objs []*unstructured.Unstructured, namespace string, namespaced func(schema.GroupVersionKind) (bool, error)) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		ns, err := namespaced(o.GroupVersionKind())
		switch {
		case meta.IsNoMatchError(err):
			continue
		case err != nil:
			return nil, fmt.Errorf("tell the scope of %s: %w", o.GetKind(), err)
		case ns && o.GetNamespace() == namespace:
			continue
		}
		c := o.DeepCopy()
		if !ns {
			c.SetNamespace("")
		}
		out = append(out, c)
	}
	return out, nil
}

// Live reads an object's annotations from the cluster; found is false when
// it does not exist.
type Live func(*unstructured.Unstructured) (annotations map[string]string, found bool, err error)

// Unowned names ("Kind/namespace/name", or "Kind/name") the objects of
// outside (see Outside) that the release name in namespace did not create:
// those found live without its ownership annotations and, when mustExist
// (objects an action would create or overwrite), those not found at all.
// An object to be deleted that does not exist is no harm.
func Unowned(outside []*unstructured.Unstructured, namespace, name string, live Live, mustExist bool) ([]string, error) {
	var out []string
	for _, o := range outside {
		ann, found, err := live(o)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", Display(o), err)
		}
		if (found && !OwnedBy(ann, namespace, name)) || (!found && mustExist) {
			out = append(out, Display(o))
		}
	}
	return out, nil
}

// Display names an object for people, by kind, namespace and name only.
func Display(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetKind() + "/" + o.GetName()
	}
	return o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
}
