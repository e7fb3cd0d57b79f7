package helmrelease_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/go-logr/logr"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/controllers"
	"github.com/helmflux/helmflux/pkg/helm"
)

// interval is the operator's --charts-sync-interval in these tests: short,
// so that "ten unchanged passes" take seconds.
const interval = 300 * time.Millisecond

var (
	k8s     client.Client
	testEnv *envtest.Environment
	cfg     *rest.Config
	logs    testenv.LogBuffer // everything the controller logged
	runner  *helm.Runner
	// requests counts what the operator asks of the API server.
	requests *testenv.RequestCounter
	// tlsClient trusts the tests' TLS servers (httptest's certificate).
	tlsClient *http.Client
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(killableUpgrade())
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	env, err := testenv.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	testEnv = env
	if cfg, err = env.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "start the control plane:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop, err := testenv.StartWorkloads(ctx, env, testenv.WorkloadOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = stop() }()
	if k8s, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if runner, err = helm.NewRunner(cfg, ctrl.Log); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := startOperator(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// startOperator runs the controllers the way operator/main.go wires them,
// counting their requests in requests.
func startOperator(ctx context.Context, cfg *rest.Config) error {
	dir, err := os.MkdirTemp("", "helmrelease-test-")
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); _ = os.RemoveAll(dir) }()
	tlsClient = testenv.TLSTrustingClient()
	cfg, requests = testenv.Counted(cfg)
	// The HelmReleases of defaultSANamespace and strictNamespace are other
	// operators': one with a default service account
	// (TestTheDefaultServiceAccount), one without --allow-local-urls
	// (TestLocalURLsRefusedWithoutTheFlag).
	notThere := cache.Options{ByObject: map[client.Object]cache.ByObject{
		&helmv1.HelmRelease{}: {Field: fields.AndSelectors(
			fields.OneTermNotEqualSelector("metadata.namespace", defaultSANamespace),
			fields.OneTermNotEqualSelector("metadata.namespace", strictNamespace))},
	}}
	_, err = testenv.StartInProcessWith(ctx, cfg, testLogger(), operatorOptions(dir), notThere)
	return err
}

// defaultSANamespace is the one namespace whose HelmReleases the suite's
// operator leaves to the one TestTheDefaultServiceAccount starts.
const defaultSANamespace = "hr-default-sa"

// strictNamespace is the one namespace whose HelmReleases the suite's
// operator leaves to the one TestLocalURLsRefusedWithoutTheFlag starts,
// without --allow-local-urls.
const strictNamespace = "hr-local-urls"

// operatorOptions are the suite operator's options; dir is its cache.
func operatorOptions(dir string) controllers.Options {
	return controllers.Options{
		Concurrency: 4, CacheDir: dir, HelmInterval: interval, AllowLocalURLs: true,
		HTTPClient: tlsClient, PlainHTTPRegistries: []string{"127.0.0.1"},
	}
}

// testLogger logs into logs.
func testLogger() logr.Logger { return zap.New(zap.WriteTo(&logs), zap.UseDevMode(true)) }

// newNamespace makes a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	return testenv.NewNamespace(t, k8s, "hr-")
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	testenv.Eventually(t, timeout, what, cond)
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
func condition(hr *helmv1.HelmRelease, t string) string {
	c := apimeta.FindStatusCondition(hr.Status.Conditions, t)
	if c == nil {
		return "no " + t + " condition"
	}
	return fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
}

// waitReady waits until the HelmRelease is Ready for its generation and
// returns it.
func waitReady(t *testing.T, ns, name string) *helmv1.HelmRelease {
	t.Helper()
	var hr *helmv1.HelmRelease
	eventually(t, 2*time.Minute, "HelmRelease "+name+" Ready", func() (bool, string) {
		hr = &helmv1.HelmRelease{}
		if err := k8s.Get(context.Background(), clientKey(ns, name), hr); err != nil {
			return false, err.Error()
		}
		return hr.Status.ObservedGeneration == hr.Generation &&
			apimeta.IsStatusConditionTrue(hr.Status.Conditions, meta.ReadyCondition), condition(hr, meta.ReadyCondition)
	})
	return hr
}

// waitCondition waits until the HelmRelease's condition starts with want
// ("False ChartFetchFailed", say).
func waitCondition(t *testing.T, ns, name, typ, want string) *helmv1.HelmRelease {
	t.Helper()
	var hr *helmv1.HelmRelease
	eventually(t, 2*time.Minute, name+" "+typ+" "+want, func() (bool, string) {
		hr = &helmv1.HelmRelease{}
		if err := k8s.Get(context.Background(), clientKey(ns, name), hr); err != nil {
			return false, err.Error()
		}
		c := condition(hr, typ)
		return strings.HasPrefix(c, want), c
	})
	return hr
}

// update changes a HelmRelease, retrying on conflicts.
func update(t *testing.T, ns, name string, change func(*helmv1.HelmRelease)) {
	t.Helper()
	for range 10 {
		hr := getHR(t, ns, name)
		change(hr)
		err := k8s.Update(context.Background(), hr)
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "modified") {
			t.Fatal(err)
		}
	}
	t.Fatal("could not update", name)
}

// history returns the revisions of a release with their statuses, oldest first.
func history(t *testing.T, ns, release string) []string {
	t.Helper()
	h, err := testenv.ReleaseHistory(context.Background(), k8s, ns, release)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// events returns the notes of the Events about an object, oldest first.
func events(t *testing.T, ns, name string) []string {
	t.Helper()
	list := &eventsv1.EventList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out = append(out, e.Reason+": "+e.Note)
		}
	}
	return out
}

// assertNoCanary checks that a secret value appears in no log line, Event or status.
func assertNoCanary(t *testing.T, ns, canary string) {
	t.Helper()
	testenv.AssertNoCanary(t, k8s, ns, canary, logs.String())
}

// mustJSON converts a YAML document to JSON.
func mustJSON(doc string) []byte {
	b, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		panic(err)
	}
	return b
}

// httptestTLS serves body over HTTPS at / (and 404 elsewhere) and returns its URL.
func httptestTLS(t *testing.T, body string) string {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func clientKey(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }
