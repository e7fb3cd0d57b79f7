package manifest

import "k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

// Flux v1 annotations that keep an object out of the sync. They are honoured
// unchanged so repositories written for Flux v1 keep working.
const (
	// AnnotationIgnore is the current annotation key.
	AnnotationIgnore = "fluxcd.io/ignore"
	// AnnotationIgnoreLegacy is the key Flux used before the fluxcd.io domain.
	AnnotationIgnoreLegacy = "flux.weave.works/ignore"
	// IgnoreTrue on either key drops the object: Load does not return it.
	IgnoreTrue = "true"
	// IgnoreSyncOnly on either key keeps the object in Load's output; the
	// apply package applies it but never deletes it when pruning.
	IgnoreSyncOnly = "sync_only"
)

// IsIgnored tells whether obj carries an ignore annotation set to "true",
// which Load honours by leaving the object out.
func IsIgnored(obj *unstructured.Unstructured) bool {
	return hasIgnoreValue(obj, IgnoreTrue)
}

// IsSyncOnly tells whether obj carries an ignore annotation set to
// "sync_only": the object is applied from git but never garbage-collected.
func IsSyncOnly(obj *unstructured.Unstructured) bool {
	return hasIgnoreValue(obj, IgnoreSyncOnly)
}

func hasIgnoreValue(obj *unstructured.Unstructured, want string) bool {
	if obj == nil {
		return false
	}
	// Read the map directly: GetAnnotations drops every annotation when one
	// value is not a string, and untrusted input may contain such values.
	ann, ok, _ := unstructured.NestedFieldNoCopy(obj.Object, "metadata", "annotations")
	if !ok {
		return false
	}
	m, ok := ann.(map[string]interface{})
	if !ok {
		return false
	}
	for _, k := range []string{AnnotationIgnore, AnnotationIgnoreLegacy} {
		if v, ok := m[k].(string); ok && v == want {
			return true
		}
	}
	return false
}
