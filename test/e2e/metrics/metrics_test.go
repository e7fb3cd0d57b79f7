// Package metrics holds the user story of the operator's Prometheus
// endpoint: the operator as its own process, a GitSync that applies a
// workload and a HelmRelease from git, image automation committing a new
// tag, and a scrape of --metrics-bind-address parsed as Prometheus parses it.
package metrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
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

// helmRelease is a HelmRelease kept in git beside the workload.
const helmRelease = `apiVersion: helm.fluxcd.io/v1
kind: HelmRelease
metadata:
  name: web
  namespace: NS
spec:
  chart:
    repository: REPO
    name: web
    version: 1.0.0
`

// TestMetricsAfterSyncReleaseAndAutomationCommit: after a GitSync applied a
// workload and a HelmRelease, the release was installed and image
// automation committed a new tag (through a registry that once answered
// 429 and with a client-side rate limit that makes requests wait), the
// metrics endpoint serves every documented family with counts where events
// happened, with the documented labels, and no label value holds a tag, a
// commit hash or a URL. A deleted HelmRelease's condition series go.
func TestMetricsAfterSyncReleaseAndAutomationCommit(t *testing.T) {
	reg := registrytest.NewServer(t, registrytest.WithPlainHTTP())
	host := reg.Host()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	reg.Push(t, "team/app", "1.0.0", t0)
	reg.Push(t, "team/app", "1.1.0", t0.Add(time.Hour))
	// The first tag list is answered 429: the host is paused for a second.
	var throttled atomic.Bool
	reg.Fail(func(r *http.Request, _ int) (int, http.Header, string, bool) {
		if strings.HasSuffix(r.URL.Path, "/tags/list") && throttled.CompareAndSwap(false, true) {
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}, "", true
		}
		return 0, nil, "", false
	})
	charts := helmtest.NewRepoServer(t)
	charts.Add(t, helmtest.Simple("web", "1.0.0"))
	charts.Add(t, helmtest.Simple("gone", "1.0.0"))

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "metrics-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	repo := gittest.NewRepo(t, map[string]string{
		"apps/app.yaml": testenv.AutomatedDeployment(ns.Name, "app", host+"/team/app:1.0.0", "semver:~1"),
		"apps/web.yaml": strings.NewReplacer("NS", ns.Name, "REPO", charts.URL()).Replace(helmRelease),
	})
	metricsAddr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	apiAddr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	testenv.StartOperator(t, env, "--metrics-bind-address="+metricsAddr, "--listen="+apiAddr,
		"--automation-interval=1s", "--registry-poll-interval=0s", "--registry-insecure-host="+host,
		"--registry-rps=2", "--registry-burst=1")

	gs := &helmfluxv1alpha1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "apps"},
		Spec: helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Paths: []string{"apps"}, Prune: true,
			Interval: metav1.Duration{Duration: time.Minute}},
	}
	if err := k8s.Create(context.Background(), gs); err != nil {
		t.Fatal(err)
	}
	// The commit automation pushes, applied by the GitSync.
	var commit string
	testenv.Eventually(t, 2*time.Minute, "the automation commit applied", func() (bool, string) {
		head := repo.RemoteHead("main")
		if !strings.Contains(repo.FileAt(head, "apps/app.yaml"), "app:1.1.0") {
			return false, "no commit yet"
		}
		commit = head.Hash.String()
		got := &helmfluxv1alpha1.GitSync{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(gs), got); err != nil {
			return false, err.Error()
		}
		return strings.HasSuffix(got.Status.LastAppliedRevision, commit), got.Status.LastAppliedRevision
	})
	waitReady(t, ns.Name, "web")

	// A HelmRelease outside git, installed and then deleted.
	gone := &helmv1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "gone"},
		Spec:       helmv1.HelmReleaseSpec{Chart: helmv1.ChartSource{Repository: charts.URL(), Name: "gone", Version: "1.0.0"}},
	}
	if err := k8s.Create(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns.Name, "gone")
	goneSeries := func(families map[string]*dto.MetricFamily) int {
		n := 0
		for _, m := range families["gotk_reconcile_condition"].GetMetric() {
			if l := labels(m); l["name"] == "gone" && l["kind"] == "HelmRelease" {
				n++
			}
		}
		return n
	}
	if n := goneSeries(scrape(t, metricsAddr)); n == 0 {
		t.Fatal("no gotk_reconcile_condition series for the installed HelmRelease gone")
	}
	if err := k8s.Delete(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, "HelmRelease gone deleted", func() (bool, string) {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(gone), &helmv1.HelmRelease{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	testenv.Eventually(t, time.Minute, "the condition series of gone removed", func() (bool, string) {
		n := goneSeries(scrape(t, metricsAddr))
		return n == 0, fmt.Sprintf("%d series left", n)
	})

	families := scrape(t, metricsAddr)
	key := map[string]string{"namespace": ns.Name, "name": "apps"}
	web := map[string]string{"namespace": ns.Name, "name": "web"}

	// Reconciles, Flux's names and labels.
	wantHistogram(t, families, "gotk_reconcile_duration_seconds", merge(key, map[string]string{"kind": "GitSync"}), 1)
	wantHistogram(t, families, "gotk_reconcile_duration_seconds", merge(web, map[string]string{"kind": "HelmRelease"}), 1)
	wantGauge(t, families, "gotk_reconcile_condition",
		merge(key, map[string]string{"kind": "GitSync", "type": meta.ReadyCondition, "status": "True"}), 1, 1)
	wantGauge(t, families, "gotk_reconcile_condition",
		merge(key, map[string]string{"kind": "GitSync", "type": meta.ReadyCondition, "status": "False"}), 0, 0)
	wantGauge(t, families, "gotk_reconcile_condition",
		merge(web, map[string]string{"kind": "HelmRelease", "type": meta.ReadyCondition, "status": "True"}), 1, 1)
	wantCounter(t, families, "helmflux_reconcile_total", map[string]string{"kind": "GitSync", "result": "success"}, 1)
	wantCounter(t, families, "helmflux_reconcile_total", map[string]string{"kind": "HelmRelease", "result": "success"}, 2)

	// GitSync.
	now := float64(time.Now().Unix())
	wantGauge(t, families, "helmflux_gitsync_last_applied_timestamp_seconds", key, now-600, now+1)
	wantCounter(t, families, "helmflux_gitsync_objects_total", merge(key, map[string]string{"action": "created"}), 2)
	wantCounter(t, families, "helmflux_gitsync_objects_total", merge(key, map[string]string{"action": "configured"}), 1)

	// Helm.
	wantHistogram(t, families, "helmflux_helm_action_duration_seconds", map[string]string{"action": "install", "outcome": "success"}, 2)
	wantHistogram(t, families, "helmflux_helm_action_duration_seconds", map[string]string{"action": "uninstall", "outcome": "success"}, 1)

	// Automation.
	wantCounter(t, families, "helmflux_automation_commits_total", key, 1)
	wantGauge(t, families, "helmflux_automation_holds", key, 0, 0)

	// Registry: hosts only.
	wantCounter(t, families, "helmflux_registry_requests_total", map[string]string{"host": host, "code": "200"}, 1)
	wantCounter(t, families, "helmflux_registry_requests_total", map[string]string{"host": host, "code": "429"}, 1)
	wantCounter(t, families, "helmflux_registry_throttled_total", map[string]string{"host": host}, 1)
	wantCounter(t, families, "helmflux_registry_rate_limited_total", map[string]string{"host": host}, 1)

	// Git: the file:// remote has no host.
	wantCounter(t, families, "helmflux_git_push_retries_total", map[string]string{"host": "local"}, 0)
	wantHistogram(t, families, "helmflux_git_fetch_duration_seconds", map[string]string{"host": "local", "outcome": "success"}, 1)

	// Queues.
	wantGauge(t, families, "helmflux_fluxapi_jobs_queued", nil, 0, 0)
	for _, c := range []string{"gitsync", "helmrelease", "imageautomation"} {
		wantGauge(t, families, "workqueue_depth", map[string]string{"name": c}, 0, 1e9)
	}

	// No label value is a tag, a commit, a URL or a path.
	bad := regexp.MustCompile(`(^|[^0-9])1\.[01]\.0|[0-9a-f]{40}|://|/`)
	for name, f := range families {
		if !strings.HasPrefix(name, "helmflux_") && !strings.HasPrefix(name, "gotk_") {
			continue
		}
		for _, m := range f.GetMetric() {
			for k, v := range labels(m) {
				if bad.MatchString(v) || strings.Contains(v, commit[:7]) {
					t.Errorf("%s has label %s=%q: a tag, commit or URL", name, k, v)
				}
			}
		}
	}
}

// waitReady waits until a HelmRelease is Ready.
func waitReady(t *testing.T, ns, name string) {
	t.Helper()
	testenv.Eventually(t, 2*time.Minute, "HelmRelease "+name+" Ready", func() (bool, string) {
		hr := &helmv1.HelmRelease{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, hr); err != nil {
			return false, err.Error()
		}
		c := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
		return c != nil && c.Status == metav1.ConditionTrue, fmt.Sprintf("%+v", hr.Status.Conditions)
	})
}

// scrape GETs /metrics and parses it as Prometheus's text format.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics") // #nosec G107 -- the test's operator
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s %s", resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// find returns the series of family name whose labels include want, failing
// when the family or the series is missing.
func find(t *testing.T, families map[string]*dto.MetricFamily, name string, typ dto.MetricType, want map[string]string) *dto.Metric {
	t.Helper()
	f, ok := families[name]
	if !ok {
		t.Errorf("no metric family %s", name)
		return nil
	}
	if f.GetType() != typ {
		t.Errorf("%s is a %s, want a %s", name, f.GetType(), typ)
		return nil
	}
	var seen []string
	for _, m := range f.GetMetric() {
		l := labels(m)
		match := true
		for k, v := range want {
			if l[k] != v {
				match = false
			}
		}
		if match {
			return m
		}
		seen = append(seen, fmt.Sprint(l))
	}
	sort.Strings(seen)
	t.Errorf("%s has no series with %v; it has %v", name, want, seen)
	return nil
}

func wantCounter(t *testing.T, families map[string]*dto.MetricFamily, name string, l map[string]string, atLeast float64) {
	t.Helper()
	if m := find(t, families, name, dto.MetricType_COUNTER, l); m != nil && m.GetCounter().GetValue() < atLeast {
		t.Errorf("%s%v = %v, want at least %v", name, l, m.GetCounter().GetValue(), atLeast)
	}
}

func wantGauge(t *testing.T, families map[string]*dto.MetricFamily, name string, l map[string]string, lo, hi float64) {
	t.Helper()
	if m := find(t, families, name, dto.MetricType_GAUGE, l); m != nil {
		if v := m.GetGauge().GetValue(); v < lo || v > hi {
			t.Errorf("%s%v = %v, want it in [%v, %v]", name, l, v, lo, hi)
		}
	}
}

func wantHistogram(t *testing.T, families map[string]*dto.MetricFamily, name string, l map[string]string, atLeast uint64) {
	t.Helper()
	if m := find(t, families, name, dto.MetricType_HISTOGRAM, l); m != nil {
		h := m.GetHistogram()
		if h.GetSampleCount() < atLeast || h.GetSampleSum() < 0 {
			t.Errorf("%s%v: %d samples summing to %v, want at least %d", name, l, h.GetSampleCount(), h.GetSampleSum(), atLeast)
		}
	}
}

// Go's profiling endpoints are off unless asked for, and then served on
// their own address, never on the metrics port Prometheus scrapes.
func TestProfilingIsServedOnlyWhenAskedFor(t *testing.T) {
	metricsAddr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	testenv.StartOperator(t, env, "--metrics-bind-address="+metricsAddr)
	if code, _ := get(t, "http://"+metricsAddr+"/debug/pprof/heap?debug=1"); code != http.StatusNotFound {
		t.Errorf("the metrics port answered /debug/pprof/heap %d, want 404", code)
	}

	pprofAddr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	testenv.StartOperator(t, env, "--metrics-bind-address=0", "--pprof-bind-address="+pprofAddr)
	code, body := get(t, "http://"+pprofAddr+"/debug/pprof/heap?debug=1")
	if code != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Errorf("--pprof-bind-address: /debug/pprof/heap answered %d %.200q, want a heap profile", code, body)
	}
}

// get returns the status code and body of a GET of url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second}
	resp, err := hc.Get(url) // #nosec G107 -- a loopback address of the test
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
