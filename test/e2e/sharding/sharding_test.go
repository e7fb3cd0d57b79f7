// Package sharding holds the user stories of the operator run as shards:
// several operator processes on one control plane, each with its own
// --watch-label-selector on Flux's sharding.fluxcd.io/key label and a Lease
// of its own, each reconciling exactly its own GitSyncs and HelmReleases.
package sharding

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/controllers"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

var (
	env *envtest.Environment
	k8s client.Client
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(e *envtest.Environment, _ *rest.Config, c client.Client) (func() error, error) {
		env, k8s = e, c
		return nil, nil
	}))
}

// shard is one operator process and the address of its HTTP endpoints.
type shard struct {
	*testenv.Operator
	name, selector, addr string
}

// startShard starts an operator for the shard named name (its selector
// "sharding.fluxcd.io/key in (<name>)"), electing its leader in ns and
// serving its HTTP endpoints on a free port.
func startShard(t *testing.T, ns, name string) *shard {
	t.Helper()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	sel := helmfluxv1alpha1.ShardLabel + " in (" + name + ")"
	op := testenv.StartOperator(t, env, "--leader-elect", "--leader-election-namespace="+ns, "--listen="+addr,
		"--watch-label-selector="+sel, "--charts-sync-interval=1h")
	return &shard{Operator: op, name: name, selector: sel, addr: addr}
}

// lease returns the name and holder of the shard's Lease; the holder is
// "" while there is none.
func (s *shard) lease(t *testing.T, ns string) (string, string) {
	t.Helper()
	sel, err := labels.Parse(s.selector)
	if err != nil {
		t.Fatal(err)
	}
	name := controllers.LeaseName(sel)
	l := &coordinationv1.Lease{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, l); err != nil || l.Spec.HolderIdentity == nil {
		return name, ""
	}
	return name, *l.Spec.HolderIdentity
}

// names logs: the shard's log names the release (logActions's "release" key).
func (s *shard) names(release string) bool {
	return strings.Contains(s.Log(), fmt.Sprintf(`"release":%q`, release))
}

func release(ns, name, shardKey, repoURL, message string) *helmv1.HelmRelease {
	hr := &helmv1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: helmv1.HelmReleaseSpec{
			ReleaseName: name,
			Chart:       helmv1.ChartSource{Repository: repoURL, Name: "app", Version: "1.0.0"},
		},
	}
	if shardKey != "" {
		hr.Labels = map[string]string{helmfluxv1alpha1.ShardLabel: shardKey}
	}
	hr.Spec.Values = messageValues(message)
	return hr
}

// messageValues are values that set the chart's message.
func messageValues(message string) *helmv1.Values {
	return &helmv1.Values{Raw: fmt.Appendf(nil, `{"message":%q}`, message)}
}

func getRelease(t *testing.T, ns, name string) *helmv1.HelmRelease {
	t.Helper()
	hr := &helmv1.HelmRelease{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, hr); err != nil {
		t.Fatal(err)
	}
	return hr
}

func ready(hr *helmv1.HelmRelease) bool {
	return hr.Status.ObservedGeneration == hr.Generation && apimeta.IsStatusConditionTrue(hr.Status.Conditions, meta.ReadyCondition)
}

// waitReady waits until the HelmRelease is Ready for its generation.
func waitReady(t *testing.T, ns, name string) *helmv1.HelmRelease {
	t.Helper()
	var hr *helmv1.HelmRelease
	testenv.Eventually(t, 3*time.Minute, "HelmRelease "+name+" Ready", func() (bool, string) {
		hr = getRelease(t, ns, name)
		c := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
		return ready(hr), fmt.Sprintf("generation %d observed %d Ready %+v", hr.Generation, hr.Status.ObservedGeneration, c)
	})
	return hr
}

// message is what the release's ConfigMap (chart helmtest.Simple) says.
func message(t *testing.T, ns, release string) string {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: release + "-app"}, cm); err != nil {
		return ""
	}
	return cm.Data["MESSAGE"]
}

// gitRelease is a HelmRelease manifest with a values file in git (no shard
// label unless shardKey is set).
func gitRelease(ns, name, shardKey, repoURL, valuesFile string) string {
	lbl := ""
	if shardKey != "" {
		lbl = fmt.Sprintf("\n  labels:\n    %s: %s", helmfluxv1alpha1.ShardLabel, shardKey)
	}
	return fmt.Sprintf(`apiVersion: helm.fluxcd.io/v1
kind: HelmRelease
metadata:
  name: %s
  namespace: %s%s
spec:
  releaseName: %s
  chart: {repository: %q, name: app, version: 1.0.0}
  valuesFrom:
  - gitFileRef: {path: %s}
`, name, ns, lbl, name, repoURL, valuesFile)
}

// TestShardsReconcileOnlyTheirOwn: two operators, shards a and b, on one
// control plane. Each has its own Lease and reconciles exactly its own
// HelmReleases and GitSyncs; what is labelled for no shard or for a third
// is reconciled by neither. A GitSync's HelmReleases without a label join
// its shard and read their values files at its revision; one labelled for
// the other shard is told that its GitSync is not that shard's. A push for
// b's GitSync sent to a's receiver reaches b. Once a is killed, b's
// releases stay Ready and b applies a change of one of them, while a change
// of one of a's is left alone.
func TestShardsReconcileOnlyTheirOwn(t *testing.T) {
	const perShard = 12
	ns := testenv.NewNamespace(t, k8s, "shard-")
	charts := helmtest.NewRepoServer(t)
	charts.Add(t, helmtest.Simple("app", "1.0.0"))
	ctx := context.Background()

	a := startShard(t, ns, "a")
	b := startShard(t, ns, "b")
	for _, s := range []*shard{a, b} {
		testenv.Eventually(t, 2*time.Minute, "shard "+s.name+" to hold its Lease", func() (bool, string) {
			name, h := s.lease(t, ns)
			return h != "", "Lease " + name
		})
	}
	leaseA, holderA := a.lease(t, ns)
	leaseB, holderB := b.lease(t, ns)
	if leaseA == leaseB || leaseA == controllers.LeaderElectionID || leaseB == controllers.LeaderElectionID || holderA == holderB {
		t.Fatalf("shards share a Lease or a holder: a %s (%s), b %s (%s)", leaseA, holderA, leaseB, holderB)
	}

	// Not any shard's: no label, and a third shard nobody runs. Created
	// first, so both shards' caches have seen them before the others.
	for _, hr := range []*helmv1.HelmRelease{release(ns, "nobody", "", charts.URL(), "x"), release(ns, "shard-c", "c", charts.URL(), "x")} {
		if err := k8s.Create(ctx, hr); err != nil {
			t.Fatal(err)
		}
	}
	var own = map[*shard][]string{}
	for i := range perShard {
		for _, s := range []*shard{a, b} {
			name := fmt.Sprintf("%s-%03d", s.name, i)
			if err := k8s.Create(ctx, release(ns, name, s.name, charts.URL(), "hello "+name)); err != nil {
				t.Fatal(err)
			}
			own[s] = append(own[s], name)
		}
	}

	// GitSyncs: git-a (shard a) and git-b (shard b) each apply a HelmRelease
	// that names no shard and reads a values file; git-b also applies
	// "cross", labelled for shard a, whose values file is in b's checkout.
	repo := gittest.NewRepo(t, map[string]string{
		"a/release.yaml": gitRelease(ns, "from-git-a", "", charts.URL(), "values/a.yaml"),
		"b/release.yaml": gitRelease(ns, "from-git-b", "", charts.URL(), "values/b.yaml"),
		"b/cross.yaml":   gitRelease(ns, "cross", "a", charts.URL(), "values/b.yaml"),
		"values/a.yaml":  "message: values of a\n",
		"values/b.yaml":  "message: values of b\n",
	})
	const token = "shard-hook-token"
	if err := k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hook"}, Data: map[string][]byte{"token": []byte(token)}}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*shard{a, b} {
		gs := &helmfluxv1alpha1.GitSync{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "git-" + s.name, Labels: map[string]string{helmfluxv1alpha1.ShardLabel: s.name}},
			Spec: helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Ref: &helmfluxv1alpha1.GitRef{Branch: "main"}, Paths: []string{s.name},
				Interval: metav1.Duration{Duration: time.Hour}, WebhookSecretRef: &meta.LocalObjectReference{Name: "hook"}},
		}
		if err := k8s.Create(ctx, gs); err != nil {
			t.Fatal(err)
		}
	}

	for _, s := range []*shard{a, b} {
		for _, name := range own[s] {
			waitReady(t, ns, name)
		}
		hr := waitReady(t, ns, "from-git-"+s.name)
		if got := hr.Labels[helmfluxv1alpha1.ShardLabel]; got != s.name {
			t.Errorf("HelmRelease from-git-%s, applied by shard %s's GitSync without a label, has shard %q", s.name, s.name, got)
		}
		if got, want := message(t, ns, "from-git-"+s.name), "values of "+s.name; got != want {
			t.Errorf("release from-git-%s says %q, want %q from its GitSync's values file", s.name, got, want)
		}
	}

	// cross is a's, its GitSync b's: a clear refusal and a Warning Event.
	testenv.Eventually(t, 2*time.Minute, "cross refused as another shard's", func() (bool, string) {
		hr := getRelease(t, ns, "cross")
		c := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == helmv1.NotInInventoryReason &&
			strings.Contains(c.Message, "not one this operator reconciles") && strings.Contains(c.Message, helmfluxv1alpha1.ShardLabel), fmt.Sprintf("%+v", c)
	})
	testenv.Eventually(t, time.Minute, "a Warning Event on cross", func() (bool, string) {
		events := &eventsv1.EventList{}
		if err := k8s.List(ctx, events, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		for _, e := range events.Items {
			if e.Regarding.Name == "cross" && e.Type == corev1.EventTypeWarning && strings.Contains(e.Note, "not one this operator reconciles") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(events.Items))
	})
	if message(t, ns, "cross") != "" {
		t.Errorf("cross was installed with values read from another shard's checkout")
	}

	// A push for b's GitSync, sent to a's receiver: a does not see git-b,
	// but writes the request on it, and b applies the new values.
	repo.Write(map[string]string{"values/b.yaml": "message: pushed to b\n"})
	pushed := repo.Commit("b: new values")
	if code := testenv.PushHook(t, a.addr, ns, "git-b", token); code != http.StatusAccepted {
		t.Fatalf("a push for shard b's GitSync sent to shard a's receiver got %d, want 202", code)
	}
	testenv.Eventually(t, 2*time.Minute, "git-b to apply the pushed commit and from-git-b to read it", func() (bool, string) {
		gs := &helmfluxv1alpha1.GitSync{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "git-b"}, gs); err != nil {
			return false, err.Error()
		}
		requested := gs.Annotations[meta.ReconcileRequestAnnotation]
		m := message(t, ns, "from-git-b")
		return requested != "" && gs.Status.LastHandledReconcileAt == requested && strings.HasSuffix(gs.Status.LastAppliedRevision, pushed) && m == "pushed to b",
			fmt.Sprintf("requested %q handled %q applied %s message %q", requested, gs.Status.LastHandledReconcileAt, gs.Status.LastAppliedRevision, m)
	})

	// Each shard's log names each of its releases and none of the other's;
	// neither names the releases of no shard or of shard c, which nobody
	// has touched: no finalizer, no status, no release.
	for s, other := range map[*shard]*shard{a: b, b: a} {
		for _, name := range append(own[s], "from-git-"+s.name) {
			if !s.names(name) {
				t.Errorf("shard %s's log does not name its release %s", s.name, name)
			}
			if other.names(name) {
				t.Errorf("shard %s's log names release %s of shard %s", other.name, name, s.name)
			}
		}
	}
	for _, name := range []string{"nobody", "shard-c"} {
		hr := getRelease(t, ns, name)
		if len(hr.Finalizers) > 0 || len(hr.Status.Conditions) > 0 || hr.Status.ObservedGeneration != 0 || message(t, ns, name) != "" {
			t.Errorf("HelmRelease %s, of no running shard, was touched: finalizers %v, status %+v", name, hr.Finalizers, hr.Status)
		}
		if a.names(name) || b.names(name) {
			t.Errorf("a shard's log names release %s, of no running shard", name)
		}
	}
	for s, want := range map[*shard]string{a: "git-a", b: "git-b"} {
		if !strings.Contains(s.Log(), fmt.Sprintf(`{"name":%q,"namespace":%q}`, want, ns)) {
			t.Errorf("shard %s's log does not name its GitSync %s", s.name, want)
		}
		for _, other := range []string{"git-a", "git-b"} {
			if other != want && strings.Contains(s.Log(), fmt.Sprintf(`"GitSync":{"name":%q`, other)) {
				t.Errorf("shard %s reconciled GitSync %s", s.name, other)
			}
		}
	}

	// Shard a dies without a word. b goes on: its releases stay Ready, a
	// change of one is applied; a's Lease is not b's to take, and a change
	// of one of a's releases is left unobserved.
	a.Kill()
	changeA, changeB := own[a][0], own[b][0]
	for _, name := range []string{changeA, changeB} {
		hr := getRelease(t, ns, name)
		patch := client.MergeFrom(hr.DeepCopy())
		hr.Spec.Values = messageValues("changed " + name)
		if err := k8s.Patch(ctx, hr, patch); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 2*time.Minute, "shard b to apply the change of "+changeB, func() (bool, string) {
		hr := getRelease(t, ns, changeB)
		m := message(t, ns, changeB)
		return ready(hr) && m == "changed "+changeB, fmt.Sprintf("observed %d of %d, message %q", hr.Status.ObservedGeneration, hr.Generation, m)
	})
	hrA := getRelease(t, ns, changeA)
	if hrA.Status.ObservedGeneration == hrA.Generation || message(t, ns, changeA) != "hello "+changeA {
		t.Errorf("the change of %s, shard a's, was observed (%d of %d) or applied (%q) with shard a dead",
			changeA, hrA.Status.ObservedGeneration, hrA.Generation, message(t, ns, changeA))
	}
	if b.names(changeA) {
		t.Errorf("shard b's log names release %s of the dead shard a", changeA)
	}
	for _, name := range own[b] {
		if hr := getRelease(t, ns, name); !ready(hr) {
			t.Errorf("shard b's release %s is no longer Ready after shard a died: %+v", name, hr.Status.Conditions)
		}
	}
	if _, h := a.lease(t, ns); h != holderA {
		t.Errorf("shard a's Lease is held by %q after it died, want its last holder %q", h, holderA)
	}
	if _, h := b.lease(t, ns); h != holderB {
		t.Errorf("shard b's Lease is held by %q, want %q", h, holderB)
	}
}

// TestInvalidWatchLabelSelector: the operator refuses a selector it cannot
// parse at start, naming the flag, instead of watching everything.
func TestInvalidWatchLabelSelector(t *testing.T) {
	bin, err := testenv.OperatorBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kubeconfig, err := testenv.AdminKubeconfig(env, dir, "helmflux-operator")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--kubeconfig", kubeconfig, "--cache-dir", filepath.Join(dir, "cache"), "--listen=", "--metrics-bind-address=0",
		"--health-probe-bind-address=127.0.0.1:0", "--watch-label-selector=sharding.fluxcd.io/key in (a").CombinedOutput() // #nosec G204 -- the operator built for this test
	if err == nil {
		t.Fatalf("the operator started with an invalid --watch-label-selector:\n%s", out)
	}
	if !strings.Contains(string(out), "Invalid --watch-label-selector") {
		t.Errorf("the operator's error does not name the flag:\n%s", out)
	}
}

// TestAVerifyingGitSyncOfAnotherShardStillBindsTheChart: a GitSync with
// spec.verify binds the git charts of its repository in its namespace,
// whichever shard reconciles them. Shard a, alone, does not watch the
// GitSync (it is shard b's), yet refuses an unsigned chart commit of that
// repository for a HelmRelease labelled a: a shard label is no way around a
// verification.
func TestAVerifyingGitSyncOfAnotherShardStillBindsTheChart(t *testing.T) {
	ns := testenv.NewNamespace(t, k8s, "shard-verify-")
	ctx := context.Background()
	startShard(t, ns, "a")
	key := gittest.NewOpenPGPKey(t, "release manager")
	repo := gittest.NewRepo(t, map[string]string{
		"charts/app/Chart.yaml":               "apiVersion: v2\nname: app\nversion: 0.1.0\n",
		"charts/app/templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-unsigned\ndata: {}\n",
	}) // unsigned
	for _, obj := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "trusted-keys"}, Data: map[string][]byte{"manager.asc": []byte(key.PublicArmored)}},
		&helmfluxv1alpha1.GitSync{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "charts", Labels: map[string]string{helmfluxv1alpha1.ShardLabel: "b"}},
			Spec: helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Paths: []string{"releases"}, Interval: metav1.Duration{Duration: time.Hour},
				Verify: &helmfluxv1alpha1.GitVerification{Mode: helmfluxv1alpha1.VerifyHead, SecretRef: &meta.LocalObjectReference{Name: "trusted-keys"}}},
		},
		&helmv1.HelmRelease{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app", Labels: map[string]string{helmfluxv1alpha1.ShardLabel: "a"}},
			Spec:       helmv1.HelmReleaseSpec{ReleaseName: "app", Chart: helmv1.ChartSource{Git: repo.URL(), Ref: "main", Path: "charts/app"}},
		},
	} {
		if err := k8s.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 2*time.Minute, "the unsigned chart refused", func() (bool, string) {
		hr := getRelease(t, ns, "app")
		c := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == helmv1.ChartVerificationFailedReason &&
			strings.Contains(c.Message, "GitSync "+ns+"/charts"), fmt.Sprintf("%+v", c)
	})
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app-unsigned"}, cm); err == nil {
		t.Errorf("the unsigned chart was installed")
	}
	if gs := (&helmfluxv1alpha1.GitSync{}); k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "charts"}, gs) == nil && len(gs.Status.Conditions) > 0 {
		t.Errorf("shard a reconciled shard b's GitSync: %+v", gs.Status.Conditions)
	}
}
