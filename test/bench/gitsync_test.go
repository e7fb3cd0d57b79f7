package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/controllers"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

// commitToApplied measures the time from a push notification for a new commit
// to the changed object in the cluster, over smart HTTP, 50 commits.
var commitToApplied = benchmark{
	name:  "commit_to_applied",
	names: []string{"commit_to_applied_p50_ms", "commit_to_applied_p95_ms"},
	run: func(t *testing.T, report func(string, float64)) {
		_, cfg := startControlPlane(t)
		hook := startGitSyncInProcess(t, cfg)
		c := newClient(t, cfg)
		ns := createNamespace(t, c, "bench-webhook")
		files := manifests(ns, 20)
		files["value.yaml"] = valueConfigMap(ns, 0)
		repo := gittest.NewRepo(t, files)
		srv := gittest.NewHTTPServer(t, repo.Root())
		const token = "bench-token"
		create(t, c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hook"}, Data: map[string][]byte{"token": []byte(token)}})
		createGitSync(t, c, ns, "bench", helmfluxv1alpha1.GitSyncSpec{URL: srv.URL(gittest.RepoName),
			Ref: &helmfluxv1alpha1.GitRef{Branch: "main"}, WebhookSecretRef: &meta.LocalObjectReference{Name: "hook"}})
		waitApplied(t, c, ns, "bench", repo.Head(), time.Minute)

		var samples []time.Duration
		var pace pacer
		for i := 1; i <= 50; i++ {
			pace.wait()
			repo.Write(map[string]string{"value.yaml": valueConfigMap(ns, i)})
			repo.Commit(fmt.Sprintf("value %d", i))
			start := time.Now()
			notify(t, hook+"/hooks/"+ns+"/bench", token)
			want := strconv.Itoa(i)
			waitFor(t, 30*time.Second, 10*time.Millisecond, "value "+want, func() bool {
				cm := &corev1.ConfigMap{}
				return c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "value"}, cm) == nil && cm.Data["v"] == want
			})
			samples = append(samples, time.Since(start))
		}
		reportPercentile(t, report, "commit_to_applied_p50_ms", samples, 50, time.Millisecond)
		reportPercentile(t, report, "commit_to_applied_p95_ms", samples, 95, time.Millisecond)
	},
}

// apply1000 measures a cold sync of 1,000 manifests by the operator running as
// its own process, and that process's peak resident memory.
var apply1000 = benchmark{
	name:  "apply_1000_manifests",
	names: []string{"apply_1000_manifests_s", "apply_1000_manifests_rss_mib"},
	run: func(t *testing.T, report func(string, float64)) {
		env, cfg := startControlPlane(t)
		c := newClient(t, cfg)
		ns := "bench-1000"
		files := manifests(ns, 999)
		files["namespace.yaml"] = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + ns + "\n"
		repo := gittest.NewRepo(t, files)
		op := testenv.StartOperator(t, env)

		createNamespace(t, c, "helmflux-system")
		start := time.Now()
		createGitSync(t, c, "helmflux-system", "cold", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Prune: true})
		waitApplied(t, c, "helmflux-system", "cold", repo.Head(), 10*time.Minute)
		report("apply_1000_manifests_s", time.Since(start).Seconds())
		report("apply_1000_manifests_rss_mib", float64(peakRSS(t, op.Pid()))/1024)
	},
}

// noopSync counts the API writes of sync passes that find nothing changed: a
// GitSync of 100 objects polled every 2s, observed for 10s after it applied.
var noopSync = benchmark{
	name:  "noop_sync",
	names: []string{"noop_sync_writes"},
	run: func(t *testing.T, report func(string, float64)) {
		_, cfg := startControlPlane(t)
		counted, counter := testenv.Counted(cfg)
		startGitSyncInProcess(t, counted)
		c := newClient(t, cfg)
		ns := createNamespace(t, c, "bench-noop")
		const objects = 100
		repo := gittest.NewRepo(t, manifests(ns, objects))
		createGitSync(t, c, ns, "noop", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(),
			Interval: metav1.Duration{Duration: 2 * time.Second}, Prune: true})
		waitApplied(t, c, ns, "noop", repo.Head(), time.Minute)

		time.Sleep(time.Second)
		counter.Reset()
		before := reconciles(t, "gitsync")
		time.Sleep(10 * time.Second)
		// An unchanged pass sends no dry-run (it knows from the watch of
		// what it applied that nothing drifted): passes are the operator's
		// own count.
		passes := reconciles(t, "gitsync") - before
		if passes == 0 {
			t.Fatal("no sync pass in 10s")
		}
		t.Logf("note: noop_sync: %d passes in 10s, %d writes, %d dry-runs", passes, counter.Writes(), counter.DryRuns())
		report("noop_sync_writes", float64(counter.Writes())/float64(passes))
	},
}

// manifests returns n small objects in ns, one per file: ConfigMaps,
// Services and Deployments in turn.
func manifests(ns string, n int) map[string]string {
	files := make(map[string]string, n)
	for i := range n {
		name := fmt.Sprintf("obj-%04d", i)
		var doc string
		switch i % 3 {
		case 0:
			doc = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\ndata:\n  index: %q\n", name, ns, strconv.Itoa(i))
		case 1:
			doc = fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  clusterIP: None\n  selector: {app: %s}\n  ports:\n  - port: 80\n    targetPort: 8080\n", name, ns, name)
		default:
			doc = fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
  namespace: %s
spec:
  replicas: 1
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec:
      containers:
      - name: app
        image: registry.example.com/app:1.0.%d
        ports: [{containerPort: 8080}]
`, name, ns, name, name, i)
		}
		files[fmt.Sprintf("apps/%s.yaml", name)] = doc
	}
	return files
}

func valueConfigMap(ns string, v int) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: value\n  namespace: %s\ndata:\n  v: %q\n", ns, strconv.Itoa(v))
}

// startInProcess runs the operator's controllers in this process until the
// benchmark ends.
func startInProcess(t *testing.T, cfg *rest.Config, logger logr.Logger, opts controllers.Options) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done, err := testenv.StartInProcess(ctx, cfg, logger, opts)
	if done != nil {
		t.Cleanup(func() { cancel(); <-done })
	} else {
		cancel()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// startGitSyncInProcess starts the controllers with a push receiver and
// returns its base URL.
func startGitSyncInProcess(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	addr := freeAddr(t)
	startInProcess(t, cfg, logr.Discard(), controllers.Options{Concurrency: 4, CacheDir: t.TempDir(), Listen: addr, AllowLocalURLs: true})
	return "http://" + addr
}

// peakRSS returns a process's peak resident set size in KiB (VmHWM).
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kib
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func newClient(t *testing.T, cfg *rest.Config) client.Client {
	t.Helper()
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func create(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

func createNamespace(t *testing.T, c client.Client, name string) string {
	t.Helper()
	create(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	return name
}

func createGitSync(t *testing.T, c client.Client, ns, name string, spec helmfluxv1alpha1.GitSyncSpec) {
	t.Helper()
	if spec.Interval.Duration == 0 {
		spec.Interval = metav1.Duration{Duration: time.Hour}
	}
	create(t, c, &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec})
}

// waitApplied waits until the GitSync applied commit hash in full.
func waitApplied(t *testing.T, c client.Client, ns, name, hash string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, 100*time.Millisecond, "revision "+hash+" applied", func() bool {
		gs := &helmfluxv1alpha1.GitSync{}
		return c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, gs) == nil &&
			strings.HasSuffix(gs.Status.LastAppliedRevision, hash)
	})
}

// waitFor polls cond every interval until it holds or timeout passes. The
// interval bounds the measurement's error; polling faster than 10ms loads the
// API server enough to slow what is measured.
func waitFor(t *testing.T, timeout, interval time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(interval)
	}
}

// notify sends a generic push notification with a bearer token.
func notify(t *testing.T, url, token string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"ref":"refs/heads/main"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("notification answered %d, want 202", resp.StatusCode)
	}
}
