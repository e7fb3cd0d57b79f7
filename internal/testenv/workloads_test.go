package testenv_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/helmflux/helmflux/internal/testenv"
)

const (
	ns       = "workloads"
	nodes    = 2
	rollout  = 60 * time.Second // generous: a loaded 2-core machine
	interval = 100 * time.Millisecond
)

func TestWorkloads(t *testing.T) {
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

	ctx := t.Context()
	start := time.Now()
	dir := t.TempDir()
	stop, err := testenv.StartWorkloads(ctx, env, testenv.WorkloadOptions{Nodes: nodes, Dir: dir})
	if errors.Is(err, testenv.ErrMissingBinary) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("StartWorkloads took %v", time.Since(start).Round(time.Millisecond))
	// Registered after env.Stop's cleanup, so it runs before it.
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
		if err := stop(); err != nil { // idempotent
			t.Error(err)
		}
		if left := processesMentioning(t, dir); len(left) > 0 {
			t.Errorf("processes left after stop: %q", left)
		}
	})

	cs := kubernetes.NewForConfigOrDie(cfg)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("group", func(t *testing.T) {
		t.Run("Deployment", func(t *testing.T) { t.Parallel(); testDeployment(ctx, t, cs) })
		t.Run("NeverReady", func(t *testing.T) { t.Parallel(); testNeverReady(ctx, t, cs) })
		t.Run("HelmTestPasses", func(t *testing.T) {
			t.Parallel()
			testHookPod(ctx, t, cs, "hook-pass", "test", false, corev1.PodSucceeded)
		})
		t.Run("HelmTestFails", func(t *testing.T) {
			t.Parallel()
			testHookPod(ctx, t, cs, "hook-fail", "test-success", true, corev1.PodFailed)
		})
		t.Run("StatefulSet", func(t *testing.T) { t.Parallel(); testStatefulSet(ctx, t, cs) })
		t.Run("DaemonSet", func(t *testing.T) { t.Parallel(); testDaemonSet(ctx, t, cs) })
		t.Run("Job", func(t *testing.T) { t.Parallel(); testJob(ctx, t, cs) })
	})
}

func podTemplate(app, image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: image}},
		},
	}
}

func selector(app string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
}

// eventually polls cond until it holds or the rollout time is over.
func eventually(ctx context.Context, t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(ctx, interval, rollout, true, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func testDeployment(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: selector("web"),
			Template: podTemplate("web", "example.com/web:1.0"),
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "Deployment web has 2 ready replicas and is Available", func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		available := false
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
				available = true
			}
		}
		return d.Status.ReadyReplicas == 2 && available, nil
	})
}

func testNeverReady(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "stuck", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: selector("stuck"),
			Template: podTemplate("stuck", "x"+testenv.NeverReadyImageSuffix),
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the never-ready Pod runs", func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=stuck"})
		if err != nil || len(pods.Items) == 0 {
			return false, err
		}
		return pods.Items[0].Status.Phase == corev1.PodRunning, nil
	})
	// Running, and for the next 3 s neither the Pod nor the Deployment gets ready.
	deadline := time.Now().Add(3 * time.Second)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for time.Now().Before(deadline) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "stuck", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Status.ReadyReplicas != 0 || d.Status.AvailableReplicas != 0 {
			t.Fatalf("never-ready Deployment has %d ready, %d available replicas", d.Status.ReadyReplicas, d.Status.AvailableReplicas)
		}
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=stuck"})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodRunning {
				t.Fatalf("never-ready Pod %s is %s, want Running", p.Name, p.Status.Phase)
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					t.Fatalf("never-ready Pod %s is Ready", p.Name)
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-ticker.C:
		}
	}
}

func testHookPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, name, hook string, fail bool, want corev1.PodPhase) {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   ns,
			Annotations: map[string]string{"helm.sh/hook": hook},
		},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "test", Image: "busybox"}},
		},
	}
	if fail {
		p.Annotations[testenv.TestFailAnnotation] = "true"
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var phase corev1.PodPhase
	eventually(ctx, t, "hook Pod "+name+" finishes", func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		phase = p.Status.Phase
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed, nil
	})
	if phase != want {
		t.Fatalf("hook Pod %s ended %s, want %s", name, phase, want)
	}
}

func testStatefulSet(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](2),
			Selector: selector("db"),
			Template: podTemplate("db", "example.com/db:1.0"),
		},
	}
	if _, err := cs.AppsV1().StatefulSets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "StatefulSet db has 2 ready replicas", func(ctx context.Context) (bool, error) {
		s, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "db", metav1.GetOptions{})
		return err == nil && s.Status.ReadyReplicas == 2, err
	})
}

func testDaemonSet(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	d := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns},
		Spec: appsv1.DaemonSetSpec{
			Selector: selector("agent"),
			Template: podTemplate("agent", "example.com/agent:1.0"),
		},
	}
	if _, err := cs.AppsV1().DaemonSets(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "DaemonSet agent is ready on every node", func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().DaemonSets(ns).Get(ctx, "agent", metav1.GetOptions{})
		return err == nil && d.Status.DesiredNumberScheduled == nodes && d.Status.NumberReady == nodes, err
	})
}

func testJob(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	tpl := podTemplate("migrate", "example.com/migrate:1.0")
	tpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "migrate", Namespace: ns},
		Spec:       batchv1.JobSpec{Template: tpl, BackoffLimit: ptr.To[int32](0)},
	}
	if _, err := cs.BatchV1().Jobs(ns).Create(ctx, j, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "Job migrate completes", func(ctx context.Context) (bool, error) {
		j, err := cs.BatchV1().Jobs(ns).Get(ctx, "migrate", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				return false, errors.New("job failed: " + c.Message)
			}
		}
		return j.Status.Succeeded == 1, nil
	})
}

// TestWorkloadsProcessExits checks that StartWorkloads reports a process that
// dies during the start with the end of its log, and leaves nothing running.
func TestWorkloadsProcessExits(t *testing.T) {
	env, err := testenv.New()
	if errors.Is(err, testenv.ErrMissingBinary) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Start(); err != nil {
		t.Fatalf("start the control plane: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })

	// The real kube-controller-manager and kube-scheduler, and a kwok that fails.
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	fake := t.TempDir()
	for _, b := range []string{"kube-controller-manager", "kube-scheduler"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			t.Skipf("%v: run `make controlplane`", err)
		}
		if err := os.Symlink(filepath.Join(assets, b), filepath.Join(fake, b)); err != nil {
			t.Fatal(err)
		}
	}
	script := "#!/bin/sh\necho 'kwok: cannot reach the moon' >&2\nexit 3\n"
	if err := os.WriteFile(filepath.Join(fake, "kwok"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBEBUILDER_ASSETS", fake) // env is started: only StartWorkloads sees it

	dir := t.TempDir()
	stop, err := testenv.StartWorkloads(t.Context(), env, testenv.WorkloadOptions{Dir: dir, Timeout: 30 * time.Second})
	if err == nil {
		_ = stop()
		t.Fatal("StartWorkloads succeeded with a kwok that exits")
	}
	for _, want := range []string{"kwok exited early", "exit status 3", "cannot reach the moon"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if left := processesMentioning(t, dir); len(left) > 0 {
		t.Errorf("processes left after a failed start: %q", left)
	}
}

// processesMentioning lists the command lines of running processes that
// contain s, from /proc (skipped where there is none).
func processesMentioning(t *testing.T, s string) []string {
	t.Helper()
	cmdlines, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil || len(cmdlines) == 0 {
		t.Log("no /proc: cannot look for leftover processes")
		return nil
	}
	var found []string
	for _, f := range cmdlines {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		if cmd := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})); strings.Contains(cmd, s) {
			found = append(found, cmd)
		}
	}
	return found
}
