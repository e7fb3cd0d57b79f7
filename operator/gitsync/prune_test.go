package gitsync_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

// namedConfigMap is a ConfigMap manifest with annotations (key: value lines).
func namedConfigMap(ns, name string, annotations ...string) string {
	doc := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\n", name, ns)
	if len(annotations) > 0 {
		doc += "  annotations:\n"
		for _, a := range annotations {
			doc += "    " + a + "\n"
		}
	}
	return doc + "data:\n  from: git\n"
}

// configMaps is one file of ConfigMap manifests, one for each name.
func configMaps(ns string, names ...string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString("---\n" + namedConfigMap(ns, n))
	}
	return b.String()
}

// configMapExists tells whether a ConfigMap is in the cluster.
func configMapExists(t *testing.T, ns, name string) bool {
	t.Helper()
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &corev1.ConfigMap{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// waitPruneRefused waits until a pass over revision hash refused its prune
// with a message that contains want.
func waitPruneRefused(t *testing.T, ns, name, hash, want string) *helmfluxv1alpha1.GitSync {
	t.Helper()
	var gs *helmfluxv1alpha1.GitSync
	eventually(t, "the prune of "+hash+" refused", func() (bool, string) {
		gs = getGitSync(t, ns, name)
		r := ready(gs)
		return strings.HasPrefix(r, "False "+helmfluxv1alpha1.PruneRefusedReason) && strings.Contains(r, want) &&
			strings.HasSuffix(gs.Status.LastAttemptedRevision, hash), r
	})
	return gs
}

// The prune guard refuses a prune of more than maxPrunePercent, and one that
// empties the inventory: the revision is applied, nothing is deleted,
// lastAppliedRevision stays, and every pass refuses again until
// reconcile.fluxcd.io/forceAt is set to a new value, which prunes once.
func TestPruneGuardRefusesUntilForced(t *testing.T) {
	ns := newNamespace(t)
	all := []string{"cm-0", "cm-1", "cm-2", "cm-3", "cm-4", "cm-5"}
	repo := gittest.NewRepo(t, map[string]string{"cms.yaml": configMaps(ns, all...)})
	createGitSync(t, ns, "guarded", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Prune: true})
	first := repo.Head()
	waitApplied(t, ns, "guarded", first)

	// Four of six is more than the default 50%.
	repo.Write(map[string]string{"cms.yaml": configMaps(ns, "cm-4", "cm-5")})
	shrunk := repo.Commit("drop four")
	requestReconcile(t, ns, "guarded")
	gs := waitPruneRefused(t, ns, "guarded", shrunk, "it would delete 4 of 6 objects")
	assertGuardHeld := func(gs *helmfluxv1alpha1.GitSync) {
		t.Helper()
		if !strings.HasSuffix(gs.Status.LastAppliedRevision, first) {
			t.Errorf("lastAppliedRevision = %s, want %s", gs.Status.LastAppliedRevision, first)
		}
		if gs.Status.Inventory == nil || gs.Status.Inventory.Count != 6 {
			t.Errorf("inventory = %+v, want the six objects kept", gs.Status.Inventory)
		}
		for _, n := range all {
			if !configMapExists(t, ns, n) {
				t.Errorf("ConfigMap %s deleted by a refused prune", n)
			}
		}
	}
	assertGuardHeld(gs)
	if r := ready(gs); !strings.Contains(r, meta.ForceRequestAnnotation) {
		t.Errorf("the refusal does not say how to force it: %s", r)
	}

	// Another pass refuses again.
	gs = waitHandled(t, ns, "guarded", requestReconcile(t, ns, "guarded"))
	if r := ready(gs); !strings.HasPrefix(r, "False "+helmfluxv1alpha1.PruneRefusedReason) {
		t.Errorf("Ready after another pass: %s", r)
	}
	assertGuardHeld(gs)

	// forceAt prunes once.
	annotate(t, ns, "guarded", meta.ForceRequestAnnotation, "force-1")
	gs = waitApplied(t, ns, "guarded", shrunk)
	if gs.Status.LastHandledForceAt != "force-1" {
		t.Errorf("lastHandledForceAt = %q, want force-1", gs.Status.LastHandledForceAt)
	}
	for i, n := range all {
		if exists := configMapExists(t, ns, n); exists != (i >= 4) {
			t.Errorf("after the forced prune ConfigMap %s exists: %v", n, exists)
		}
	}
	if gs.Status.Inventory == nil || gs.Status.Inventory.Count != 2 {
		t.Errorf("inventory after the forced prune = %+v, want 2 objects", gs.Status.Inventory)
	}

	// The token is spent: emptying the inventory is refused, though the
	// annotation is still there.
	repo.Remove("cms.yaml")
	repo.Write(map[string]string{"README.md": "nothing to apply\n"})
	empty := repo.Commit("drop the rest")
	requestReconcile(t, ns, "guarded")
	gs = waitPruneRefused(t, ns, "guarded", empty, "it would delete all 2 objects")
	if !configMapExists(t, ns, "cm-4") || !configMapExists(t, ns, "cm-5") {
		t.Error("a prune that empties the inventory deleted objects without a new forceAt")
	}
	if !strings.HasSuffix(gs.Status.LastAppliedRevision, shrunk) {
		t.Errorf("lastAppliedRevision = %s, want %s", gs.Status.LastAppliedRevision, shrunk)
	}
}

// Deleting a GitSync with prune deletes its objects, except one annotated
// fluxcd.io/ignore; without prune, or while suspended, they stay.
func TestDeletingAGitSyncPrunesOnlyWithPrune(t *testing.T) {
	tests := []struct {
		name           string
		prune, suspend bool
		wantDeleted    bool
	}{
		{name: "prune", prune: true, wantDeleted: true},
		{name: "no prune"},
		{name: "prune but suspended", prune: true, suspend: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := newNamespace(t)
			repo := gittest.NewRepo(t, map[string]string{"cms.yaml": configMaps(ns, "plain", "kept")})
			createGitSync(t, ns, "doomed", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Prune: tt.prune})
			waitApplied(t, ns, "doomed", repo.Head())
			ignoreLive(t, ns, "kept")
			if tt.suspend {
				setSuspend(t, ns, "doomed", true)
				eventually(t, "the GitSync suspended", func() (bool, string) {
					r := ready(getGitSync(t, ns, "doomed"))
					return strings.HasPrefix(r, "False "+helmfluxv1alpha1.SuspendedReason), r
				})
			}

			if err := k8s.Delete(context.Background(), getGitSync(t, ns, "doomed")); err != nil {
				t.Fatal(err)
			}
			// Gone means the controller's deletion pass ended: it removes
			// the finalizer last.
			eventually(t, "the GitSync gone", func() (bool, string) {
				err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "doomed"}, &helmfluxv1alpha1.GitSync{})
				return apierrors.IsNotFound(err), fmt.Sprint(err)
			})
			if exists := configMapExists(t, ns, "plain"); exists == tt.wantDeleted {
				t.Errorf("after the deletion ConfigMap plain exists: %v, want %v", exists, !tt.wantDeleted)
			}
			if !configMapExists(t, ns, "kept") {
				t.Error("the deletion pruned an object annotated fluxcd.io/ignore")
			}
		})
	}
}

// fluxcd.io/ignore on an object in git: "true" (or the flux.weave.works/
// form) is not applied, sync_only is applied but never pruned; and a live
// object annotated by hand is not pruned when it leaves git.
func TestIgnoreAnnotationsOnTheSyncSide(t *testing.T) {
	ns := newNamespace(t)
	// A live object that git names but ignores stays as it is.
	mustCreateConfigMap(t, ns, "ignored", map[string]string{"from": "hand"})
	repo := gittest.NewRepo(t, map[string]string{
		"ignored.yaml":  namedConfigMap(ns, "ignored", `fluxcd.io/ignore: "true"`),
		"legacy.yaml":   namedConfigMap(ns, "legacy", `flux.weave.works/ignore: "true"`),
		"synconly.yaml": namedConfigMap(ns, "sync-only", "fluxcd.io/ignore: sync_only"),
		"plain.yaml":    configMaps(ns, "settings", "kept-by-hand", "pruned"),
	})
	hundred := 100
	createGitSync(t, ns, "ign", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Prune: true, MaxPrunePercent: &hundred})
	gs := waitApplied(t, ns, "ign", repo.Head())

	cm := &corev1.ConfigMap{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "ignored"}, cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["from"] != "hand" || cm.Annotations[helmfluxv1alpha1.SyncAnnotation] != "" {
		t.Errorf("an object ignored in git was applied: data %v, annotations %v", cm.Data, cm.Annotations)
	}
	if configMapExists(t, ns, "legacy") {
		t.Error("an object annotated flux.weave.works/ignore was applied")
	}
	if !configMapExists(t, ns, "sync-only") {
		t.Error("a sync_only object was not applied")
	}
	if got := inventoryNames(gs); got != "kept-by-hand,pruned,settings" {
		t.Errorf("inventory = %s, want kept-by-hand,pruned,settings", got)
	}

	ignoreLive(t, ns, "kept-by-hand")
	repo.Remove("synconly.yaml")
	repo.Write(map[string]string{"plain.yaml": configMaps(ns, "settings")})
	hash := repo.Commit("drop all but settings")
	requestReconcile(t, ns, "ign")
	gs = waitApplied(t, ns, "ign", hash)
	if configMapExists(t, ns, "pruned") {
		t.Error("ConfigMap pruned was not pruned") // the prune did run
	}
	if !configMapExists(t, ns, "sync-only") {
		t.Error("a sync_only object was pruned")
	}
	if !configMapExists(t, ns, "kept-by-hand") {
		t.Error("a live object annotated fluxcd.io/ignore was pruned")
	}
	if got := inventoryNames(gs); got != "settings" {
		t.Errorf("inventory = %s, want settings", got)
	}
	if len(gs.Status.Failures) != 0 {
		t.Errorf("failures = %+v, want none", gs.Status.Failures)
	}
}

// ignoreLive annotates a live ConfigMap fluxcd.io/ignore: "true", as a
// person keeping it from a prune does.
func ignoreLive(t *testing.T, ns, name string) {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(cm.DeepCopy())
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations["fluxcd.io/ignore"] = "true"
	if err := k8s.Patch(context.Background(), cm, patch); err != nil {
		t.Fatal(err)
	}
}

func mustCreateConfigMap(t *testing.T, ns, name string, data map[string]string) {
	t.Helper()
	cm := &corev1.ConfigMap{}
	cm.Namespace, cm.Name, cm.Data = ns, name, data
	if err := k8s.Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
}

// inventoryNames lists the names in a GitSync's inventory, comma-separated,
// in the inventory's order.
func inventoryNames(gs *helmfluxv1alpha1.GitSync) string {
	if gs.Status.Inventory == nil {
		return ""
	}
	var names []string
	for _, e := range gs.Status.Inventory.Entries {
		names = append(names, strings.Split(e.ID, "_")[1])
	}
	return strings.Join(names, ",")
}
