package install

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// lockdownWait bounds each wait of the lockdown test: every step is
// triggered by a change, none by an interval.
const lockdownWait = 90 * time.Second

// tenant is a namespace whose owner may do anything in it and nothing
// outside it, with a ServiceAccount helmflux-reconciler bound the same
// way: the account the lockdown profile's --default-service-account acts as.
type tenant struct {
	ns string
	c  client.Client // the tenant's own user, without cluster rights
}

// reconciler is the lockdown profile's default service account.
const reconciler = "helmflux-reconciler"

// newLockdownTenant makes namespace ns, its owner and its default account.
func newLockdownTenant(t *testing.T, env *envtest.Environment, admin client.Client, ns string) tenant {
	t.Helper()
	ensureNamespace(t, admin, ns)
	user := ns + "-owner"
	for _, obj := range []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: reconciler}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "owner"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}},
		}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "owner"},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "owner"},
			Subjects: []rbacv1.Subject{
				{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: reconciler},
				{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user},
			}},
	} {
		if err := admin.Create(context.Background(), obj); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	u, err := env.AddUser(envtest.User{Name: user}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(u.Config(), client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return tenant{ns: ns, c: c}
}

// applyRBAC creates the install's ServiceAccounts, ClusterRoles and
// bindings, as `helm install` would before the operator's Pod starts.
func applyRBAC(t *testing.T, admin client.Client, r rendered) {
	t.Helper()
	for _, u := range r.objs {
		switch u.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
		default:
			continue
		}
		obj := u.DeepCopy()
		if err := admin.Create(context.Background(), obj); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
}

// serviceAccountKubeconfig writes a kubeconfig authenticating as the
// service account ns/name (by a client certificate with its user name and
// groups, which RBAC matches as it matches the account's token), so the
// operator runs with exactly what the install binds to its account.
func serviceAccountKubeconfig(t *testing.T, env *envtest.Environment, ns, name string) string {
	t.Helper()
	u, err := env.AddUser(envtest.User{
		Name:   "system:serviceaccount:" + ns + ":" + name,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := u.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const lockdownChart = `apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}
stringData:
  token: {{ .Values.token | default "none" | quote }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}
data:
  color: {{ .Values.color | default "blue" | quote }}
`

// peekTemplate copies every Secret value it can look up in namespace
// .Values.from into a ConfigMap of its own.
const peekTemplate = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}
data:
  {{- range $s := (lookup "v1" "Secret" .Values.from "").items }}
  {{- range $k, $v := $s.data }}
  {{ $s.metadata.name }}-{{ $k }}: {{ $v | b64dec | quote }}
  {{- end }}
  {{- end }}
`

// The lockdown profile of the chart (lockdown.enabled) on a real control
// plane, with the operator authenticated as the chart's service account and
// holding only what the chart binds it: two tenants, each owning one
// namespace and nothing else, share it. Tenant A's legitimate GitSync and
// HelmRelease reconcile; each attack of the issue is refused with a clear
// reason and an Event; and tenant A's canary Secret reaches nothing tenant
// B can read.
func TestLockdownProfile(t *testing.T) {
	r := renderChartWith(t, map[string]any{"lockdown": map[string]any{"enabled": true}})
	d, c := operatorDeployment(t, r)
	for _, want := range []string{"--no-cross-namespace-refs", "--default-service-account=helmflux-reconciler", "--fluxd-api=false", "--allow-local-urls=false", "--shared-git-identity=false", "--shared-docker-config=false"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("lockdown.enabled: the operator's args %q lack %s", c.Args, want)
		}
	}
	p := operatorPermissions(t, r, d)
	if len(p.external) != 0 {
		t.Errorf("lockdown.enabled binds the operator roles from outside the chart: %q", p.external)
	}
	secretWrite := grant{resource: "secrets", verb: "create"}
	if p.grants[secretWrite] || !p.grants[grant{resource: "secrets", verb: "create", own: true}] {
		t.Errorf("the operator may %v cluster-wide: %v, in its own namespace: %v; want only the latter, for its SSH key",
			secretWrite, p.grants[secretWrite], p.grants[grant{resource: "secrets", verb: "create", own: true}])
	}
	if t.Failed() {
		t.FailNow()
	}

	env, admin := controlPlane(t)
	ensureNamespace(t, admin, d.Namespace)
	applyRBAC(t, admin, r)
	kubeconfig := serviceAccountKubeconfig(t, env, d.Namespace, d.Spec.Template.Spec.ServiceAccountName)
	run := localRun(t, d, c)
	// The one flag the test adds: a periodic HelmRelease pass every few
	// seconds, so that "the next pass" over a forged record comes soon.
	run.args = append(run.args, "--charts-sync-interval=3s")
	op := testenv.StartOperatorWith(t, env, testenv.OperatorOptions{
		Args: run.args, Env: append(run.env, "KUBECONFIG="+kubeconfig), ReadyURL: run.readiness,
	})

	a := newLockdownTenant(t, env, admin, "tenant-a")
	b := newLockdownTenant(t, env, admin, "tenant-b")
	canary := "canary-" + strings.Repeat("a", 6) + fmt.Sprint(time.Now().UnixNano())
	gitCanary := "gitcanary-" + fmt.Sprint(time.Now().UnixNano())
	mustCreate(t, admin, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "canary"},
		StringData: map[string]string{"values.yaml": "token: " + canary, "token": canary}})

	charts := helmtest.NewRepoServer(t, helmtest.WithListener(listen(t)))
	charts.Add(t, helmtest.Chart{Name: "web", Version: "1.0.0", Templates: map[string]string{"web.yaml": lockdownChart}})
	charts.Add(t, helmtest.Chart{Name: "peek", Version: "1.0.0", Templates: map[string]string{"peek.yaml": peekTemplate}})

	// Tenant A: a repository with its own ConfigMap, a HelmRelease whose
	// values come from its canary Secret, a values file, and a
	// ClusterRoleBinding to cluster-admin pushed by an attacker.
	takeover := "tenant-a-takeover"
	t.Cleanup(func() {
		_ = admin.Delete(context.Background(), &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: takeover}})
	})
	repoA := gittest.NewRepo(t, map[string]string{
		"deploy/hello.yaml": fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n  namespace: %s\ndata:\n  color: blue\n", a.ns),
		"deploy/web.yaml": fmt.Sprintf(`apiVersion: helm.fluxcd.io/v1
kind: HelmRelease
metadata:
  name: web
  namespace: %s
spec:
  chart: {repository: %q, name: web, version: 1.0.0}
  valuesFrom:
  - secretKeyRef: {name: canary}
  - gitFileRef: {path: values/web.yaml}
`, a.ns, charts.URL()),
		"values/web.yaml": "color: green\nnote: " + gitCanary + "\n",
		"deploy/takeover.yaml": fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: %s
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {kind: ServiceAccount, namespace: %s, name: %s}
`, takeover, a.ns, reconciler),
	})
	srvA := gittest.NewHTTPServer(t, repoA.Root(), gittest.WithListener(listen(t)))
	mustCreate(t, a.c, &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "apps"},
		Spec: helmfluxv1alpha1.GitSyncSpec{URL: srvA.URL(gittest.RepoName), Paths: []string{"deploy"}, Interval: metav1.Duration{Duration: time.Hour}}})

	t.Run("a ClusterRoleBinding in a tenant's repository is refused, its own objects apply", func(t *testing.T) {
		waitGitSync(t, admin, a.ns, "apps", "False "+helmfluxv1alpha1.ForbiddenReason, "ClusterRoleBinding/"+takeover, "system:serviceaccount:"+a.ns+":"+reconciler)
		waitEvent(t, admin, a.ns, "apps", helmfluxv1alpha1.ForbiddenReason, "ClusterRoleBinding/"+takeover)
		if err := admin.Get(context.Background(), client.ObjectKey{Name: takeover}, &rbacv1.ClusterRoleBinding{}); !apierrors.IsNotFound(err) {
			t.Errorf("ClusterRoleBinding %s: %v, want NotFound", takeover, err)
		}
		cm := &corev1.ConfigMap{}
		if err := admin.Get(context.Background(), client.ObjectKey{Namespace: a.ns, Name: "hello"}, cm); err != nil {
			t.Errorf("tenant A's own ConfigMap: %v", err)
		}
		hr := waitHelmRelease(t, admin, a.ns, "web", "True")
		if hr.Status.ReleaseStatus != "deployed" {
			t.Errorf("tenant A's HelmRelease: release %q, want deployed", hr.Status.ReleaseStatus)
		}
		cm = &corev1.ConfigMap{}
		if err := admin.Get(context.Background(), client.ObjectKey{Namespace: a.ns, Name: a.ns + "-web"}, cm); err != nil || cm.Data["color"] != "green" {
			t.Errorf("tenant A's release ConfigMap: %v %v, want color green from its values file", cm.Data, err)
		}
	})

	release := func(name string, spec helmv1.HelmReleaseSpec, annotations map[string]string) {
		t.Helper()
		if spec.Chart.Repository == "" && spec.Chart.Git == "" {
			spec.Chart = helmv1.ChartSource{Repository: charts.URL(), Name: "web", Version: "1.0.0"}
		}
		mustCreate(t, b.c, &helmv1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: b.ns, Name: name, Annotations: annotations}, Spec: spec})
	}

	t.Run("targetNamespace kube-system is refused", func(t *testing.T) {
		release("kube", helmv1.HelmReleaseSpec{TargetNamespace: "kube-system"}, nil)
		waitHelmRelease(t, admin, b.ns, "kube", "False "+helmv1.CrossNamespaceRefReason, `targetNamespace "kube-system"`)
		waitEvent(t, admin, b.ns, "kube", helmv1.CrossNamespaceRefReason, "kube-system")
	})

	t.Run("a lookup of another tenant's Secrets reads nothing", func(t *testing.T) {
		release("peek", helmv1.HelmReleaseSpec{
			Chart:  helmv1.ChartSource{Repository: charts.URL(), Name: "peek", Version: "1.0.0"},
			Values: mustValues(t, "from: "+a.ns),
		}, nil)
		waitHelmRelease(t, admin, b.ns, "peek", "False "+helmv1.ForbiddenReason, "lookup")
		waitEvent(t, admin, b.ns, "peek", helmv1.ForbiddenReason, "lookup")
	})

	t.Run("forged helmflux.dev/sync annotations naming another tenant's GitSync read nothing", func(t *testing.T) {
		hr := waitHelmRelease(t, admin, a.ns, "web", "True")
		release("forged", helmv1.HelmReleaseSpec{
			ValuesFrom: []helmv1.ValuesFromSource{{GitFileRef: &helmv1.GitFileSelector{Path: "values/web.yaml"}}},
		}, map[string]string{
			helmfluxv1alpha1.SyncAnnotation: a.ns + "/apps",
			helmv1.RevisionAnnotation:       hr.Annotations[helmv1.RevisionAnnotation],
		})
		waitHelmRelease(t, admin, b.ns, "forged", "False "+helmv1.NotInInventoryReason)
		waitEvent(t, admin, b.ns, "forged", helmv1.NotInInventoryReason, a.ns+"/apps")
	})

	t.Run("file:// URLs are refused", func(t *testing.T) {
		mustCreate(t, b.c, &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: b.ns, Name: "local"},
			Spec: helmfluxv1alpha1.GitSyncSpec{URL: repoA.URL()}})
		waitGitSync(t, admin, b.ns, "local", "False "+helmfluxv1alpha1.LocalURLRefusedReason)
		waitEvent(t, admin, b.ns, "local", helmfluxv1alpha1.LocalURLRefusedReason)
		release("localchart", helmv1.HelmReleaseSpec{Chart: helmv1.ChartSource{Git: repoA.URL(), Path: "charts/web"}}, nil)
		waitHelmRelease(t, admin, b.ns, "localchart", "False "+helmv1.LocalURLRefusedReason)
		waitEvent(t, admin, b.ns, "localchart", helmv1.LocalURLRefusedReason)
	})

	t.Run("the operator's SSH deploy key is not a tenant's", func(t *testing.T) {
		host := strings.TrimPrefix(charts.URL(), "http://")
		mustCreate(t, b.c, &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: b.ns, Name: "ssh"},
			Spec: helmfluxv1alpha1.GitSyncSpec{URL: "ssh://git@" + host + "/repo.git"}})
		waitGitSync(t, admin, b.ns, "ssh", "False "+helmfluxv1alpha1.IdentityRefusedReason, "--shared-git-identity=false")
		waitEvent(t, admin, b.ns, "ssh", helmfluxv1alpha1.IdentityRefusedReason)
		release("sshchart", helmv1.HelmReleaseSpec{Chart: helmv1.ChartSource{Git: "ssh://git@" + host + "/charts.git", Path: "web"}}, nil)
		waitHelmRelease(t, admin, b.ns, "sshchart", "False "+helmv1.IdentityRefusedReason)
		waitEvent(t, admin, b.ns, "sshchart", helmv1.IdentityRefusedReason)
	})

	t.Run("a valuesFrom Secret of another namespace is refused", func(t *testing.T) {
		release("crossvalues", helmv1.HelmReleaseSpec{
			ValuesFrom: []helmv1.ValuesFromSource{{SecretKeyRef: &helmv1.OptionalKeySelector{Name: "canary", Namespace: a.ns}}},
		}, nil)
		waitHelmRelease(t, admin, b.ns, "crossvalues", "False "+helmv1.CrossNamespaceRefReason, a.ns)
		waitEvent(t, admin, b.ns, "crossvalues", helmv1.CrossNamespaceRefReason, a.ns)
	})

	t.Run("an image pull Secret of another namespace is not read", func(t *testing.T) {
		mustCreate(t, admin, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "regcred"},
			Type: corev1.SecretTypeDockerConfigJson,
			StringData: map[string]string{corev1.DockerConfigJsonKey: `{"auths":{"registry.invalid":{"auth":"` +
				base64.StdEncoding.EncodeToString([]byte("u:"+canary)) + `"}}}`}})
		repoB := gittest.NewRepo(t, map[string]string{"app.yaml": fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: %s
  annotations:
    fluxcd.io/automated: "true"
spec:
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      imagePullSecrets: [{name: regcred}]
      containers:
      - name: app
        image: %s/app:1.0.0
`, a.ns, strings.TrimPrefix(charts.URL(), "http://"))})
		srvB := gittest.NewHTTPServer(t, repoB.Root(), gittest.WithListener(listen(t)))
		mustCreate(t, b.c, &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: b.ns, Name: "pull"},
			Spec: helmfluxv1alpha1.GitSyncSpec{URL: srvB.URL(gittest.RepoName), Interval: metav1.Duration{Duration: time.Hour}}})
		testenv.Eventually(t, lockdownWait, "the automation pass reports the refused pull Secret", func() (bool, string) {
			gs := &helmfluxv1alpha1.GitSync{}
			if err := admin.Get(context.Background(), client.ObjectKey{Namespace: b.ns, Name: "pull"}, gs); err != nil {
				return false, err.Error()
			}
			ia := gs.Status.ImageAutomation
			if ia == nil {
				return false, "no imageAutomation status"
			}
			for _, f := range ia.Failures {
				if strings.Contains(f.Message, "namespace "+a.ns+", not the GitSync's namespace "+b.ns) {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%+v", ia.Failures)
		})
	})

	t.Run("an image on the operator's loopback is not scanned", func(t *testing.T) {
		repo := gittest.NewRepo(t, map[string]string{"app.yaml": fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: loop
  namespace: %s
  annotations:
    fluxcd.io/automated: "true"
spec:
  selector: {matchLabels: {app: loop}}
  template:
    metadata: {labels: {app: loop}}
    spec:
      containers:
      - name: app
        image: 127.0.0.1:5000/app:1.0.0
`, b.ns)})
		srv := gittest.NewHTTPServer(t, repo.Root(), gittest.WithListener(listen(t)))
		mustCreate(t, b.c, &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: b.ns, Name: "loop"},
			Spec: helmfluxv1alpha1.GitSyncSpec{URL: srv.URL(gittest.RepoName), Interval: metav1.Duration{Duration: time.Hour}}})
		testenv.Eventually(t, lockdownWait, "the automation pass refuses the loopback registry", func() (bool, string) {
			gs := &helmfluxv1alpha1.GitSync{}
			if err := admin.Get(context.Background(), client.ObjectKey{Namespace: b.ns, Name: "loop"}, gs); err != nil {
				return false, err.Error()
			}
			if ia := gs.Status.ImageAutomation; ia != nil {
				for _, f := range ia.Failures {
					if strings.Contains(f.Message, "127.0.0.1:5000/app") && strings.Contains(f.Message, "--allow-local-urls") {
						return true, ""
					}
				}
				return false, fmt.Sprintf("%+v", ia.Failures)
			}
			return false, "no imageAutomation status"
		})
	})

	t.Run("a forged release Secret adding a ClusterRoleBinding gains nothing", func(t *testing.T) {
		release("own", helmv1.HelmReleaseSpec{DriftDetection: &helmv1.DriftDetection{Mode: helmv1.DriftDetectionEnabled}}, nil)
		waitHelmRelease(t, admin, b.ns, "own", "True")
		forged := "tenant-b-forged"
		t.Cleanup(func() {
			_ = admin.Delete(context.Background(), &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: forged}})
		})
		forgeRelease(t, b.c, b.ns, b.ns+"-own", fmt.Sprintf(`---
# Source: web/templates/forged.yaml
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: %s
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {kind: ServiceAccount, namespace: %s, name: %s}
`, forged, b.ns, reconciler))
		hr := &helmv1.HelmRelease{}
		if err := b.c.Get(context.Background(), client.ObjectKey{Namespace: b.ns, Name: "own"}, hr); err != nil {
			t.Fatal(err)
		}
		// The next periodic pass compares the record's objects with the
		// cluster as tenant B's account, which may not even read the
		// binding, let alone create it.
		waitHelmRelease(t, admin, b.ns, "own", "False "+helmv1.ForbiddenReason, forged, "system:serviceaccount:"+b.ns+":"+reconciler)
		if err := admin.Get(context.Background(), client.ObjectKey{Name: forged}, &rbacv1.ClusterRoleBinding{}); !apierrors.IsNotFound(err) {
			t.Errorf("ClusterRoleBinding %s after the pass over the forged record: %v, want NotFound", forged, err)
		}
	})

	t.Run("an unsigned commit changing only a git chart of a verified repository is refused", func(t *testing.T) {
		key := gittest.NewOpenPGPKey(t, "tenant A's release manager")
		mustCreate(t, a.c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "trusted-keys"},
			Data: map[string][]byte{"manager.asc": []byte(key.PublicArmored)}})
		repo := gittest.NewRepo(t, nil)
		srv := gittest.NewHTTPServer(t, repo.Root(), gittest.WithListener(listen(t)))
		url := srv.URL(gittest.RepoName)
		repo.CommitFiles("Add the chart and its release", map[string]string{
			"charts/signed/Chart.yaml":        "apiVersion: v2\nname: signed\nversion: 0.1.0\n",
			"charts/signed/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  from: signed\n",
			"deploy/signed.yaml":              fmt.Sprintf("apiVersion: helm.fluxcd.io/v1\nkind: HelmRelease\nmetadata:\n  name: signed\n  namespace: %s\nspec:\n  chart: {git: %q, ref: main, path: charts/signed}\n", a.ns, url),
		}, gittest.SignedBy(key))
		mustCreate(t, a.c, &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "signed"},
			Spec: helmfluxv1alpha1.GitSyncSpec{URL: url, Paths: []string{"deploy"}, Interval: metav1.Duration{Duration: time.Hour},
				Verify: &helmfluxv1alpha1.GitVerification{Mode: helmfluxv1alpha1.VerifyHead, SecretRef: &meta.LocalObjectReference{Name: "trusted-keys"}}}})
		waitHelmRelease(t, admin, a.ns, "signed", "True")
		unsigned := repo.CommitFiles("Change only the chart", map[string]string{
			"charts/signed/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  from: attacker\n",
		})
		hr := &helmv1.HelmRelease{}
		if err := a.c.Get(context.Background(), client.ObjectKey{Namespace: a.ns, Name: "signed"}, hr); err != nil {
			t.Fatal(err)
		}
		testenv.RequestReconcile(t, a.c, hr)
		waitHelmRelease(t, admin, a.ns, "signed", "False "+helmv1.ChartVerificationFailedReason, unsigned)
		waitEvent(t, admin, a.ns, "signed", helmv1.ChartVerificationFailedReason, unsigned)
		cm := &corev1.ConfigMap{}
		if err := admin.Get(context.Background(), client.ObjectKey{Namespace: a.ns, Name: a.ns + "-signed"}, cm); err != nil || cm.Data["from"] != "signed" {
			t.Errorf("the release's ConfigMap: %v %v, want the signed chart's", cm.Data, err)
		}
	})

	t.Run("the fluxd API is not served without a token, the receivers are", func(t *testing.T) {
		listenAddr := ""
		for _, arg := range run.args {
			if v, ok := strings.CutPrefix(arg, "--listen="); ok {
				listenAddr = v
			}
		}
		resp, err := http.Get("http://" + listenAddr + "/api/flux/v6/services")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /api/flux/v6/services: %d, want 404: the API acts on every namespace", resp.StatusCode)
		}
		resp, err = http.Post("http://"+listenAddr+"/registry-hooks", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			t.Errorf("POST /registry-hooks: 404, want the receiver served")
		}
	})

	t.Run("tenant A's canary reaches nothing tenant B can read", func(t *testing.T) {
		testenv.AssertNoLeak(t, admin, canary, testenv.Leaks{Logs: []string{op.Log()}})
		testenv.AssertNoLeak(t, admin, gitCanary, testenv.Leaks{Logs: []string{op.Log()}})
		for _, list := range []client.ObjectList{&corev1.ConfigMapList{}, &corev1.SecretList{}, &corev1.EventList{},
			&helmv1.HelmReleaseList{}, &helmfluxv1alpha1.GitSyncList{}} {
			if err := b.c.List(context.Background(), list, client.InNamespace(b.ns)); err != nil {
				t.Fatal(err)
			}
			raw, err := json.Marshal(list)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{canary, gitCanary, base64.StdEncoding.EncodeToString([]byte(canary))} {
				if bytes.Contains(raw, []byte(s)) {
					t.Errorf("%T of tenant B holds tenant A's canary", list)
				}
			}
		}
	})
}

// listen is a listener on the machine's network address, for a server
// the lockdown profile lets the operator reach.
func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := testenv.HostListener()
	if err != nil {
		t.Skipf("the lockdown test serves git and charts on a non-loopback address: %v", err)
	}
	return l
}

func mustCreate(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

func mustValues(t *testing.T, doc string) *helmv1.Values {
	t.Helper()
	v := &helmv1.Values{}
	j, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.UnmarshalJSON(j); err != nil {
		t.Fatal(err)
	}
	return v
}

// readyOf is "<status> <reason>: <message>" of the Ready condition.
func readyOf(conds []metav1.Condition, typ string) string {
	c := apimeta.FindStatusCondition(conds, typ)
	if c == nil {
		return "no " + typ + " condition"
	}
	return string(c.Status) + " " + c.Reason + ": " + c.Message
}

// waitGitSync waits until the GitSync's Ready begins with want (a status and
// reason) and holds every one of parts.
func waitGitSync(t *testing.T, c client.Client, ns, name, want string, parts ...string) *helmfluxv1alpha1.GitSync {
	t.Helper()
	gs := &helmfluxv1alpha1.GitSync{}
	testenv.Eventually(t, lockdownWait, fmt.Sprintf("GitSync %s/%s Ready %s", ns, name, want), func() (bool, string) {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, gs); err != nil {
			return false, err.Error()
		}
		r := readyOf(gs.Status.Conditions, meta.ReadyCondition)
		return matches(r, want, parts), r
	})
	return gs
}

// waitHelmRelease waits until the HelmRelease's Ready begins with want and
// holds every one of parts.
func waitHelmRelease(t *testing.T, c client.Client, ns, name, want string, parts ...string) *helmv1.HelmRelease {
	t.Helper()
	return waitHelmReleaseCondition(t, c, ns, name, meta.ReadyCondition, want, parts...)
}

// waitHelmReleaseCondition waits until condition typ begins with want and
// holds every one of parts.
func waitHelmReleaseCondition(t *testing.T, c client.Client, ns, name, typ, want string, parts ...string) *helmv1.HelmRelease {
	t.Helper()
	hr := &helmv1.HelmRelease{}
	testenv.Eventually(t, lockdownWait, fmt.Sprintf("HelmRelease %s/%s %s %s", ns, name, typ, want), func() (bool, string) {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, hr); err != nil {
			return false, err.Error()
		}
		r := readyOf(hr.Status.Conditions, typ)
		return matches(r, want, parts), r
	})
	return hr
}

func matches(s, prefix string, parts []string) bool {
	if !strings.HasPrefix(s, prefix) {
		return false
	}
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// waitEvent waits for a Warning Event with reason about object name whose
// note holds every one of parts.
func waitEvent(t *testing.T, c client.Client, ns, name, reason string, parts ...string) {
	t.Helper()
	testenv.Eventually(t, lockdownWait, fmt.Sprintf("a %s Warning Event on %s/%s", reason, ns, name), func() (bool, string) {
		evs := &eventsv1.EventList{}
		if err := c.List(context.Background(), evs, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range evs.Items {
			if e.Regarding.Name != name {
				continue
			}
			seen = append(seen, e.Type+" "+e.Reason+": "+e.Note)
			if e.Type == corev1.EventTypeWarning && e.Reason == reason && matches(e.Note, "", parts) {
				return true, ""
			}
		}
		return false, strings.Join(seen, " | ")
	})
}

// forgeRelease appends manifest to the newest record of a Helm release,
// as someone who may write the Secrets of its namespace could: Helm's
// record is base64 of gzipped JSON in the Secret's "release" key.
func forgeRelease(t *testing.T, c client.Client, ns, release, manifest string) {
	t.Helper()
	list := &corev1.SecretList{}
	if err := c.List(context.Background(), list, client.InNamespace(ns), client.MatchingLabels{"owner": "helm", "name": release}); err != nil {
		t.Fatal(err)
	}
	var newest *corev1.Secret
	for i := range list.Items {
		s := &list.Items[i]
		if newest == nil || s.Labels["version"] > newest.Labels["version"] {
			newest = s
		}
	}
	if newest == nil {
		t.Fatalf("no release record of %s/%s", ns, release)
	}
	raw, err := base64.StdEncoding.DecodeString(string(newest.Data["release"]))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	rel := map[string]any{}
	if err := json.Unmarshal(plain, &rel); err != nil {
		t.Fatal(err)
	}
	rel["manifest"] = rel["manifest"].(string) + "\n" + manifest
	plain, err = json.Marshal(rel)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	newest.Data["release"] = []byte(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if err := c.Update(context.Background(), newest); err != nil {
		t.Fatal(err)
	}
}
