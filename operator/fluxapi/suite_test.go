package fluxapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/controllers"
	"github.com/helmflux/helmflux/operator/fluxapi"
	"github.com/helmflux/helmflux/pkg/registry"
)

var (
	k8s     client.Client
	logs    testenv.LogBuffer
	apiURL  string // http://<addr>/api/flux
	idKey   = client.ObjectKey{Namespace: "default", Name: "fluxapi-test-identity"}
	version = "1.2.3-test"
)

func TestMain(m *testing.M) { os.Exit(testenv.MainWithWorkloads(m, &k8s, startOperator)) }

// startOperator runs every controller as operator/main.go wires them, with
// the fluxd API on a free port. Automation passes are an hour apart, so
// only the API's jobs write to git.
func startOperator(ctx context.Context, cfg *rest.Config) error {
	dir, err := os.MkdirTemp("", "fluxapi-test-")
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); _ = os.RemoveAll(dir) }()
	addr, err := testenv.FreeAddr()
	if err != nil {
		return err
	}
	apiURL = "http://" + addr + fluxapi.Prefix
	tls := testenv.TLSTrustingClient()
	_, err = testenv.StartInProcess(ctx, cfg, zap.New(zap.WriteTo(&logs), zap.UseDevMode(true)), controllers.Options{
		Concurrency: 4, CacheDir: dir, Listen: addr, HelmInterval: time.Minute, HTTPClient: tls, AllowLocalURLs: true,
		AutomationInterval: time.Hour, Version: version, Identity: idKey,
		Registry: registry.Options{TagTTL: time.Hour, Transport: tls.Transport},
	})
	return err
}

// call sends a request the way fluxctl does (no Content-Type on bodies)
// and decodes a JSON answer into out; it returns the status and the body.
func call(t *testing.T, method, path string, body any, out any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, apiURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, string(b)
}

// fluxError decodes fluxd's error body.
type fluxError struct {
	Type, Help, Error string
}

func decodeError(t *testing.T, body string) fluxError {
	t.Helper()
	var e fluxError
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Type == "" || e.Help == "" {
		t.Fatalf("error body %q is not fluxd's {type, help, error}", body)
	}
	return e
}

// waitJob polls a job until it finished, as fluxctl does.
func waitJob(t *testing.T, id string) fluxapi.JobStatus {
	t.Helper()
	var st fluxapi.JobStatus
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if code, body := call(t, http.MethodGet, "/v6/jobs?id="+id, nil, &st); code != http.StatusOK {
			t.Fatalf("GET /v6/jobs: %d %s", code, body)
		}
		if st.StatusString == fluxapi.JobSucceeded || st.StatusString == fluxapi.JobFailed {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("job %s did not finish: %+v", id, st)
	return st
}

// submit posts an update and returns its job ID.
func submit(t *testing.T, spec any) string {
	t.Helper()
	var id string
	if code, body := call(t, http.MethodPost, "/v9/update-manifests", spec, &id); code != http.StatusOK {
		t.Fatalf("POST /v9/update-manifests: %d %s", code, body)
	}
	return id
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	testenv.Eventually(t, timeout, what, cond)
}

// createGitSync makes a GitSync of url over the apps directory and waits
// suspend suspends gs and waits until the operator says so, so that no pass
// of it runs after (a pass would put back what the test deletes or moves).
func suspend(t *testing.T, gs *helmfluxv1alpha1.GitSync) {
	t.Helper()
	setSuspend(t, gs, true)
	eventually(t, time.Minute, "the GitSync to be suspended", func() (bool, string) {
		got := &helmfluxv1alpha1.GitSync{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(gs), got); err != nil {
			return false, err.Error()
		}
		ready := apimeta.FindStatusCondition(got.Status.Conditions, meta.ReadyCondition)
		return ready != nil && ready.Reason == helmfluxv1alpha1.SuspendedReason && ready.ObservedGeneration == got.Generation, fmt.Sprintf("%+v", ready)
	})
}

// setSuspend sets gs's spec.suspend with a merge patch, which the
// operator's own writes to the GitSync (status, finalizer) do not conflict
// with.
func setSuspend(t *testing.T, gs *helmfluxv1alpha1.GitSync, suspended bool) {
	t.Helper()
	patch := fmt.Appendf(nil, `{"spec":{"suspend":%t}}`, suspended)
	if err := k8s.Patch(context.Background(), gs, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
}

// until it applied the head.
func createGitSync(t *testing.T, ns, url, head string, mutate func(*helmfluxv1alpha1.GitSync)) *helmfluxv1alpha1.GitSync {
	t.Helper()
	gs := &helmfluxv1alpha1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apps"},
		Spec: helmfluxv1alpha1.GitSyncSpec{URL: url, Paths: []string{"apps"}, Interval: metav1.Duration{Duration: time.Minute},
			Ref: &helmfluxv1alpha1.GitRef{Branch: "main"}},
	}
	if mutate != nil {
		mutate(gs)
	}
	if err := k8s.Create(context.Background(), gs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), gs) })
	eventually(t, time.Minute, "the GitSync to apply "+head, func() (bool, string) {
		got := &helmfluxv1alpha1.GitSync{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(gs), got); err != nil {
			return false, err.Error()
		}
		ready := apimeta.FindStatusCondition(got.Status.Conditions, meta.ReadyCondition)
		return strings.HasSuffix(got.Status.LastAppliedRevision, head) && ready != nil && ready.Status == metav1.ConditionTrue,
			fmt.Sprintf("%s %+v", got.Status.LastAppliedRevision, ready)
	})
	// The API answers from the operator's cache, which may see the GitSync
	// (and its inventory) a moment after this client does: wait until the
	// API itself reports head applied.
	eventually(t, time.Minute, "the API to see "+head+" applied", func() (bool, string) {
		var pending []string
		code, body := call(t, http.MethodGet, "/v6/sync?ref="+head, nil, &pending)
		return code == http.StatusOK && pending != nil && len(pending) == 0, body
	})
	return gs
}
