package apply

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ObjectID names an object across versions: what an inventory records.
type ObjectID struct {
	Group     string
	Kind      string
	Namespace string
	Name      string
}

// IDOf returns the ID of an object.
func IDOf(obj *unstructured.Unstructured) ObjectID {
	gvk := obj.GroupVersionKind()
	return ObjectID{Group: gvk.Group, Kind: gvk.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// String formats the ID as "<namespace>_<name>_<group>_<kind>", the inventory
// format Flux uses; the namespace is empty for cluster-scoped objects.
func (id ObjectID) String() string {
	return id.Namespace + "_" + id.Name + "_" + id.Group + "_" + id.Kind
}

// Display formats the ID for people: "Kind/namespace/name" or "Kind/name".
func (id ObjectID) Display() string {
	if id.Namespace == "" {
		return id.Kind + "/" + id.Name
	}
	return id.Kind + "/" + id.Namespace + "/" + id.Name
}

// ParseObjectID parses the String form of an ID.
func ParseObjectID(s string) (ObjectID, error) {
	parts := strings.Split(s, "_")
	if len(parts) != 4 || parts[1] == "" || parts[3] == "" {
		return ObjectID{}, fmt.Errorf("parse object id %q: want <namespace>_<name>_<group>_<kind>", s)
	}
	return ObjectID{Namespace: parts[0], Name: parts[1], Group: parts[2], Kind: parts[3]}, nil
}

// GroupKind returns the ID's group and kind.
func (id ObjectID) GroupKind() schema.GroupKind {
	return schema.GroupKind{Group: id.Group, Kind: id.Kind}
}
