package helmrelease_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// tenant makes a service account in ns bound to a Role that allows what a
// namespaced chart needs in ns and nothing else: Helm's storage Secrets,
// ConfigMaps, Services, ServiceAccounts, Deployments, the Pods of test hooks
// (and reading the ReplicaSets a wait looks at). It returns the account's user name.
func tenant(t *testing.T, ns, name string) string {
	t.Helper()
	mustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
	mustCreate(t, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets", "configmaps", "services", "serviceaccounts"}, Verbs: []string{"*"}},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"*"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"*"}}, // test hooks
			{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"get", "list", "watch"}},
		},
	})
	mustCreate(t, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: name}},
	})
	return "system:serviceaccount:" + ns + ":" + name
}

// asTenant is repoRelease acting as service account sa.
func asTenant(hr *helmv1.HelmRelease, sa string) *helmv1.HelmRelease {
	hr.Spec.ServiceAccountName = sa
	return hr
}

// A HelmRelease with a service account installs, upgrades, checks and
// corrects drift and uninstalls a namespaced chart with no more rights than
// the account's Role.
func TestAServiceAccountRunsANamespacedRelease(t *testing.T) {
	ns := newNamespace(t)
	tenant(t, ns, "deployer")
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	hr := asTenant(repoRelease(ns, "web", repo.URL(), "1.0.0", "replicaCount: 1\nmessage: first"), "deployer")
	hr.Spec.DriftDetection = &helmv1.DriftDetection{Mode: helmv1.DriftDetectionEnabled}
	mustCreateHR(t, hr)
	waitReady(t, ns, "web")
	waitCondition(t, ns, "web", helmv1.DriftedCondition, "False NoDrift")
	if m := renderedValues(t, ns, ns+"-web")["message"]; m != "first" {
		t.Errorf("message = %v, want first", m)
	}

	// Drift is corrected as the service account too (the update races the
	// controller manager's status updates, hence the retry on a conflict).
	ctx := context.Background()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := deployment(t, ns, ns+"-web")
		d.Spec.Replicas = ptrTo(int32(3))
		return k8s.Update(ctx, d)
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "drift corrected", func() (bool, string) {
		r := *deployment(t, ns, ns+"-web").Spec.Replicas
		return r == 1, fmt.Sprint(r)
	})
	waitEvent(t, ns, "web", helmv1.DriftCorrectedReason, "Deployment/"+ns+"/"+ns+"-web")

	update(t, ns, "web", func(hr *helmv1.HelmRelease) { hr.Spec.Values = mustValues("replicaCount: 1\nmessage: second") })
	eventually(t, time.Minute, "upgraded", func() (bool, string) {
		hr := getHR(t, ns, "web")
		return hr.Status.ReleaseRevision == 2 && hr.Status.ObservedGeneration == hr.Generation, condition(hr, meta.ReadyCondition)
	})
	if m := renderedValues(t, ns, ns+"-web")["message"]; m != "second" {
		t.Errorf("message = %v, want second", m)
	}

	if err := k8s.Delete(ctx, getHR(t, ns, "web")); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "HelmRelease gone", func() (bool, string) {
		err := k8s.Get(ctx, clientKey(ns, "web"), &helmv1.HelmRelease{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	if h := history(t, ns, ns+"-web"); len(h) != 0 {
		t.Errorf("history after the delete: %v, want none", h)
	}
}

// Helm tests and the rollback after failed ones run as the service account
// too.
func TestAServiceAccountTestsAndRollsBack(t *testing.T) {
	ns := newNamespace(t)
	tenant(t, ns, "deployer")
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	hr := asTenant(repoRelease(ns, "tested", repo.URL(), "1.0.0", "test: {enabled: true}"), "deployer")
	hr.Spec.Test = helmv1.Test{Enable: true, Timeout: ptrTo(int64(30))}
	hr.Spec.Rollback = helmv1.Rollback{Enable: true}
	mustCreateHR(t, hr)
	if c := condition(waitReady(t, ns, "tested"), helmv1.TestedCondition); !strings.HasPrefix(c, "True") {
		t.Errorf("Tested: %s", c)
	}
	update(t, ns, "tested", func(hr *helmv1.HelmRelease) {
		hr.Spec.Values = mustValues("test: {enabled: true, fail: true}\nmessage: failing-tests")
	})
	hr = waitCondition(t, ns, "tested", helmv1.RolledBackCondition, "True RollbackSucceeded")
	if c := condition(hr, meta.ReadyCondition); !strings.HasPrefix(c, "False TestFailed") {
		t.Errorf("Ready: %s", c)
	}
	if got := renderedValues(t, ns, ns+"-tested")["message"]; got == "failing-tests" {
		t.Errorf("the upgrade whose tests failed is still deployed")
	}
}

// waitForbidden waits until the HelmRelease is not Ready with reason
// Forbidden, and checks that its message and a Warning Event name the
// service account and want (what was refused).
func waitForbidden(t *testing.T, ns, name, user string, want ...string) *helmv1.HelmRelease {
	t.Helper()
	hr := waitCondition(t, ns, name, meta.ReadyCondition, "False "+helmv1.ForbiddenReason)
	msg := condition(hr, meta.ReadyCondition)
	for _, w := range append([]string{user}, want...) {
		if !strings.Contains(msg, w) {
			t.Errorf("Ready message does not name %q: %s", w, msg)
		}
	}
	waitEvent(t, ns, name, helmv1.ForbiddenReason, user)
	for _, w := range want {
		waitEvent(t, ns, name, helmv1.ForbiddenReason, w)
	}
	return hr
}

// crbChart templates a ConfigMap and a ClusterRoleBinding that would make
// the tenant's service account cluster-admin.
func crbChart(ns string) helmtest.Chart {
	return helmtest.Chart{
		Name: "escalate", Version: "1.0.0",
		Templates: map[string]string{
			"configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  a: b\n",
			"crb.yaml": `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ .Release.Name }}-admin
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
- kind: ServiceAccount
  name: deployer
  namespace: ` + ns + "\n",
		},
	}
}

// A chart that templates a ClusterRoleBinding is refused to a service
// account without cluster rights: reason Forbidden and an Event naming the
// account and the binding, no binding, and the tenant's other release
// still reconciles.
func TestAServiceAccountCannotInstallAClusterRoleBinding(t *testing.T) {
	ns := newNamespace(t)
	user := tenant(t, ns, "deployer")
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, crbChart(ns))
	repo.Add(t, appChart("1.0.0"))
	bad := &helmv1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "escalate"},
		Spec: helmv1.HelmReleaseSpec{
			Chart:              helmv1.ChartSource{Repository: repo.URL(), Name: "escalate", Version: "1.0.0"},
			ServiceAccountName: "deployer",
		},
	}
	mustCreateHR(t, bad)
	mustCreateHR(t, asTenant(repoRelease(ns, "web", repo.URL(), "1.0.0", ""), "deployer"))

	hr := waitForbidden(t, ns, "escalate", user, "clusterrolebindings")
	if c := condition(hr, helmv1.ReleasedCondition); !strings.HasPrefix(c, "False "+helmv1.ForbiddenReason) {
		t.Errorf("Released: %s", c)
	}
	err := k8s.Get(context.Background(), client.ObjectKey{Name: ns + "-escalate-admin"}, &rbacv1.ClusterRoleBinding{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the ClusterRoleBinding: %v, want not found", err)
	}
	waitReady(t, ns, "web")
}

// targetNamespace: kube-system is refused to a service account that may
// not write there: Helm's storage read there already fails, nothing is
// installed.
func TestAServiceAccountCannotInstallIntoAnotherNamespace(t *testing.T) {
	ns := newNamespace(t)
	user := tenant(t, ns, "deployer")
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	hr := asTenant(repoRelease(ns, "sys", repo.URL(), "1.0.0", ""), "deployer")
	hr.Spec.TargetNamespace = "kube-system"
	mustCreateHR(t, hr)
	mustCreateHR(t, asTenant(repoRelease(ns, "web", repo.URL(), "1.0.0", ""), "deployer"))

	got := waitForbidden(t, ns, "sys", user, `"secrets"`, "kube-system")
	if h := history(t, "kube-system", got.GetReleaseName()); len(h) != 0 {
		t.Errorf("a release in kube-system: %v", h)
	}
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: "kube-system", Name: got.GetReleaseName()}, &appsv1.Deployment{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("a Deployment in kube-system: %v, want not found", err)
	}
	waitReady(t, ns, "web")
}

// peekChart copies, through lookup, the token of Secret canary in namespace
// from into a ConfigMap.
func peekChart() helmtest.Chart {
	return helmtest.Chart{
		Name: "peek", Version: "1.0.0", Values: "from: default\n",
		Templates: map[string]string{"configmap.yaml": `{{- $s := lookup "v1" "Secret" .Values.from "canary" }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}
data:
  token: {{ if $s }}{{ index $s.data "token" | b64dec | quote }}{{ else }}""{{ end }}
`},
	}
}

// A chart's lookup runs as the service account: a Secret of another
// namespace is refused to it, and its value reaches no object, status,
// Event or log. Acting as the operator, the same chart reads it, so the
// lookup is what the account changes.
func TestAServiceAccountsLookupSeesNoOtherNamespace(t *testing.T) {
	other := newNamespace(t)
	canary := "canary-" + other
	mustCreate(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "canary"},
		StringData: map[string]string{"token": canary},
	})
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, peekChart())
	values := "from: " + other

	legacy := newNamespace(t)
	mustCreateHR(t, &helmv1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: legacy, Name: "peek"},
		Spec: helmv1.HelmReleaseSpec{
			Chart:  helmv1.ChartSource{Repository: repo.URL(), Name: "peek", Version: "1.0.0"},
			Values: mustValues(values),
		},
	})
	waitReady(t, legacy, "peek")
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(context.Background(), clientKey(legacy, legacy+"-peek"), cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["token"] != canary {
		t.Fatalf("acting as the operator, the lookup read %q, want the canary", cm.Data["token"])
	}

	ns := newNamespace(t)
	user := tenant(t, ns, "deployer")
	mustCreateHR(t, &helmv1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "peek"},
		Spec: helmv1.HelmReleaseSpec{
			Chart:              helmv1.ChartSource{Repository: repo.URL(), Name: "peek", Version: "1.0.0"},
			Values:             mustValues(values),
			ServiceAccountName: "deployer",
		},
	})
	waitForbidden(t, ns, "peek", user, "lookup", `"secrets"`, other)
	cms := &corev1.ConfigMapList{}
	if err := k8s.List(context.Background(), cms, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, cm := range cms.Items {
		for k, v := range cm.Data {
			if strings.Contains(v, canary) {
				t.Errorf("the canary is in ConfigMap %s key %s of the tenant", cm.Name, k)
			}
		}
	}
	if h := history(t, ns, ns+"-peek"); len(h) != 0 {
		t.Errorf("the tenant's release: %v, want none", h)
	}
	assertNoCanary(t, ns, canary)
}

// A HelmRelease without a service account still acts as the operator: a
// chart with a ClusterRoleBinding installs (single-tenant mode, as Flux v1).
func TestWithoutAServiceAccountTheOperatorActs(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, crbChart(ns))
	mustCreateHR(t, &helmv1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "escalate"},
		Spec:       helmv1.HelmReleaseSpec{Chart: helmv1.ChartSource{Repository: repo.URL(), Name: "escalate", Version: "1.0.0"}},
	})
	waitReady(t, ns, "escalate")
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-escalate-admin"}}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(crb), crb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), crb) })
}

// An operator with a default service account (Reconciler.DefaultServiceAccount,
// from --default-service-account) acts, for a HelmRelease that names none,
// as that account of the HelmRelease's namespace; a HelmRelease that names
// one acts as its own. The suite's operator leaves defaultSANamespace to a
// second operator started here, with the default set.
func TestTheDefaultServiceAccount(t *testing.T) {
	ns := defaultSANamespace
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	mustCreate(t, namespace)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), namespace) })
	user := tenant(t, ns, "deployer")

	ctx, cancel := context.WithCancel(context.Background())
	opts := operatorOptions(t.TempDir())
	opts.DefaultServiceAccount = "deployer"
	done, err := testenv.StartInProcessWith(ctx, cfg, testLogger(), opts,
		cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}})
	t.Cleanup(func() {
		cancel()
		if done != nil {
			<-done
		}
	})
	if err != nil {
		t.Fatal(err)
	}

	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	repo.Add(t, crbChart(ns))
	mustCreateHR(t, repoRelease(ns, "web", repo.URL(), "1.0.0", ""))
	mustCreateHR(t, &helmv1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "escalate"},
		Spec:       helmv1.HelmReleaseSpec{Chart: helmv1.ChartSource{Repository: repo.URL(), Name: "escalate", Version: "1.0.0"}},
	})
	// "nobody" exists but may do nothing: its own name wins over the default.
	mustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nobody"}})
	mustCreateHR(t, asTenant(repoRelease(ns, "own", repo.URL(), "1.0.0", ""), "nobody"))

	waitReady(t, ns, "web")
	waitForbidden(t, ns, "escalate", user, "clusterrolebindings")
	waitForbidden(t, ns, "own", "system:serviceaccount:"+ns+":nobody", `"secrets"`)
	err = k8s.Get(context.Background(), client.ObjectKey{Name: ns + "-escalate-admin"}, &rbacv1.ClusterRoleBinding{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the ClusterRoleBinding: %v, want not found", err)
	}
	// Deleted while the operator runs, the releases go (as the account)
	// before the namespace does.
	for _, name := range []string{"web", "escalate", "own"} {
		if err := k8s.Delete(context.Background(), &helmv1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, time.Minute, "HelmReleases gone", func() (bool, string) {
		list := &helmv1.HelmReleaseList{}
		if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		return len(list.Items) == 0, fmt.Sprintf("%d left", len(list.Items))
	})
}
