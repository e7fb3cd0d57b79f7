package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The demo a new user runs: a control plane they can reach with the printed
// kubeconfig, the samples applied, and the operator up.
func TestDemoStartsAReachableControlPlane(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	operator := filepath.Join(t.TempDir(), "helmflux-operator")
	build := exec.Command("go", "build", "-o", operator, "./operator")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the operator: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	state := t.TempDir()
	var out bytes.Buffer
	var listed, logged string
	opts := options{root: root, stateDir: state, operator: operator, onReady: func(kubeconfig string) {
		defer cancel()
		get := exec.Command(filepath.Join(root, "bin", "kubectl"), "--kubeconfig", kubeconfig,
			"get", "helmreleases,gitsyncs", "-A", "-o", "name")
		b, err := get.CombinedOutput()
		if err != nil {
			t.Errorf("kubectl with the demo kubeconfig: %v\n%s", err, b)
		}
		listed = string(b)
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			b, _ := os.ReadFile(filepath.Join(state, "operator.log"))
			if logged = string(b); strings.Contains(logged, "Starting helmflux-operator") {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}}
	if err := run(ctx, opts, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"helmrelease.helm.fluxcd.io/podinfo", "gitsync.helmflux.dev/cluster-config"} {
		if !strings.Contains(listed, want) {
			t.Errorf("kubectl get lists %q, want it to hold %s", listed, want)
		}
	}
	if !strings.Contains(logged, "Starting helmflux-operator") {
		t.Errorf("operator log does not show it starting:\n%s", logged)
	}
	if !strings.Contains(out.String(), "export KUBECONFIG="+filepath.Join(state, "kubeconfig")) {
		t.Errorf("demo output does not say how to reach the cluster:\n%s", out.String())
	}
}
