package gitsync_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/controllers"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

// tenantSA is the service account the tenancy tests' GitSyncs run as.
const tenantSA = "deployer"

// newTenant gives namespace ns a ServiceAccount tenantSA that may do
// anything to ConfigMaps and Deployments of ns, and nothing else.
func newTenant(t *testing.T, c client.Client, ns string) {
	t.Helper()
	ctx := context.Background()
	for _, obj := range []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tenantSA}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deployer"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"}},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"*"}},
		}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deployer"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "deployer"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: tenantSA}}},
	} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
}

// clusterAdminBinding is a ClusterRoleBinding manifest making the tenant's
// service account cluster-admin: what an attacker pushes to a tenant's repository.
func clusterAdminBinding(ns, name string) string {
	return fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: %s
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {kind: ServiceAccount, namespace: %s, name: %s}
`, name, ns, tenantSA)
}

// assertNoClusterRoleBinding checks that a ClusterRoleBinding does not exist.
func assertNoClusterRoleBinding(t *testing.T, c client.Client, name string) {
	t.Helper()
	err := c.Get(context.Background(), client.ObjectKey{Name: name}, &rbacv1.ClusterRoleBinding{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("ClusterRoleBinding %s: got %v, want NotFound", name, err)
	}
}

// waitForbidden waits until a pass over revision hash reports Ready False
// Forbidden with a message holding every one of want.
func waitForbidden(t *testing.T, c client.Client, ns, name, hash string, want ...string) *helmfluxv1alpha1.GitSync {
	t.Helper()
	var gs *helmfluxv1alpha1.GitSync
	eventually(t, "revision "+hash+" refused as Forbidden", func() (bool, string) {
		gs = &helmfluxv1alpha1.GitSync{}
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, gs); err != nil {
			return false, err.Error()
		}
		r := ready(gs)
		ok := strings.HasPrefix(r, "False "+helmfluxv1alpha1.ForbiddenReason+":") &&
			strings.HasSuffix(gs.Status.LastAttemptedRevision, hash)
		for _, w := range want {
			ok = ok && strings.Contains(r, w)
		}
		return ok, r
	})
	return gs
}

// waitWarning waits for a Warning Event with reason on the GitSync whose
// note holds every one of want.
func waitWarning(t *testing.T, c client.Client, ns, name, reason string, want ...string) {
	t.Helper()
	eventually(t, "a "+reason+" Warning event", func() (bool, string) {
		evs := &eventsv1.EventList{}
		if err := c.List(context.Background(), evs, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range evs.Items {
			if e.Type != corev1.EventTypeWarning || e.Reason != reason || e.Regarding.Name != name {
				seen = append(seen, e.Reason+": "+e.Note)
				continue
			}
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(e.Note, w)
			}
			if ok {
				return true, ""
			}
			seen = append(seen, e.Reason+": "+e.Note)
		}
		return false, strings.Join(seen, " | ")
	})
}

// A GitSync with serviceAccountName applies as that account: its
// ConfigMaps are applied; a ClusterRoleBinding to cluster-admin and a
// ConfigMap in another namespace pushed to its repository are refused with
// reason Forbidden, naming the object, the verb and the account, in Ready,
// status.failures and a Warning Event; the objects it may change are still
// applied from that revision; nothing refused exists.
func TestServiceAccountAppliesOnlyWhatItMay(t *testing.T) {
	ns := newNamespace(t)
	other := newNamespace(t)
	newTenant(t, k8s, ns)
	user := "system:serviceaccount:" + ns + ":" + tenantSA
	crb := ns + "-takeover"
	t.Cleanup(func() {
		_ = k8s.Delete(context.Background(), &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: crb}})
	})

	repo := gittest.NewRepo(t, map[string]string{"settings.yaml": configMap(ns, "blue")})
	createGitSync(t, ns, "tenant", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Prune: true, ServiceAccountName: tenantSA})
	inventory := func() []string {
		var ids []string
		for _, e := range getGitSync(t, ns, "tenant").Status.Inventory.Entries {
			ids = append(ids, e.ID)
		}
		return ids
	}
	waitApplied(t, ns, "tenant", repo.Head())
	if color := getConfigMapValue(t, ns, "settings"); color != "blue" {
		t.Fatalf("color = %q, want blue", color)
	}

	// The ClusterRoleBinding is refused; the ConfigMap's change in the same
	// commit is applied.
	repo.Write(map[string]string{"settings.yaml": configMap(ns, "green"), "takeover.yaml": clusterAdminBinding(ns, crb)})
	takeover := repo.Commit("take over the cluster")
	requestReconcile(t, ns, "tenant")
	gs := waitForbidden(t, k8s, ns, "tenant", takeover, "ClusterRoleBinding/"+crb, user, "cannot patch")
	waitWarning(t, k8s, ns, "tenant", helmfluxv1alpha1.ForbiddenReason, "ClusterRoleBinding/"+crb, user)
	assertNoClusterRoleBinding(t, k8s, crb)
	if color := getConfigMapValue(t, ns, "settings"); color != "green" {
		t.Errorf("the allowed ConfigMap of the refused revision: color = %q, want green", color)
	}
	if len(gs.Status.Failures) != 1 || gs.Status.Failures[0].Object != "ClusterRoleBinding/"+crb ||
		gs.Status.Failures[0].Source != "takeover.yaml" {
		t.Errorf("failures = %+v, want the ClusterRoleBinding from takeover.yaml", gs.Status.Failures)
	}
	if strings.HasSuffix(gs.Status.LastAppliedRevision, takeover) {
		t.Errorf("lastAppliedRevision = %s: a revision with a refused object counts as applied", gs.Status.LastAppliedRevision)
	}

	if ids := inventory(); len(ids) != 1 {
		t.Errorf("inventory = %v, want only the ConfigMap: a refused object was never this sync's", ids)
	}

	// A ConfigMap in another namespace is refused the same way.
	repo.Write(map[string]string{"takeover.yaml": namedConfigMap(other, "elsewhere")})
	elsewhere := repo.Commit("write into another namespace")
	requestReconcile(t, ns, "tenant")
	waitForbidden(t, k8s, ns, "tenant", elsewhere, "ConfigMap/"+other+"/elsewhere", user, `namespace "`+other+`"`)
	waitWarning(t, k8s, ns, "tenant", helmfluxv1alpha1.ForbiddenReason, "ConfigMap/"+other+"/elsewhere")
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: other, Name: "elsewhere"}, &corev1.ConfigMap{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("ConfigMap %s/elsewhere: got %v, want NotFound", other, err)
	}
	assertNoClusterRoleBinding(t, k8s, crb)

	// Once the repository holds only what the account may apply, it is Ready again.
	repo.Remove("takeover.yaml")
	fixed := repo.Commit("back to the tenant's own objects")
	requestReconcile(t, ns, "tenant")
	waitApplied(t, ns, "tenant", fixed)
	if ids := inventory(); len(ids) != 1 {
		t.Errorf("inventory = %v, want only the ConfigMap", ids)
	}
}

// getConfigMapValue returns the color of a ConfigMap made by configMap.
func getConfigMapValue(t *testing.T, ns, name string) string {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
		t.Fatal(err)
	}
	return cm.Data["color"]
}

// Prune runs as the service account: an object of its namespace that left
// git is deleted; one it may not delete (applied by the operator before the
// GitSync named an account) is reported as Forbidden, left in place and
// kept in the inventory, not silently dropped.
func TestServiceAccountPrunes(t *testing.T) {
	ns := newNamespace(t)
	other := newNamespace(t)
	newTenant(t, k8s, ns)
	user := "system:serviceaccount:" + ns + ":" + tenantSA

	// Applied as the operator: no service account yet.
	repo := gittest.NewRepo(t, map[string]string{
		"own.yaml":       configMaps(ns, "keep", "drop"),
		"elsewhere.yaml": namedConfigMap(other, "elsewhere"),
	})
	createGitSync(t, ns, "pruner", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Prune: true, MaxPrunePercent: intPtr(100)})
	waitApplied(t, ns, "pruner", repo.Head())

	// Both leave git, and the GitSync now runs as the tenant.
	repo.Write(map[string]string{"own.yaml": configMaps(ns, "keep")})
	repo.Remove("elsewhere.yaml")
	shrunk := repo.Commit("drop two")
	gs := getGitSync(t, ns, "pruner")
	patch := client.MergeFrom(gs.DeepCopy())
	gs.Spec.ServiceAccountName = tenantSA
	if err := k8s.Patch(context.Background(), gs, patch); err != nil {
		t.Fatal(err)
	}

	gs = waitForbidden(t, k8s, ns, "pruner", shrunk, "ConfigMap/"+other+"/elsewhere", user)
	waitWarning(t, k8s, ns, "pruner", helmfluxv1alpha1.ForbiddenReason, "ConfigMap/"+other+"/elsewhere")
	if configMapExists(t, ns, "drop") {
		t.Error("ConfigMap drop, which the account may delete, was not pruned")
	}
	if !configMapExists(t, ns, "keep") {
		t.Error("ConfigMap keep is gone")
	}
	if !configMapExists(t, other, "elsewhere") {
		t.Error("a prune the account may not do deleted ConfigMap elsewhere")
	}
	inInventory := false
	for _, e := range gs.Status.Inventory.Entries {
		inInventory = inInventory || strings.Contains(e.ID, other+"_elsewhere")
	}
	if !inInventory {
		t.Errorf("the object that could not be pruned left the inventory: %+v", gs.Status.Inventory.Entries)
	}
}

func intPtr(i int) *int { return &i }

// Without any service account (no serviceAccountName, no
// --default-service-account) the operator applies as itself, as before:
// cluster-scoped objects included.
func TestWithoutServiceAccountTheOperatorApplies(t *testing.T) {
	ns := newNamespace(t)
	name := ns + "-reader"
	t.Cleanup(func() {
		_ = k8s.Delete(context.Background(), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}})
	})
	role := fmt.Sprintf("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: %s\nrules:\n- {apiGroups: [\"\"], resources: [configmaps], verbs: [get]}\n", name)
	repo := gittest.NewRepo(t, map[string]string{"role.yaml": role})
	createGitSync(t, ns, "legacy", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL()})
	waitApplied(t, ns, "legacy", repo.Head())
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, &rbacv1.ClusterRole{}); err != nil {
		t.Errorf("ClusterRole %s: %v", name, err)
	}
}

// --default-service-account (Options.DefaultServiceAccount) applies to a
// GitSync that names none: its ClusterRoleBinding is refused, its ConfigMap
// applied. It runs on a control plane of its own, since the shared
// operator of this package has no default.
func TestDefaultServiceAccount(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane of its own")
	}
	c := ownOperator(t, &logs, controllers.Options{Concurrency: 2, CacheDir: t.TempDir(), DefaultServiceAccount: tenantSA, AllowLocalURLs: true})
	ctx := context.Background()

	ns := testenv.NewNamespace(t, c, "gs-default-")
	newTenant(t, c, ns)
	crb := ns + "-takeover"
	repo := gittest.NewRepo(t, map[string]string{
		"settings.yaml": configMap(ns, "blue"),
		"takeover.yaml": clusterAdminBinding(ns, crb),
	})
	gs := &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "defaulted"},
		Spec: helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Interval: metav1.Duration{Duration: time.Hour}}}
	if err := c.Create(ctx, gs); err != nil {
		t.Fatal(err)
	}
	user := "system:serviceaccount:" + ns + ":" + tenantSA
	waitForbidden(t, c, ns, "defaulted", repo.Head(), "ClusterRoleBinding/"+crb, user)
	waitWarning(t, c, ns, "defaulted", helmfluxv1alpha1.ForbiddenReason, "ClusterRoleBinding/"+crb)
	assertNoClusterRoleBinding(t, c, crb)
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "settings"}, cm); err != nil || cm.Data["color"] != "blue" {
		t.Errorf("ConfigMap settings: %v, %v", cm.Data, err)
	}
}
