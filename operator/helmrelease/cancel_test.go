package helmrelease_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/helm"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// holdFinalizer keeps the stuck chart's ConfigMap from going away, so an
// uninstall that waits never ends by itself.
const holdFinalizer = "helmflux.dev/test-hold"

// stuckChart's Deployment never becomes ready when image says so, its
// ConfigMap is held by a finalizer, and its test hook Pod is never
// scheduled: each Helm action that waits on them waits until its timeout.
func stuckChart() helmtest.Chart {
	return helmtest.Chart{
		Name: "stuck", Version: "1.0.0",
		Values: "image: example.com/app:1\n",
		Templates: map[string]string{
			"deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: 1
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
      - name: app
        image: {{ .Values.image | quote }}
`,
			"configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-held
  finalizers: [` + holdFinalizer + `]
`,
			"tests/test.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test
  annotations:
    helm.sh/hook: test
spec:
  restartPolicy: Never
  nodeSelector: {helmflux.dev/no-such-node: "true"}
  containers:
  - name: test
    image: example.com/test:1
`,
		},
	}
}

// stuckTimeout is every action's Helm timeout: far longer than the test
// may take, so only a cancel ends them.
const stuckTimeout = 30 * time.Minute

// cancelled runs action in the background, cancels its context once
// started says the action is under way, and returns the action's error.
func cancelled(t *testing.T, what string, started func() (bool, string), action func(context.Context) error) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- action(ctx) }()
	eventually(t, time.Minute, what+" under way", func() (bool, string) {
		select {
		case err := <-done:
			done <- err
			return true, "ended by itself: " + errString(err)
		default:
		}
		return started()
	})
	cancel()
	// Not a timing: the action's own timeout is stuckTimeout; without the
	// cancel it would not return before the test binary's deadline.
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Minute):
		t.Fatalf("%s did not return after its context was cancelled", what)
		return nil
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// Every Helm action returns with context.Canceled when its context is
// cancelled mid-action, also those Helm runs without a context (rollback,
// test, uninstall), and an abandoned rollback stops reaching the cluster:
// it records itself failed long before its timeout.
func TestHelmActionsAreCancellable(t *testing.T) {
	ns := newNamespace(t)
	tgz, err := stuckChart().Package()
	if err != nil {
		t.Fatal(err)
	}
	ch, err := loader.LoadArchive(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	exists := func(obj func() error) func() (bool, string) {
		return func() (bool, string) {
			if err := obj(); err != nil {
				return false, err.Error()
			}
			return true, ""
		}
	}
	status := func(name, want string) func() (bool, string) {
		return func() (bool, string) {
			last, err := runner.Last(ctx, ns, name)
			if err != nil || last == nil {
				return false, errString(err)
			}
			return last.Status == want, last.Status
		}
	}
	neverReady := map[string]any{"image": "example.com/app" + testenv.NeverReadyImageSuffix}
	t.Cleanup(func() {
		for _, name := range []string{"inst", "app"} {
			cm := &corev1.ConfigMap{}
			if err := k8s.Get(ctx, clientKey(ns, name+"-held"), cm); err == nil {
				cm.Finalizers = nil
				_ = k8s.Update(ctx, cm)
			}
		}
	})

	// Install, waiting on a Deployment that never becomes ready.
	err = cancelled(t, "install", exists(func() error { return k8s.Get(ctx, clientKey(ns, "inst"), &appsv1.Deployment{}) }),
		func(ctx context.Context) error {
			_, err := runner.Install(ctx, helm.Request{Namespace: ns, Name: "inst", Chart: ch, Values: neverReady, Wait: true, Timeout: stuckTimeout})
			return err
		})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("install: %v, want context.Canceled", err)
	}

	// A release at revision 2, whose revision 1 never becomes ready.
	if _, err := runner.Install(ctx, helm.Request{Namespace: ns, Name: "app", Chart: ch, Values: neverReady, Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := runner.Upgrade(ctx, helm.Request{Namespace: ns, Name: "app", Chart: ch, Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	err = cancelled(t, "upgrade", status("app", helm.StatusPendingUpgrade), func(ctx context.Context) error {
		_, err := runner.Upgrade(ctx, helm.Request{Namespace: ns, Name: "app", Chart: ch, Values: neverReady, Wait: true, Timeout: stuckTimeout})
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("upgrade: %v, want context.Canceled", err)
	}
	eventually(t, 2*time.Minute, "the cancelled upgrade recorded failed", status("app", helm.StatusFailed))

	err = cancelled(t, "rollback", status("app", helm.StatusPendingRollback), func(ctx context.Context) error {
		return runner.Rollback(ctx, ns, "app", helm.RollbackOptions{Version: 1, Wait: true, Timeout: stuckTimeout})
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("rollback: %v, want context.Canceled", err)
	}
	// The rollback goes on in the background, but its wait's requests
	// fail at once: it records itself failed instead of waiting 30 minutes.
	eventually(t, 2*time.Minute, "the abandoned rollback recorded failed", status("app", helm.StatusFailed))

	// A test hook Pod that is never scheduled.
	err = cancelled(t, "test", exists(func() error { return k8s.Get(ctx, clientKey(ns, "app-test"), &corev1.Pod{}) }),
		func(ctx context.Context) error {
			_, err := runner.Test(ctx, ns, "app", stuckTimeout)
			return err
		})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("test: %v, want context.Canceled", err)
	}

	// An uninstall waiting for a ConfigMap held by a finalizer.
	err = cancelled(t, "uninstall", func() (bool, string) {
		cm := &corev1.ConfigMap{}
		if err := k8s.Get(ctx, clientKey(ns, "app-held"), cm); err != nil {
			return false, err.Error()
		}
		return !cm.DeletionTimestamp.IsZero(), "not being deleted"
	}, func(ctx context.Context) error {
		return runner.Uninstall(ctx, ns, "app", stuckTimeout, true)
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("uninstall: %v, want context.Canceled", err)
	}
}
