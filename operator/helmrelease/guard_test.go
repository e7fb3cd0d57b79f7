package helmrelease_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// forge adds docs to the manifest of the newest record of a release, as
// someone who may only write Secrets in its namespace could, and returns a
// function that restores the record.
func forge(t *testing.T, ns, release string, docs ...string) (restore func()) {
	t.Helper()
	var original string
	if err := helmtest.ForgeRecord(cfg, ns, release, func(m string) string {
		original = m
		for i, d := range docs {
			m += fmt.Sprintf("\n---\n# Source: app/templates/forged-%d.yaml\n%s", i, d)
		}
		return m
	}); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := helmtest.ForgeRecord(cfg, ns, release, func(string) string { return original }); err != nil {
			t.Fatal(err)
		}
	}
}

func forgedCRB(ns string) string {
	return `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: ` + ns + `-forged
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
- kind: ServiceAccount
  name: default
  namespace: ` + ns + "\n"
}

func forgedConfigMap(ns, name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n  namespace: " + ns + "\ndata:\n  a: b\n"
}

// Without a service account, drift correction of a release whose record
// was forged to list a ClusterRoleBinding to cluster-admin and a ConfigMap
// in another namespace creates neither, and says why; a legitimate
// release's drift is still corrected.
func TestDriftCorrectionCreatesNothingAForgedRecordAdds(t *testing.T) {
	ns, other := newNamespace(t), newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	for _, name := range []string{"forged", "legit"} {
		hr := repoRelease(ns, name, repo.URL(), "1.0.0", "replicaCount: 1")
		hr.Spec.DriftDetection = &helmv1.DriftDetection{Mode: helmv1.DriftDetectionEnabled}
		mustCreateHR(t, hr)
	}
	for _, name := range []string{"forged", "legit"} {
		waitCondition(t, ns, name, helmv1.DriftedCondition, "False NoDrift")
	}
	ctx := context.Background()
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-forged"}}
	t.Cleanup(func() { _ = k8s.Delete(ctx, crb) })

	hidden := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-hidden"}}
	t.Cleanup(func() { _ = k8s.Delete(ctx, hidden) })
	forge(t, ns, ns+"-forged", forgedCRB(ns), forgedConfigMap(other, "forged"), itemsOf(crbNamed(ns+"-hidden", ns)))

	hr := waitCondition(t, ns, "forged", meta.ReadyCondition, "False "+helmv1.ReleaseRecordRefusedReason)
	c := condition(hr, meta.ReadyCondition)
	for _, want := range []string{"ClusterRoleBinding/" + ns + "-forged", "ConfigMap/" + other + "/forged", "ClusterRoleBinding/" + ns + "-hidden"} {
		if !strings.Contains(c, want) {
			t.Errorf("Ready does not name %s: %s", want, c)
		}
		waitEvent(t, ns, "forged", helmv1.ReleaseRecordRefusedReason, want)
	}
	waitPasses(t, ns, "forged", 3)
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(crb), crb); !apierrors.IsNotFound(err) {
		t.Errorf("the forged ClusterRoleBinding: %v, want not found", err)
	}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(hidden), hidden); !apierrors.IsNotFound(err) {
		t.Errorf("the ClusterRoleBinding hidden in an items list: %v, want not found", err)
	}
	if err := k8s.Get(ctx, clientKey(other, "forged"), &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("the forged ConfigMap in another namespace: %v, want not found", err)
	}

	// The legitimate release's own namespaced object is corrected as before.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := deployment(t, ns, ns+"-legit")
		d.Spec.Replicas = ptrTo(int32(3))
		return k8s.Update(ctx, d)
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "drift corrected", func() (bool, string) {
		r := *deployment(t, ns, ns+"-legit").Spec.Replicas
		return r == 1, fmt.Sprint(r)
	})
	waitEvent(t, ns, "legit", helmv1.DriftCorrectedReason, "Deployment/"+ns+"/"+ns+"-legit")
}

// Without a service account, neither an upgrade nor an uninstall deletes
// an object of another namespace that a forged record lists and the
// release did not create; once the record is put right the uninstall
// proceeds.
func TestAForgedRecordDeletesNothingOutsideTheRelease(t *testing.T) {
	ns, other := newNamespace(t), newNamespace(t)
	ctx := context.Background()
	precious := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "precious"}, Data: map[string]string{"a": "b"}}
	mustCreate(t, precious)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	mustCreateHR(t, repoRelease(ns, "up", repo.URL(), "1.0.0", "message: first"))
	waitReady(t, ns, "up")
	preciousCRB := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-precious"},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"}}
	mustCreate(t, preciousCRB)
	t.Cleanup(func() { _ = k8s.Delete(ctx, preciousCRB) })
	restore := forge(t, ns, ns+"-up", forgedConfigMap(other, "precious"), itemsOf(crbNamed(ns+"-precious", ns)))

	stillThere := func(when string) {
		t.Helper()
		cm := &corev1.ConfigMap{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(precious), cm); err != nil || cm.UID != precious.UID {
			t.Fatalf("%s: the other namespace's ConfigMap: %v", when, err)
		}
		crb := &rbacv1.ClusterRoleBinding{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(preciousCRB), crb); err != nil || crb.UID != preciousCRB.UID {
			t.Fatalf("%s: the ClusterRoleBinding hidden in an items list: %v", when, err)
		}
	}
	update(t, ns, "up", func(hr *helmv1.HelmRelease) { hr.Spec.Values = mustValues("message: second") })
	hr := waitCondition(t, ns, "up", meta.ReadyCondition, "False "+helmv1.ReleaseRecordRefusedReason)
	if c := condition(hr, meta.ReadyCondition); !strings.Contains(c, "refused to upgrade") || !strings.Contains(c, "ConfigMap/"+other+"/precious") ||
		!strings.Contains(c, "ClusterRoleBinding/"+ns+"-precious") {
		t.Errorf("Ready: %s", c)
	}
	waitEvent(t, ns, "up", helmv1.ReleaseRecordRefusedReason, "ConfigMap/"+other+"/precious")
	stillThere("after the upgrade")
	if h := history(t, ns, ns+"-up"); len(h) != 1 {
		t.Errorf("history after the refused upgrade: %v, want one revision", h)
	}

	if err := k8s.Delete(ctx, getHR(t, ns, "up")); err != nil {
		t.Fatal(err)
	}
	hr = waitCondition(t, ns, "up", meta.ReadyCondition, "False "+helmv1.ReleaseRecordRefusedReason+": refused to uninstall")
	if c := condition(hr, meta.ReadyCondition); !strings.Contains(c, "ClusterRoleBinding/"+ns+"-precious") {
		t.Errorf("Ready after the uninstall: %s", c)
	}
	stillThere("after the uninstall")

	restore()
	eventually(t, time.Minute, "HelmRelease gone", func() (bool, string) {
		err := k8s.Get(ctx, clientKey(ns, "up"), &helmv1.HelmRelease{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	stillThere("after the restored record's uninstall")
}

// itemsOf wraps docs in one document with an `items:` list (of kind
// ConfigMap, which the cluster serves), the shape Helm's decoder flattens
// into the objects it lists.
func itemsOf(docs ...string) string {
	out := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: innocent\nitems:\n"
	for _, d := range docs {
		for i, line := range strings.Split(strings.TrimRight(d, "\n"), "\n") {
			if i == 0 {
				out += "- " + line + "\n"
			} else {
				out += "  " + line + "\n"
			}
		}
	}
	return out
}

func crbNamed(name, ns string) string {
	return strings.Replace(forgedCRB(ns), "name: "+ns+"-forged", "name: "+name, 1)
}

// Without a service account, a rollback to an older revision whose record
// was forged, with a pre-rollback hook or with an `items:` list hiding a
// ClusterRoleBinding to cluster-admin, creates no binding and says
// ReleaseRecordRefused; the hook is refused where Helm acts, after it read
// the record itself, and the rollback's revision is not left pending.
func TestARollbackToAForgedRevisionCreatesNothing(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	// A chart with a cluster-scoped object of its own rolls back as before.
	own := appChart("1.0.0")
	own.Name = "own"
	own.Templates["clusterrole.yaml"] = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {{ .Release.Name }}\nrules: []\n"
	repo.Add(t, own)
	for _, name := range []string{"hook", "items", "legit"} {
		hr := repoRelease(ns, name, repo.URL(), "1.0.0", "")
		if name == "legit" {
			hr.Spec.Chart.Name = "own"
		}
		hr.Spec.Timeout = ptrTo(int64(3))
		hr.Spec.Rollback = helmv1.Rollback{Enable: true}
		mustCreateHR(t, hr)
	}
	for _, name := range []string{"hook", "items", "legit"} {
		waitReady(t, ns, name)
		crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + name}}
		t.Cleanup(func() { _ = k8s.Delete(ctx, crb) })
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ns + "-legit"}}) })
	if _, err := helmtest.ForgeHook(cfg, ns, ns+"-hook", "pre-rollback", crbNamed(ns+"-hook", ns)); err != nil {
		t.Fatal(err)
	}
	forge(t, ns, ns+"-items", itemsOf(crbNamed(ns+"-items", ns)))

	for _, name := range []string{"hook", "items", "legit"} {
		update(t, ns, name, func(hr *helmv1.HelmRelease) {
			hr.Spec.Values = mustValues("image: {tag: " + testenv.NeverReadyImageSuffix[1:] + "}")
		})
	}
	for _, name := range []string{"hook", "items"} {
		hr := waitCondition(t, ns, name, helmv1.RolledBackCondition, "False "+helmv1.ReleaseRecordRefusedReason)
		if c := condition(hr, helmv1.RolledBackCondition); !strings.Contains(c, "ClusterRoleBinding/"+ns+"-"+name) {
			t.Errorf("%s: RolledBack does not name the binding: %s", name, c)
		}
		waitEvent(t, ns, name, helmv1.ReleaseRecordRefusedReason, "ClusterRoleBinding/"+ns+"-"+name)
		waitPasses(t, ns, name, 3)
		err := k8s.Get(ctx, client.ObjectKey{Name: ns + "-" + name}, &rbacv1.ClusterRoleBinding{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s: the forged ClusterRoleBinding: %v, want not found", name, err)
		}
		for _, st := range history(t, ns, ns+"-"+name) {
			if st == "pending-rollback" {
				t.Errorf("%s: a rollback revision left pending: %v", name, history(t, ns, ns+"-"+name))
			}
		}
	}
	waitCondition(t, ns, "legit", helmv1.RolledBackCondition, "True RollbackSucceeded")
	if err := k8s.Get(ctx, client.ObjectKey{Name: ns + "-legit"}, &rbacv1.ClusterRole{}); err != nil {
		t.Errorf("the legitimate release's own ClusterRole after its rollback: %v", err)
	}
}

// Without a service account, a pre-delete hook forged into the record is
// not created on uninstall: the uninstall is refused, nothing of the
// release is deleted, its record is left deployed; once the record is put
// right the uninstall proceeds.
func TestAForgedDeleteHookIsNotCreated(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	mustCreateHR(t, repoRelease(ns, "del", repo.URL(), "1.0.0", ""))
	waitReady(t, ns, "del")
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-hook"}}
	t.Cleanup(func() { _ = k8s.Delete(ctx, crb) })
	restore, err := helmtest.ForgeHook(cfg, ns, ns+"-del", "pre-delete", crbNamed(ns+"-hook", ns))
	if err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, getHR(t, ns, "del")); err != nil {
		t.Fatal(err)
	}
	hr := waitCondition(t, ns, "del", meta.ReadyCondition, "False "+helmv1.ReleaseRecordRefusedReason+": refused to uninstall")
	if c := condition(hr, meta.ReadyCondition); !strings.Contains(c, "ClusterRoleBinding/"+ns+"-hook") {
		t.Errorf("Ready does not name the binding: %s", c)
	}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(crb), crb); !apierrors.IsNotFound(err) {
		t.Errorf("the forged hook's ClusterRoleBinding: %v, want not found", err)
	}
	deployment(t, ns, ns+"-del") // not deleted
	if h := history(t, ns, ns+"-del"); strings.Join(h, ",") != "deployed" {
		t.Errorf("history after the refused uninstall: %v, want deployed", h)
	}

	if err := restore(); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "HelmRelease gone", func() (bool, string) {
		err := k8s.Get(ctx, clientKey(ns, "del"), &helmv1.HelmRelease{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(crb), crb); !apierrors.IsNotFound(err) {
		t.Errorf("the forged hook's ClusterRoleBinding after the uninstall: %v, want not found", err)
	}
}
