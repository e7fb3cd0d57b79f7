package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/notify"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

func metaRef(name string) meta.LocalObjectReference { return meta.LocalObjectReference{Name: name} }

// secret is an Alert's Secret holding address, as read back (for an update)
// when it exists.
func secret(ns, name, address string) *corev1.Secret {
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	s.Data = map[string][]byte{helmfluxv1alpha1.AddressKey: []byte(address)}
	return s
}

// bumpAlert asks for a pass over an Alert at once, as after fixing its Secret.
func bumpAlert(t *testing.T, ns, name string) {
	t.Helper()
	testenv.RequestReconcile(t, k8s, &helmfluxv1alpha1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
}

func createGitSync(t *testing.T, ns, name, url string) {
	t.Helper()
	mustCreate(t, &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: helmfluxv1alpha1.GitSyncSpec{URL: url, Interval: metav1.Duration{Duration: time.Hour}}})
}

// failures returns the messages of name that are not its recovery.
func failures(msgs []notify.Message, name string) []notify.Message {
	var out []notify.Message
	for _, m := range msgs {
		if m.Name == name && m.Severity == notify.SeverityError {
			out = append(out, m)
		}
	}
	return out
}

// A GitSync that fails pass after pass, each with another message, sends
// one message for the first failure and one for the recovery.
func TestSyncFailureThenRecoveryIsOneMessageEach(t *testing.T) {
	ns := newNamespace(t)
	rcv := newReceiver(t, nil)
	newAlert(t, ns, "ops", rcv.URL(), func(s *helmfluxv1alpha1.AlertSpec) { s.Summary = "cluster eu-1" })
	repo := gittest.NewRepo(t, map[string]string{"settings.yaml": configMap(ns, "settings", "blue")})
	createGitSync(t, ns, "app", repo.URL())
	waitGitSync(t, ns, "app", "True")

	for i := range 4 { // four failing passes, each with a new message
		repo.Write(map[string]string{fmt.Sprintf("broken-%d.yaml", i): "kind: [unclosed\n"})
		bad := repo.Commit(fmt.Sprintf("broken %d", i))
		gs := requestSync(t, ns, "app")
		if r, _ := gitSyncReady(t, ns, "app"); !strings.HasPrefix(r, "False") || !strings.Contains(gs.Status.LastFetchedRevision, bad) {
			t.Fatalf("pass %d: Ready %s at %s, want a failure at %s", i, r, gs.Status.LastFetchedRevision, bad)
		}
	}
	repo.Remove("broken-0.yaml", "broken-1.yaml", "broken-2.yaml", "broken-3.yaml")
	fixed := repo.Commit("fixed")
	requestSync(t, ns, "app")
	waitGitSync(t, ns, "app", "True")

	got := rcv.waitMessage(t, "app", helmfluxv1alpha1.RecoveredReason)
	if f := failures(got, "app"); len(f) != 1 {
		t.Fatalf("%d failure messages for one failure, want 1: %s", len(f), summary(got))
	}
	if len(got) != 2 {
		t.Fatalf("want one failure and one recovery: %s", summary(got))
	}
	fail, rec := failures(got, "app")[0], got[len(got)-1]
	if fail.Kind != helmfluxv1alpha1.GitSyncKind || fail.Namespace != ns || fail.Summary != "cluster eu-1" ||
		!strings.Contains(fail.Message, "broken-0.yaml") || fail.Timestamp.IsZero() {
		t.Errorf("the failure message: %+v", fail)
	}
	if rec.Reason != helmfluxv1alpha1.RecoveredReason || rec.Severity != notify.SeverityInfo || !strings.HasSuffix(rec.Revision, fixed) {
		t.Errorf("the recovery message: %+v (want revision %s)", rec, fixed)
	}
	for _, body := range rcv.raw() {
		if strings.Contains(body, "T0KEN") {
			t.Errorf("a message holds the receiver's URL: %s", body)
		}
	}
}

// A receiver answering 500 twice gets the message at the third attempt,
// once; one answering 500 always makes the Alert say it gave up, and one
// answering 400 is not retried.
func TestRetriesOnServerErrorsThenGivesUp(t *testing.T) {
	ns := newNamespace(t)
	flaky := newReceiver(t, func(try int) int {
		if try <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	down := newReceiver(t, func(int) int { return http.StatusServiceUnavailable })
	refusing := newReceiver(t, func(int) int { return http.StatusBadRequest })
	newAlert(t, ns, "flaky", flaky.URL(), nil)
	newAlert(t, ns, "down", down.URL(), nil)
	newAlert(t, ns, "refusing", refusing.URL(), nil)

	createGitSync(t, ns, "nowhere", "file:///nonexistent/notify-test-repo")
	waitGitSync(t, ns, "nowhere", "False")
	got := flaky.waitMessage(t, "nowhere", helmfluxv1alpha1.FetchFailedReason)
	if len(got) != 1 || flaky.attempts() != 3 {
		t.Errorf("after two 500s: %d attempt(s), %s; want 3 attempts and one message", flaky.attempts(), summary(got))
	}
	if got[0].Severity != notify.SeverityError {
		t.Errorf("a fetch failure has severity %q", got[0].Severity)
	}

	status := waitAlert(t, ns, "down", helmfluxv1alpha1.DeliveredCondition, "False "+helmfluxv1alpha1.DeliveryFailedReason)
	if down.attempts() != 5 || !strings.Contains(status, "5 attempt(s)") || !strings.Contains(status, "503") {
		t.Errorf("the always-503 receiver: %d attempts, Delivered %s", down.attempts(), status)
	}
	status = waitAlert(t, ns, "refusing", helmfluxv1alpha1.DeliveredCondition, "False "+helmfluxv1alpha1.DeliveryFailedReason)
	if refusing.attempts() != 1 || !strings.Contains(status, "400") {
		t.Errorf("the 400 receiver: %d attempts, Delivered %s", refusing.attempts(), status)
	}
	if strings.Contains(status, "T0KEN") || strings.Contains(logs.String(), "T0KEN") {
		t.Error("the receiver's URL is in the Alert's status or the operator's logs")
	}
	if flaky.attempts() != 3 {
		t.Errorf("the flaky receiver was sent the message again: %d attempts", flaky.attempts())
	}
}

// An Alert of one namespace never receives events of another; severity
// error and a name filter leave out what they should.
func TestAlertsSeeTheirOwnNamespaceOnly(t *testing.T) {
	nsA, nsB := newNamespace(t), newNamespace(t)
	rcvA := newReceiver(t, nil)
	errorsOnly := newReceiver(t, nil)
	newAlert(t, nsA, "a", rcvA.URL(), nil)
	newAlert(t, nsA, "only-other", errorsOnly.URL(), func(s *helmfluxv1alpha1.AlertSpec) {
		s.EventSeverity = helmfluxv1alpha1.SeverityError
		s.EventSources = []helmfluxv1alpha1.EventSource{{Kind: helmfluxv1alpha1.GitSyncKind, Name: "other"}}
	})
	// B's failure comes first: delivered, it would arrive before A's.
	createGitSync(t, nsB, "b-fails", "file:///nonexistent/notify-test-b")
	waitGitSync(t, nsB, "b-fails", "False")
	createGitSync(t, nsA, "a-fails", "file:///nonexistent/notify-test-a")
	got := rcvA.waitMessage(t, "a-fails", helmfluxv1alpha1.FetchFailedReason)
	for _, m := range got {
		if m.Namespace != nsA {
			t.Errorf("the Alert of %s received a message of %s: %+v", nsA, m.Namespace, m)
		}
	}
	createGitSync(t, nsA, "other", "file:///nonexistent/notify-test-other")
	got = errorsOnly.waitMessage(t, "other", helmfluxv1alpha1.FetchFailedReason)
	if len(got) != 1 {
		t.Errorf("the Alert of GitSync other received %s", summary(got))
	}
}

// A slack Alert posts Slack's incoming-webhook shape.
func TestSlackAlertSendsSlackMessages(t *testing.T) {
	ns := newNamespace(t)
	rcv := newReceiver(t, nil)
	newAlert(t, ns, "slack", rcv.URL(), func(s *helmfluxv1alpha1.AlertSpec) {
		s.Type = helmfluxv1alpha1.AlertSlack
		s.Summary = "prod"
	})
	createGitSync(t, ns, "nowhere", "file:///nonexistent/notify-test-slack")
	var bodies []string
	eventually(t, "a Slack message", func() (bool, string) {
		bodies = rcv.raw()
		return len(bodies) > 0, fmt.Sprint(len(bodies))
	})
	var m notify.SlackMessage
	if err := json.Unmarshal([]byte(bodies[0]), &m); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("prod: GitSync %s/nowhere: %s", ns, helmfluxv1alpha1.FetchFailedReason)
	if m.Text != want || len(m.Attachments) != 1 || m.Attachments[0].Color != "danger" ||
		!strings.Contains(m.Attachments[0].Text, "nonexistent") || m.Attachments[0].Ts == 0 {
		t.Errorf("Slack message %s, want text %q and one danger attachment with the failure", bodies[0], want)
	}
	var generic map[string]any
	_ = json.Unmarshal([]byte(bodies[0]), &generic)
	if _, ok := generic["kind"]; ok {
		t.Errorf("a Slack message has the generic fields: %s", bodies[0])
	}
}

// An Alert whose Secret is missing, or holds no http(s) URL, is not Ready
// (without quoting the address), and becomes Ready once it does.
func TestAlertReadyNeedsAnHTTPAddress(t *testing.T) {
	ns := newNamespace(t)
	spec := helmfluxv1alpha1.AlertSpec{
		SecretRef:    metaRef("hook"),
		EventSources: []helmfluxv1alpha1.EventSource{{Kind: helmfluxv1alpha1.GitSyncKind, Name: "*"}},
	}
	mustCreate(t, &helmfluxv1alpha1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a"}, Spec: spec})
	waitAlert(t, ns, "a", "Ready", "False "+helmfluxv1alpha1.SecretNotFoundReason)

	mustCreate(t, secret(ns, "hook", "ftp://files.example.com/S3CRET-path"))
	bumpAlert(t, ns, "a")
	status := waitAlert(t, ns, "a", "Ready", "False "+helmfluxv1alpha1.InvalidAddressReason)
	if strings.Contains(status, "S3CRET") {
		t.Errorf("Ready quotes the address: %s", status)
	}
	s := secret(ns, "hook", "https://hooks.example.com/S3CRET-path")
	if err := k8s.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	bumpAlert(t, ns, "a")
	waitAlert(t, ns, "a", "Ready", "True")
}
