package testenv_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmflux/helmflux/internal/testenv"
)

// TestWorkloadsPortForward: with PortForward, `kubectl port-forward` to a
// fake Pod's port reaches the host address its PortForward names, through
// the API server and kwok's kubelet API.
func TestWorkloadsPortForward(t *testing.T) {
	env, err := testenv.New()
	if errors.Is(err, testenv.ErrMissingBinary) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start the control plane: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	dir := t.TempDir()
	stop, err := testenv.StartWorkloads(t.Context(), env, testenv.WorkloadOptions{Dir: dir, PortForward: true})
	if errors.Is(err, testenv.ErrMissingBinary) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop() })
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}

	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello from the host")
	}))
	t.Cleanup(host.Close)
	u, _ := url.Parse(host.URL)
	port, _ := strconv.Atoi(u.Port())

	ctx := t.Context()
	ns := testenv.NewNamespace(t, c, "portforward-")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "example.com/web:1.0"}}},
	}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pf := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "PortForward",
		"metadata": map[string]any{"namespace": ns, "name": "web"},
		"spec": map[string]any{"forwards": []any{map[string]any{
			"ports": []any{int64(3030)}, "target": map[string]any{"address": "127.0.0.1", "port": int64(port)},
		}}},
	}}
	if err := c.Create(ctx, pf); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, "the Pod Running", func() (bool, string) {
		got := &corev1.Pod{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(pod), got); err != nil {
			return false, err.Error()
		}
		return got.Status.Phase == corev1.PodRunning, string(got.Status.Phase)
	})

	// kubectl port-forward, as a user (and fluxctl) would.
	kubectl := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	var body string
	testenv.Eventually(t, time.Minute, "a GET through kubectl port-forward", func() (bool, string) {
		got, err := getThroughPortForward(ctx, kubectl, filepath.Join(dir, "kubeconfig"), ns, "pod/web", 3030)
		body = got
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	if body != "hello from the host" {
		t.Errorf("through the port-forward: %q", body)
	}
}

// getThroughPortForward runs kubectl port-forward to a free local port,
// GETs / through it and stops kubectl.
func getThroughPortForward(ctx context.Context, kubectl, kubeconfig, ns, target string, port int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "-n", ns, "port-forward", target, ":"+strconv.Itoa(port)) // #nosec G204 -- the control plane's kubectl
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	var stderr testenv.LogBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(out)
	re := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) ->`)
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		go func() { _, _ = io.Copy(io.Discard, out) }()
		resp, err := http.Get("http://127.0.0.1:" + m[1] + "/") // #nosec G107 -- loopback
		if err != nil {
			return "", fmt.Errorf("GET through the port-forward: %w (kubectl: %s)", err, stderr.String())
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	return "", fmt.Errorf("kubectl port-forward did not forward: %s", stderr.String())
}
