package bench

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

// syncScale measures a GitSync of n ConfigMaps, one file each, served over
// smart HTTP, by the operator as its own process with its default flags:
// the side-by-side anchor of issue 17, where Flux's kustomize-controller
// v1.7.3 + source-controller v1.7.4 took 7.8 s cold, 4.3 s for a no-op
// reconcile and 9.2 s for a one-file change at 1,000 objects.
//
//   - cold: from the GitSync's create until its revision is applied;
//   - noop: from a reconcile request (the requestedAt annotation, what
//     `helmflux sync` and `flux reconcile` write) until the pass handled it;
//   - onefile: from the request after a commit changing one ConfigMap until
//     that revision is applied;
//   - drift: from an edit of one synced ConfigMap (kubectl edit) until the
//     operator has put it back, with an interval of an hour.
//
// Requests are the API server's own count (apiserver_request_total) over
// each phase, less the benchmark's own (its create or annotation and one
// watch) and less Leases (leader election, the API server's identity),
// which run on a clock of their own.
func syncScale(n int, label string) benchmark {
	names := []string{}
	for _, phase := range []string{"cold", "noop", "onefile"} {
		names = append(names, fmt.Sprintf("sync_%s_%s_s", label, phase), fmt.Sprintf("sync_%s_%s_requests", label, phase))
	}
	names = append(names, fmt.Sprintf("sync_%s_drift_s", label))
	return benchmark{
		name:  "sync_" + label,
		names: names,
		run: func(t *testing.T, report func(string, float64)) {
			env, cfg := startControlPlane(t)
			c := newClient(t, cfg)
			ns := createNamespace(t, c, "bench-sync-"+label)
			files := make(map[string]string, n)
			for i := range n {
				files[fmt.Sprintf("apps/cm-%05d.yaml", i)] = scaleConfigMap(ns, i, "1")
			}
			repo := gittest.NewRepo(t, files)
			srv := gittest.NewHTTPServer(t, repo.Root())
			op := testenv.StartOperator(t, env, strings.Fields(os.Getenv("HELMFLUX_BENCH_OPERATOR_ARGS"))...)
			watcher := watchGitSyncs(t, cfg, ns)

			counts := apiserverRequests(t, cfg)
			start := time.Now()
			createGitSync(t, c, ns, "scale", helmfluxv1alpha1.GitSyncSpec{URL: srv.URL(gittest.RepoName), Prune: true})
			watcher.until(t, 30*time.Minute, "the first revision applied", func(gs *helmfluxv1alpha1.GitSync) bool {
				return strings.HasSuffix(gs.Status.LastAppliedRevision, repo.Head())
			})
			cold := time.Since(start)
			coldReqs := counts.since(t, 1)
			report(fmt.Sprintf("sync_%s_cold_s", label), cold.Seconds())
			report(fmt.Sprintf("sync_%s_cold_requests", label), coldReqs.total)
			t.Logf("note: sync_%s: cold: %d objects in %s, %.0f requests: %s", label, n, cold.Round(time.Millisecond), coldReqs.total, coldReqs.detail)

			// The watch events of the cold apply come back as passes that find
			// nothing to do; let them pass before the no-op is measured.
			waitQuiet(t, cfg, time.Minute)

			counts = apiserverRequests(t, cfg)
			start = time.Now()
			token := requestSync(t, c, ns, "scale")
			watcher.until(t, 10*time.Minute, "the no-op request handled", func(gs *helmfluxv1alpha1.GitSync) bool {
				return gs.Status.LastHandledReconcileAt == token
			})
			noop := time.Since(start)
			noopReqs := counts.since(t, 1)
			report(fmt.Sprintf("sync_%s_noop_s", label), noop.Seconds())
			report(fmt.Sprintf("sync_%s_noop_requests", label), noopReqs.total)
			t.Logf("note: sync_%s: noop: %s, %.0f requests: %s", label, noop.Round(time.Millisecond), noopReqs.total, noopReqs.detail)
			waitQuiet(t, cfg, time.Minute)

			repo.Write(map[string]string{"apps/cm-00007.yaml": scaleConfigMap(ns, 7, "2")})
			head := repo.Commit("change one ConfigMap")
			counts = apiserverRequests(t, cfg)
			start = time.Now()
			requestSync(t, c, ns, "scale")
			watcher.until(t, 10*time.Minute, "the one-file change applied", func(gs *helmfluxv1alpha1.GitSync) bool {
				return strings.HasSuffix(gs.Status.LastAppliedRevision, head)
			})
			onefile := time.Since(start)
			oneReqs := counts.since(t, 1)
			report(fmt.Sprintf("sync_%s_onefile_s", label), onefile.Seconds())
			report(fmt.Sprintf("sync_%s_onefile_requests", label), oneReqs.total)
			t.Logf("note: sync_%s: onefile: %s, %.0f requests: %s", label, onefile.Round(time.Millisecond), oneReqs.total, oneReqs.detail)
			waitQuiet(t, cfg, time.Minute)

			drift := editAndWaitReverted(t, cfg, c, ns, "cm-00011")
			report(fmt.Sprintf("sync_%s_drift_s", label), drift.Seconds())
			t.Logf("note: sync_%s: an edited ConfigMap was put back in %s; operator peak RSS %.0f MiB", label, drift.Round(time.Millisecond),
				float64(peakRSS(t, op.Pid()))/1024)
		},
	}
}

var (
	sync1k  = syncScale(1000, "1k")
	sync10k = syncScale(10000, "10k")
)

func scaleConfigMap(ns string, i int, v string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%05d\n  namespace: %s\ndata:\n  index: %q\n  v: %q\n", i, ns, fmt.Sprint(i), v)
}

// requestSync writes the requestedAt annotation and returns its token.
func requestSync(t *testing.T, c client.Client, ns, name string) string {
	t.Helper()
	token := time.Now().Format(time.RFC3339Nano)
	gs := &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, meta.ReconcileRequestAnnotation, token)
	if err := c.Patch(context.Background(), gs, client.RawPatch("application/merge-patch+json", []byte(patch))); err != nil {
		t.Fatal(err)
	}
	return token
}

// gitSyncWatch follows the GitSyncs of a namespace through one watch, so
// that waiting costs the API server one request instead of a poll's many.
type gitSyncWatch struct {
	events <-chan watch.Event
	last   map[string]*helmfluxv1alpha1.GitSync
}

func watchGitSyncs(t *testing.T, cfg *rest.Config, ns string) *gitSyncWatch {
	t.Helper()
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := wc.Watch(ctx, &helmfluxv1alpha1.GitSyncList{}, client.InNamespace(ns))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop(); cancel() })
	return &gitSyncWatch{events: w.ResultChan(), last: map[string]*helmfluxv1alpha1.GitSync{}}
}

// until waits for a GitSync event satisfying cond.
func (w *gitSyncWatch) until(t *testing.T, timeout time.Duration, what string, cond func(*helmfluxv1alpha1.GitSync) bool) {
	t.Helper()
	for _, gs := range w.last {
		if cond(gs) {
			return
		}
	}
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-w.events:
			if !ok {
				t.Fatalf("the GitSync watch ended while waiting for %s", what)
			}
			gs, isGS := ev.Object.(*helmfluxv1alpha1.GitSync)
			if !isGS {
				continue
			}
			w.last[gs.Name] = gs
			if cond(gs) {
				return
			}
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// requestCounts is a reading of the API server's apiserver_request_total,
// by requestKey.
type requestCounts struct {
	cfg    *rest.Config
	counts counts
}

type requestDelta struct {
	total  float64
	detail string
}

// apiserverRequests reads the API server's request counters, by requestKey.
func apiserverRequests(t *testing.T, cfg *rest.Config) *requestCounts {
	t.Helper()
	return &requestCounts{cfg: cfg, counts: newMetricsScraper(t, cfg).scrape(t)}
}

// since returns the resource requests made after r was read, less own
// (the benchmark's requests in between) and less the API server's own
// (apiserverOwn). Requests for no resource (the readings' own GETs of
// /metrics, discovery) are not counted.
func (r *requestCounts) since(t *testing.T, own float64) requestDelta {
	t.Helper()
	now := apiserverRequests(t, r.cfg)
	var d requestDelta
	var parts []string
	for k, v := range now.counts {
		n := v - r.counts[k]
		if n <= 0 || apiserverOwn(k) {
			continue
		}
		d.total += n
		parts = append(parts, fmt.Sprintf("%s %.0f", k, n))
	}
	sort.Strings(parts)
	d.total -= own
	d.detail = strings.Join(parts, ", ") + fmt.Sprintf(" (less %.0f of the benchmark's own and the watch it holds)", own)
	return d
}

// waitQuiet waits until the API server has served no resource request but
// Leases for two seconds: the operator has nothing left to do.
func waitQuiet(t *testing.T, cfg *rest.Config, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := apiserverRequests(t, cfg)
	quiet := 0
	for quiet < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the API server was still busy after %s", timeout)
		}
		time.Sleep(time.Second)
		d := last.since(t, 0)
		last = apiserverRequests(t, cfg)
		if d.total == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
}

// editAndWaitReverted changes data.v of a synced ConfigMap and returns how
// long the operator took to put it back, followed through a watch.
func editAndWaitReverted(t *testing.T, cfg *rest.Config, c client.Client, ns, name string) time.Duration {
	t.Helper()
	ctx := context.Background()
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
		t.Fatal(err)
	}
	want := cm.Data["v"]
	w, err := wc.Watch(ctx, &corev1.ConfigMapList{}, client.InNamespace(ns),
		client.MatchingFields{"metadata.name": name}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: cm.ResourceVersion}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	cm.Data["v"] = "edited"
	start := time.Now()
	if err := c.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Minute)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("the ConfigMap watch ended")
			}
			if got, isCM := ev.Object.(*corev1.ConfigMap); isCM && got.Data["v"] == want && got.ResourceVersion != cm.ResourceVersion {
				return time.Since(start)
			}
		case <-deadline:
			t.Fatalf("the edited ConfigMap %s was not put back in 5 minutes", name)
		}
	}
}

// apiserverOwn tells the requests (requestKey: "VERB resource") that run on clocks of
// their own, whoever is being measured: Leases (leader election, the API
// server's identity) and the API server's reads of the kubernetes
// Service's endpoints (its endpoint reconciler, every 10 s). The operator
// under measurement touches neither in these benchmarks.
func apiserverOwn(k string) bool {
	return strings.HasSuffix(k, " leases") || k == "GET endpoints" || k == "GET endpointslices" || strings.HasSuffix(k, " -")
}
