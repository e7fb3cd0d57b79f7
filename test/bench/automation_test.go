package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-logr/logr/funcr"
	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/controllers"
	"github.com/helmflux/helmflux/operator/webhook"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/registry"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

// The image automation benchmarks join the list of bench_test.go here, so
// that they live in one file of their own.
func init() {
	benchmarks = append(benchmarks, tagToApplied, scan1000x100)
}

// tagToApplied measures a Flux v1-style image release driven by a registry
// webhook (the design's target: under 2s). One in-process operator whose
// automation and sync intervals are an hour, so that only the webhook starts a
// pass, keeps one Deployment automated within semver:~1.0. Each of 20 runs
// pushes tag 1.0.i and times from just before the webhook POST until the bare
// remote's main holds the new tag (tag_to_commit) and until the Deployment in
// the cluster has it in spec.template (tag_to_applied). No pods roll: there is
// no controller manager.
var tagToApplied = benchmark{
	name:  "tag_to_applied",
	names: []string{"tag_to_commit_p50_ms", "tag_to_applied_p50_ms"},
	run: func(t *testing.T, report func(string, float64)) {
		const runs = 20
		_, cfg := startControlPlane(t)
		reg := registrytest.NewServer(t)
		reg.Push(t, "team/app", "1.0.0", time.Now())
		addr := startAutomationInProcess(t, cfg)
		c := newClient(t, cfg)
		ns := createNamespace(t, c, "bench-automation")
		image := reg.Host() + "/team/app"
		repo := gittest.NewRepo(t, map[string]string{automatedPath: testenv.AutomatedDeployment(ns, "app", image+":1.0.0", "semver:~1.0")})
		createGitSync(t, c, ns, "apps", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Ref: &helmfluxv1alpha1.GitRef{Branch: "main"}})
		waitApplied(t, c, ns, "apps", repo.Head(), time.Minute)
		// The webhook only wakes GitSyncs whose last pass used the image.
		waitFor(t, time.Minute, 100*time.Millisecond, "a first automation pass finding nothing to do", func() bool {
			gs := &helmfluxv1alpha1.GitSync{}
			if c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "apps"}, gs) != nil || gs.Status.ImageAutomation == nil {
				return false
			}
			ready := apimeta.FindStatusCondition(gs.Status.ImageAutomation.Conditions, meta.ReadyCondition)
			return ready != nil && ready.Status == metav1.ConditionTrue && ready.Reason == helmfluxv1alpha1.ImagesUpToDateReason
		})

		var committed, applied []time.Duration
		var pace pacer
		for i := 1; i <= runs; i++ {
			pace.wait()
			want := fmt.Sprintf("%s:1.0.%d", image, i)
			reg.Push(t, "team/app", fmt.Sprintf("1.0.%d", i), time.Now())
			start := time.Now()
			notifyRegistry(t, "http://"+addr, reg.Host(), "team/app")
			// Reading a file of the bare repository loads nothing that is
			// measured, so it is polled faster than the API server.
			waitFor(t, 30*time.Second, 5*time.Millisecond, "a commit of "+want, func() bool {
				return strings.Contains(remoteFile(repo, automatedPath), "image: "+want+"\n")
			})
			committed = append(committed, time.Since(start))
			waitFor(t, 30*time.Second, 10*time.Millisecond, "the Deployment with "+want, func() bool {
				d := &appsv1.Deployment{}
				return c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app"}, d) == nil &&
					d.Spec.Template.Spec.Containers[0].Image == want
			})
			applied = append(applied, time.Since(start))
		}
		reportPercentile(t, report, "tag_to_commit_p50_ms", committed, 50, time.Millisecond)
		reportPercentile(t, report, "tag_to_applied_p50_ms", applied, 50, time.Millisecond)
		t.Logf("note: tag_to_applied: %d runs; to the commit p95 %s, max %s; to the cluster p95 %s, max %s",
			runs, percentile(committed, 95).Round(time.Millisecond), percentile(committed, 100).Round(time.Millisecond),
			percentile(applied, 95).Round(time.Millisecond), percentile(applied, 100).Round(time.Millisecond))
	},
}

// scan1000x100 measures a registry scan at the design's scale (target: at
// most 2,000 requests): 1,000 repositories of 100 tags each on one registry,
// scanned 8 at a time as an automation pass scans, with the operator's
// default rate limits (registry.DefaultRPS, registry.DefaultBurst) and no
// creation times (semver policies need none). Cold is a new client on an
// empty cache directory, timed from making it until the last scan returns;
// warm is another new client on the same directory with the default
// TagTTL, as after an operator restart. Pushing the tags is not measured.
var scan1000x100 = benchmark{
	name:  "scan_1000x100",
	names: []string{"scan_1000x100_cold_s", "scan_1000x100_cold_requests", "scan_1000x100_warm_requests"},
	run: func(t *testing.T, report func(string, float64)) {
		const repos, tags = 1000, 100
		srv := registrytest.NewServer(t)
		tagNames := make([]string, tags)
		for i := range tagNames {
			tagNames[i] = fmt.Sprintf("1.0.%d", i)
		}
		images := make([]string, repos)
		setup := time.Now()
		for i := range images {
			repo := fmt.Sprintf("team/app%04d", i)
			srv.PushTags(t, repo, tagNames...)
			images[i] = srv.Host() + "/" + repo
		}
		t.Logf("note: scan_1000x100: pushing %d tags took %s (not measured)", repos*tags, time.Since(setup).Round(time.Millisecond))
		opts := registry.Options{CacheDir: t.TempDir(), Transport: srv.Transport(), RPS: registry.DefaultRPS, Burst: registry.DefaultBurst}

		srv.Reset()
		start := time.Now()
		scanAll(t, opts, images, tags)
		cold := time.Since(start)
		coldRequests := len(srv.Requests())
		report("scan_1000x100_cold_s", cold.Seconds())
		report("scan_1000x100_cold_requests", float64(coldRequests))

		srv.Reset()
		cached := scanAll(t, opts, images, tags)
		report("scan_1000x100_warm_requests", float64(len(srv.Requests())))

		// The same restart once the TagTTL has passed since the cold scan.
		srv.Reset()
		later := opts
		later.Now = func() time.Time { return time.Now().Add(registry.DefaultTagTTL) }
		scanAll(t, later, images, tags)
		floor := time.Duration(float64(max(coldRequests-registry.DefaultBurst, 0)) / registry.DefaultRPS * float64(time.Second))
		t.Logf("note: scan_1000x100: the rate limit (%d/s, burst %d) alone makes the cold scan last at least %s; "+
			"warm, %d of %d lists came from the cache; a restart %s after the cold scan makes %d requests",
			registry.DefaultRPS, registry.DefaultBurst, floor.Round(10*time.Millisecond), cached, repos, registry.DefaultTagTTL, len(srv.Requests()))
	},
}

// startAutomationInProcess starts an in-process operator whose automation
// and sync intervals are an hour and whose tag lists are cached as long, so
// that only webhooks start passes, and returns its listen address. Its
// error lines are shown when the benchmark fails.
func startAutomationInProcess(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	errs := &errorLog{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the operator logged %d errors%s", errs.count(), errs.first())
		}
	})
	addr := freeAddr(t)
	startInProcess(t, cfg, funcr.New(errs.add, funcr.Options{}), controllers.Options{
		Concurrency: 4, CacheDir: t.TempDir(), Listen: addr, AutomationInterval: time.Hour, AllowLocalURLs: true,
		// Each run pushes a tag and notifies at once; the rescan limit is not measured.
		RegistryRescanInterval: time.Nanosecond,
		Registry:               registry.Options{TagTTL: time.Hour, Transport: testenv.TLSTrustingClient().Transport},
	})
	return addr
}

// automatedPath is the file of the Deployment that tagToApplied automates.
const automatedPath = "apps/app.yaml"

// notifyRegistry sends the operator at base the notification a Docker
// Distribution registry at host sends after a push to repo.
func notifyRegistry(t *testing.T, base, host, repo string) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"events": []map[string]any{{
		"action": "push", "target": map[string]string{"repository": repo}, "request": map[string]string{"host": host},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+webhook.RegistryPath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("registry notification answered %s, want 202", resp.Status)
	}
}

// remoteFile returns the file name at the head of the bare remote's main, or
// "" while it cannot be read (a push may be under way).
func remoteFile(repo *gittest.Repo, name string) string {
	r, err := gogit.PlainOpen(repo.BareDir())
	if err != nil {
		return ""
	}
	ref, err := r.Reference(plumbing.NewBranchReferenceName(gittest.DefaultBranch), true)
	if err != nil {
		return ""
	}
	cm, err := r.CommitObject(ref.Hash())
	if err != nil {
		return ""
	}
	f, err := cm.File(name)
	if err != nil {
		return ""
	}
	s, err := f.Contents()
	if err != nil {
		return ""
	}
	return s
}

// scanAll scans every image with a new Client made from opts, 8 at a time
// (operator/automation's scanConcurrency), and fails unless every result is
// Complete with want tags. It returns how many tag lists came from the cache.
func scanAll(t *testing.T, opts registry.Options, images []string, want int) int {
	t.Helper()
	c, err := registry.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var cached atomic.Int64
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(8)
	for _, image := range images {
		g.Go(func() error {
			res, err := c.Scan(ctx, image, registry.ScanOptions{})
			if err != nil {
				return err
			}
			if !res.Complete || len(res.Tags) != want {
				return fmt.Errorf("scan %s: complete %t with %d tags, want %d", image, res.Complete, len(res.Tags), want)
			}
			if res.FromCache {
				cached.Add(1)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return int(cached.Load())
}
