package helmrelease

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/operator/outcome"
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

// maxSteps bounds the actions of one pass: an upgrade, its tests and a rollback.
const maxSteps = 6

// reconcileRelease brings the release to what the HelmRelease declares: it
// asks decide what to do next and carries it out until nothing is left. An
// unchanged pass costs no storage read. It writes Released, Deployed,
// RolledBack and Tested, and the release fields of the status.
func (r *Reconciler) reconcileRelease(ctx context.Context, s *scope) error {
	obj := s.obj
	name, ns := obj.GetReleaseName(), obj.GetTargetNamespace()
	if len(name) > helmv1.MaxReleaseNameLength { // a generated name; a set one is checked by the CRD
		return outcome.Stall(helmv1.InvalidSpecReason, fmt.Errorf("release name %q is longer than %d characters: set spec.releaseName", name, helmv1.MaxReleaseNameLength))
	}
	if r.upToDate(ctx, s) {
		return nil
	}
	sit := situation{
		desired: desiredDigest(s.chartRef.Digest, s.checksum), chart: s.chartRef, checksum: s.checksum,
		antecedent: obj.Antecedent(), requested: s.requested, forced: r.forced(obj), now: time.Now(),
		spec: obj.Spec, status: obj.Status, released: s.conds().Get(helmv1.ReleasedCondition),
	}
	if repeatRefused(sit) && r.recordsUnchanged(ctx, obj) {
		return giveUp(s, sit) // as a read of the release would decide, without one
	}
	if err := r.readHistory(ctx, s, &sit); err != nil {
		return outcome.Retry(s.actor.refused(helmv1.UpgradeFailedReason, err))
	}
	var err error
	for range maxSteps {
		d := decide(sit)
		if d.external != "" {
			s.action.warn(helmv1.ExternalChangeReason, "Release changed outside helmflux: %s; bringing it back to chart %s %s",
				d.external, s.chartRef.Name, s.chartRef.Version)
		}
		switch d.next {
		case doNothing:
			r.recordRelease(obj, s, sit.last, sit.desired)
			return nil
		case doWaitLock:
			l := sit.last
			return outcome.RetryAfter(helmv1.ReleaseLockedReason, d.after,
				fmt.Errorf("release %s is %s since %s (%s ago), probably a helm command in progress; left alone until its timeout of %s passes",
					l.Name, l.Status, l.LastDeployed.UTC().Format(time.RFC3339), sit.now.Sub(l.LastDeployed).Round(time.Second), lockTimeout(obj.Spec, l.Status)))
		case doNotOwned:
			owner := sit.last.Owner()
			s.conds().Set(helmv1.ReleasedCondition, metav1.ConditionFalse, helmv1.ReleaseNotOwnedReason, "release belongs to "+owner)
			return outcome.WaitForChange(helmv1.ReleaseNotOwnedReason, fmt.Errorf("release %s in namespace %s belongs to %s (annotation %s); not taking it over",
				name, ns, owner, helmv1.AntecedentAnnotation))
		case doGiveUp:
			return giveUp(s, sit)
		case doUnlock:
			s.beginActing()
			err = r.unlock(ctx, s, &sit)
		case doInstall, doUpgrade:
			s.beginActing()
			err = r.act(ctx, s, &sit, d.next == doInstall)
		case doTest:
			err = r.test(ctx, s, &sit)
		case doRemediate:
			err = r.remediate(ctx, s, &sit)
		}
		if err != nil {
			return err
		}
	}
	return outcome.Retry(helmv1.ReconcileFailedReason, fmt.Errorf("release %s: no decision after %d steps", name, maxSteps))
}

// giveUp returns the failure a pass stops at: this pass's failed action, or
// the failure recorded for the same chart and values.
func giveUp(s *scope, sit situation) error {
	if s.failure != nil {
		return outcome.WaitForChange(s.failureReason, s.failure)
	}
	c := sit.released
	return outcome.WaitForChange(c.Reason, fmt.Errorf("%s; not retried until the chart or values change or a reconcile is requested", c.Message))
}

// recordsUnchanged tells whether the release's storage records are still at
// the revision and status the status records (true when they are not
// watched): a given-up or unchanged release then needs no storage read.
func (r *Reconciler) recordsUnchanged(ctx context.Context, obj *helmv1.HelmRelease) bool {
	return r.Records == nil || r.Records.Unchanged(ctx, obj.GetTargetNamespace(), obj.GetReleaseName(), recordOf(obj))
}

// upToDate tells, from the status and the watched storage records alone,
// that the release already runs the chart and values: the fast path of an
// unchanged pass. A revision made or removed by someone else (a `helm
// rollback`, `upgrade` or `uninstall`) shows in the records' labels and
// sends the pass down the slow path.
func (r *Reconciler) upToDate(ctx context.Context, s *scope) bool {
	obj, st := s.obj, s.obj.Status
	released := apimeta.IsStatusConditionTrue(st.Conditions, helmv1.ReleasedCondition)
	if !released || s.requested || obj.Generation != st.ObservedGeneration ||
		st.ReleaseStatus != helm.StatusDeployed || st.ReleaseName != obj.GetReleaseName() ||
		st.ChartDigest != s.chartRef.Digest || st.ValuesChecksum != s.checksum {
		return false
	}
	return r.recordsUnchanged(ctx, obj)
}

// readHistory reads the release's storage records for the decision, and
// keeps them for the install or upgrade that may follow (Request.History),
// so that Helm does not read them again. A release the watched records
// show no revision of, and that helmflux has recorded none of, needs no
// read at all: it is installed, and a record someone made meanwhile makes
// the install's create of its first record conflict (the install fails,
// as two helm commands racing do, and the next pass reads). That shortcut
// is the operator's own: the watch is its identity's, so a pass acting as
// a service account reads the records as that account, whose RBAC must
// allow it, whatever the watch says.
func (r *Reconciler) readHistory(ctx context.Context, s *scope, sit *situation) error {
	ns, name := s.obj.GetTargetNamespace(), s.obj.GetReleaseName()
	if s.guarded() && r.Records != nil && r.Records.None(ctx, ns, name, recordOf(s.obj)) {
		sit.last, sit.history = nil, helm.NoHistory(ns, name)
		return nil
	}
	h, err := s.actor.runner.History(ctx, ns, name)
	if err != nil {
		return err
	}
	sit.last, sit.history = h.Last(), h
	return nil
}

// forced tells whether a spec change with forceUpgrade asks for an upgrade
// even though chart and values are the same.
func (r *Reconciler) forced(obj *helmv1.HelmRelease) bool {
	return obj.Spec.ForceUpgrade && obj.Generation != obj.Status.ObservedGeneration
}

// unlock clears a pending lock older than the action's timeout, then reads
// the release again.
func (r *Reconciler) unlock(ctx context.Context, s *scope, sit *situation) error {
	rel := sit.last
	timeout := lockTimeout(s.obj.Spec, rel.Status)
	age := time.Since(rel.LastDeployed)
	unlocked, err := s.actor.runner.Unlock(ctx, rel.Namespace, rel.Name, timeout)
	if err != nil {
		return outcome.Retry(s.actor.refused(helmv1.ReleaseLockedReason, err))
	}
	if unlocked {
		s.action.normal(helmv1.ReleaseUnlockedReason, "Unlocked release %s: revision %d was %s for %s, longer than its timeout %s",
			rel.Name, rel.Version, rel.Status, age.Round(time.Second), timeout)
	}
	h, err := s.actor.runner.History(ctx, rel.Namespace, rel.Name)
	if err != nil {
		return outcome.Retry(s.actor.refused(helmv1.ReleaseLockedReason, err))
	}
	sit.last, sit.history = h.Last(), h
	sit.now = time.Now() // a lock taken again meanwhile is judged by its own age
	return nil
}

// act installs (no release, or an uninstalled one kept in history) or
// upgrades the release.
func (r *Reconciler) act(ctx context.Context, s *scope, sit *situation, install bool) error {
	obj := s.obj
	phase, failReason := helmv1.PhaseUpgrading, helmv1.UpgradeFailedReason
	if install {
		phase, failReason = helmv1.PhaseInstalling, helmv1.InstallFailedReason
	}
	if !install {
		if err := r.guardUpgrade(ctx, s, sit); err != nil {
			return err
		}
	}
	ch, err := s.loadChart(ctx)
	if err != nil {
		return err
	}
	previous := obj.Status.Revision
	req := helm.Request{
		Namespace: obj.GetTargetNamespace(), Name: obj.GetReleaseName(), Chart: ch, Values: s.values,
		Labels: map[string]string{DigestLabel: sit.desired}, Antecedent: obj.Antecedent(),
		Timeout: obj.Spec.GetTimeout(), Wait: obj.Spec.GetWait(), Validate: !obj.Spec.DisableOpenAPIValidation,
		SkipCRDs: obj.Spec.SkipCRDs, MaxHistory: obj.Spec.GetMaxHistory(),
		ResetValues: !obj.Spec.GetReuseValues(), ReuseValues: obj.Spec.GetReuseValues(), Force: obj.Spec.ForceUpgrade,
		Replace: sit.last != nil, History: sit.history,
	}
	sit.history = nil // it serves one action
	done, err := checkpointAction(ctx, s, phase, ch)
	if err != nil {
		return outcome.Retry(failReason, err)
	}
	var rel *helm.Release
	if install {
		rel, err = s.actor.runner.Install(ctx, req)
	} else {
		rel, err = s.actor.runner.Upgrade(ctx, req)
	}
	done()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.action.acted = true
	sit.install = install
	obj.Status.LastAttemptedRevision = s.chartRef.Revision
	obj.Status.LastAttemptedDigest = sit.desired
	if err != nil {
		sit.done = stepUpgradeFailed
		if install {
			sit.done = stepInstallFailed
		}
		failReason, err = s.actor.refused(failReason, err)
		s.conds().Set(helmv1.DeployedCondition, metav1.ConditionFalse, string(helmv1.PhaseDeployFailed), err.Error())
		return r.failed(ctx, s, sit, failReason, err)
	}
	sit.done, sit.last = stepReleased, rel
	r.recordRelease(obj, s, rel, sit.desired)
	obj.Status.Phase = helmv1.PhaseDeployed
	obj.Status.RollbackCount = 0
	s.conds().Remove(helmv1.RolledBackCondition)
	verb, reason := "Upgraded", helmv1.UpgradeSucceededReason
	change := fmt.Sprintf("%s %s → %s", s.chartRef.Name, previous, s.chartRef.Revision)
	if install {
		verb, reason = "Installed", helmv1.InstallSucceededReason
		change = fmt.Sprintf("%s %s", s.chartRef.Name, s.chartRef.Revision)
	} else if previous == s.chartRef.Revision {
		change = fmt.Sprintf("%s %s (values changed)", s.chartRef.Name, s.chartRef.Revision)
	}
	msg := fmt.Sprintf("%s %s: release %s revision %d", verb, change, rel.Name, rel.Version)
	s.conds().Set(helmv1.ReleasedCondition, metav1.ConditionTrue, reason, msg)
	s.conds().Set(helmv1.DeployedCondition, metav1.ConditionTrue, string(helmv1.PhaseDeployed), msg)
	s.action.normal(reason, "%s", msg)
	return nil
}

// checkpointDelay is how long an install or upgrade that waits for
// nothing runs before the pass shows Installing or Upgrading anyway.
const checkpointDelay = 10 * time.Second

// checkpointAction shows that the install or upgrade of phase runs. One
// that may wait (spec.wait, the chart's install and upgrade hooks) or has more steps to show
// (tests) writes it at once. One that waits for nothing only writes the
// chart's objects and is usually over in well under a second: the pass then
// writes its status once, with the outcome, and the checkpoint only if the
// action is still running after checkpointDelay. done must be called once
// the action returned, before obj is touched again; a late checkpoint that
// failed is logged, as the status write at the end of the pass follows.
func checkpointAction(ctx context.Context, s *scope, phase helmv1.HelmReleasePhase, ch *chart.Chart) (done func(), err error) {
	obj := s.obj
	if obj.Spec.Test.Enable || obj.Spec.GetWait() || helm.MayRunHooks(ch) {
		return func() {}, s.markReconciling(phase)
	}
	obj.Status.Phase = phase
	setReconciling(obj, phase)
	finished := make(chan struct{})
	timer := time.AfterFunc(checkpointDelay, func() {
		defer close(finished)
		if err := s.checkpoint(); err != nil {
			ctrl.LoggerFrom(ctx).Info("Could not show the action in progress", "phase", phase, "error", err.Error())
		}
	})
	return func() {
		if !timer.Stop() {
			<-finished
		}
	}, nil
}

// guardUpgrade refuses an upgrade whose base revision (whose objects
// absent from the new manifest Helm deletes) lists objects outside the
// release's namespace that the release did not create.
func (r *Reconciler) guardUpgrade(ctx context.Context, s *scope, sit *situation) error {
	if !s.guarded() {
		return nil
	}
	base := sit.last
	if base.Status != helm.StatusDeployed {
		var err error
		if base, err = s.actor.runner.Current(ctx, sit.last.Namespace, sit.last.Name); err != nil {
			return outcome.Retry(helmv1.UpgradeFailedReason, err)
		}
	}
	return r.guard(ctx, s, "upgrade", base, nil)
}

// failed records a failed install, upgrade or test; the error is returned
// when the decision gives up.
func (r *Reconciler) failed(ctx context.Context, s *scope, sit *situation, reason string, err error) error {
	obj := s.obj
	s.conds().Set(helmv1.ReleasedCondition, metav1.ConditionFalse, reason, err.Error())
	s.action.warn(reason, "%s", err.Error())
	if reason != helmv1.TestFailedReason {
		obj.Status.Phase = helmv1.PhaseDeployFailed
	}
	s.failure, s.failureReason = err, reason
	last, lerr := s.actor.runner.Last(ctx, obj.GetTargetNamespace(), obj.GetReleaseName())
	if lerr != nil {
		return outcome.Retry(s.actor.refused(reason, errors.Join(err, lerr)))
	}
	sit.last, sit.history = last, nil
	if last != nil {
		obj.Status.ReleaseStatus = last.Status
		obj.Status.ReleaseRevision = last.Version
	}
	return nil
}

// remediate returns a failed upgrade to the newest good revision. After
// failed tests the upgraded revision is deployed and is rolled back too.
func (r *Reconciler) remediate(ctx context.Context, s *scope, sit *situation) error {
	obj := s.obj
	obj.Status.RollbackCount++
	sit.done = stepRemediated
	rerr := r.rollback(ctx, s, sit)
	if rerr != nil {
		s.failure = fmt.Errorf("%w; then %w", s.failure, rerr)
	}
	if last, err := s.actor.runner.Last(ctx, obj.GetTargetNamespace(), obj.GetReleaseName()); err == nil && last != nil {
		sit.last = last
		obj.Status.ReleaseStatus = last.Status
		obj.Status.ReleaseRevision = last.Version
	}
	return nil
}

func (r *Reconciler) rollback(ctx context.Context, s *scope, sit *situation) error {
	obj := s.obj
	ns, name := obj.GetTargetNamespace(), obj.GetReleaseName()
	last := sit.last
	testsFailed := s.failureReason == helmv1.TestFailedReason
	if last == nil || (last.Status == helm.StatusDeployed && !testsFailed) {
		return nil // the upgrade failed before it changed anything
	}
	good, err := s.actor.runner.LastGood(ctx, ns, name, last.Version)
	if err != nil {
		return err
	}
	if good == nil {
		s.conds().Set(helmv1.RolledBackCondition, metav1.ConditionFalse, helmv1.RollbackFailedReason, "no earlier good revision to roll back to")
		return errors.New("no earlier good revision to roll back to")
	}
	if err := r.guard(ctx, s, "roll back", last, good); err != nil {
		s.failureReason = helmv1.ReleaseRecordRefusedReason
		s.conds().Set(helmv1.RolledBackCondition, metav1.ConditionFalse, helmv1.ReleaseRecordRefusedReason, err.Error())
		s.action.warn(helmv1.ReleaseRecordRefusedReason, "%s", err.Error())
		return err
	}
	if err := s.markReconciling(helmv1.PhaseRollingBack); err != nil {
		return err
	}
	rb := obj.Spec.Rollback
	err = s.actor.runner.Rollback(ctx, ns, name, helm.RollbackOptions{
		Version: good.Version, Timeout: rb.GetTimeout(), Wait: rb.Wait, Force: rb.Force, Recreate: rb.Recreate,
		DisableHooks: rb.DisableHooks, MaxHistory: obj.Spec.GetMaxHistory(),
	})
	if err != nil {
		reason, err := s.actor.refused(helmv1.RollbackFailedReason, err)
		if reason == helmv1.ReleaseRecordRefusedReason {
			s.failureReason = reason
		}
		obj.Status.Phase = helmv1.PhaseRollbackFailed
		s.conds().Set(helmv1.RolledBackCondition, metav1.ConditionFalse, reason, err.Error())
		s.action.warn(reason, "%s", err.Error())
		return err
	}
	obj.Status.Phase = helmv1.PhaseRolledBack
	msg := fmt.Sprintf("Rolled back %s to revision %d (chart %s %s) after the failed upgrade", name, good.Version, good.ChartName, good.ChartVersion)
	s.conds().Set(helmv1.RolledBackCondition, metav1.ConditionTrue, helmv1.RollbackSucceededReason, msg)
	s.action.normal(helmv1.RollbackSucceededReason, "%s", msg)
	return nil
}

// test runs the release's tests; failures are ignored when the spec says so.
// Testing and then Tested (or TestFailed) are written as they happen.
func (r *Reconciler) test(ctx context.Context, s *scope, sit *situation) error {
	obj := s.obj
	if err := s.markReconciling(helmv1.PhaseTesting); err != nil {
		return outcome.Retry(helmv1.TestFailedReason, err)
	}
	rel, err := s.actor.runner.Test(ctx, obj.GetTargetNamespace(), obj.GetReleaseName(), obj.Spec.Test.GetTimeout())
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		sit.done = stepTested
		s.conds().Set(helmv1.TestedCondition, metav1.ConditionTrue, helmv1.TestSucceededReason, "tests passed")
		if err := s.markReconciling(helmv1.PhaseTested); err != nil {
			return outcome.Retry(helmv1.TestFailedReason, err)
		}
		return nil
	}
	sit.done = stepTestFailed
	msg := err.Error()
	if rel != nil && len(rel.FailedTests) > 0 {
		msg = fmt.Sprintf("tests failed: %v: %s", rel.FailedTests, err)
	}
	s.conds().Set(helmv1.TestedCondition, metav1.ConditionFalse, helmv1.TestFailedReason, msg)
	if err := s.markReconciling(helmv1.PhaseTestFailed); err != nil {
		return outcome.Retry(helmv1.TestFailedReason, err)
	}
	if obj.Spec.Test.GetIgnoreFailures() {
		s.action.warn(helmv1.TestFailedReason, "%s (ignored)", msg)
		return nil
	}
	return r.failed(ctx, s, sit, helmv1.TestFailedReason, errors.New(msg))
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
		s.conds().Set(helmv1.ReleasedCondition, metav1.ConditionTrue, helmv1.UpgradeSucceededReason,
			fmt.Sprintf("release %s revision %d runs chart %s %s", rel.Name, rel.Version, rel.ChartName, rel.ChartVersion))
	}
	if !apimeta.IsStatusConditionTrue(st.Conditions, helmv1.DeployedCondition) {
		s.conds().Set(helmv1.DeployedCondition, metav1.ConditionTrue, string(helmv1.PhaseDeployed),
			fmt.Sprintf("release %s revision %d is deployed", rel.Name, rel.Version))
	}
	if !obj.Spec.Test.Enable {
		s.conds().Remove(helmv1.TestedCondition)
	}
}
