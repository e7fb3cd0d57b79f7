package automation_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/controllers"
	"github.com/helmflux/helmflux/operator/webhook"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/registry"
)

var (
	k8s       client.Client
	logs      testenv.LogBuffer // everything the controllers logged
	hookURL   string            // base URL of the operator's HTTP endpoints
	tlsClient *http.Client      // trusts the tests' TLS servers
)

func TestMain(m *testing.M) { os.Exit(testenv.MainWithWorkloads(m, &k8s, startOperator)) }

// startOperator runs every controller the way operator/main.go wires them.
// Tag lists are reused for an hour, so only a registry notification makes a
// pass see a new tag: the tests decide when that happens.
func startOperator(ctx context.Context, cfg *rest.Config) error {
	dir, err := os.MkdirTemp("", "automation-test-")
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); _ = os.RemoveAll(dir) }()
	addr, err := testenv.FreeAddr()
	if err != nil {
		return err
	}
	hookURL = "http://" + addr
	tlsClient = testenv.TLSTrustingClient()
	_, err = testenv.StartInProcess(ctx, cfg, zap.New(zap.WriteTo(&logs), zap.UseDevMode(true)), controllers.Options{
		Concurrency: 4, CacheDir: dir, Listen: addr, HelmInterval: time.Minute, AllowLocalURLs: true,
		HTTPClient:         tlsClient,
		AutomationInterval: 2 * time.Second,
		Registry:           registry.Options{TagTTL: time.Hour, Transport: tlsClient.Transport},
		// Tests push a tag and notify at once, many times a second (race_test);
		// the receiver's rescan limit is tested in operator/webhook.
		RegistryRescanInterval: time.Nanosecond,
	})
	return err
}

// newNamespace makes a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	return testenv.NewNamespace(t, k8s, "auto-")
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	testenv.Eventually(t, timeout, what, cond)
}

func getGitSync(t *testing.T, ns, name string) *helmfluxv1alpha1.GitSync {
	t.Helper()
	gs := &helmfluxv1alpha1.GitSync{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, gs); err != nil {
		t.Fatal(err)
	}
	return gs
}

// automationReady returns status.imageAutomation's Ready as "Status Reason: message".
func automationReady(gs *helmfluxv1alpha1.GitSync) string {
	if gs.Status.ImageAutomation == nil {
		return "no imageAutomation status"
	}
	c := apimeta.FindStatusCondition(gs.Status.ImageAutomation.Conditions, "Ready")
	if c == nil {
		return "no Ready condition"
	}
	return fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
}

// notify sends a registry notification naming images, the way a registry's
// webhook would.
func notify(t *testing.T, images ...string) {
	t.Helper()
	var events []map[string]any
	for _, img := range images {
		host, repo, _ := strings.Cut(img, "/")
		events = append(events, map[string]any{
			"action": "push", "target": map[string]any{"repository": repo}, "request": map[string]any{"host": host},
		})
	}
	body, _ := json.Marshal(map[string]any{"events": events})
	resp, err := http.Post(hookURL+webhook.RegistryPath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("registry notification: %s", resp.Status)
	}
}

// pullSecret creates a kubernetes.io/dockerconfigjson Secret for host.
func pullSecret(t *testing.T, ns, name, host, user, pass string) {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"auth": auth}}})
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: cfg},
	}
	if err := k8s.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

// assertNoCanary checks that a secret value appears in no log line, Event
// or status of any namespace, and in no object of the git remotes.
func assertNoCanary(t *testing.T, canary string, remotes ...*gittest.Repo) {
	t.Helper()
	testenv.AssertNoLeak(t, k8s, canary, testenv.Leaks{Logs: []string{logs.String()}, Remotes: remotes})
}

// automationPasses counts the automation passes over a GitSync that end
// from now on.
func automationPasses(ns, name string) func() int {
	return testenv.AutomationPasses(logs.String, ns, name)
}
