package helmrelease

import (
	"context"
	"fmt"
	"strings"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/operator/outcome"
	"github.com/helmflux/helmflux/pkg/apply"
	"github.com/helmflux/helmflux/pkg/helm"
)

// reconcileDrift compares the release's live objects with its manifest by
// server-side dry-run (driftDetection warn or enabled) and, when enabled,
// applies the manifest to the objects that drifted. It writes Drifted.
// Acting as the operator, it corrects nothing when an object to create or
// change is outside the release's namespace and not the release's own
// (see guard).
func (r *Reconciler) reconcileDrift(ctx context.Context, s *scope) error {
	obj := s.obj
	mode := obj.Spec.GetDriftDetectionMode()
	if mode == helmv1.DriftDetectionDisabled || obj.Status.ReleaseStatus != helm.StatusDeployed {
		conds(obj).Remove(helmv1.DriftedCondition)
		return nil
	}
	rel, err := s.actor.runner.Last(ctx, obj.GetTargetNamespace(), obj.GetReleaseName())
	if err != nil {
		return outcome.Retry(s.actor.refused(helmv1.DriftDetectionFailedReason, fmt.Errorf("read the release for drift detection: %w", err)))
	}
	if rel == nil || rel.Status == helm.StatusUninstalled {
		// Uninstalled behind helmflux's back: forget it, the next pass installs.
		obj.Status.ReleaseStatus = ""
		return outcome.Retry(helmv1.DriftDetectedReason, fmt.Errorf("release %s was uninstalled outside helmflux; installing it again", obj.GetReleaseName()))
	}
	objs, err := rel.Objects()
	if err != nil {
		return outcome.Retry(helmv1.DriftDetectionFailedReason, err)
	}
	cs, err := s.actor.drift.Diff(ctx, objs)
	if err != nil {
		return outcome.Retry(s.actor.refused(helmv1.DriftDetectionFailedReason, fmt.Errorf("compare live objects: %w", err)))
	}
	var drifted []*unstructured.Unstructured
	var names []string
	for i, res := range cs.Results {
		switch res.Action {
		case apply.Configured, apply.Created:
			drifted = append(drifted, objs[i])
			names = append(names, res.ID.Display())
		case apply.Failed:
			return outcome.Retry(s.actor.refused(helmv1.DriftDetectionFailedReason, fmt.Errorf("compare %s: %w", res.ID.Display(), res.Err)))
		}
	}
	if s.guarded() && mode == helmv1.DriftDetectionEnabled && len(drifted) > 0 {
		names, err := r.unowned(ctx, s, drifted, true)
		if err != nil {
			return outcome.Retry(helmv1.DriftDetectionFailedReason, fmt.Errorf("check the objects to correct: %w", err))
		}
		if len(names) > 0 {
			return refusal(s, "correct drift of", rel.Version, names)
		}
	}
	wasDrifted := apimeta.IsStatusConditionTrue(obj.Status.Conditions, helmv1.DriftedCondition)
	if len(drifted) == 0 {
		conds(obj).Set(helmv1.DriftedCondition, metav1.ConditionFalse, helmv1.NoDriftReason, "live objects match the release")
		return nil
	}
	list := strings.Join(names, ", ")
	if mode == helmv1.DriftDetectionWarn {
		msg := fmt.Sprintf("%d object(s) differ from release %s: %s", len(drifted), rel.Name, list)
		if c := apimeta.FindStatusCondition(obj.Status.Conditions, helmv1.DriftedCondition); !wasDrifted || c.Message != msg {
			s.action.warn(helmv1.DriftDetectedReason, "%s", msg)
		}
		conds(obj).Set(helmv1.DriftedCondition, metav1.ConditionTrue, helmv1.DriftDetectedReason, msg)
		return nil
	}
	applied, err := s.actor.drift.Apply(ctx, drifted)
	if err != nil {
		return outcome.Retry(s.actor.refused(helmv1.DriftDetectedReason, fmt.Errorf("correct drift of %s: %w", list, err)))
	}
	if f := applied.Failures(); len(f) > 0 {
		return outcome.Retry(s.actor.refused(helmv1.DriftDetectedReason, fmt.Errorf("correct drift of %s: %w", f[0].ID.Display(), f[0].Err)))
	}
	msg := fmt.Sprintf("Corrected drift of %d object(s) of release %s: %s", len(drifted), rel.Name, list)
	s.action.normal(helmv1.DriftCorrectedReason, "%s", msg)
	conds(obj).Set(helmv1.DriftedCondition, metav1.ConditionFalse, helmv1.DriftCorrectedReason, msg)
	return nil
}
