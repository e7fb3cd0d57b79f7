package helmrelease

import (
	"fmt"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/operator/outcome"
)

// conds sets the HelmRelease's conditions for its generation.
func conds(obj *helmv1.HelmRelease) outcome.Conditions {
	return outcome.Conditions{List: &obj.Status.Conditions, Generation: obj.Generation}
}

func (s *scope) conds() outcome.Conditions { return conds(s.obj) }

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

// setReconciling says the controller is working on the HelmRelease.
func setReconciling(obj *helmv1.HelmRelease, phase helmv1.HelmReleasePhase) {
	msg := outcome.Processing(obj.Generation)
	if phase != "" {
		msg = fmt.Sprintf("%s release %s", phase, obj.GetReleaseName())
	}
	conds(obj).Reconciling(helmv1.ProgressingReason, msg)
}

// summarize writes Ready (and Stalled, Reconciling, phase and
// observedGeneration) from the outcome of a reconcile.
func summarize(obj *helmv1.HelmRelease, s *scope, err error) {
	if outcome.Observed(err) {
		obj.Status.ObservedGeneration = obj.Generation
	}
	if err != nil {
		conds(obj).Failed(err, helmv1.ReconcileFailedReason)
		if obj.Status.Phase == helmv1.PhaseInstalling || obj.Status.Phase == helmv1.PhaseUpgrading {
			obj.Status.Phase = helmv1.PhaseFailed
		}
		return
	}
	reason, msg := readyMessage(obj, s)
	conds(obj).Done(metav1.ConditionTrue, reason, msg)
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
		r.Events.Eventf(obj, nil, typ, e.reason, "Reconcile", "%s", s.mask.String(e.message))
	}
	// Waiting for a GitSync to record the apply that created the HelmRelease
	// is no failure worth a Warning.
	if !warned && (after == nil || after.Reason != helmv1.InventoryPendingReason) {
		outcome.WarnOnChange(r.Events, obj, "Reconcile", before, after)
	}
}
