package bench

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// hrRequests counts, from the API server's own apiserver_request_total, the
// requests one release costs: first the floor, plain Helm SDK installs and
// upgrades of benchChart (helmtest.SDK: action.Install / action.Upgrade,
// Helm's Secret storage), then the operator (its own process, default
// flags) installing a wave of HelmReleases of the same chart and upgrading
// them all after a change of their values. Everything runs on one control
// plane. Requests that are not the workload's are left out: the
// benchmark's own (its HelmRelease creates and updates, its polls, its
// scrapes of /metrics, all counted on its side), Leases, and the API
// server's own background requests (their rate measured over an idle
// window beforehand); the notes say how many each was.
var hrRequests = benchmark{
	name: "hr_requests",
	names: []string{"hr_floor_install_requests", "hr_floor_upgrade_requests",
		"hr_install_requests", "hr_upgrade_requests"},
	run: func(t *testing.T, report func(string, float64)) {
		const releases = 50
		env, cfg := startControlPlane(t)
		own, mine := countedConfig(cfg)
		c := newClient(t, own)
		m := newMetricsScraper(t, own)
		repo := helmtest.NewRepoServer(t)
		repo.Add(t, benchChart())
		tgz, err := benchChart().Package()
		if err != nil {
			t.Fatal(err)
		}
		freshChart := func() *chart.Chart {
			ch, err := loader.LoadArchive(bytes.NewReader(tgz))
			if err != nil {
				t.Fatal(err)
			}
			return ch
		}

		// The floor.
		floorNS := createNamespace(t, c, "bench-hr-req-floor")
		sdk, err := helmtest.NewSDK(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		// A warm-up release: discovery and capabilities, read once per SDK.
		if err := sdk.Install(ctx, floorNS, "warmup", freshChart(), map[string]any{}); err != nil {
			t.Fatal(err)
		}
		background := m.idleRate(t, mine, 20*time.Second)
		w := m.begin(t, mine)
		for i := range releases {
			if err := sdk.Install(ctx, floorNS, fmt.Sprintf("floor-%03d", i), freshChart(), map[string]any{}); err != nil {
				t.Fatal(err)
			}
		}
		floorInstall := w.end(t, background)
		w = m.begin(t, mine)
		for i := range releases {
			if err := sdk.Upgrade(ctx, floorNS, fmt.Sprintf("floor-%03d", i), freshChart(), map[string]any{"message": "upgraded"}); err != nil {
				t.Fatal(err)
			}
		}
		floorUpgrade := w.end(t, background)

		// The operator.
		testenv.StartOperator(t, env)
		// A warm-up HelmRelease: the operator's discovery, chart index and
		// archive, read once per process.
		warm := createNamespace(t, c, "bench-hr-req-warmup")
		create(t, c, benchRelease(warm, "warmup", repo.URL()))
		pollAllReady(t, c, warm, 1, 2*time.Minute)
		ns := createNamespace(t, c, "bench-hr-req")
		background = m.idleRate(t, mine, 20*time.Second)
		w = m.begin(t, mine)
		for i := range releases {
			create(t, c, benchRelease(ns, fmt.Sprintf("app-%03d", i), repo.URL()))
		}
		pollAllReady(t, c, ns, releases, 5*time.Minute)
		install := w.end(t, background)

		list := &helmv1.HelmReleaseList{}
		if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		w = m.begin(t, mine)
		for i := range list.Items {
			hr := &list.Items[i]
			hr.Spec.Values = &helmv1.Values{Raw: []byte(`{"message":"upgraded"}`)}
			if err := c.Update(ctx, hr); err != nil {
				t.Fatal(err)
			}
		}
		pollAllReady(t, c, ns, releases, 5*time.Minute)
		upgrade := w.end(t, background)

		report("hr_floor_install_requests", floorInstall.per(releases))
		report("hr_floor_upgrade_requests", floorUpgrade.per(releases))
		report("hr_install_requests", install.per(releases))
		report("hr_upgrade_requests", upgrade.per(releases))
		for _, x := range []struct {
			name string
			w    waveCount
		}{{"floor install", floorInstall}, {"floor upgrade", floorUpgrade}, {"operator install", install}, {"operator upgrade", upgrade}} {
			t.Logf("note: hr_requests: %s: %s requests per release (%.2f before rounding each kind) over %d releases (%s); %s", x.name, format(x.w.per(releases)), x.w.raw(releases), releases,
				x.w.workload.summary(releases), x.w.excluded(releases))
		}
		t.Logf("note: hr_requests: the floor is helmtest.SDK, one action.Configuration per namespace kept for the wave, so " +
			"discovery and capabilities are not read per action; Helm's reachability probe (GET /version) is made per action " +
			"but kube-apiserver does not count /version (nor /metrics) in apiserver_request_total, and helmflux's Runner skips it; " +
			"POST ipaddresses is the API server's own ClusterIP allocation for the chart's Service, in the floor and the operator alike")
	},
}

// requestKey names a request as the API server's apiserver_request_total
// labels do: the verb (GET, LIST, WATCH, POST, PUT, PATCH, APPLY, DELETE)
// and the resource with its subresource; "-" for a non-resource path such
// as /version or /metrics. A dry-run is prefixed "DRYRUN-".
func requestKey(verb, resource, subresource string, dryRun bool) string {
	if resource == "" {
		resource = "-"
	}
	if subresource != "" {
		resource += "/" + subresource
	}
	if dryRun {
		verb = "DRYRUN-" + verb
	}
	return verb + " " + resource
}

// counts are requests by requestKey.
type counts map[string]float64

func (c counts) add(o counts, sign float64) {
	for k, v := range o {
		c[k] += sign * v
	}
}

func (c counts) total() float64 {
	var n float64
	for _, v := range c {
		n += v
	}
	return n
}

// summary lists the counts per release, most first: "PATCH helmreleases/status 1, ...".
func (c counts) summary(per int) string {
	keys := make([]string, 0, len(c))
	for k, v := range c {
		if v/float64(per) >= 0.005 || v/float64(per) <= -0.005 {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if c[keys[i]] != c[keys[j]] {
			return c[keys[i]] > c[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s", k, format(round2(c[k]/float64(per)))))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func round2(v float64) float64 { return float64(int64(v*100+0.5*sign(v))) / 100 }

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}

// ownRequests counts the benchmark's own requests by requestKey, on its side.
type ownRequests struct {
	mu     sync.Mutex
	counts counts
}

// countedConfig returns a copy of cfg whose requests are counted in the
// returned ownRequests.
func countedConfig(cfg *rest.Config) (*rest.Config, *ownRequests) {
	o := &ownRequests{counts: counts{}}
	out := rest.CopyConfig(cfg)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			o.mu.Lock()
			o.counts[clientKey(req)]++
			o.mu.Unlock()
			return rt.RoundTrip(req)
		})
	})
	return out, o
}

func (o *ownRequests) snapshot() counts {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := counts{}
	out.add(o.counts, 1)
	return out
}

// clientKey is the requestKey the API server counts a client's request under.
func clientKey(req *http.Request) string {
	q := req.URL.Query()
	parts, ok := testenv.ResourcePath(req.URL.Path)
	if !ok { // a non-resource path, which the API server counts under it
		return requestKey(req.Method, "", strings.Trim(req.URL.Path, "/"), false)
	}
	var resource, sub string
	named := len(parts) >= 2
	if len(parts) > 0 {
		resource = parts[0]
	}
	if len(parts) > 2 {
		sub = strings.Join(parts[2:], "/")
	}
	verb := req.Method
	switch {
	case verb == http.MethodGet && q.Get("watch") == "true":
		verb = "WATCH"
	case verb == http.MethodGet && !named:
		verb = "LIST"
	case verb == http.MethodPatch && req.Header.Get("Content-Type") == "application/apply-patch+yaml":
		verb = "APPLY"
	}
	return requestKey(verb, resource, sub, q.Has("dryRun"))
}

// metricsScraper reads apiserver_request_total from kube-apiserver's /metrics.
type metricsScraper struct {
	rc rest.Interface
}

func newMetricsScraper(t *testing.T, cfg *rest.Config) *metricsScraper {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &metricsScraper{rc: cs.CoreV1().RESTClient()}
}

// scrape returns apiserver_request_total by requestKey.
func (m *metricsScraper) scrape(t *testing.T) counts {
	t.Helper()
	raw, err := m.rc.Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("scrape the API server's metrics: %v", err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse the API server's metrics: %v", err)
	}
	out := counts{}
	f := families["apiserver_request_total"]
	if f == nil {
		t.Fatal("the API server's metrics have no apiserver_request_total")
	}
	for _, mt := range f.GetMetric() {
		l := map[string]string{}
		for _, lp := range mt.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		dry := l["dry_run"] != "" && l["dry_run"] != "false"
		out[requestKey(l["verb"], l["resource"], l["subresource"], dry)] += mt.GetCounter().GetValue()
	}
	return out
}

// idleRate measures the requests per second that nobody of the benchmark
// makes (the API server's own controllers) over window, leases excluded.
func (m *metricsScraper) idleRate(t *testing.T, own *ownRequests, window time.Duration) counts {
	t.Helper()
	w := m.begin(t, own)
	time.Sleep(window)
	c := w.end(t, nil)
	rate := counts{}
	rate.add(c.workload, 1/w.took.Seconds())
	return rate
}

// wave counts the requests between begin and end.
type wave struct {
	m      *metricsScraper
	own    *ownRequests
	server counts
	mine   counts
	start  time.Time
	took   time.Duration
}

// waveCount is what a wave cost, split into the workload's requests and
// the ones left out.
type waveCount struct {
	workload   counts
	own        counts
	leases     counts
	background counts
}

// per is the wave's requests per release: each kind's count per release
// rounded to a whole request, since each request of an install or upgrade
// recurs with every release. What is left is once per wave or a residue of
// the background estimate (a few hundredths; raw says it).
func (w waveCount) per(n int) float64 {
	var sum float64
	for _, v := range w.workload {
		sum += math.Round(v / float64(n))
	}
	return sum
}

// raw is the requests per release before rounding.
func (w waveCount) raw(n int) float64 { return round2(w.workload.total() / float64(n)) }

func (w waveCount) excluded(n int) string {
	return fmt.Sprintf("left out per release: the benchmark's own %s (%s); leases %s; the API server's background %s (%s)",
		format(round2(w.own.total()/float64(n))), w.own.summary(n), format(round2(w.leases.total()/float64(n))),
		format(round2(w.background.total()/float64(n))), w.background.summary(n))
}

func (m *metricsScraper) begin(t *testing.T, own *ownRequests) *wave {
	t.Helper()
	w := &wave{m: m, own: own, mine: own.snapshot()}
	w.server = m.scrape(t)
	w.start = time.Now()
	return w
}

// end waits until the workload's requests stop (asynchronous ones such as
// Events land a little later), then returns the counts since begin;
// background, a rate, is subtracted over the wave's time.
func (w *wave) end(t *testing.T, background counts) waveCount {
	t.Helper()
	var server counts
	var prev float64 = -1
	for range 30 {
		server = w.m.scrape(t)
		mine := w.own.snapshot()
		d := counts{}
		d.add(server, 1)
		d.add(w.server, -1)
		d.add(mine, -1)
		d.add(w.mine, 1)
		var n float64
		for k, v := range d {
			if !strings.HasSuffix(k, " leases") {
				n += v
			}
		}
		if prev >= 0 && n-prev <= 2 { // the API server's own requests never stop
			break
		}
		prev = n
		time.Sleep(2 * time.Second)
	}
	w.took = time.Since(w.start)
	mine := w.own.snapshot()
	out := waveCount{workload: counts{}, own: counts{}, leases: counts{}, background: counts{}}
	out.own.add(mine, 1)
	out.own.add(w.mine, -1)
	for k, v := range server {
		v -= w.server[k] + out.own[k]
		if v == 0 {
			continue
		}
		if strings.HasSuffix(k, " leases") {
			out.leases[k] = v
			continue
		}
		out.workload[k] = v
	}
	for k, rate := range background {
		b := rate * w.took.Seconds()
		out.background[k] = b
		out.workload[k] -= b
	}
	return out
}

// pollAllReady waits until n HelmReleases of ns are Ready for their
// generation, listing them every half second (requests the benchmark
// counts as its own, unlike a watch's, which the API server counts only
// when it ends).
func pollAllReady(t *testing.T, c client.Client, ns string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		list := &helmv1.HelmReleaseList{}
		if err := c.List(context.Background(), list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		seen := map[string]*helmv1.HelmRelease{}
		count := 0
		for i := range list.Items {
			seen[list.Items[i].Name] = &list.Items[i]
			if ready(&list.Items[i]) {
				count++
			}
		}
		if count >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %d HelmReleases Ready; %s", timeout, n, notReady(seen))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// hr500 is DESIGN.md's 500-release target: 500 HelmReleases of benchChart
// created one after the other in one namespace, installed by the operator
// as its own process with its defaults (hr100's shape, five times over),
// then every one's values changed and upgraded. hr500_ready_s runs from the
// first create to all Ready, hr500_upgrade_ready_s from the first update to
// all Ready for their new generation; hr500_rss_mib is the operator's peak
// RSS over both waves.
var hr500 = benchmark{
	name:  "hr500",
	names: []string{"hr500_ready_s", "hr500_upgrade_ready_s", "hr500_rss_mib"},
	run: func(t *testing.T, report func(string, float64)) {
		const releases = 500
		// envtest's default Service range (a /24) holds fewer ClusterIPs than
		// 500 releases have Services.
		env, cfg := startControlPlaneWith(t, "service-cluster-ip-range", "10.0.0.0/16")
		c := newClient(t, cfg)
		repo := helmtest.NewRepoServer(t)
		repo.Add(t, benchChart())
		op := testenv.StartOperator(t, env)
		ns := createNamespace(t, c, "bench-hr500")
		controlPlane := childProcesses(t, "kube-apiserver", "etcd")
		cpu0, cpCPU0 := cpuSeconds(t, op.Pid()), cpuSeconds(t, controlPlane...)

		start := time.Now()
		for i := range releases {
			create(t, c, benchRelease(ns, fmt.Sprintf("app-%03d", i), repo.URL()))
		}
		waitAllReady(t, cfg, ns, releases, 15*time.Minute)
		installed := time.Since(start)
		cpu1, cpCPU1 := cpuSeconds(t, op.Pid()), cpuSeconds(t, controlPlane...)

		ctx := context.Background()
		start = time.Now()
		for i := range releases {
			key := client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("app-%03d", i)}
			for attempt := 0; ; attempt++ {
				hr := &helmv1.HelmRelease{}
				if err := c.Get(ctx, key, hr); err != nil {
					t.Fatal(err)
				}
				hr.Spec.Values = &helmv1.Values{Raw: []byte(`{"message":"upgraded"}`)}
				err := c.Update(ctx, hr)
				if err == nil {
					break
				}
				if attempt > 5 {
					t.Fatalf("update %s: %v", key, err)
				}
			}
		}
		waitAllReady(t, cfg, ns, releases, 15*time.Minute)
		upgraded := time.Since(start)
		rss := peakRSS(t, op.Pid())
		cpu2, cpCPU2 := cpuSeconds(t, op.Pid()), cpuSeconds(t, controlPlane...)
		report("hr500_ready_s", installed.Seconds())
		report("hr500_upgrade_ready_s", upgraded.Seconds())
		report("hr500_rss_mib", float64(rss)/1024)

		errs, first := operatorLogErrors(op.Log())
		t.Logf("note: hr500: %d HelmReleases Ready in %s, upgraded and Ready again in %s; peak RSS %.1f MiB; "+
			"CPU per install %.3f s in the operator, %.3f s in kube-apiserver and etcd; per upgrade %.3f s and %.3f s; "+
			"chart repository: %d index.yaml requests, %d archive downloads; %d error lines in the operator log%s",
			releases, installed.Round(time.Millisecond), upgraded.Round(time.Millisecond), float64(rss)/1024,
			(cpu1-cpu0)/releases, (cpCPU1-cpCPU0)/releases, (cpu2-cpu1)/releases, (cpCPU2-cpCPU1)/releases,
			repo.Requests("/index.yaml"), repo.Requests(helmtest.ChartPath(benchChartName, benchChartVersion)), errs, first)
	},
}
