package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/rest"

	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// hr5000 is issue 17's scale target: 5,000 HelmReleases of benchChart from
// one chart repository on one operator, running as its own process with its
// defaults but --charts-sync-interval=60s (so that an unchanged pass over
// all of them happens within the benchmark; --chart-index-interval is its
// default, 1.25 × that, 75s). They are created in batches of 100, 500 to a
// namespace. Figures: the time from the first create until all are Ready,
// the operator's peak RSS, and over one unchanged pass (every HelmRelease
// reconciled once more after the API server went quiet, counted by the
// operator's controller_runtime_reconcile_total) the index.yaml requests the
// repository saw and the API writes the API server counted
// (apiserver_request_total, Leases left out). HELMFLUX_BENCH_HR5000=<n>
// runs it with n HelmReleases instead (the figures keep their names).
var hr5000 = benchmark{
	name:  "hr5000",
	names: []string{"hr5000_ready_s", "hr5000_rss_mib", "hr5000_noop_index_requests", "hr5000_noop_api_writes"},
	run: func(t *testing.T, report func(string, float64)) {
		releases := 5000
		if v := os.Getenv("HELMFLUX_BENCH_HR5000"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				t.Fatalf("HELMFLUX_BENCH_HR5000=%q: want a positive number", v)
			}
			releases = n
		}
		const (
			perNamespace = 500
			batch        = 100
			interval     = 60 * time.Second
		)
		env, cfg := startControlPlaneWith(t, "service-cluster-ip-range", "10.96.0.0/16") // each release has a Service: the default /24 holds 254
		c := newClient(t, cfg)
		repo := helmtest.NewRepoServer(t)
		repo.Add(t, benchChart())
		metricsAddr, err := testenv.FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		op := testenv.StartOperator(t, env, "--charts-sync-interval="+interval.String(), "--metrics-bind-address="+metricsAddr)
		var namespaces []string
		for i := 0; i*perNamespace < releases; i++ {
			namespaces = append(namespaces, createNamespace(t, c, fmt.Sprintf("bench-hr5000-%02d", i)))
		}

		start := time.Now()
		for first := 0; first < releases; first += batch {
			var wg sync.WaitGroup
			errs := make(chan error, batch)
			for i := first; i < min(first+batch, releases); i++ {
				wg.Go(func() {
					errs <- c.Create(context.Background(), benchRelease(namespaces[i/perNamespace], fmt.Sprintf("app-%04d", i), repo.URL()))
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		created := time.Since(start)
		for i, ns := range namespaces {
			waitAllReady(t, cfg, ns, min(perNamespace, releases-i*perNamespace), 60*time.Minute)
		}
		elapsed := time.Since(start)
		rssReady := peakRSS(t, op.Pid())
		report("hr5000_ready_s", elapsed.Seconds())

		// One unchanged pass: from a quiet API server until every
		// HelmRelease was reconciled once more.
		waitQuiet(t, cfg, 5*time.Minute)
		writes0, index0, passes0 := apiserverWrites(t, cfg), repo.Requests("/index.yaml"), operatorReconciles(t, metricsAddr)
		passStart := time.Now()
		deadline := passStart.Add(5 * interval)
		passes := int64(0)
		for passes < int64(releases) {
			if time.Now().After(deadline) {
				t.Fatalf("only %d HelmRelease passes in %s after all were Ready", passes, 5*interval)
			}
			time.Sleep(time.Second)
			passes = operatorReconciles(t, metricsAddr) - passes0
		}
		pass := time.Since(passStart)
		index := repo.Requests("/index.yaml") - index0
		writes, detail := apiserverWritesSince(t, cfg, writes0)
		rss := peakRSS(t, op.Pid())
		report("hr5000_rss_mib", float64(rss)/1024)
		report("hr5000_noop_index_requests", float64(index))
		report("hr5000_noop_api_writes", writes)

		errs, firstErr := operatorLogErrors(op.Log())
		t.Logf("note: hr5000: %d HelmReleases in %d namespaces Ready in %s (creating them took %s), %.0f ms per release; peak RSS %.1f MiB when all were Ready, %.1f MiB after the pass; "+
			"unchanged pass: %d reconciles in %s, %d index.yaml requests, %.0f API writes%s; chart repository in all: %d index.yaml requests, %d archive downloads; %d error lines in the operator log%s",
			releases, len(namespaces), elapsed.Round(time.Millisecond), created.Round(time.Millisecond), float64(elapsed.Milliseconds())/float64(releases),
			float64(rssReady)/1024, float64(rss)/1024, passes, pass.Round(time.Second), index, writes, detail,
			repo.Requests("/index.yaml"), repo.Requests(helmtest.ChartPath(benchChartName, benchChartVersion)), errs, firstErr)
	},
}

// writeVerbs are apiserver_request_total's verbs that change something
// (a dry-run's key starts "DRYRUN-" and is none of them).
var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "APPLY": true, "DELETE": true, "DELETECOLLECTION": true}

// apiserverWrites reads the API server's write counters by requestKey,
// Leases left out.
func apiserverWrites(t *testing.T, cfg *rest.Config) map[string]float64 {
	t.Helper()
	return writesOf(apiserverRequests(t, cfg).counts)
}

// writesOf returns the counts of c that are writes, Leases left out.
func writesOf(c counts) map[string]float64 {
	out := map[string]float64{}
	for k, v := range c {
		verb, resource, _ := strings.Cut(k, " ")
		if writeVerbs[verb] && resource != "leases" {
			out[k] = v
		}
	}
	return out
}

// The write count is of the verbs as the API server names them: upper
// case, a dry-run apart (it changes nothing), Leases apart.
func TestWritesAreCountedByTheAPIServersVerbs(t *testing.T) {
	got := writesOf(counts{
		"POST configmaps": 1, "PUT secrets": 2, "PATCH helmreleases/status": 3, "APPLY deployments": 4,
		"DELETE secrets": 5, "DELETECOLLECTION events": 6,
		"DRYRUN-APPLY deployments": 7, "DRYRUN-PATCH configmaps": 7, "GET secrets": 7, "LIST helmreleases": 7,
		"WATCH configmaps": 7, "PUT leases": 7, "GET -": 7,
	})
	var total float64
	for _, v := range got {
		total += v
	}
	if len(got) != 6 || total != 21 {
		t.Errorf("writes %v, want the six writes (21)", got)
	}
}

// apiserverWritesSince returns the writes made since before was read, and
// which they were.
func apiserverWritesSince(t *testing.T, cfg *rest.Config, before map[string]float64) (float64, string) {
	t.Helper()
	var total float64
	var parts []string
	for k, v := range apiserverWrites(t, cfg) {
		if n := v - before[k]; n > 0 {
			total += n
			parts = append(parts, fmt.Sprintf("%s %.0f", k, n))
		}
	}
	if len(parts) == 0 {
		return 0, ""
	}
	return total, " (" + strings.Join(parts, ", ") + ")"
}

// operatorReconciles reads the operator's controller_runtime_reconcile_total
// for the helmrelease controller, whatever the result.
func operatorReconciles(t *testing.T, addr string) int64 {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second}
	resp, err := hc.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the operator's /metrics answered %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the operator's metrics: %v", err)
	}
	var n float64
	for _, m := range families["controller_runtime_reconcile_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "controller" && l.GetValue() == "helmrelease" {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return int64(n)
}
