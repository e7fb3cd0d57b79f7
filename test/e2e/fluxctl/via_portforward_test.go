package fluxctl

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmflux/helmflux/internal/testenv"
)

// fluxdPort is the Pod port fluxctl forwards to, fluxd's: 3030, unnamed.
var fluxdPort = corev1.ContainerPort{ContainerPort: 3030}

// fakeFluxPod stands for the operator's Pod: a Pod labelled as the client
// looks for it, Running on a kwok node, with one container port (a name
// and a number: fluxctl forwards to 3030, helmflux to the port named
// "http"), which kwok forwards (a PortForward of the same name) to the
// operator process on the host.
func (s *story) fakeFluxPod(name string, labels map[string]string, port corev1.ContainerPort) {
	s.t.Helper()
	s.fakePodTo(name, labels, port, s.addr)
}

// fakePodTo is fakeFluxPod forwarding to addr (host:port) instead of the
// story's operator.
func (s *story) fakePodTo(name string, labels map[string]string, port corev1.ContainerPort, addr string) {
	s.t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: name, Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "flux", Image: "example.com/helmflux:test",
			Ports: []corev1.ContainerPort{port}}}},
	}
	if err := k8s.Create(ctx, pod); err != nil {
		s.t.Fatal(err)
	}
	_, opPort, err := net.SplitHostPort(addr)
	if err != nil {
		s.t.Fatal(err)
	}
	p, _ := strconv.Atoi(opPort)
	pf := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "PortForward",
		"metadata": map[string]any{"namespace": s.ns, "name": name},
		"spec": map[string]any{"forwards": []any{map[string]any{
			"ports":  []any{int64(port.ContainerPort)},
			"target": map[string]any{"address": "127.0.0.1", "port": int64(p)},
		}}},
	}}
	if err := k8s.Create(ctx, pf); err != nil {
		s.t.Fatal(err)
	}
	testenv.Eventually(s.t, time.Minute, "the fake flux Pod Running", func() (bool, string) {
		got := &corev1.Pod{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(pod), got); err != nil {
			return false, err.Error()
		}
		return got.Status.Phase == corev1.PodRunning, string(got.Status.Phase)
	})
}

// TestPortForward: fluxctl without --url finds the operator's Pod by its
// labels (app=flux, fluxctl's default) in --k8s-fwd-ns and reaches the API
// through a port-forward to Pod port 3030, as it reached fluxd.
func TestPortForward(t *testing.T) {
	s := newStory(t, storyOptions{files: appFiles(), tags: tags})
	if _, err := testenv.AdminKubeconfig(env, s.home, "fluxctl-user"); err != nil { // s.home/kubeconfig
		t.Fatal(err)
	}
	s.fakeFluxPod("helmflux-0", map[string]string{"app": "flux"}, fluxdPort)
	row := s.ns + ":deployment/app app " + s.image + ":1.0.0 ready"
	fwd := func(args ...string) result {
		t.Helper()
		args = append([]string{"--k8s-fwd-ns", s.ns, "--timeout", pollTimeout}, args...)
		ctx, cancel := context.WithTimeout(context.Background(), fluxctlTimeout)
		defer cancel()
		return s.runCmd(s.rawCmd(ctx, fluxctlTool, args...), args)
	}
	var r result
	testenv.Eventually(t, time.Minute, "list-workloads through the port-forward", func() (bool, string) {
		r = fwd("list-workloads", "-n", s.ns)
		return r.code == 0 && hasLine(r.stdout, row), r.String()
	})

	// A release through the port-forward: one commit, applied.
	before := s.head()
	r = fwd("release", "--workload", s.ns+":deployment/app", "--update-image", s.image+":1.0.1")
	if r.code != 0 || !hasLine(r.stdout, s.ns+":deployment/app success app: "+s.image+":1.0.0 -> 1.0.1") {
		s.fatalf("release through the port-forward:\n%s", r)
	}
	head := s.oneCommit(before, pushed(r.stderr, "Commit applied:"), "apps/app.yaml")
	s.onlyTag(before, head, "apps/app.yaml", "1.0.0", "1.0.1")
	s.applied("app", s.image+":1.0.1")

	// Another label, as the chart may set it: --k8s-fwd-labels.
	s.fakeFluxPod("helmflux-1", map[string]string{"app.kubernetes.io/name": "helmflux"}, fluxdPort)
	r = fwd("--k8s-fwd-labels", "app.kubernetes.io/name=helmflux", "identity")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ssh-ed25519 ") {
		s.errorf("identity through --k8s-fwd-labels:\n%s", r)
	}
	// Two Pods with the default label: fluxctl refuses to guess.
	s.fakeFluxPod("helmflux-2", map[string]string{"app": "flux"}, fluxdPort)
	if r = fwd("list-workloads"); r.code == 0 || !strings.Contains(r.stderr, "Ambiguous") {
		s.errorf("two app=flux Pods: want fluxctl's ambiguity error:\n%s", r)
	}
}
