package gitsync

import (
	"fmt"
	"strings"

	"github.com/fluxcd/pkg/apis/meta"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/outcome"
	"github.com/helmflux/helmflux/pkg/apply"
)

// maxFailures bounds the per-object failures kept in status.
const maxFailures = 50

// conds sets the GitSync's conditions for its generation.
func conds(obj *helmfluxv1alpha1.GitSync) outcome.Conditions {
	return outcome.Conditions{List: &obj.Status.Conditions, Generation: obj.Generation}
}

// summarize writes Ready (and Stalled, Reconciling, failures, observedGeneration)
// from the outcome of a reconcile.
func summarize(obj *helmfluxv1alpha1.GitSync, s *scope, err error) {
	c := conds(obj)
	if s.changes != nil {
		obj.Status.Failures = failures(s.changes, s.pruned)
	}
	switch {
	case obj.Spec.Suspend && err == nil:
		c.Done(metav1.ConditionFalse, helmfluxv1alpha1.SuspendedReason, "reconciliation is suspended")
		return // observedGeneration stays: nothing was reconciled
	case err != nil:
		c.Failed(err, helmfluxv1alpha1.ApplyFailedReason)
	case s.unverified != nil:
		c.Done(metav1.ConditionFalse, helmfluxv1alpha1.VerificationFailedReason,
			fmt.Sprintf("applied revision %s, the last verified one: %v", s.revision, s.unverified))
	case s.changes != nil && len(allFailures(s)) > 0:
		// A refusal by RBAC is named first: it is what the tenant must fix
		// (or an attempt to reach beyond the tenant's rights).
		f, forbidden := forbiddenFirst(allFailures(s))
		reason := helmfluxv1alpha1.PartialApplyReason
		if forbidden {
			reason = helmfluxv1alpha1.ForbiddenReason
		}
		c.Done(metav1.ConditionFalse, reason,
			fmt.Sprintf("applied revision %s except %d object(s): %s", s.revision, len(f), firstFailure(f)))
	case s.changes != nil:
		msg := fmt.Sprintf("applied revision %s: %s", s.revision, summaryLine(s))
		if !changed(s) && strings.HasPrefix(readyMessage(obj), fmt.Sprintf("applied revision %s:", s.revision)) {
			msg = readyMessage(obj) // a pass that changed nothing keeps the message of the pass that did
		}
		c.Done(metav1.ConditionTrue, helmfluxv1alpha1.AppliedReason, msg)
	default:
		return
	}
	if outcome.Observed(err) {
		obj.Status.ObservedGeneration = obj.Generation
	}
}

func changed(s *scope) bool {
	return s.changes.Changed() || (s.pruned != nil && s.pruned.Changed())
}

func readyMessage(obj *helmfluxv1alpha1.GitSync) string {
	if c := apimeta.FindStatusCondition(obj.Status.Conditions, meta.ReadyCondition); c != nil && c.Status == metav1.ConditionTrue {
		return c.Message
	}
	return ""
}

// allFailures returns the objects that failed to apply or to prune.
func allFailures(s *scope) []apply.Result {
	f := s.changes.Failures()
	if s.pruned != nil {
		f = append(f, s.pruned.Failures()...)
	}
	return f
}

func summaryLine(s *scope) string {
	line := s.changes.Summary()
	if s.pruned != nil && s.pruned.Count(apply.Deleted) > 0 {
		line += fmt.Sprintf(", %d pruned", s.pruned.Count(apply.Deleted))
	}
	return line
}

func firstFailure(f []apply.Result) string {
	msg := f[0].ID.Display() + ": " + f[0].Err.Error()
	if len(f) > 1 {
		msg += fmt.Sprintf(" (and %d more, see status.failures)", len(f)-1)
	}
	return msg
}

// failures lists the objects that failed to apply or to prune, for status.
func failures(sets ...*apply.ChangeSet) []helmfluxv1alpha1.ObjectFailure {
	var out []helmfluxv1alpha1.ObjectFailure
	for _, cs := range sets {
		if cs == nil {
			continue
		}
		for _, r := range cs.Failures() {
			if len(out) == maxFailures {
				return out
			}
			out = append(out, helmfluxv1alpha1.ObjectFailure{Object: r.ID.Display(), Source: r.Source, Message: r.Err.Error()})
		}
	}
	return out
}

// changeMessage says what an apply changed, for the Normal event.
func changeMessage(s *scope) string {
	changes := s.changes.Changes()
	if s.pruned != nil {
		changes = append(changes, s.pruned.Changes()...)
	}
	const shown = 10
	more := ""
	if len(changes) > shown {
		more = fmt.Sprintf(" and %d more", len(changes)-shown)
		changes = changes[:shown]
	}
	return fmt.Sprintf("Applied revision %s: %s%s", s.revision, strings.Join(changes, ", "), more)
}
