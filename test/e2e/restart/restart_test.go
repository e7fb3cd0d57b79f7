// Package restart holds the user stories of the operator as its own process,
// started with its flags, killed and started again: one that dies in the
// middle of a Helm upgrade — killed (a node failure) or stopped (a rolling
// update) — must never leave a release locked for good; one restarted with
// a warm registry cache must not downgrade; and what it reads once at start
// (--docker-config) counts after a restart.
package restart

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

var (
	env *envtest.Environment
	k8s client.Client
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(e *envtest.Environment, _ *rest.Config, c client.Client) (func() error, error) {
		env, k8s = e, c
		return testenv.StartWorkloads(context.Background(), env, testenv.WorkloadOptions{})
	}))
}

// slowChart's Pods take startAfter to start, so a waited upgrade lasts that
// long and then succeeds.
func slowChart(version string) helmtest.Chart {
	return helmtest.Chart{
		Name: "slow", Version: version,
		Values: "startAfter: 0s\n",
		Templates: map[string]string{"deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: 1
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
      annotations:
        ` + testenv.StartAfterAnnotation + `: {{ .Values.startAfter | quote }}
    spec:
      containers:
      - name: app
        image: example.com/slow:{{ .Chart.Version }}
`},
	}
}

// releaseStatuses returns the statuses of a release's revisions, oldest first.
func releaseStatuses(t *testing.T, ns, release string) []string {
	t.Helper()
	h, err := testenv.ReleaseHistory(context.Background(), k8s, ns, release)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < timeout {
		var ok bool
		if ok, last = cond(); ok {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
	return 0
}

func get(t *testing.T, ns, name string) *helmv1.HelmRelease {
	t.Helper()
	hr := &helmv1.HelmRelease{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, hr); err != nil {
		t.Fatal(err)
	}
	return hr
}

// deployedAt waits until the HelmRelease is Ready with the chart version.
func deployedAt(t *testing.T, ns, name, version string, timeout time.Duration) time.Duration {
	t.Helper()
	return waitFor(t, timeout, name+" Ready at "+version, func() (bool, string) {
		hr := get(t, ns, name)
		ready := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
		return ready != nil && ready.Status == metav1.ConditionTrue && hr.Status.Revision == version &&
				hr.Status.ReleaseStatus == "deployed" && hr.Status.ObservedGeneration == hr.Generation,
			fmt.Sprintf("%+v", hr.Status)
	})
}

func setVersion(t *testing.T, ns, name, version string) {
	t.Helper()
	hr := get(t, ns, name)
	hr.Spec.Chart.Version = version
	if err := k8s.Update(context.Background(), hr); err != nil {
		t.Fatal(err)
	}
}

func TestOperatorDeathDuringAnUpgradeNeverLeavesTheReleaseLocked(t *testing.T) {
	const timeout, interval = 20 * time.Second, 2 * time.Second
	repo := helmtest.NewRepoServer(t)
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		c := slowChart(v)
		if v != "1.0.0" {
			c.Values = "startAfter: 6s\n"
		}
		repo.Add(t, c)
	}
	op := testenv.StartOperator(t, env, "--charts-sync-interval="+interval.String())
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "restart-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	hr := &helmv1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "app"},
		Spec: helmv1.HelmReleaseSpec{
			Chart:   helmv1.ChartSource{Repository: repo.URL(), Name: "slow", Version: "1.0.0"},
			Wait:    ptr(true),
			Timeout: ptr(int64(timeout / time.Second)),
		},
	}
	if err := k8s.Create(context.Background(), hr); err != nil {
		t.Fatal(err)
	}
	release := ns.Name + "-app"
	deployedAt(t, ns.Name, "app", "1.0.0", time.Minute)

	// SIGKILL in the middle of a waited upgrade leaves the release pending.
	setVersion(t, ns.Name, "app", "1.1.0")
	waitFor(t, time.Minute, "the upgrade to start", func() (bool, string) {
		s := releaseStatuses(t, ns.Name, release)
		return s[len(s)-1] == "pending-upgrade", fmt.Sprint(s)
	})
	op.Kill()
	killed := time.Now()
	if s := releaseStatuses(t, ns.Name, release); s[len(s)-1] != "pending-upgrade" {
		t.Fatalf("after SIGKILL the release is %v, want pending-upgrade", s)
	}
	op.Start()
	// The lock is left alone until it is older than the timeout, then
	// cleared and the upgrade done again: within timeout + one interval
	// (plus the 6 s rollout and the restart).
	took := deployedAt(t, ns.Name, "app", "1.1.0", timeout+interval+30*time.Second)
	t.Logf("deployed at 1.1.0 %s after the SIGKILL (%s after the restart)", time.Since(killed).Round(time.Millisecond), took.Round(time.Millisecond))
	if s := releaseStatuses(t, ns.Name, release); strings.Join(s, ",") != "superseded,failed,deployed" {
		t.Errorf("history after the recovery: %v", s)
	}
	if !unlockEvent(t, ns.Name) {
		t.Error("no Event says the release was unlocked")
	}

	// SIGTERM cancels the running upgrade: the release ends failed, not pending.
	setVersion(t, ns.Name, "app", "1.2.0")
	waitFor(t, time.Minute, "the upgrade to start", func() (bool, string) {
		s := releaseStatuses(t, ns.Name, release)
		return s[len(s)-1] == "pending-upgrade", fmt.Sprint(s)
	})
	op.Stop()
	if s := releaseStatuses(t, ns.Name, release); s[len(s)-1] != "failed" {
		t.Fatalf("after SIGTERM the release is %v, want its last revision failed", s)
	}
	op.Start()
	deployedAt(t, ns.Name, "app", "1.2.0", interval+30*time.Second)
}

func unlockEvent(t *testing.T, ns string) bool {
	t.Helper()
	list := &eventsv1.EventList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.Reason == helmv1.ReleaseUnlockedReason && strings.Contains(e.Note, "Unlocked release") {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }
