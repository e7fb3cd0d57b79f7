package restart

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

// timeOrdered is a workload whose policy orders tags by creation time (glob
// filter), the policy Flux v1 downgraded after a restart: its fresh daemon
// knew the times of only some tags and picked the newest of those.
const timeOrdered = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: NS
  annotations:
    fluxcd.io/automated: "true"
    fluxcd.io/tag.app: glob:build-*
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
        - name: app
          image: HOST/team/app:build-1
`

// TestRestartWithAWarmCacheNeverDowngradesNorCommitsEarly: after a SIGKILL
// the operator starts from its file cache (no creation time is read again),
// commits nothing while a scan is incomplete — not even when the registry
// has lost the running tag — and moves on once the scan completes.
func TestRestartWithAWarmCacheNeverDowngradesNorCommitsEarly(t *testing.T) {
	reg := registrytest.NewServer(t, registrytest.WithPlainHTTP())
	host := reg.Host()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	reg.Push(t, "team/app", "build-1", t0)
	reg.Push(t, "team/app", "build-2", t0.Add(time.Hour))

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "restart-auto-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	repo := gittest.NewRepo(t, map[string]string{
		"apps/app.yaml": strings.NewReplacer("NS", ns.Name, "HOST", host).Replace(timeOrdered),
	})
	// Fast passes, tags listed on every pass, a log line per pass.
	op := testenv.StartOperator(t, env, "--automation-interval=1s", "--registry-poll-interval=0s", "--registry-insecure-host="+host, "--zap-log-level=debug")
	gs := &helmfluxv1alpha1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "apps"},
		Spec:       helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Paths: []string{"apps"}, Interval: metav1.Duration{Duration: time.Minute}},
	}
	if err := k8s.Create(context.Background(), gs); err != nil {
		t.Fatal(err)
	}
	waitTag(t, repo, "build-2")
	op.Kill()

	// While it is down, build-3 appears; its manifest cannot be read yet,
	// and the tag list has lost build-2.
	reg.Push(t, "team/app", "build-3", t0.Add(2*time.Hour))
	var blocked atomic.Bool
	blocked.Store(true)
	reg.Reset()
	reg.Fail(func(r *http.Request, _ int) (int, http.Header, string, bool) {
		if !blocked.Load() {
			return 0, nil, "", false
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "/manifests/build-3"):
			return http.StatusInternalServerError, nil, "", true
		case strings.HasSuffix(r.URL.Path, "/tags/list"):
			h := http.Header{"Content-Type": {"application/json"}}
			return http.StatusOK, h, `{"name":"team/app","tags":["build-1","build-3"]}`, true
		}
		return 0, nil, "", false
	})
	head := repo.RemoteHead("main").Hash.String()
	op.Start()
	waitFor(t, time.Minute, "a failed scan reported", func() (bool, string) {
		got := automationStatus(t, ns.Name, "apps")
		return strings.HasPrefix(got, "False ScanFailed"), got
	})
	// Passes that ran after the report, on the same incomplete scan, each of
	// which could have committed.
	testenv.WaitPasses(t, testenv.AutomationPasses(op.Log, ns.Name, "apps"), 3)
	if h := repo.RemoteHead("main").Hash.String(); h != head {
		t.Fatalf("a commit %s was pushed from an incomplete scan", h)
	}
	if got := automationStatus(t, ns.Name, "apps"); !strings.HasPrefix(got, "False ScanFailed") {
		t.Fatalf("the passes after the restart ended %s, want ScanFailed", got)
	}
	for _, r := range reg.Requests() {
		if strings.Contains(r.Path, "/manifests/build-1") || strings.Contains(r.Path, "/manifests/build-2") {
			t.Fatalf("after the restart the operator read %s again: the cache was not used", r.Path)
		}
	}

	// The registry recovers: one commit, to the newest tag.
	blocked.Store(false)
	waitTag(t, repo, "build-3")
}

// waitTag waits until the remote's app.yaml runs tag.
func waitTag(t *testing.T, repo *gittest.Repo, tag string) {
	t.Helper()
	waitFor(t, time.Minute, "a commit setting "+tag, func() (bool, string) {
		s := repo.FileAt(repo.RemoteHead("main"), "apps/app.yaml")
		return strings.Contains(s, "app:"+tag+"\n"), s
	})
}

func getGitSync(t *testing.T, ns, name string) *helmfluxv1alpha1.GitSync {
	t.Helper()
	gs := &helmfluxv1alpha1.GitSync{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, gs); err != nil {
		t.Fatal(err)
	}
	return gs
}

// automationStatus returns status.imageAutomation's Ready as "Status Reason: message".
func automationStatus(t *testing.T, ns, name string) string {
	t.Helper()
	gs := getGitSync(t, ns, name)
	if gs.Status.ImageAutomation == nil {
		return "no status"
	}
	c := apimeta.FindStatusCondition(gs.Status.ImageAutomation.Conditions, "Ready")
	if c == nil {
		return "no condition"
	}
	return fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
}
