package gitsync_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/controllers"
)

var (
	k8s     client.Client
	logs    testenv.LogBuffer // everything the controller logged
	hookURL string            // base URL of the push receiver
	// requests counts what the operator asks of the API server.
	requests *testenv.RequestCounter
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(_ *envtest.Environment, cfg *rest.Config, c client.Client) (func() error, error) {
		k8s, restCfg = c, cfg
		ctx, cancel := context.WithCancel(context.Background())
		if err := startOperator(ctx, cfg); err != nil {
			cancel()
			return nil, err
		}
		return func() error { cancel(); return nil }, nil
	}))
}

// cacheDir is the suite operator's --cache-dir; restCfg reaches the
// control plane.
var (
	cacheDir string
	restCfg  *rest.Config
)

// startOperator runs the GitSync controller the way operator/main.go wires it,
// logging into logs and counting its requests in requests.
func startOperator(ctx context.Context, cfg *rest.Config) error {
	dir, err := os.MkdirTemp("", "gitsync-test-")
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); _ = os.RemoveAll(dir) }()
	cacheDir = dir
	addr, err := testenv.FreeAddr()
	if err != nil {
		return err
	}
	hookURL = "http://" + addr
	cfg, requests = testenv.Counted(cfg)
	_, err = testenv.StartInProcess(ctx, cfg, zap.New(zap.WriteTo(&logs), zap.UseDevMode(true)),
		controllers.Options{Concurrency: 4, CacheDir: dir, Listen: addr, AllowLocalURLs: true})
	return err
}

// newNamespace makes a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	return testenv.NewNamespace(t, k8s, "gs-")
}

// eventually polls cond until it holds or a minute passes.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	testenv.Eventually(t, time.Minute, what, cond)
}

// getGitSync reads a GitSync.
func getGitSync(t *testing.T, ns, name string) *helmfluxv1alpha1.GitSync {
	t.Helper()
	gs := &helmfluxv1alpha1.GitSync{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, gs); err != nil {
		t.Fatal(err)
	}
	return gs
}

// ready returns the Ready condition of a GitSync as "Status Reason: message".
func ready(gs *helmfluxv1alpha1.GitSync) string {
	c := apimeta.FindStatusCondition(gs.Status.Conditions, meta.ReadyCondition)
	if c == nil {
		return "no Ready condition"
	}
	return fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
}

// waitApplied waits until the GitSync applied commit hash.
func waitApplied(t *testing.T, ns, name, hash string) *helmfluxv1alpha1.GitSync {
	t.Helper()
	var gs *helmfluxv1alpha1.GitSync
	eventually(t, "revision "+hash+" applied", func() (bool, string) {
		gs = getGitSync(t, ns, name)
		return strings.HasSuffix(gs.Status.LastAppliedRevision, hash) &&
			strings.HasPrefix(ready(gs), "True"), ready(gs)
	})
	return gs
}

// passCounter returns a function counting the passes that applied a
// revision of a GitSync (changed or not) since passCounter was called.
func passCounter(ns, name string) func() int {
	return logs.Counter("\tApplied revision\t", fmt.Sprintf(`"GitSync": {"name":"%s","namespace":"%s"}`, name, ns))
}

// waitPasses waits until the controller has run n more passes that applied
// a revision of a GitSync.
func waitPasses(t *testing.T, ns, name string, n int) {
	t.Helper()
	passes := passCounter(ns, name)
	eventually(t, fmt.Sprintf("%d passes", n), func() (bool, string) {
		c := passes()
		return c >= n, fmt.Sprintf("%d passes", c)
	})
}

// requestReconcile asks for a reconcile at once, as `helmflux sync` does,
// and returns the token, which the pass records in lastHandledReconcileAt.
func requestReconcile(t *testing.T, ns, name string) string {
	t.Helper()
	token := time.Now().Format(time.RFC3339Nano)
	annotate(t, ns, name, meta.ReconcileRequestAnnotation, token)
	return token
}

// annotate sets an annotation on a GitSync.
func annotate(t *testing.T, ns, name, key, value string) {
	t.Helper()
	gs := getGitSync(t, ns, name)
	patch := client.MergeFrom(gs.DeepCopy())
	if gs.Annotations == nil {
		gs.Annotations = map[string]string{}
	}
	gs.Annotations[key] = value
	if err := k8s.Patch(context.Background(), gs, patch); err != nil {
		t.Fatal(err)
	}
}

// waitHandled waits until a pass has handled the reconcile request token
// and written its outcome, and returns the GitSync as that pass left it.
func waitHandled(t *testing.T, ns, name, token string) *helmfluxv1alpha1.GitSync {
	t.Helper()
	var gs *helmfluxv1alpha1.GitSync
	eventually(t, "request "+token+" handled", func() (bool, string) {
		gs = getGitSync(t, ns, name)
		// Reconciling goes when the pass ends; a checkpoint in the middle of
		// the pass may show the token already.
		return gs.Status.LastHandledReconcileAt == token &&
				apimeta.FindStatusCondition(gs.Status.Conditions, meta.ReconcilingCondition) == nil,
			gs.Status.LastHandledReconcileAt + "; " + ready(gs)
	})
	return gs
}

// assertNoCanary checks that a secret value appears in no log line, Event or status.
func assertNoCanary(t *testing.T, ns, canary string) {
	t.Helper()
	testenv.AssertNoCanary(t, k8s, ns, canary, logs.String())
}
