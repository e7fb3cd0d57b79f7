package notify

import (
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
)

// Severities of an Event.
const (
	SeverityInfo  = string(helmfluxv1alpha1.SeverityInfo)
	SeverityError = string(helmfluxv1alpha1.SeverityError)
)

// Event is what one message says. It holds nothing the Event the
// controller recorded did not (whose text the controllers keep free of
// Secret values), plus the revision from the object's status.
type Event struct {
	Kind      string    `json:"kind"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Reason    string    `json:"reason"`
	Severity  string    `json:"severity"`
	Message   string    `json:"message"`
	Revision  string    `json:"revision,omitempty"`
	Timestamp time.Time `json:"timestamp"`

	labels map[string]string
}

// Events says which Events of one controller are sent.
type Events struct {
	// Reasons are sent as they come (a repeat of the same object, reason
	// and message within the dedupe window is sent once).
	Reasons []string
	// Failures sends a Warning (of any reason but Ignore) only when the
	// object was not failing already: the first failure after a success,
	// not every retry. Recovery is the reason that ends a failure; it is
	// sent too.
	Failures bool
	Recovery string
	Ignore   []string
}

// The Events sent, per controller; docs/notifications.md lists them.
var (
	// SyncEvents: a GitSync's first failure (any Warning of the GitSync
	// controller but Suspended) and its recovery.
	SyncEvents = Events{
		Failures: true, Recovery: helmfluxv1alpha1.RecoveredReason,
		Ignore: []string{helmfluxv1alpha1.SuspendedReason},
	}
	// ReleaseEvents: a HelmRelease installed, upgraded, rolled back, or
	// failing to install, upgrade, pass its tests or roll back.
	ReleaseEvents = Events{Reasons: []string{
		helmv1.InstallSucceededReason, helmv1.UpgradeSucceededReason, helmv1.RollbackSucceededReason,
		helmv1.InstallFailedReason, helmv1.UpgradeFailedReason, helmv1.TestFailedReason, helmv1.RollbackFailedReason,
	}}
	// AutomationEvents: an image automation commit, a tag quarantined, a
	// new hold.
	AutomationEvents = Events{Reasons: []string{
		helmfluxv1alpha1.ImagesUpdatedReason, helmfluxv1alpha1.ImageQuarantinedReason, helmfluxv1alpha1.ImageHeldReason,
	}}
)

// Recorder returns an EventRecorder that records with inner and also
// queues the Events that which selects for the Notifier. It never blocks.
func (n *Notifier) Recorder(inner events.EventRecorder, which Events) events.EventRecorder {
	return &recorder{inner: inner, n: n, which: which, failing: map[string]bool{}}
}

// recorder is the wrapper Recorder returns.
type recorder struct {
	inner events.EventRecorder
	n     *Notifier
	which Events

	mu sync.Mutex
	// failing holds the objects whose last sent failure has had no
	// recovery yet (Events.Failures).
	failing map[string]bool
}

// maxFailing bounds recorder.failing: past it the map starts over, which
// at worst sends one failure twice.
const maxFailing = 10000

// Eventf records the Event, then queues it when it is one to send.
func (r *recorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	if r.inner != nil {
		r.inner.Eventf(regarding, related, eventtype, reason, action, note, args...)
	}
	ev, ok := eventOf(regarding, eventtype, reason)
	if !ok || !r.selects(ev, eventtype) {
		return
	}
	ev.Message = fmt.Sprintf(note, args...)
	r.n.enqueue(ev)
}

// selects reports whether ev is one to send, and keeps the failure state.
func (r *recorder) selects(ev Event, eventtype string) bool {
	if slices.Contains(r.which.Reasons, ev.Reason) {
		return true
	}
	if !r.which.Failures || slices.Contains(r.which.Ignore, ev.Reason) {
		return false
	}
	key := ev.Kind + "/" + ev.Namespace + "/" + ev.Name
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case ev.Reason == r.which.Recovery:
		delete(r.failing, key)
		return true
	case eventtype == corev1.EventTypeWarning && !r.failing[key]:
		if len(r.failing) >= maxFailing {
			r.failing = map[string]bool{}
		}
		r.failing[key] = true
		return true
	}
	return false
}

// eventOf describes an Event of a GitSync or a HelmRelease; other objects
// are not sent.
func eventOf(obj runtime.Object, eventtype, reason string) (Event, bool) {
	ev := Event{Reason: reason, Severity: SeverityInfo, Timestamp: time.Now().UTC().Truncate(time.Second)}
	if eventtype == corev1.EventTypeWarning {
		ev.Severity = SeverityError
	}
	switch o := obj.(type) {
	case *helmfluxv1alpha1.GitSync:
		ev.Kind, ev.Namespace, ev.Name, ev.labels = helmfluxv1alpha1.GitSyncKind, o.Namespace, o.Name, o.Labels
		switch {
		case reason == helmfluxv1alpha1.ImagesUpdatedReason && o.Status.ImageAutomation != nil:
			ev.Revision = o.Status.ImageAutomation.LastPushedCommit
		case ev.Severity == SeverityInfo:
			ev.Revision = o.Status.LastAppliedRevision
		default:
			ev.Revision = o.Status.LastAttemptedRevision
		}
	case *helmv1.HelmRelease:
		ev.Kind, ev.Namespace, ev.Name, ev.labels = helmv1.HelmReleaseKind, o.Namespace, o.Name, o.Labels
		ev.Revision = o.Status.LastAttemptedRevision
	default:
		return Event{}, false
	}
	return ev, true
}
