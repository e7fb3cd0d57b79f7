package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

func init() {
	benchmarks = append(benchmarks, shards2x2000)
}

// shardReleases is the HelmReleases per shard of shards2x2000, the issue's
// acceptance figure. HELMFLUX_BENCH_SHARD_RELEASES runs it at another count
// (a trial run on a busy machine); the figures keep their names and the
// note says the count.
const shardReleases = 2000

// shards2x2000 measures the sharding story: two operator
// processes on one control plane, --watch-label-selector
// "sharding.fluxcd.io/key in (a)" and "... in (b)", each with leader
// election on a Lease of its own and the defaults otherwise, and
// shardReleases HelmReleases of benchChart per shard, each shard's in a
// namespace of its own and labelled for it, created alternately.
// shards_2x2000_ready_s runs from the first create to all of them Ready for
// their generation. shards_2x2000_foreign_writes counts the lines of each
// process's log about an object of the other shard's namespace (an
// install, upgrade or error names the release and its namespace): 0 unless
// a shard reconciled another's HelmRelease. That count could be 0 because
// the logs say nothing, so each log must also name each of its own
// shard's releases, or the benchmark fails.
var shards2x2000 = benchmark{
	name:  "shards_2x2000",
	names: []string{"shards_2x2000_ready_s", "shards_2x2000_foreign_writes"},
	run: func(t *testing.T, report func(string, float64)) {
		releases := shardReleases
		if v := os.Getenv("HELMFLUX_BENCH_SHARD_RELEASES"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				t.Fatalf("HELMFLUX_BENCH_SHARD_RELEASES=%q: want a positive count", v)
			}
			releases = n
		}
		env, cfg := startControlPlaneWith(t, "service-cluster-ip-range", "10.96.0.0/16") // a Service per release: the default /24 holds 254
		c := newClient(t, cfg)
		repo := helmtest.NewRepoServer(t)
		repo.Add(t, benchChart())
		leases := createNamespace(t, c, "bench-shards-system")
		shards := []string{"a", "b"}
		ops := map[string]*testenv.Operator{}
		namespaces := map[string]string{}
		for _, s := range shards {
			ops[s] = testenv.StartOperator(t, env, "--leader-elect", "--leader-election-namespace="+leases,
				"--watch-label-selector="+helmfluxv1alpha1.ShardLabel+" in ("+s+")")
			namespaces[s] = createNamespace(t, c, "bench-shard-"+s)
		}

		start := time.Now()
		for i := range releases {
			for _, s := range shards {
				hr := benchRelease(namespaces[s], fmt.Sprintf("app-%04d", i), repo.URL())
				hr.Labels = map[string]string{helmfluxv1alpha1.ShardLabel: s}
				create(t, c, hr)
			}
		}
		created := time.Since(start)
		for _, s := range shards {
			waitAllReady(t, cfg, namespaces[s], releases, 45*time.Minute)
		}
		elapsed := time.Since(start)

		// Shard a dies; b carries on alone: a change to one of its releases
		// is applied and all of b's stay Ready, while a change to one of a's
		// releases is seen by nobody.
		rssA := peakRSS(t, ops["a"].Pid())
		ops["a"].Kill()
		changeValues := func(ns string) *helmv1.HelmRelease {
			hr := &helmv1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-0000"}}
			patch := []byte(`{"spec":{"values":{"message":"after the kill"}}}`)
			if err := c.Patch(context.Background(), hr, client.RawPatch(types.MergePatchType, patch)); err != nil {
				t.Fatal(err)
			}
			return hr
		}
		orphan := changeValues(namespaces["a"])
		changeValues(namespaces["b"])
		waitAllReady(t, cfg, namespaces["b"], releases, 10*time.Minute)
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(orphan), orphan); err != nil {
			t.Fatal(err)
		}
		if orphan.Status.ObservedGeneration >= orphan.Generation {
			t.Fatalf("a change to dead shard a's %s was observed (generation %d): shard b reconciled it", orphan.Name, orphan.Generation)
		}

		foreign := 0
		for _, s := range shards {
			log := ops[s].Log()
			for _, other := range shards {
				if other != s {
					foreign += strings.Count(log, fmt.Sprintf(`"namespace":%q`, namespaces[other])) +
						strings.Count(log, fmt.Sprintf(`"targetNamespace":%q`, namespaces[other]))
				}
			}
			for i := range releases {
				if name := fmt.Sprintf("app-%04d", i); !strings.Contains(log, fmt.Sprintf(`"release":%q`, name)) {
					t.Fatalf("shard %s's log does not name its release %s: the foreign count would prove nothing", s, name)
				}
			}
		}
		report("shards_2x2000_ready_s", elapsed.Seconds())
		report("shards_2x2000_foreign_writes", float64(foreign))

		t.Logf("note: shards_2x2000: after shard a was killed, shard b applied a change to one of its releases and all %d of its releases were Ready; the change to a's %s stayed unobserved", releases, orphan.Name)
		errsA, firstA := operatorLogErrors(ops["a"].Log())
		errsB, firstB := operatorLogErrors(ops["b"].Log())
		t.Logf("note: shards_2x2000: %d HelmReleases per shard (2 shards, %d in all) Ready in %s (creating them took %s), %.0f ms per release; "+
			"peak RSS %.1f MiB (a), %.1f MiB (b); chart repository: %d index.yaml requests, %d archive downloads; "+
			"error lines in the logs: %d (a)%s, %d (b)%s",
			releases, 2*releases, elapsed.Round(time.Millisecond), created.Round(time.Millisecond), float64(elapsed.Milliseconds())/float64(2*releases),
			float64(rssA)/1024, float64(peakRSS(t, ops["b"].Pid()))/1024,
			repo.Requests("/index.yaml"), repo.Requests(helmtest.ChartPath(benchChartName, benchChartVersion)),
			errsA, firstA, errsB, firstB)
	},
}
