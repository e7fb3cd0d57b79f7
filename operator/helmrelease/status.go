package helmrelease

import (
	"errors"
	"fmt"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
)

// reconcileError is a failed step: the Ready reason it sets, and whether a
// retry may help (a network error) or only a change will (a failed upgrade
// of the same chart and values).
type reconcileError struct {
	reason  string
	retry   bool
	stalled bool          // only a spec change helps
	after   time.Duration // retry after this long (a lock that expires)
	err     error
}

func (e *reconcileError) Error() string { return e.err.Error() }
func (e *reconcileError) Unwrap() error { return e.err }

func retryable(reason string, err error) error {
	return &reconcileError{reason: reason, retry: true, err: err}
}

func waitForChange(reason string, err error) error {
	return &reconcileError{reason: reason, err: err}
}

func stalled(reason string, err error) error {
	return &reconcileError{reason: reason, stalled: true, err: err}
}

func retryIn(reason string, after time.Duration, err error) error {
	return &reconcileError{reason: reason, retry: true, after: after, err: err}
}

// event is one Event to record once the status is written.
type event struct {
	warning bool
	reason  string
	message string
}

// actionResult says what a pass did to the release.
type actionResult struct {
	events []event
	// acted is set when an install, upgrade, rollback or uninstall ran.
	acted bool
}

func (a *actionResult) normal(reason, format string, args ...any) {
	a.events = append(a.events, event{reason: reason, message: fmt.Sprintf(format, args...)})
}

func (a *actionResult) warn(reason, format string, args ...any) {
	a.events = append(a.events, event{warning: true, reason: reason, message: fmt.Sprintf(format, args...)})
}

// setCondition sets a condition for the current generation.
func setCondition(obj *helmv1.HelmRelease, t string, status metav1.ConditionStatus, reason, msg string) {
	apimeta.SetStatusCondition(&obj.Status.Conditions, metav1.Condition{
		Type: t, Status: status, Reason: reason, Message: msg, ObservedGeneration: obj.Generation,
	})
}

// setReconciling says the controller is working on the HelmRelease.
func setReconciling(obj *helmv1.HelmRelease, phase helmv1.HelmReleasePhase) {
	msg := fmt.Sprintf("processing generation %d", obj.Generation)
	if phase != "" {
		msg = fmt.Sprintf("%s release %s", phase, obj.GetReleaseName())
	}
	setCondition(obj, meta.ReconcilingCondition, metav1.ConditionTrue, helmv1.ProgressingReason, msg)
}

// summarize writes Ready (and Stalled, Reconciling, phase and
// observedGeneration) from the outcome of a reconcile.
func summarize(obj *helmv1.HelmRelease, s *scope, err error) {
	apimeta.RemoveStatusCondition(&obj.Status.Conditions, meta.ReconcilingCondition)
	apimeta.RemoveStatusCondition(&obj.Status.Conditions, meta.StalledCondition)
	if err != nil {
		reason := helmv1.ReconcileFailedReason
		var rerr *reconcileError
		if errors.As(err, &rerr) {
			reason = rerr.reason
			if rerr.stalled {
				setCondition(obj, meta.StalledCondition, metav1.ConditionTrue, reason, err.Error())
			}
			if !rerr.retry {
				obj.Status.ObservedGeneration = obj.Generation
			}
		}
		setCondition(obj, meta.ReadyCondition, metav1.ConditionFalse, reason, err.Error())
		if obj.Status.Phase == helmv1.PhaseInstalling || obj.Status.Phase == helmv1.PhaseUpgrading {
			obj.Status.Phase = helmv1.PhaseFailed
		}
		return
	}
	obj.Status.ObservedGeneration = obj.Generation
	reason, msg := readyMessage(obj, s)
	setCondition(obj, meta.ReadyCondition, metav1.ConditionTrue, reason, msg)
	switch obj.Status.Phase {
	case helmv1.PhaseTestFailed, helmv1.PhaseRolledBack:
	default:
		obj.Status.Phase = helmv1.PhaseSucceeded
	}
}

// readyMessage says what runs. A pass that did nothing keeps the message of
// the pass that did, so the Ready condition does not change without a change.
func readyMessage(obj *helmv1.HelmRelease, s *scope) (reason, msg string) {
	prev := apimeta.FindStatusCondition(obj.Status.Conditions, meta.ReadyCondition)
	if !s.action.acted && len(s.action.events) == 0 && prev != nil && prev.Status == metav1.ConditionTrue {
		return prev.Reason, prev.Message
	}
	reason, msg = helmv1.ReleaseUpToDateReason, upToDateMessage(obj)
	if c := apimeta.FindStatusCondition(obj.Status.Conditions, helmv1.ReleasedCondition); c != nil && c.Status == metav1.ConditionTrue {
		reason = c.Reason
		if s.action.acted {
			msg = c.Message
		}
	}
	for _, t := range []string{helmv1.TestedCondition, helmv1.DriftedCondition} {
		bad := metav1.ConditionFalse
		if t == helmv1.DriftedCondition {
			bad = metav1.ConditionTrue
		}
		if c := apimeta.FindStatusCondition(obj.Status.Conditions, t); c != nil && c.Status == bad {
			msg += "; " + c.Message
		}
	}
	return reason, msg
}

func upToDateMessage(obj *helmv1.HelmRelease) string {
	return fmt.Sprintf("release %s is %s at revision %d (chart %s)",
		obj.Status.ReleaseName, obj.Status.ReleaseStatus, obj.Status.ReleaseRevision, obj.Status.Revision)
}

// recordEvents records what the pass did, and a Warning when Ready turned
// false or its message changed. A pass that did nothing records nothing.
func (r *Reconciler) recordEvents(obj *helmv1.HelmRelease, s *scope, before, after *metav1.Condition) {
	if r.Events == nil {
		return
	}
	warned := false
	for _, e := range s.action.events {
		typ := corev1.EventTypeNormal
		if e.warning {
			typ, warned = corev1.EventTypeWarning, true
		}
		r.Events.Eventf(obj, nil, typ, e.reason, "Reconcile", "%s", e.message)
	}
	if after != nil && after.Status != metav1.ConditionTrue && !warned && (before == nil || before.Message != after.Message) {
		r.Events.Eventf(obj, nil, corev1.EventTypeWarning, after.Reason, "Reconcile", "%s", after.Message)
	}
}
