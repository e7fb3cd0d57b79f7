package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/controllers"
	"github.com/helmflux/helmflux/operator/notify"
)

var (
	k8s  client.Client
	logs testenv.LogBuffer
)

// queueSize is the suite operator's notification queue: small, so that
// TestStuckReceiversDoNotBlockReconciling fills it.
const queueSize = 16

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(_ *envtest.Environment, cfg *rest.Config, c client.Client) (func() error, error) {
		k8s = c
		dir, err := os.MkdirTemp("", "notify-test-")
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		stop := func() error { cancel(); return os.RemoveAll(dir) }
		// Fast retries and a short request timeout keep the tests quick; no
		// assertion depends on them.
		_, err = testenv.StartInProcess(ctx, cfg, zap.New(zap.WriteTo(&logs), zap.UseDevMode(true)), controllers.Options{
			Concurrency: 4, CacheDir: dir, AllowLocalURLs: true, HelmInterval: time.Minute,
			HTTPClient: testenv.TLSTrustingClient(),
			Notify: notify.Options{
				QueueSize: queueSize, Workers: 2, Timeout: time.Second,
				Backoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
			},
		})
		if err != nil {
			_ = stop()
			return nil, err
		}
		return stop, nil
	}))
}

func newNamespace(t *testing.T) string {
	t.Helper()
	return testenv.NewNamespace(t, k8s, "notify-")
}

func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	testenv.Eventually(t, 2*time.Minute, what, cond)
}

func mustCreate(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

// receiver is a real webhook receiver: it records every request's body and
// answers what answer says (200 when nil).
type receiver struct {
	srv *httptest.Server

	mu     sync.Mutex
	bodies [][]byte // the bodies of requests answered 2xx
	tries  int      // every request, answered or not
	answer func(try int) int
}

func newReceiver(t *testing.T, answer func(try int) int) *receiver {
	t.Helper()
	r := &receiver{answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.tries++
		code := http.StatusOK
		if r.answer != nil {
			code = r.answer(r.tries)
		}
		if code < 300 {
			r.bodies = append(r.bodies, body)
		}
		r.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// URL is the receiver's address, with a path that stands for a webhook's
// secret token.
func (r *receiver) URL() string { return r.srv.URL + "/hooks/T0KEN-of-the-test" }

// messages returns the generic messages received.
func (r *receiver) messages(t *testing.T) []notify.Message {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []notify.Message
	for _, b := range r.bodies {
		var m notify.Message
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("a message is not JSON: %v: %s", err, b)
		}
		out = append(out, m)
	}
	return out
}

func (r *receiver) raw() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.bodies))
	for i, b := range r.bodies {
		out[i] = string(b)
	}
	return out
}

func (r *receiver) attempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tries
}

// waitMessage waits until a message of reason about object name arrives and
// returns all messages.
func (r *receiver) waitMessage(t *testing.T, name, reason string) []notify.Message {
	t.Helper()
	var got []notify.Message
	eventually(t, fmt.Sprintf("a %s message of %s", reason, name), func() (bool, string) {
		got = r.messages(t)
		return count(got, name, reason) > 0, summary(got)
	})
	return got
}

func count(msgs []notify.Message, name, reason string) int {
	n := 0
	for _, m := range msgs {
		if m.Name == name && m.Reason == reason {
			n++
		}
	}
	return n
}

func summary(msgs []notify.Message) string {
	var parts []string
	for _, m := range msgs {
		parts = append(parts, fmt.Sprintf("%s %s/%s %s", m.Kind, m.Namespace, m.Name, m.Reason))
	}
	return fmt.Sprintf("%d message(s): %s", len(msgs), strings.Join(parts, "; "))
}

// newAlert makes an Alert of ns sending to address, with the Secret holding
// it.
func newAlert(t *testing.T, ns, name, address string, edit func(*helmfluxv1alpha1.AlertSpec)) {
	t.Helper()
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-address"},
		Data: map[string][]byte{helmfluxv1alpha1.AddressKey: []byte(address)}})
	spec := helmfluxv1alpha1.AlertSpec{
		SecretRef:    meta.LocalObjectReference{Name: name + "-address"},
		EventSources: []helmfluxv1alpha1.EventSource{{Kind: helmfluxv1alpha1.GitSyncKind, Name: "*"}, {Kind: "HelmRelease", Name: "*"}},
	}
	if edit != nil {
		edit(&spec)
	}
	mustCreate(t, &helmfluxv1alpha1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec})
	waitAlert(t, ns, name, meta.ReadyCondition, "True")
}

// waitAlert waits until an Alert's condition typ starts with want
// ("Status Reason") and returns it as "Status Reason: message".
func waitAlert(t *testing.T, ns, name, typ, want string) string {
	t.Helper()
	var got string
	eventually(t, fmt.Sprintf("Alert %s %s %s", name, typ, want), func() (bool, string) {
		a := &helmfluxv1alpha1.Alert{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, a); err != nil {
			return false, err.Error()
		}
		c := apimeta.FindStatusCondition(a.Status.Conditions, typ)
		if c == nil {
			return false, "no condition"
		}
		got = fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
		return strings.HasPrefix(got, want), got
	})
	return got
}

// gitSyncReady returns a GitSync's Ready as "Status Reason: message".
func gitSyncReady(t *testing.T, ns, name string) (string, *helmfluxv1alpha1.GitSync) {
	t.Helper()
	gs := &helmfluxv1alpha1.GitSync{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, gs); err != nil {
		t.Fatal(err)
	}
	c := apimeta.FindStatusCondition(gs.Status.Conditions, meta.ReadyCondition)
	if c == nil {
		return "no Ready condition", gs
	}
	return fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message), gs
}

func waitGitSync(t *testing.T, ns, name, want string) *helmfluxv1alpha1.GitSync {
	t.Helper()
	var gs *helmfluxv1alpha1.GitSync
	eventually(t, "GitSync "+name+" "+want, func() (bool, string) {
		var r string
		r, gs = gitSyncReady(t, ns, name)
		return strings.HasPrefix(r, want), r
	})
	return gs
}

// requestSync asks for a pass at once and waits until it was handled.
func requestSync(t *testing.T, ns, name string) *helmfluxv1alpha1.GitSync {
	t.Helper()
	gs := &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	token := testenv.RequestReconcile(t, k8s, gs)
	eventually(t, "pass "+token+" of "+name, func() (bool, string) {
		_, gs = gitSyncReady(t, ns, name)
		return gs.Status.LastHandledReconcileAt == token, gs.Status.LastHandledReconcileAt
	})
	return gs
}

func configMap(ns, name, color string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\ndata:\n  color: %s\n", name, ns, color)
}
