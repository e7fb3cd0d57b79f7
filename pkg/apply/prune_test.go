package apply_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmflux/helmflux/pkg/apply"
)

func TestStaleListsWhatLeftInDeletionOrder(t *testing.T) {
	ns := apply.ObjectID{Kind: "Namespace", Name: "apps"}
	crd := apply.ObjectID{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition", Name: "w.example.com"}
	cm := apply.ObjectID{Kind: "ConfigMap", Namespace: "apps", Name: "a"}
	dep := apply.ObjectID{Group: "apps", Kind: "Deployment", Namespace: "apps", Name: "web"}
	got := apply.Stale([]apply.ObjectID{ns, crd, cm, dep}, []apply.ObjectID{dep})
	want := []apply.ObjectID{cm, ns, crd}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Stale() = %v, want %v", got, want)
	}
}

func TestObjectIDRoundTrip(t *testing.T) {
	for _, id := range []apply.ObjectID{
		{Group: "apps", Kind: "Deployment", Namespace: "apps", Name: "web"},
		{Kind: "Namespace", Name: "apps"},
	} {
		got, err := apply.ParseObjectID(id.String())
		if err != nil || got != id {
			t.Errorf("ParseObjectID(%q) = %v, %v; want %v", id.String(), got, err, id)
		}
	}
	if _, err := apply.ParseObjectID("not-an-id"); err == nil {
		t.Error("ParseObjectID of garbage succeeded")
	}
}

const pruneSet = `
apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: keep, namespace: NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: gone, namespace: NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: taken-over, namespace: NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: sync-only, namespace: NS, annotations: {fluxcd.io/ignore: sync_only}}
`

func TestPruneDeletesExactlyTheOwnedObjectsThatLeft(t *testing.T) {
	a, c, _, ns := newApplier(t)
	ctx := context.Background()
	cs, err := a.Apply(ctx, objects(t, ns, pruneSet))
	if err != nil {
		t.Fatal(err)
	}
	var previous []apply.ObjectID
	for _, r := range cs.Results {
		previous = append(previous, r.ID)
	}
	// Another sync takes taken-over.
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "taken-over"}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Annotations["helmflux.dev/sync"] = "flux-system/other"
	if err := c.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}

	current := []apply.ObjectID{previous[0], previous[1]} // the Namespace and keep
	pruned, err := a.Prune(ctx, previous, current, apply.PruneOptions{Owner: "flux-system/test", MaxPercent: 100})
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	got := actions(pruned)
	want := map[string]apply.Action{"ConfigMap/gone": apply.Deleted, "ConfigMap/taken-over": apply.Skipped, "ConfigMap/sync-only": apply.Skipped}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("prune = %v, want %v", got, want)
	}
	for name, wantGone := range map[string]bool{"gone": true, "keep": false, "taken-over": false, "sync-only": false} {
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.ConfigMap{})
		if gone := apierrors.IsNotFound(err); gone != wantGone {
			t.Errorf("ConfigMap %s gone = %v, want %v (err %v)", name, gone, wantGone, err)
		}
	}
}

func TestPruneGuard(t *testing.T) {
	a, c, _, ns := newApplier(t)
	ctx := context.Background()
	cs, err := a.Apply(ctx, objects(t, ns, pruneSet))
	if err != nil {
		t.Fatal(err)
	}
	var previous []apply.ObjectID
	for _, r := range cs.Results {
		previous = append(previous, r.ID)
	}
	owner := apply.PruneOptions{Owner: "flux-system/test"}

	tests := []struct {
		name    string
		current []apply.ObjectID
		opts    apply.PruneOptions
		refused string
	}{
		{name: "more than half", current: previous[:2], opts: owner, refused: "would delete 3 of 5 objects (60%), more than the 50% allowed"},
		{name: "everything", current: nil, opts: apply.PruneOptions{Owner: owner.Owner, MaxPercent: 100}, refused: "would delete all 5 objects"},
		{name: "a raised limit", current: previous[:2], opts: apply.PruneOptions{Owner: owner.Owner, MaxPercent: 60}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.Prune(ctx, previous, tt.current, tt.opts)
			var guard *apply.PruneGuardError
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("prune = %v, want it allowed", err)
				}
				return
			}
			if !errors.As(err, &guard) || !strings.Contains(err.Error(), tt.refused) {
				t.Fatalf("prune = %v, want a refusal saying %q", err, tt.refused)
			}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "gone"}, &corev1.ConfigMap{}); err != nil {
				t.Errorf("a refused prune deleted something: %v", err)
			}
		})
	}

	forced, err := a.Prune(ctx, previous, previous[:1], apply.PruneOptions{Owner: owner.Owner, Force: true})
	if err != nil {
		t.Fatalf("forced prune: %v", err)
	}
	if forced.Count(apply.Deleted) == 0 {
		t.Errorf("forced prune deleted nothing: %s", forced.Summary())
	}
}
