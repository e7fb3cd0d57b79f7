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

	gogit "github.com/go-git/go-git/v5"

	"github.com/helmflux/helmflux/internal/testenv"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// The demo a new user runs: a control plane they can reach with the printed
// kubeconfig, and the operator following pushes to plain manifests and to a
// HelmRelease.
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
	var listed, greeting, released string
	opts := options{root: root, stateDir: state, operator: operator,
		gitAddr: freeAddr(t), hookAddr: freeAddr(t), chartAddr: freeAddr(t), onReady: func(kubeconfig string) {
			defer cancel()
			kubectl := func(args ...string) string {
				cmd := exec.Command(filepath.Join(root, "bin", "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
				b, err := cmd.CombinedOutput()
				if err != nil {
					t.Errorf("kubectl %v: %v\n%s", args, err, b)
				}
				return string(b)
			}
			listed = kubectl("get", "gitsyncs,helmreleases,deployments,services", "-A", "-o", "name")

			// The user's story: edit, commit, push; the cluster follows.
			work := filepath.Join(state, "work")
			welcome := filepath.Join(work, "apps", "welcome.yaml")
			b, err := os.ReadFile(welcome)
			if err != nil {
				t.Error(err)
				return
			}
			if err := os.WriteFile(welcome, []byte(strings.Replace(string(b), "Hello from git", "Hello again", 1)), 0o600); err != nil {
				t.Error(err)
				return
			}
			repo, err := gogit.PlainOpen(work)
			if err != nil {
				t.Error(err)
				return
			}
			srv := &gitServer{url: "unused"}
			if err := srv.commitAndPush(context.Background(), repo, "Change the greeting"); err != nil {
				t.Error(err)
				return
			}
			deadline := time.Now().Add(time.Minute)
			for time.Now().Before(deadline) {
				greeting = kubectl("get", "configmap", "welcome", "-n", "demo", "-o", "jsonpath={.data.greeting}")
				if greeting == "Hello again" {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}

			// The Helm release follows a commit too.
			podinfo := filepath.Join(work, "apps", "podinfo.yaml")
			b, err = os.ReadFile(podinfo)
			if err != nil {
				t.Error(err)
				return
			}
			if err := os.WriteFile(podinfo, []byte(strings.Replace(string(b), "version: 6.5.0", "version: 6.5.1", 1)), 0o600); err != nil {
				t.Error(err)
				return
			}
			if err := srv.commitAndPush(context.Background(), repo, "Upgrade podinfo"); err != nil {
				t.Error(err)
				return
			}
			deadline = time.Now().Add(2 * time.Minute)
			for time.Now().Before(deadline) {
				released = kubectl("get", "helmrelease", "podinfo", "-n", "demo", "-o",
					`jsonpath={.status.revision} {.status.conditions[?(@.type=="Ready")].status}`)
				if released == "6.5.1 True" {
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
		}}
	if err := run(ctx, opts, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"gitsync.helmflux.dev/demo", "helmrelease.helm.fluxcd.io/podinfo", "deployment.apps/hello", "service/hello"} {
		if !strings.Contains(listed, want) {
			t.Errorf("kubectl get lists %q, want it to hold %s", listed, want)
		}
	}
	if released != "6.5.1 True" {
		t.Errorf("after the upgrade commit the HelmRelease is %q, want revision 6.5.1 and Ready", released)
	}
	if !strings.Contains(listed, "deployment.apps/demo-podinfo") {
		t.Errorf("the podinfo release's Deployment is missing: %s", listed)
	}
	if greeting != "Hello again" {
		t.Errorf("after the push the greeting is %q, want %q", greeting, "Hello again")
	}
	if !strings.Contains(out.String(), "export KUBECONFIG="+filepath.Join(state, "kubeconfig")) {
		t.Errorf("demo output does not say how to reach the cluster:\n%s", out.String())
	}
}
