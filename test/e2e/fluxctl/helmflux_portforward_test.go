package fluxctl

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmflux/helmflux/internal/testenv"
)

// helmfluxPort is the operator Pod's API port as helmflux's chart names
// it: "http", on a number other than fluxd's 3030, so that only a client
// that forwards to the port by its name reaches the operator.
var helmfluxPort = corev1.ContainerPort{Name: "http", ContainerPort: 9797}

// TestHelmfluxPortForward: helmflux without --url finds the operator's Pod
// in --k8s-fwd-ns by its label app.kubernetes.io/name=helmflux (else
// fluxctl's app=flux) and reaches the API through a port-forward to its
// port named "http"; no matching Pod ends with exit status 3 and what to
// set; of two, it reaches the Lease holder, else the first ready one.
func TestHelmfluxPortForward(t *testing.T) {
	s := newStory(t, storyOptions{files: appFiles(), tags: tags})
	fwd := func(args ...string) result {
		t.Helper()
		args = append([]string{"--k8s-fwd-ns", s.ns, "--timeout", pollTimeout}, args...)
		ctx, cancel := context.WithTimeout(context.Background(), fluxctlTimeout)
		defer cancel()
		return s.runCmd(s.rawCmd(ctx, helmfluxTool, args...), args)
	}
	// The admin's kubeconfig, first through --kubeconfig ($KUBECONFIG has
	// no cluster): without it, helmflux would have nothing to list Pods
	// with.
	kubeconfig, err := testenv.AdminKubeconfig(env, t.TempDir(), "helmflux-user")
	if err != nil {
		t.Fatal(err)
	}

	// No Pod yet: the selectors tried and the namespace, and what to set.
	r := fwd("--kubeconfig", kubeconfig, "list-workloads", "-n", s.ns)
	if r.code != 3 || !strings.Contains(r.stderr, "no running operator Pod matches app.kubernetes.io/name=helmflux or app=flux in namespace "+s.ns) ||
		!strings.Contains(r.stderr, "set --k8s-fwd-ns or --k8s-fwd-labels") {
		s.errorf("no operator Pod: want exit status 3 naming the selectors and the namespace:\n%s", r)
	}
	// A context the kubeconfig does not have.
	if r := fwd("--kubeconfig", kubeconfig, "--context", "nope", "list-workloads", "-n", s.ns); r.code != 3 || !strings.Contains(r.stderr, `context "nope" does not exist`) {
		s.errorf("--context nope: want exit status 3 naming the context:\n%s", r)
	}
	// From here on $KUBECONFIG is the admin's, its context in the story's
	// namespace: unqualified names and list-workloads without -n are
	// there, fluxctl's rule.
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Contexts[cfg.CurrentContext].Namespace = s.ns
	if err := clientcmd.WriteToFile(*cfg, s.kubeconfig()); err != nil {
		t.Fatal(err)
	}

	// A Pod labelled for fluxctl: found when the default label finds none.
	s.fakeFluxPod("flux-0", map[string]string{"app": "flux"}, fluxdPort)
	var got result
	testenv.Eventually(t, time.Minute, "identity through the port-forward to the app=flux Pod", func() (bool, string) {
		got = fwd("identity")
		return got.code == 0 && strings.HasPrefix(got.stdout, "ssh-ed25519 "), got.String()
	})
	if err := k8s.Delete(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "flux-0"}}, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}

	// The chart's Pod: its label, its port named "http".
	s.fakeFluxPod("helmflux-0", map[string]string{"app.kubernetes.io/name": "helmflux", "app.kubernetes.io/instance": "one"}, helmfluxPort)
	row := s.ns + ":deployment/app app " + s.image + ":1.0.0 ready"
	testenv.Eventually(t, time.Minute, "list-workloads through the port-forward", func() (bool, string) {
		got = fwd("list-workloads")
		return got.code == 0 && hasLine(got.stdout, row), got.String()
	})
	// A release through the port-forward: one commit, applied.
	before := s.head()
	r = fwd("release", "--workload", "deployment/app", "--update-image", s.image+":1.0.1")
	if r.code != 0 || !hasLine(r.stdout, s.ns+":deployment/app success app: "+s.image+":1.0.0 -> 1.0.1") {
		s.fatalf("release through the port-forward:\n%s", r)
	}
	head := s.oneCommit(before, pushed(r.stderr, "Commit applied:"), "apps/app.yaml")
	s.onlyTag(before, head, "apps/app.yaml", "1.0.0", "1.0.1")
	s.applied("app", s.image+":1.0.1")

	// Two Pods with the label, replicas of one operator: helmflux goes to
	// the holder of the operator's Lease, where jobs run, else to the first
	// ready Pod by name. helmflux-1 forwards to a stub API whose deploy key
	// tells it from helmflux-0.
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"publicSSHKey":{"key":"ssh-ed25519 STUB-helmflux-1"},"status":"ready"}`)
	}))
	t.Cleanup(stub.Close)
	s.fakePodTo("helmflux-1", map[string]string{"app.kubernetes.io/name": "helmflux", "app.kubernetes.io/instance": "two"}, helmfluxPort, stub.Listener.Addr().String())
	if r := fwd("identity"); r.code != 0 || !strings.HasPrefix(r.stdout, "ssh-ed25519 ") || strings.Contains(r.stdout, "STUB") {
		s.errorf("two operator Pods, no Lease: want the identity of helmflux-0, the first by name:\n%s", r)
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "helmflux-operator.helmflux.dev"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("helmflux-1_0c6f1f43-9d1e-4d55-a9b4-0e6d5c0d2f7a")}}
	if err := k8s.Create(context.Background(), lease); err != nil {
		t.Fatal(err)
	}
	if r := fwd("identity"); r.code != 0 || strings.TrimSpace(r.stdout) != "ssh-ed25519 STUB-helmflux-1" {
		s.errorf("two operator Pods, helmflux-1 holding the Lease: want its identity:\n%s", r)
	}
	// --k8s-fwd-labels picks one, whoever holds the Lease.
	r = fwd("--k8s-fwd-labels", "app.kubernetes.io/instance=one", "list-workloads", "-n", s.ns)
	if r.code != 0 || !hasLine(r.stdout, s.ns+":deployment/app app "+s.image+":1.0.1 ready") {
		s.errorf("--k8s-fwd-labels to pick the Pod that does not hold the Lease:\n%s", r)
	}
}
