package notify

import (
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
)

// queued returns the reasons waiting in n's queue.
func queued(n *Notifier) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, j := range n.queue {
		out = append(out, j.ev.Reason)
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The automation controller's commits, quarantines and new holds are sent
// (through the same Recorder path the controller uses), with the pushed
// commit as revision; its other Events are not.
func TestAutomationEventsSelected(t *testing.T) {
	n := New(nil, nil, logr.Discard(), Options{})
	rec := n.Recorder(nil, AutomationEvents)
	gs := &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "repo"}}
	gs.Status.ImageAutomation = &helmfluxv1alpha1.ImageAutomationStatus{LastPushedCommit: "main@sha1:abc"}
	rec.Eventf(gs, nil, corev1.EventTypeNormal, helmfluxv1alpha1.ImagesUpdatedReason, "Commit", "%s", "Updated app to 1.1")
	rec.Eventf(gs, nil, corev1.EventTypeWarning, helmfluxv1alpha1.ScanFailedReason, "Automate", "registry down")
	rec.Eventf(gs, nil, corev1.EventTypeNormal, helmfluxv1alpha1.ImageHeldReason, "Hold", "held at 1.0")
	rec.Eventf(gs, nil, corev1.EventTypeNormal, helmfluxv1alpha1.ImageHoldEndedReason, "Hold", "hold ended")
	rec.Eventf(gs, nil, corev1.EventTypeWarning, helmfluxv1alpha1.ImageQuarantinedReason, "Quarantine", "quarantined 1.1")
	want := []string{helmfluxv1alpha1.ImagesUpdatedReason, helmfluxv1alpha1.ImageHeldReason, helmfluxv1alpha1.ImageQuarantinedReason}
	if got := queued(n); !equal(got, want) {
		t.Fatalf("queued %v, want %v", got, want)
	}
	if j := n.queue[0]; j.ev.Revision != "main@sha1:abc" || j.ev.Message != "Updated app to 1.1" || j.ev.Kind != "GitSync" {
		t.Errorf("the commit's message: %+v", j.ev)
	}
	if j := n.queue[2]; j.ev.Severity != SeverityError {
		t.Errorf("a quarantine has severity %q", j.ev.Severity)
	}
}

// A failing GitSync is sent once per failure, whatever its messages, and
// again after a recovery; a suspension is no failure.
func TestSyncFailuresOncePerFailure(t *testing.T) {
	n := New(nil, nil, logr.Discard(), Options{})
	rec := n.Recorder(nil, SyncEvents)
	gs := &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "repo"}}
	warn := func(reason, msg string) { rec.Eventf(gs, nil, corev1.EventTypeWarning, reason, "Reconcile", "%s", msg) }
	warn(helmfluxv1alpha1.FetchFailedReason, "timeout")
	warn(helmfluxv1alpha1.FetchFailedReason, "refused")
	warn(helmfluxv1alpha1.BuildFailedReason, "bad yaml")
	rec.Eventf(gs, nil, corev1.EventTypeNormal, helmfluxv1alpha1.AppliedReason, "Apply", "applied")
	rec.Eventf(gs, nil, corev1.EventTypeNormal, helmfluxv1alpha1.RecoveredReason, "Reconcile", "recovered")
	warn(helmfluxv1alpha1.SuspendedReason, "reconciliation is suspended")
	warn(helmfluxv1alpha1.FetchFailedReason, "timeout again")
	want := []string{helmfluxv1alpha1.FetchFailedReason, helmfluxv1alpha1.RecoveredReason, helmfluxv1alpha1.FetchFailedReason}
	if got := queued(n); !equal(got, want) {
		t.Fatalf("queued %v, want %v", got, want)
	}
}

// The same object, reason and message within the window is queued once; a
// full queue drops the oldest and counts it.
func TestDedupeAndDropOldest(t *testing.T) {
	n := New(nil, nil, logr.Discard(), Options{QueueSize: 2})
	rec := n.Recorder(nil, ReleaseEvents)
	hr := &helmv1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "app"}}
	for range 3 {
		rec.Eventf(hr, nil, corev1.EventTypeWarning, helmv1.UpgradeFailedReason, "Reconcile", "boom")
	}
	if got := queued(n); len(got) != 1 {
		t.Fatalf("a repeated Event queued %d times: %v", len(got), got)
	}
	rec.Eventf(hr, nil, corev1.EventTypeNormal, helmv1.UpgradeSucceededReason, "Reconcile", "upgraded")
	rec.Eventf(hr, nil, corev1.EventTypeNormal, helmv1.RollbackSucceededReason, "Reconcile", "rolled back")
	want := []string{helmv1.UpgradeSucceededReason, helmv1.RollbackSucceededReason}
	if got := queued(n); !equal(got, want) || n.Dropped() != 1 {
		t.Errorf("queued %v with %d dropped, want %v and 1", got, n.Dropped(), want)
	}
}

// Payload shapes: the generic message holds exactly the documented fields.
func TestGenericPayloadFields(t *testing.T) {
	b, err := payload(helmfluxv1alpha1.AlertGeneric, "eu-1", Event{Kind: "HelmRelease", Namespace: "a", Name: "app",
		Reason: helmv1.UpgradeSucceededReason, Severity: SeverityInfo, Message: "Upgraded", Revision: "1.1.0",
		labels: map[string]string{"team": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"HelmRelease","namespace":"a","name":"app","reason":"UpgradeSucceeded","severity":"info","message":"Upgraded","revision":"1.1.0","timestamp":"0001-01-01T00:00:00Z","summary":"eu-1"}`
	if string(b) != want {
		t.Errorf("payload\n%s\nwant\n%s", b, want)
	}
}
