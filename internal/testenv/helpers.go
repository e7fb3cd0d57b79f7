package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// LogBuffer collects what a logger writes from many goroutines, so a test
// can look for a line or prove a secret never appeared.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// LinesWith returns the lines written so far that contain s.
func (b *LogBuffer) LinesWith(s string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// Counter returns a function that counts the lines written since Counter
// was called that contain every one of parts: the passes of one object, say,
// by the line a controller logs once per pass and the object's key.
func (b *LogBuffer) Counter(parts ...string) func() int {
	count := func() int {
		n := 0
		for _, l := range b.LinesWith(parts[0]) {
			all := true
			for _, p := range parts[1:] {
				all = all && strings.Contains(l, p)
			}
			if all {
				n++
			}
		}
		return n
	}
	start := count()
	return func() int { return count() - start }
}

// AdminKubeconfig adds a system:masters user named name to env and writes its
// kubeconfig into dir, for a process that talks to the control plane.
func AdminKubeconfig(env *envtest.Environment, dir, name string) (string, error) {
	user, err := env.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", fmt.Errorf("add user: %w", err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("kubeconfig: %w", err)
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// ReleaseHistory returns the statuses of a Helm release's revisions, oldest
// first, read from Helm's storage Secrets the way `helm history` does.
func ReleaseHistory(ctx context.Context, c client.Reader, namespace, release string) ([]string, error) {
	list := &corev1.SecretList{}
	if err := c.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels{"owner": "helm", "name": release}); err != nil {
		return nil, err
	}
	version := func(s corev1.Secret) int {
		v, _ := strconv.Atoi(s.Labels["version"])
		return v
	}
	slices.SortFunc(list.Items, func(a, b corev1.Secret) int { return version(a) - version(b) })
	out := make([]string, 0, len(list.Items))
	for _, s := range list.Items {
		out = append(out, s.Labels["status"])
	}
	return out, nil
}

// RequestReconcile sets obj's reconcile.fluxcd.io/requestedAt annotation to a
// new token, as `helmflux sync` does, and returns it: once the object's
// status records the token as handled, a pass that began after the request
// has ended.
func RequestReconcile(t testing.TB, c client.Client, obj client.Object) string {
	t.Helper()
	ctx := context.Background()
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	token := time.Now().Format(time.RFC3339Nano)
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[meta.ReconcileRequestAnnotation] = token
	obj.SetAnnotations(ann)
	if err := c.Patch(ctx, obj, patch); err != nil {
		t.Fatal(err)
	}
	return token
}
