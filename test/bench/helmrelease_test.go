package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"helm.sh/helm/v3/pkg/chart/loader"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/controllers"
	"github.com/helmflux/helmflux/operator/helmrelease"
	"github.com/helmflux/helmflux/pkg/helm"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// benchChartName and benchChartVersion name the chart every HelmRelease
// benchmark installs (benchChart).
const (
	benchChartName    = "app"
	benchChartVersion = "1.0.0"
)

// hr100 measures what DESIGN.md's first Helm target is about: 100
// HelmReleases of a 4-object chart from one chart repository, created one
// after the other in one namespace (as Flux's benchmark did), installed by
// the operator running as its own process with its defaults (--concurrent=4,
// no wait). The time runs from the first create to the moment all 100 are
// Ready for their generation; memory is the process's peak RSS.
var hr100 = benchmark{
	name:  "hr100",
	names: []string{"hr100_ready_s", "hr100_rss_mib"},
	run: func(t *testing.T, report func(string, float64)) {
		const releases = 100
		env, cfg := startControlPlane(t)
		c := newClient(t, cfg)
		repo := helmtest.NewRepoServer(t)
		repo.Add(t, benchChart())
		op := testenv.StartOperator(t, env)
		ns := createNamespace(t, c, "bench-hr100")
		idle := peakRSS(t, op.Pid())
		controlPlane := childProcesses(t, "kube-apiserver", "etcd")
		cpu0, cpCPU0 := cpuSeconds(t, op.Pid()), cpuSeconds(t, controlPlane...)

		start := time.Now()
		for i := range releases {
			create(t, c, benchRelease(ns, fmt.Sprintf("app-%03d", i), repo.URL()))
		}
		created := time.Since(start)
		waitAllReady(t, cfg, ns, releases, 5*time.Minute)
		elapsed := time.Since(start)
		rss := peakRSS(t, op.Pid())
		anon, file := procStatusKiB(t, op.Pid(), "RssAnon"), procStatusKiB(t, op.Pid(), "RssFile")
		cpu, cpCPU := cpuSeconds(t, op.Pid())-cpu0, cpuSeconds(t, controlPlane...)-cpCPU0
		report("hr100_ready_s", elapsed.Seconds())
		report("hr100_rss_mib", float64(rss)/1024)

		errs, first := operatorLogErrors(op.Log())
		t.Logf("note: hr100: %d HelmReleases Ready in %s (creating them took %s), %.0f ms per release; peak RSS %.1f MiB before the first create, "+
			"RSS after the last Ready %.1f MiB anonymous (heap) + %.1f MiB file-backed (the binary's pages); "+
			"CPU per release: %.3f s in the operator, %.3f s in kube-apiserver and etcd; "+
			"chart repository: %d index.yaml requests, %d archive downloads; %d error lines in the operator log%s",
			releases, elapsed.Round(time.Millisecond), created.Round(time.Millisecond),
			float64(elapsed.Milliseconds())/releases, float64(idle)/1024, float64(anon)/1024, float64(file)/1024, cpu/releases, cpCPU/releases,
			repo.Requests("/index.yaml"), repo.Requests(helmtest.ChartPath(benchChartName, benchChartVersion)),
			errs, first)
	},
}

// hrNoop counts what passes over unchanged, Ready HelmReleases cost: API
// server writes and chart archive downloads, per HelmRelease pass. 20
// HelmReleases, an in-process operator with a 200ms --charts-sync-interval,
// observed for 6s (about 560 passes); passes are counted by
// controller-runtime's reconcile counter. Both figures should be 0.
var hrNoop = benchmark{
	name:  "hr_noop",
	names: []string{"hr_noop_api_writes", "hr_noop_chart_downloads"},
	run: func(t *testing.T, report func(string, float64)) {
		const (
			releases = 20
			interval = 200 * time.Millisecond
			window   = 6 * time.Second
		)
		_, cfg := startControlPlane(t)
		counted, counter := testenv.Counted(cfg)
		requests := &requestLog{}
		counted.Wrap(requests.wrap)
		errs := startHelmInProcess(t, counted, interval)
		c := newClient(t, cfg)
		repo := helmtest.NewRepoServer(t)
		repo.Add(t, benchChart())
		ns := createNamespace(t, c, "bench-hr-noop")
		counter.Reset()
		requests.reset()
		for i := range releases {
			create(t, c, benchRelease(ns, fmt.Sprintf("app-%03d", i), repo.URL()))
		}
		waitAllReady(t, cfg, ns, releases, 2*time.Minute)
		chartPath := helmtest.ChartPath(benchChartName, benchChartVersion)
		installDownloads := repo.Requests(chartPath)
		t.Logf("note: hr_noop: installing %d HelmReleases took %.1f API reads and %.1f writes per release%s; %d archive downloads in all",
			releases, float64(counter.Reads())/releases, float64(counter.Writes())/releases, requests.summary(releases), installDownloads)

		// The passes right after the installs are not what is measured.
		time.Sleep(2 * interval)
		counter.Reset()
		requests.reset()
		errs.reset()
		passes0 := reconciles(t, "helmrelease")
		downloads0, index0 := repo.Requests(chartPath), repo.Requests("/index.yaml")
		time.Sleep(window)
		passes := reconciles(t, "helmrelease") - passes0
		downloads, index := repo.Requests(chartPath)-downloads0, repo.Requests("/index.yaml")-index0
		apiWrites, apiReads := counter.Writes(), counter.Reads()
		if passes < releases {
			t.Fatalf("only %d HelmRelease passes in %s with %d HelmReleases and a %s interval", passes, window, releases, interval)
		}
		report("hr_noop_api_writes", float64(apiWrites)/float64(passes))
		report("hr_noop_chart_downloads", float64(downloads)/float64(passes))

		t.Logf("note: hr_noop: %d passes over %d Ready HelmReleases in %s: %d API writes, %d reads, %d dry-runs%s; "+
			"%d archive downloads, %d index.yaml requests (%.2f per pass); %d error log lines%s",
			passes, releases, window, apiWrites, apiReads, counter.DryRuns(), requests.summary(1),
			downloads, index, float64(index)/float64(passes), errs.count(), errs.first())
	},
}

// hrInstallFloor is the cost of the Helm SDK install itself, without a
// controller: pkg/helm's Runner.Install of benchChart with the request the
// controller makes (server-side validation, the digest label, the
// antecedent annotation, no wait), median of 20 installs into fresh release
// names after one warm-up install.
var hrInstallFloor = benchmark{
	name:  "hr_install_floor",
	names: []string{"hr_install_floor_ms"},
	run: func(t *testing.T, report func(string, float64)) {
		const installs = 20
		_, cfg := startControlPlane(t)
		counted, counter := testenv.Counted(cfg)
		requests := &requestLog{}
		counted.Wrap(requests.wrap)
		c := newClient(t, cfg)
		ns := createNamespace(t, c, "bench-hr-floor")
		runner, err := helm.NewRunner(counted, logr.Discard())
		if err != nil {
			t.Fatal(err)
		}
		tgz, err := benchChart().Package()
		if err != nil {
			t.Fatal(err)
		}
		var samples []time.Duration
		var reads, writes int64
		var pace pacer
		for i := range installs + 1 {
			pace.wait()
			// Helm's actions mutate the chart: each install gets a fresh one.
			ch, err := loader.LoadArchive(bytes.NewReader(tgz))
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("floor-%02d", i)
			owner := &helmv1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
			req := helm.Request{
				Namespace: ns, Name: name, Chart: ch, Values: map[string]any{},
				Labels:     map[string]string{helmrelease.DigestLabel: fmt.Sprintf("%040d", i)},
				Antecedent: owner.Antecedent(), Timeout: owner.Spec.GetTimeout(), Validate: true, Replace: true,
			}
			if i == 1 {
				requests.reset()
			}
			counter.Reset()
			start := time.Now()
			rel, err := runner.Install(context.Background(), req)
			d := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if rel.Status != helm.StatusDeployed {
				t.Fatalf("release %s is %s, want %s", name, rel.Status, helm.StatusDeployed)
			}
			if i == 0 {
				continue // discovery and capabilities warm up
			}
			samples = append(samples, d)
			reads, writes = reads+counter.Reads(), writes+counter.Writes()
		}
		median := percentile(samples, 50)
		reportPercentile(t, report, "hr_install_floor_ms", samples, 50, time.Millisecond)
		t.Logf("note: hr_install_floor: %d installs, median %s, p95 %s; per install %.1f API reads and %.1f writes%s (DESIGN.md's floor for a 4-object chart: 2k+3 = 11 requests)",
			installs, median.Round(100*time.Microsecond), percentile(samples, 95).Round(100*time.Microsecond),
			float64(reads)/installs, float64(writes)/installs, requests.summary(installs))
	},
}

// benchChart is the chart of the HelmRelease benchmarks: four objects
// (ConfigMap, Service, ServiceAccount and a Deployment of one replica), like
// the charts DESIGN.md's Flux figures were measured with.
func benchChart() helmtest.Chart {
	return helmtest.Chart{
		Name: benchChartName, Version: benchChartVersion, AppVersion: benchChartVersion,
		Values: "replicaCount: 1\nimage:\n  repository: registry.example.com/app\n  tag: \"1.0.0\"\nport: 8080\nmessage: hello\n",
		Templates: map[string]string{
			"configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}
  labels:
    app.kubernetes.io/name: {{ .Chart.Name }}
    app.kubernetes.io/instance: {{ .Release.Name }}
data:
  MESSAGE: {{ .Values.message | quote }}
`,
			"service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
  labels:
    app.kubernetes.io/name: {{ .Chart.Name }}
    app.kubernetes.io/instance: {{ .Release.Name }}
spec:
  selector:
    app.kubernetes.io/instance: {{ .Release.Name }}
  ports:
  - name: http
    port: 80
    targetPort: http
`,
			"serviceaccount.yaml": `apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Release.Name }}
  labels:
    app.kubernetes.io/name: {{ .Chart.Name }}
    app.kubernetes.io/instance: {{ .Release.Name }}
`,
			"deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels:
    app.kubernetes.io/name: {{ .Chart.Name }}
    app.kubernetes.io/instance: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      app.kubernetes.io/instance: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {{ .Chart.Name }}
        app.kubernetes.io/instance: {{ .Release.Name }}
    spec:
      serviceAccountName: {{ .Release.Name }}
      containers:
      - name: app
        image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
        ports:
        - name: http
          containerPort: {{ .Values.port }}
        envFrom:
        - configMapRef:
            name: {{ .Release.Name }}
`,
		},
	}
}

// benchRelease is a HelmRelease of benchChart whose release is named after it.
func benchRelease(ns, name, repoURL string) *helmv1.HelmRelease {
	return &helmv1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: helmv1.HelmReleaseSpec{
			ReleaseName: name,
			Chart:       helmv1.ChartSource{Repository: repoURL, Name: benchChartName, Version: benchChartVersion},
		},
	}
}

// ready tells whether a HelmRelease is Ready for its current generation.
func ready(hr *helmv1.HelmRelease) bool {
	return hr.Status.ObservedGeneration == hr.Generation && apimeta.IsStatusConditionTrue(hr.Status.Conditions, meta.ReadyCondition)
}

// waitAllReady waits until n HelmReleases of ns are Ready for their
// generation. It watches rather than polls, so the end is seen when it
// happens and the waiting does not load the API server.
func waitAllReady(t *testing.T, cfg *rest.Config, ns string, n int, timeout time.Duration) {
	t.Helper()
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	seen := map[string]*helmv1.HelmRelease{}
	done := func() bool {
		count := 0
		for _, hr := range seen {
			if ready(hr) {
				count++
			}
		}
		return count >= n
	}
	for {
		list := &helmv1.HelmReleaseList{}
		if err := wc.List(ctx, list, client.InNamespace(ns)); err != nil {
			t.Fatalf("waiting for %d HelmReleases Ready: %v; %s", n, err, notReady(seen))
		}
		clear(seen)
		for i := range list.Items {
			seen[list.Items[i].Name] = &list.Items[i]
		}
		if done() {
			return
		}
		w, err := wc.Watch(ctx, &helmv1.HelmReleaseList{}, &client.ListOptions{
			Namespace: ns, Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion},
		})
		if err != nil {
			t.Fatalf("waiting for %d HelmReleases Ready: %v; %s", n, err, notReady(seen))
		}
		for ev := range w.ResultChan() {
			hr, ok := ev.Object.(*helmv1.HelmRelease)
			if !ok {
				break // an error: list again
			}
			if ev.Type == watch.Deleted {
				delete(seen, hr.Name)
			} else {
				seen[hr.Name] = hr
			}
			if done() {
				w.Stop()
				return
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			t.Fatalf("timed out after %s waiting for %d HelmReleases Ready; %s", timeout, n, notReady(seen))
		}
	}
}

// notReady describes how many HelmReleases are not Ready, and why one is not.
func notReady(seen map[string]*helmv1.HelmRelease) string {
	var names []string
	for name, hr := range seen {
		if !ready(hr) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return fmt.Sprintf("%d seen, all Ready", len(seen))
	}
	sort.Strings(names)
	hr := seen[names[0]]
	why := "no Ready condition"
	if c := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition); c != nil {
		why = fmt.Sprintf("Ready %s %s: %s", c.Status, c.Reason, c.Message)
	}
	return fmt.Sprintf("%d of %d seen not Ready, e.g. %s (generation %d, observed %d): %s",
		len(names), len(seen), names[0], hr.Generation, hr.Status.ObservedGeneration, why)
}

// startHelmInProcess runs the operator's controllers in this process with
// the given --charts-sync-interval, and returns what they log as errors.
func startHelmInProcess(t *testing.T, cfg *rest.Config, interval time.Duration) *errorLog {
	t.Helper()
	errs := &errorLog{}
	startInProcess(t, cfg, funcr.New(errs.add, funcr.Options{}),
		controllers.Options{Concurrency: 4, CacheDir: t.TempDir(), HelmInterval: interval, AllowLocalURLs: true})
	return errs
}

// reconciles returns how many reconciles controller-runtime counted for
// the named controller in this process, whatever their result.
func reconciles(t *testing.T, controller string) int64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == controller {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return int64(n)
}

// errorLog keeps the log lines that carry an error.
type errorLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *errorLog) add(prefix, args string) {
	if !strings.Contains(args, `"error"=`) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, prefix+" "+args)
}

func (l *errorLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = nil
}

func (l *errorLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// first returns the first line, for a note ("" when there is none).
func (l *errorLog) first() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == 0 {
		return ""
	}
	return ", the first: " + l.lines[0]
}

// requestLog counts an API client's requests by method and resource
// (watches as WATCH, dry-runs as DRYRUN), so that a note can say which
// requests happened.
type requestLog struct {
	mu     sync.Mutex
	counts map[string]int
}

func (l *requestLog) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		method := req.Method
		switch q := req.URL.Query(); {
		case method == http.MethodGet && q.Get("watch") == "true":
			method = "WATCH"
		case q.Has("dryRun"):
			method = "DRYRUN-" + method
		}
		l.mu.Lock()
		if l.counts == nil {
			l.counts = map[string]int{}
		}
		l.counts[method+" "+resourcePath(req.URL.Path)]++
		l.mu.Unlock()
		return rt.RoundTrip(req)
	})
}

func (l *requestLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts = nil
}

// summary lists the requests, most frequent first, each count divided by
// per: " (PATCH /apis/g/v/kind/status 3, ...)"; "" when there were none.
func (l *requestLog) summary(per int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.counts) == 0 {
		return ""
	}
	keys := make([]string, 0, len(l.counts))
	for k := range l.counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if l.counts[keys[i]] != l.counts[keys[j]] {
			return l.counts[keys[i]] > l.counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s", k, format(float64(l.counts[k])/float64(max(per, 1)))))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// resourcePath drops the namespace and object names from an API path:
// /api/v1/namespaces/ns/secrets/x becomes /api/v1/secrets, and a
// subresource stays (/apis/g/v/kind/status).
func resourcePath(p string) string {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	var prefix []string
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		prefix, parts = parts[:2], parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		prefix, parts = parts[:3], parts[3:]
	default:
		return p
	}
	if len(parts) >= 2 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	out := append([]string{""}, prefix...)
	if len(parts) > 0 {
		out = append(out, parts[0])
	}
	if len(parts) > 2 {
		out = append(out, parts[2:]...)
	}
	return strings.Join(out, "/")
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// operatorLogErrors counts the error lines in an operator's log and returns
// the first, for a note.
func operatorLogErrors(log string) (int, string) {
	b := []byte(log)
	n, first := 0, ""
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, `"level":"error"`) || strings.Contains(line, `"error":`) {
			if n == 0 {
				first = ", the first: " + line
			}
			n++
		}
	}
	return n, first
}

// cpuSeconds returns the CPU time (user and system) the processes used so far.
func cpuSeconds(t *testing.T, pids ...int) float64 {
	t.Helper()
	var ticks int64
	for _, pid := range pids {
		st, err := readProcStat(pid)
		if err != nil {
			t.Fatal(err)
		}
		ticks += st.utime + st.stime
	}
	return float64(ticks) / clockTicks
}

// childProcesses returns the pids of this process's children with the
// given command names (the control plane's etcd and kube-apiserver), and
// fails unless there is exactly one of each: the benchmarks run one at a
// time, each with a control plane of its own.
func childProcesses(t *testing.T, names ...string) []int {
	t.Helper()
	procs, err := descendants()
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, n := range names {
		var found []procStat
		for _, p := range procs {
			// comm is cut to 15 bytes.
			if p.ppid == os.Getpid() && p.comm == n[:min(len(n), 15)] {
				found = append(found, p)
			}
		}
		if len(found) != 1 {
			t.Fatalf("found %d processes %s among this process's children, want 1: %v", len(found), n, found)
		}
		pids = append(pids, found[0].pid)
	}
	return pids
}

// procStatusKiB returns a size field of /proc/<pid>/status ("RssAnon") in KiB.
func procStatusKiB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("/proc/%d/status %s: %v", pid, field, err)
			}
			return kib
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
