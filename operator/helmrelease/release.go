package helmrelease

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/pkg/helm"
)

// DigestLabel is the label of a release's storage record that holds the
// digest of the chart and values that produced the revision.
const DigestLabel = "helmflux.dev/digest"

// desiredDigest identifies a chart and merged values together; it fits a
// label value.
func desiredDigest(chartDigest, valuesChecksum string) string {
	sum := sha256.Sum256([]byte(chartDigest + "\n" + valuesChecksum))
	return hex.EncodeToString(sum[:])[:40]
}

// reconcileRelease installs or upgrades the release when its chart or values
// changed (or a reconcile was requested), runs the tests and rolls back a
// failed upgrade. An unchanged release costs no storage read. It writes
// Released, RolledBack and Tested, and the release fields of the status.
func (r *Reconciler) reconcileRelease(ctx context.Context, s *scope) error {
	obj := s.obj
	name, ns := obj.GetReleaseName(), obj.GetTargetNamespace()
	if len(name) > helmv1.MaxReleaseNameLength { // a generated name; a set one is checked by the CRD
		return stalled(helmv1.InvalidSpecReason, fmt.Errorf("release name %q is longer than %d characters: set spec.releaseName", name, helmv1.MaxReleaseNameLength))
	}
	desired := desiredDigest(s.chartRef.Digest, s.checksum)
	if r.upToDate(s) {
		return nil
	}
	if err := r.refuseRepeat(s, desired); err != nil {
		return err
	}

	rel, err := r.Runner.Last(ctx, ns, name)
	if err != nil {
		return retryable(helmv1.UpgradeFailedReason, err)
	}
	if rel != nil && rel.Pending() {
		if rel, err = r.unlock(ctx, s, rel); err != nil {
			return err
		}
	}
	if rel != nil {
		if owner := rel.Owner(); owner != "" && owner != obj.Antecedent() {
			setCondition(obj, helmv1.ReleasedCondition, metav1.ConditionFalse, helmv1.ReleaseNotOwnedReason, "release belongs to "+owner)
			return waitForChange(helmv1.ReleaseNotOwnedReason, fmt.Errorf("release %s in namespace %s belongs to %s (annotation %s); not taking it over",
				name, ns, owner, helmv1.AntecedentAnnotation))
		}
		if rel.Status == helm.StatusDeployed && rel.Labels[DigestLabel] == desired && !s.requested && !r.forced(obj) {
			r.recordRelease(obj, s, rel, desired)
			return nil
		}
	}
	return r.act(ctx, s, rel)
}

// upToDate tells, from the status alone, that the release already runs the
// chart and values: the fast path of an unchanged pass.
func (r *Reconciler) upToDate(s *scope) bool {
	obj, st := s.obj, s.obj.Status
	released := apimeta.IsStatusConditionTrue(st.Conditions, helmv1.ReleasedCondition)
	return released && !s.requested && obj.Generation == st.ObservedGeneration &&
		st.ReleaseStatus == helm.StatusDeployed && st.ReleaseName == obj.GetReleaseName() &&
		st.ChartDigest == s.chartRef.Digest && st.ValuesChecksum == s.checksum
}

// forced tells whether a spec change with forceUpgrade asks for an upgrade
// even though chart and values are the same.
func (r *Reconciler) forced(obj *helmv1.HelmRelease) bool {
	return obj.Spec.ForceUpgrade && obj.Generation != obj.Status.ObservedGeneration
}

// refuseRepeat stops an upgrade that failed for the same chart and values
// from running again (the Helm Operator's upgrade-rollback loop), unless
// rollback.retry allows another attempt or a reconcile was requested.
func (r *Reconciler) refuseRepeat(s *scope, desired string) error {
	obj := s.obj
	released := apimeta.FindStatusCondition(obj.Status.Conditions, helmv1.ReleasedCondition)
	if s.requested || desired != obj.Status.LastAttemptedDigest || released == nil || released.Status != metav1.ConditionFalse {
		return nil
	}
	if released.Reason != helmv1.UpgradeFailedReason && released.Reason != helmv1.InstallFailedReason &&
		released.Reason != helmv1.TestFailedReason {
		return nil
	}
	rb := obj.Spec.Rollback
	if rb.Enable && rb.Retry && (rb.GetMaxRetries() == 0 || obj.Status.RollbackCount <= rb.GetMaxRetries()) {
		return nil
	}
	return waitForChange(released.Reason, fmt.Errorf("%s; not retried until the chart or values change or a reconcile is requested", released.Message))
}

// unlock clears a pending lock older than the action's timeout; a younger
// lock is left alone and the release retried once it would have expired.
func (r *Reconciler) unlock(ctx context.Context, s *scope, rel *helm.Release) (*helm.Release, error) {
	obj := s.obj
	timeout := obj.Spec.GetTimeout()
	if rel.Status == helm.StatusPendingRollback {
		timeout = obj.Spec.Rollback.GetTimeout()
	}
	age := time.Since(rel.LastDeployed)
	if age < timeout {
		return nil, retryIn(helmv1.ReleaseLockedReason, timeout-age+time.Second,
			fmt.Errorf("release %s is %s since %s (%s ago), probably a helm command in progress; left alone until its timeout of %s passes",
				rel.Name, rel.Status, rel.LastDeployed.UTC().Format(time.RFC3339), age.Round(time.Second), timeout))
	}
	unlocked, err := r.Runner.Unlock(ctx, rel.Namespace, rel.Name, timeout)
	if err != nil {
		return nil, retryable(helmv1.ReleaseLockedReason, err)
	}
	if unlocked {
		s.action.normal(helmv1.ReleaseUnlockedReason, "Unlocked release %s: revision %d was %s for %s, longer than its timeout %s",
			rel.Name, rel.Version, rel.Status, age.Round(time.Second), timeout)
	}
	last, err := r.Runner.Last(ctx, rel.Namespace, rel.Name)
	if err != nil {
		return nil, retryable(helmv1.ReleaseLockedReason, err)
	}
	return last, nil
}

// act installs (no release, or an uninstalled one kept in history) or
// upgrades last, tests, and rolls back a failed upgrade.
func (r *Reconciler) act(ctx context.Context, s *scope, last *helm.Release) error {
	obj := s.obj
	desired := desiredDigest(s.chartRef.Digest, s.checksum)
	install := last == nil || last.Status == helm.StatusUninstalled
	phase, failReason := helmv1.PhaseUpgrading, helmv1.UpgradeFailedReason
	if install {
		phase, failReason = helmv1.PhaseInstalling, helmv1.InstallFailedReason
	}
	ch, err := s.loadChart(ctx)
	if err != nil {
		return err
	}
	if err := s.markReconciling(phase); err != nil {
		return retryable(failReason, err)
	}
	previous := obj.Status.Revision
	req := helm.Request{
		Namespace: obj.GetTargetNamespace(), Name: obj.GetReleaseName(), Chart: ch, Values: s.values,
		Labels: map[string]string{DigestLabel: desired}, Antecedent: obj.Antecedent(),
		Timeout: obj.Spec.GetTimeout(), Wait: obj.Spec.GetWait(), Validate: !obj.Spec.DisableOpenAPIValidation,
		SkipCRDs: obj.Spec.SkipCRDs, MaxHistory: obj.Spec.GetMaxHistory(),
		ResetValues: !obj.Spec.GetReuseValues(), ReuseValues: obj.Spec.GetReuseValues(), Force: obj.Spec.ForceUpgrade,
		Replace: last != nil,
	}
	var rel *helm.Release
	if install {
		rel, err = r.Runner.Install(ctx, req)
	} else {
		rel, err = r.Runner.Upgrade(ctx, req)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.action.acted = true
	obj.Status.LastAttemptedRevision = s.chartRef.Revision
	obj.Status.LastAttemptedDigest = desired
	if err == nil && obj.Spec.Test.Enable {
		err = r.test(ctx, s)
		if err != nil {
			failReason = helmv1.TestFailedReason
		}
	}
	if err != nil {
		return r.failed(ctx, s, install, failReason, err)
	}
	r.recordRelease(obj, s, rel, desired)
	obj.Status.RollbackCount = 0
	apimeta.RemoveStatusCondition(&obj.Status.Conditions, helmv1.RolledBackCondition)
	verb, reason := "Upgraded", helmv1.UpgradeSucceededReason
	change := fmt.Sprintf("%s %s → %s", s.chartRef.Name, previous, s.chartRef.Revision)
	if install {
		verb, reason = "Installed", helmv1.InstallSucceededReason
		change = fmt.Sprintf("%s %s", s.chartRef.Name, s.chartRef.Revision)
	} else if previous == s.chartRef.Revision {
		change = fmt.Sprintf("%s %s (values changed)", s.chartRef.Name, s.chartRef.Revision)
	}
	msg := fmt.Sprintf("%s %s: release %s revision %d", verb, change, rel.Name, rel.Version)
	setCondition(obj, helmv1.ReleasedCondition, metav1.ConditionTrue, reason, msg)
	s.action.normal(reason, "%s", msg)
	return nil
}

// failed records a failed install, upgrade or test and rolls back when the
// spec asks for it.
func (r *Reconciler) failed(ctx context.Context, s *scope, install bool, reason string, err error) error {
	obj := s.obj
	setCondition(obj, helmv1.ReleasedCondition, metav1.ConditionFalse, reason, err.Error())
	s.action.warn(reason, "%s", err.Error())
	obj.Status.Phase = helmv1.PhaseDeployFailed
	if !install && obj.Spec.Rollback.Enable {
		obj.Status.RollbackCount++
		if rerr := r.rollback(ctx, s, reason == helmv1.TestFailedReason); rerr != nil {
			err = fmt.Errorf("%w; then %w", err, rerr)
		}
	}
	if last, lerr := r.Runner.Last(ctx, obj.GetTargetNamespace(), obj.GetReleaseName()); lerr == nil && last != nil {
		obj.Status.ReleaseStatus = last.Status
		obj.Status.ReleaseRevision = last.Version
	}
	return waitForChange(reason, err)
}

// rollback returns a failed upgrade to the newest good revision. After
// failed tests the upgraded revision is deployed and is rolled back too.
func (r *Reconciler) rollback(ctx context.Context, s *scope, testsFailed bool) error {
	obj := s.obj
	ns, name := obj.GetTargetNamespace(), obj.GetReleaseName()
	last, err := r.Runner.Last(ctx, ns, name)
	if err != nil {
		return err
	}
	if last == nil || (last.Status == helm.StatusDeployed && !testsFailed) {
		return nil // the upgrade failed before it changed anything
	}
	good, err := r.Runner.LastGood(ctx, ns, name, last.Version)
	if err != nil {
		return err
	}
	if good == nil {
		setCondition(obj, helmv1.RolledBackCondition, metav1.ConditionFalse, helmv1.RollbackFailedReason, "no earlier good revision to roll back to")
		return errors.New("no earlier good revision to roll back to")
	}
	rb := obj.Spec.Rollback
	obj.Status.Phase = helmv1.PhaseRollingBack
	err = r.Runner.Rollback(ctx, ns, name, helm.RollbackOptions{
		Version: good.Version, Timeout: rb.GetTimeout(), Wait: rb.Wait, Force: rb.Force, Recreate: rb.Recreate,
		DisableHooks: rb.DisableHooks, MaxHistory: obj.Spec.GetMaxHistory(),
	})
	if err != nil {
		obj.Status.Phase = helmv1.PhaseRollbackFailed
		setCondition(obj, helmv1.RolledBackCondition, metav1.ConditionFalse, helmv1.RollbackFailedReason, err.Error())
		s.action.warn(helmv1.RollbackFailedReason, "%s", err.Error())
		return err
	}
	obj.Status.Phase = helmv1.PhaseRolledBack
	msg := fmt.Sprintf("Rolled back %s to revision %d (chart %s %s) after the failed upgrade", name, good.Version, good.ChartName, good.ChartVersion)
	setCondition(obj, helmv1.RolledBackCondition, metav1.ConditionTrue, helmv1.RollbackSucceededReason, msg)
	s.action.normal(helmv1.RollbackSucceededReason, "%s", msg)
	return nil
}

// test runs the release's tests; failures are ignored when the spec says so.
func (r *Reconciler) test(ctx context.Context, s *scope) error {
	obj := s.obj
	obj.Status.Phase = helmv1.PhaseTesting
	rel, err := r.Runner.Test(ctx, obj.GetTargetNamespace(), obj.GetReleaseName(), obj.Spec.Test.GetTimeout())
	if err == nil {
		obj.Status.Phase = helmv1.PhaseTested
		setCondition(obj, helmv1.TestedCondition, metav1.ConditionTrue, helmv1.TestSucceededReason, "tests passed")
		return nil
	}
	msg := err.Error()
	if rel != nil && len(rel.FailedTests) > 0 {
		msg = fmt.Sprintf("tests failed: %v: %s", rel.FailedTests, err)
	}
	setCondition(obj, helmv1.TestedCondition, metav1.ConditionFalse, helmv1.TestFailedReason, msg)
	if obj.Spec.Test.GetIgnoreFailures() {
		obj.Status.Phase = helmv1.PhaseTestFailed
		s.action.warn(helmv1.TestFailedReason, "%s (ignored)", msg)
		return nil
	}
	return errors.New(msg)
}

// recordRelease writes what is deployed into the status.
func (r *Reconciler) recordRelease(obj *helmv1.HelmRelease, s *scope, rel *helm.Release, desired string) {
	st := &obj.Status
	st.ReleaseName = rel.Name
	st.ReleaseStatus = rel.Status
	st.ReleaseRevision = rel.Version
	st.Revision = s.chartRef.Revision
	st.ChartDigest = s.chartRef.Digest
	st.ValuesChecksum = s.checksum
	st.LastAttemptedDigest = desired
	if !apimeta.IsStatusConditionTrue(st.Conditions, helmv1.ReleasedCondition) {
		setCondition(obj, helmv1.ReleasedCondition, metav1.ConditionTrue, helmv1.UpgradeSucceededReason,
			fmt.Sprintf("release %s revision %d runs chart %s %s", rel.Name, rel.Version, rel.ChartName, rel.ChartVersion))
	}
	if !obj.Spec.Test.Enable {
		apimeta.RemoveStatusCondition(&st.Conditions, helmv1.TestedCondition)
	}
}
