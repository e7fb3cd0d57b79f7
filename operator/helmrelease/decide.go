package helmrelease

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/operator/outcome"
	"github.com/helmflux/helmflux/pkg/helm"
)

// next is what the controller does next to a release.
type next int

const (
	// doNothing: the release runs what the HelmRelease declares.
	doNothing next = iota
	doInstall
	doUpgrade
	// doTest runs the chart's tests after a successful install or upgrade.
	doTest
	// doRemediate rolls a failed upgrade back to the newest good revision.
	doRemediate
	// doUnlock clears a pending-* lock older than its action's timeout.
	doUnlock
	// doWaitLock leaves a younger lock alone (someone's helm command may be
	// running) and tries again once it would have expired.
	doWaitLock
	// doNotOwned: the release belongs to another HelmRelease.
	doNotOwned
	// doGiveUp: an action failed for these chart and values; only a change
	// (or a requested reconcile, or rollback.retry) tries again.
	doGiveUp
)

var nextNames = [...]string{"nothing", "install", "upgrade", "test", "remediate", "unlock", "wait for lock", "not owned", "give up"}

func (n next) String() string { return nextNames[n] }

// step is what the pass has done so far.
type step int

const (
	stepNone step = iota
	stepReleased
	stepInstallFailed
	stepUpgradeFailed
	stepTested
	stepTestFailed
	stepRemediated
)

// situation is everything a release decision rests on: the newest revision
// (read from Helm's storage), what the HelmRelease declares, and what this
// pass has done so far.
type situation struct {
	last *helm.Release // nil when the release has no revision
	// history is the records last was read from, for the next install or
	// upgrade (helm.Request.History); nil once they may be out of date.
	history *helm.History

	desired    string // desiredDigest of the chart and values
	chart      *helm.ChartRef
	checksum   string // of the declared values
	antecedent string // this HelmRelease, as the antecedent annotation names it
	requested  bool   // a new reconcile.fluxcd.io/requestedAt
	forced     bool   // forceUpgrade with a new generation
	done       step
	// install is set once this pass installed (rather than upgraded).
	install bool
	now     time.Time

	spec   helmv1.HelmReleaseSpec
	status helmv1.HelmReleaseStatus
	// released is the Released condition before the pass; nil when unset.
	released *metav1.Condition
}

// decision is the next thing to do, and what the controller says about it.
type decision struct {
	next next
	// after is how long a young lock is left alone (doWaitLock).
	after time.Duration
	// external, when set, says how the release was changed outside helmflux
	// since helmflux last recorded it.
	external string
}

// decide picks the next action for a release. It is pure: the controller
// reads the situation, carries the decision out and asks again, until the
// answer is doNothing, doGiveUp or a wait.
func decide(s situation) decision {
	switch s.done {
	case stepReleased:
		if s.spec.Test.Enable {
			return decision{next: doTest}
		}
		return decision{next: doNothing}
	case stepTested:
		return decision{next: doNothing}
	case stepInstallFailed, stepRemediated:
		return decision{next: doGiveUp}
	case stepUpgradeFailed:
		if s.spec.Rollback.Enable {
			return decision{next: doRemediate}
		}
		return decision{next: doGiveUp}
	case stepTestFailed:
		if s.spec.Test.GetIgnoreFailures() {
			return decision{next: doNothing}
		}
		if s.spec.Rollback.Enable && !s.install {
			return decision{next: doRemediate}
		}
		return decision{next: doGiveUp}
	}

	external := externalChange(s)
	if s.last == nil || s.last.Status == helm.StatusUninstalled {
		return decision{next: doInstall, external: external}
	}
	if s.last.Pending() {
		if age, timeout := s.now.Sub(s.last.LastDeployed), lockTimeout(s.spec, s.last.Status); age < timeout {
			return decision{next: doWaitLock, after: timeout - age + time.Second}
		}
		return decision{next: doUnlock}
	}
	if owner := s.last.Owner(); owner != "" && owner != s.antecedent {
		return decision{next: doNotOwned}
	}
	if runsDesired(s) && !s.requested && !s.forced {
		return decision{next: doNothing}
	}
	if repeatRefused(s) {
		return decision{next: doGiveUp}
	}
	return decision{next: doUpgrade, external: external}
}

// maxDescription bounds the part of a foreign revision's description quoted
// in an Event.
const maxDescription = 200

// lockTimeout is how long the action holding a release's lock may take:
// after that, it cannot still be running.
func lockTimeout(spec helmv1.HelmReleaseSpec, status string) time.Duration {
	if status == helm.StatusPendingRollback {
		return spec.Rollback.GetTimeout()
	}
	return spec.GetTimeout()
}

// runsDesired tells whether the newest revision is deployed from the
// declared chart and values. The digest label alone is not enough: a
// `helm upgrade` by hand keeps the labels of the revision it replaces, so the
// chart and the values themselves are compared too.
func runsDesired(s situation) bool {
	l := s.last
	return l.Status == helm.StatusDeployed && l.Labels[DigestLabel] == s.desired &&
		l.ChartName == s.chart.Name && l.ChartVersion == s.chart.Version && l.ValuesChecksum == s.checksum
}

// repeatRefused stops an action that failed for the same chart and values
// from running again (the Helm Operator's upgrade-rollback loop), unless
// rollback.retry allows another attempt or a reconcile was requested.
// rollback.retry tries again after a rolled-back upgrade only: a failed
// install (or failed tests of one) made no rollback, so rollbackCount is 0
// and it waits for a change like any other failure.
func repeatRefused(s situation) bool {
	r := s.released
	if s.requested || s.desired != s.status.LastAttemptedDigest || r == nil || r.Status != metav1.ConditionFalse {
		return false
	}
	switch r.Reason {
	case helmv1.UpgradeFailedReason, helmv1.InstallFailedReason, helmv1.TestFailedReason, helmv1.ForbiddenReason:
	default:
		return false
	}
	rb := s.spec.Rollback
	retryAllowed := rb.Enable && rb.Retry && s.status.RollbackCount > 0 &&
		(rb.GetMaxRetries() == 0 || s.status.RollbackCount <= rb.GetMaxRetries())
	return !retryAllowed
}

// externalChange says how the release differs from the revision helmflux
// last recorded as deployed, "" when it does not (or helmflux recorded
// none): a `helm rollback`, `upgrade` or `uninstall` by someone else.
func externalChange(s situation) string {
	st := s.status
	if st.ReleaseRevision == 0 || st.ReleaseStatus != helm.StatusDeployed {
		return ""
	}
	l := s.last
	switch {
	case l == nil:
		return fmt.Sprintf("release %s was uninstalled", st.ReleaseName)
	case l.Status == helm.StatusUninstalled:
		return fmt.Sprintf("release %s was uninstalled (history kept)", st.ReleaseName)
	case l.Pending() || l.Version == st.ReleaseRevision:
		return ""
	}
	// The description is whoever ran helm's text (or Helm's error): bounded.
	how := outcome.Trim(l.Description, maxDescription)
	if how == "" {
		how = l.Status
	}
	return fmt.Sprintf("release %s is at revision %d (%s), chart %s %s, not revision %d that helmflux made",
		l.Name, l.Version, how, l.ChartName, l.ChartVersion, st.ReleaseRevision)
}
