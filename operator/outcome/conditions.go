package outcome

import (
	"fmt"
	"unicode/utf8"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
)

// MaxMessageLength is the longest condition message the CRDs accept
// (metav1.Condition's maxLength); a longer one would fail the whole status
// write.
const MaxMessageLength = 32768

// truncated ends a message that was cut to fit.
const truncated = " …(truncated)"

// Conditions sets the conditions of one object for its current generation.
type Conditions struct {
	List       *[]metav1.Condition
	Generation int64
}

// Set sets a condition for the current generation, its message trimmed to
// MaxMessageLength.
func (c Conditions) Set(typ string, status metav1.ConditionStatus, reason, msg string) {
	apimeta.SetStatusCondition(c.List, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: Trim(msg, MaxMessageLength), ObservedGeneration: c.Generation,
	})
}

// Remove removes a condition.
func (c Conditions) Remove(typ string) { apimeta.RemoveStatusCondition(c.List, typ) }

// Get returns a condition, nil when it is not set.
func (c Conditions) Get(typ string) *metav1.Condition {
	return apimeta.FindStatusCondition(*c.List, typ)
}

// Reconciling says the controller is working on the object.
func (c Conditions) Reconciling(reason, msg string) {
	c.Set(meta.ReconcilingCondition, metav1.ConditionTrue, reason, msg)
}

// Processing is the Reconciling message of a pass over a new generation.
func Processing(generation int64) string {
	return fmt.Sprintf("processing generation %d", generation)
}

// Failed records a failed pass: Reconciling goes, Stalled is set for a
// Stalled failure (and removed otherwise), and Ready is False with the
// failure's reason (fallback when it has none) and message.
func (c Conditions) Failed(err error, fallback string) {
	c.Remove(meta.ReconcilingCondition)
	c.Remove(meta.StalledCondition)
	class, reason := Of(err, fallback)
	if class == Stalled {
		c.Set(meta.StalledCondition, metav1.ConditionTrue, reason, err.Error())
	}
	c.Set(meta.ReadyCondition, metav1.ConditionFalse, reason, err.Error())
}

// Done records a finished pass: Reconciling and Stalled go, and Ready is
// status with reason and message (False for a pass that finished but
// did not get everything in place, such as a partial apply).
func (c Conditions) Done(status metav1.ConditionStatus, reason, msg string) {
	c.Remove(meta.ReconcilingCondition)
	c.Remove(meta.StalledCondition)
	c.Set(meta.ReadyCondition, status, reason, msg)
}

// Trim cuts s to at most n bytes on a character boundary, saying so at the end.
func Trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n-len(truncated), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + truncated
}

// HandleRequest records a reconcile.fluxcd.io/requestedAt token in
// lastHandled and reports whether it was a new request. Call it after any
// write whose response replaces the status (a finalizer patch), or the token
// is lost and the request handled twice.
func HandleRequest(annotations map[string]string, lastHandled *string) bool {
	token, ok := meta.ReconcileAnnotationValue(annotations)
	if !ok {
		return false
	}
	requested := token != *lastHandled
	*lastHandled = token
	return requested
}

// WarnOnChange records a Warning when Ready ended not True and its message
// is new: a failure is reported once, not at every retry.
func WarnOnChange(rec events.EventRecorder, obj runtime.Object, action string, before, after *metav1.Condition) {
	if rec == nil || after == nil || after.Status == metav1.ConditionTrue {
		return
	}
	if before != nil && before.Message == after.Message {
		return
	}
	rec.Eventf(obj, nil, corev1.EventTypeWarning, after.Reason, action, "%s", after.Message)
}
