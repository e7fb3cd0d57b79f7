package gitsync

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/manifest"
)

// A pass at the revision and generation last rendered gets the objects of
// that render back, each a copy of its own: the apply may mutate what it
// gets, and the next pass must still see what git had. Another revision,
// another generation or a deleted GitSync renders again.
func TestRenderedObjectsAreReusedAtTheSameRevisionAndGenerationOnly(t *testing.T) {
	var s states
	gs := &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "apps", Generation: 1}}
	cm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "settings", "namespace": "team"},
		"data":     map[string]any{"color": "blue", "replicas": "3"},
	}}
	objs := []manifest.Object{{Object: cm, Source: "apps/settings.yaml", Line: 4}}
	rep := manifest.Report{FluxV1Configs: []string{"apps/.flux.yaml"}}
	if _, _, ok := s.renderedAt(gs, "main@sha1:a"); ok {
		t.Fatal("objects before any render")
	}
	s.keepRendered(gs, "main@sha1:a", objs, rep)

	got, gotRep, ok := s.renderedAt(gs, "main@sha1:a")
	if !ok || len(got) != 1 {
		t.Fatalf("renderedAt = %v, %v; want the render back", got, ok)
	}
	if !reflect.DeepEqual(got[0].Object.Object, cm.Object) || got[0].Source != "apps/settings.yaml" || got[0].Line != 4 {
		t.Errorf("got %v from %s:%d, want %v from apps/settings.yaml:4", got[0].Object.Object, got[0].Source, got[0].Line, cm.Object)
	}
	if !reflect.DeepEqual(gotRep, rep) {
		t.Errorf("report %+v, want %+v", gotRep, rep)
	}

	// What one pass does to its objects is not what the next pass gets,
	// nor does a change to the render's input after it was kept.
	got[0].Object.SetLabels(map[string]string{"mutated": "true"})
	cm.Object["data"].(map[string]any)["color"] = "red"
	again, _, _ := s.renderedAt(gs, "main@sha1:a")
	if again[0].Object.GetLabels() != nil {
		t.Errorf("a pass's change came back: labels %v", again[0].Object.GetLabels())
	}
	if c, _, _ := unstructured.NestedString(again[0].Object.Object, "data", "color"); c != "blue" {
		t.Errorf("color %q, want the blue git had when it was rendered", c)
	}

	if _, _, ok := s.renderedAt(gs, "main@sha1:b"); ok {
		t.Error("reused at another revision")
	}
	next := gs.DeepCopy()
	next.Generation = 2 // spec.path, say: the same commit renders otherwise
	if _, _, ok := s.renderedAt(next, "main@sha1:a"); ok {
		t.Error("reused for another generation")
	}
	s.keepRendered(gs, "main@sha1:a", objs, rep)
	s.forget(types.NamespacedName{Namespace: "team", Name: "apps"})
	if _, _, ok := s.renderedAt(gs, "main@sha1:a"); ok {
		t.Error("reused after the GitSync was forgotten")
	}
}
