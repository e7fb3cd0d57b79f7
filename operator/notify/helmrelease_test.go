package notify_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/outcome"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// leaky fails its templates quoting .Values.password when fail is set.
func leaky(version string) helmtest.Chart {
	return helmtest.Chart{
		Name: "leaky", Version: version, Values: "fail: false\npassword: none\n",
		Templates: map[string]string{"cm.yaml": `{{- if .Values.fail }}{{ fail (printf "bad password %s" .Values.password) }}{{ end -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-leaky
data:
  a: b
`},
	}
}

func updateHR(t *testing.T, ns, name string, change func(*helmv1.HelmRelease)) {
	t.Helper()
	hr := &helmv1.HelmRelease{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, hr); err != nil {
		t.Fatal(err)
	}
	change(hr)
	if err := k8s.Update(context.Background(), hr); err != nil {
		t.Fatal(err)
	}
}

func values(t *testing.T, doc string) *helmv1.Values {
	t.Helper()
	v := &helmv1.Values{}
	if err := v.UnmarshalJSON([]byte(doc)); err != nil {
		t.Fatal(err)
	}
	return v
}

// A HelmRelease's install and upgrade send one message each; a failed
// upgrade whose Helm error quotes a Secret value sends one masked message:
// the canary is in no message.
func TestReleaseMessagesAndNoSecretInThem(t *testing.T) {
	ns := newNamespace(t)
	rcv := newReceiver(t, nil)
	newAlert(t, ns, "releases", rcv.URL(), func(s *helmfluxv1alpha1.AlertSpec) {
		s.EventSources = []helmfluxv1alpha1.EventSource{{Kind: "HelmRelease", Name: "*", MatchLabels: map[string]string{"team": "a"}}}
	})
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, leaky("1.0.0"))
	repo.Add(t, leaky("1.1.0"))
	const canary = "Canary-Pw-7fQ-in-a-Secret"
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pw"},
		Data: map[string][]byte{"values.yaml": []byte("password: " + canary + "\n")}})
	mustCreate(t, &helmv1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app", Labels: map[string]string{"team": "a"}},
		Spec: helmv1.HelmReleaseSpec{
			Chart:      helmv1.ChartSource{Repository: repo.URL(), Name: "leaky", Version: "1.0.0"},
			ValuesFrom: []helmv1.ValuesFromSource{{SecretKeyRef: &helmv1.OptionalKeySelector{Name: "pw"}}},
		},
	})
	// Another team's release is not the Alert's (matchLabels).
	mustCreate(t, &helmv1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "theirs"},
		Spec:       helmv1.HelmReleaseSpec{Chart: helmv1.ChartSource{Repository: repo.URL(), Name: "leaky", Version: "1.0.0"}},
	})
	got := rcv.waitMessage(t, "app", helmv1.InstallSucceededReason)
	if got[0].Revision != "1.0.0" || got[0].Kind != "HelmRelease" || got[0].Severity != "info" {
		t.Errorf("the install message: %+v", got[0])
	}

	updateHR(t, ns, "app", func(hr *helmv1.HelmRelease) { hr.Spec.Chart.Version = "1.1.0" })
	rcv.waitMessage(t, "app", helmv1.UpgradeSucceededReason)

	updateHR(t, ns, "app", func(hr *helmv1.HelmRelease) { hr.Spec.Values = values(t, `{"fail": true}`) })
	got = rcv.waitMessage(t, "app", helmv1.UpgradeFailedReason)
	var failed string
	for _, m := range got {
		if m.Reason == helmv1.UpgradeFailedReason {
			failed = m.Message
		}
	}
	if !strings.Contains(failed, "bad password "+outcome.Masked) {
		t.Errorf("the failure message does not show Helm's masked error: %s", failed)
	}
	for _, reason := range []string{helmv1.InstallSucceededReason, helmv1.UpgradeSucceededReason} {
		if n := count(got, "app", reason); n != 1 {
			t.Errorf("%d %s message(s), want 1: %s", n, reason, summary(got))
		}
	}
	if n := count(got, "theirs", helmv1.InstallSucceededReason); n != 0 {
		t.Errorf("a release without the labels was sent: %s", summary(got))
	}
	for _, body := range rcv.raw() {
		if strings.Contains(body, canary) {
			t.Errorf("a message holds the canary Secret value: %s", body)
		}
	}
	testenv.AssertNoCanary(t, k8s, ns, canary, logs.String())
}

// Receivers that hang, or are gone, hold up no reconciler: another GitSync
// applies meanwhile, and the queue stays within its bound, dropping the
// oldest messages.
func TestStuckReceiversDoNotBlockReconciling(t *testing.T) {
	ns := newNamespace(t)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) }) // before hang.Close, which waits for the handlers
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL + "/hook"
	dead.Close()
	newAlert(t, ns, "hangs", hang.URL+"/hook", nil)
	newAlert(t, ns, "dead", deadURL, nil)
	t.Cleanup(func() { // the next tests need the workers
		for _, name := range []string{"hangs", "dead"} {
			_ = k8s.Delete(context.Background(), &helmfluxv1alpha1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
		}
	})

	droppedBefore := metric(t, "helmflux_notify_dropped_total")
	const failing = 3 * queueSize
	for i := range failing {
		createGitSync(t, ns, fmt.Sprintf("fails-%d", i), fmt.Sprintf("file:///nonexistent/notify-stuck-%d", i))
	}
	for i := range failing {
		waitGitSync(t, ns, fmt.Sprintf("fails-%d", i), "False")
	}
	repo := gittest.NewRepo(t, map[string]string{"settings.yaml": configMap(ns, "settings", "green")})
	createGitSync(t, ns, "works", repo.URL())
	waitGitSync(t, ns, "works", "True "+helmfluxv1alpha1.AppliedReason)

	eventually(t, "the full queue dropping messages", func() (bool, string) {
		d := metric(t, "helmflux_notify_dropped_total") - droppedBefore
		return d > 0, fmt.Sprintf("%v dropped", d)
	})
	if l := metric(t, "helmflux_notify_queue_length"); l > queueSize {
		t.Errorf("the queue holds %v messages, more than its bound %d", l, queueSize)
	}
	if !strings.Contains(logs.String(), "Notification queue full, dropped the oldest message") {
		t.Error("no log line says messages were dropped")
	}
}

// metric reads a counter or gauge of the manager's registry.
func metric(t *testing.T, name string) float64 {
	t.Helper()
	families, err := metrics.Registry.(prometheus.Gatherer).Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name || len(f.GetMetric()) == 0 {
			continue
		}
		m := f.GetMetric()[0]
		return counterOrGauge(m)
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func counterOrGauge(m *dto.Metric) float64 {
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}
