package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/controllers"
	"github.com/helmflux/helmflux/pkg/registry"
)

// chartsSyncInterval is the operator's --charts-sync-interval here. Nothing
// waits for a periodic pass (every prerequisite exists before its
// HelmRelease), so it is long enough that 50 unchanged releases do not keep
// two cores busy.
const chartsSyncInterval = 20 * time.Second

var (
	// k8s is an uncached client with the operator's scheme.
	k8s client.Client
	// logs holds everything the operator logged, for failure reports.
	logs testenv.LogBuffer
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

// run starts the control plane with workloads and the operator, runs the
// tests and stops everything again. Missing control plane binaries fail the
// suite with testenv's hint (`make controlplane`), as the other suites with a
// TestMain do.
func run(m *testing.M) int {
	// Deferred calls run last first: the operator stops, then the
	// workloads, then the control plane, and the cache goes last.
	dir, err := os.MkdirTemp("", "helmflux-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	env, err := testenv.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the control plane:", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop the control plane:", err)
		}
	}()
	stop, err := testenv.StartWorkloads(context.Background(), env, testenv.WorkloadOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop the workloads:", err)
		}
	}()
	if k8s, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped, err := startOperator(ctx, cfg, dir)
	defer func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(30 * time.Second):
			fmt.Fprintln(os.Stderr, "the operator did not stop within 30s")
		}
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the operator:", err)
		return 1
	}
	return m.Run()
}

// startOperator runs the controllers the way operator/main.go wires them,
// until ctx ends; stopped is closed once they have stopped. They run as a
// Helm Operator user would run them after migrating: with cross-namespace
// references allowed (--allow-cross-namespace-refs), since the Helm Operator
// always allowed them and its documented examples read values and
// credentials from other namespaces; and with local URLs allowed
// (--allow-local-urls), as the tests' repositories are file:// URLs and
// servers on 127.0.0.1; and with image registries on 127.0.0.1 scanned over
// plain HTTP (--registry-insecure-host), as registrytest serves them.
func startOperator(ctx context.Context, cfg *rest.Config, cacheDir string) (stopped <-chan struct{}, err error) {
	return testenv.StartInProcess(ctx, cfg, zap.New(zap.WriteTo(&logs), zap.UseDevMode(true)), controllers.Options{
		Concurrency:             4,
		AllowLocalURLs:          true,
		CacheDir:                cacheDir,
		HelmInterval:            chartsSyncInterval,
		HTTPClient:              testenv.TLSTrustingClient(),
		PlainHTTPRegistries:     []string{"127.0.0.1"},
		AllowCrossNamespaceRefs: true,
		Registry:                registry.Options{Insecure: []string{"127.0.0.1"}},
	})
}

// eventually polls cond every 200ms until it holds, it gives up (done), or
// the timeout passes; it fails the test in the last two cases with what cond
// said last.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (ok, done bool, last string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		var ok, done bool
		ok, done, last = cond()
		switch {
		case ok:
			return
		case done:
			t.Fatalf("%s: %s", what, last)
		case time.Now().After(deadline):
			t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ensureNamespace creates a namespace unless it exists.
func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	createIfMissing(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
}

// createIfMissing creates an object unless one of its name exists.
func createIfMissing(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(context.Background(), obj); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create %T %s/%s: %v", obj, obj.GetNamespace(), obj.GetName(), err)
	}
}

// readDocs reads every object of a multi-document YAML file.
func readDocs(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	var out []*unstructured.Unstructured
	for {
		obj := map[string]any{}
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
		if len(obj) > 0 {
			out = append(out, &unstructured.Unstructured{Object: obj})
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no object", path)
	}
	return out
}

// getHR reads a HelmRelease.
func getHR(t *testing.T, ns, name string) *helmv1.HelmRelease {
	t.Helper()
	hr := &helmv1.HelmRelease{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, hr); err != nil {
		t.Fatal(err)
	}
	return hr
}

// condition returns a condition as "Status Reason: message".
func condition(hr *helmv1.HelmRelease, typ string) string {
	c := apimeta.FindStatusCondition(hr.Status.Conditions, typ)
	if c == nil {
		return "no " + typ + " condition"
	}
	return fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
}

// waitReady waits until the HelmRelease is Ready for its generation. It
// gives up at once when the controller has settled on Ready=False for the
// generation (it waits for a change that will not come).
func waitReady(t *testing.T, ns, name string) *helmv1.HelmRelease {
	t.Helper()
	var hr *helmv1.HelmRelease
	eventually(t, readyTimeout, "HelmRelease "+name+" Ready", func() (bool, bool, string) {
		hr = getHR(t, ns, name)
		settled := hr.Status.ObservedGeneration == hr.Generation
		ready := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
		ok := settled && ready != nil && ready.Status == metav1.ConditionTrue && ready.ObservedGeneration == hr.Generation
		gaveUp := settled && ready != nil && ready.Status == metav1.ConditionFalse
		return ok, gaveUp, condition(hr, meta.ReadyCondition)
	})
	return hr
}

// waitDecided waits until Ready is True or False for the HelmRelease's
// generation, whether or not the controller will retry.
func waitDecided(t *testing.T, ns, name string) *helmv1.HelmRelease {
	t.Helper()
	var hr *helmv1.HelmRelease
	eventually(t, readyTimeout, "HelmRelease "+name+" Ready True or False", func() (bool, bool, string) {
		hr = getHR(t, ns, name)
		ready := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
		return ready != nil && ready.ObservedGeneration == hr.Generation && ready.Status != metav1.ConditionUnknown,
			false, condition(hr, meta.ReadyCondition)
	})
	return hr
}

// releaseRecords returns the statuses of a release's revisions, oldest first.
func releaseRecords(t *testing.T, ns, release string) []string {
	t.Helper()
	h, err := testenv.ReleaseHistory(context.Background(), k8s, ns, release)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
