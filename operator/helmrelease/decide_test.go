package helmrelease

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/pkg/helm"
)

// TestDecide walks the release states the way helm-controller's tests of
// its release state machine do: one situation, one next action.
func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	chart := &helm.ChartRef{Name: "app", Version: "1.1.0"}
	const desired, checksum = "want", "values"
	rel := func(version int, status string, mod ...func(*helm.Release)) *helm.Release {
		r := &helm.Release{Name: "ns-app", Namespace: "ns", Version: version, Status: status,
			ChartName: "app", ChartVersion: "1.1.0", ValuesChecksum: checksum,
			Labels: map[string]string{DigestLabel: desired}, LastDeployed: now.Add(-time.Hour),
			Description: "Upgrade complete"}
		for _, m := range mod {
			m(r)
		}
		return r
	}
	released := func(status metav1.ConditionStatus, reason string) *metav1.Condition {
		return &metav1.Condition{Type: helmv1.ReleasedCondition, Status: status, Reason: reason, Message: "upgrade ns/ns-app: timed out"}
	}
	recorded := helmv1.HelmReleaseStatus{ReleaseName: "ns-app", ReleaseStatus: helm.StatusDeployed, ReleaseRevision: 2}
	rollback := helmv1.Rollback{Enable: true}
	tests := []struct {
		name         string
		sit          situation
		want         next
		wantAfter    time.Duration
		wantExternal string // substring; "" for none
	}{
		{name: "no release: install", sit: situation{}, want: doInstall},
		{name: "uninstalled with history kept: install", sit: situation{last: rel(3, helm.StatusUninstalled)}, want: doInstall},
		{name: "deployed with the declared chart and values: nothing", sit: situation{last: rel(2, helm.StatusDeployed), status: recorded}, want: doNothing},
		{name: "a requested reconcile upgrades anyway", sit: situation{last: rel(2, helm.StatusDeployed), requested: true}, want: doUpgrade},
		{name: "forceUpgrade with a new generation upgrades", sit: situation{last: rel(2, helm.StatusDeployed), forced: true}, want: doUpgrade},
		{name: "a new chart version upgrades", sit: situation{last: rel(2, helm.StatusDeployed, func(r *helm.Release) {
			r.ChartVersion, r.Labels[DigestLabel] = "1.0.0", "old"
		})}, want: doUpgrade},
		{name: "a failed revision is upgraded", sit: situation{last: rel(3, helm.StatusFailed)}, want: doUpgrade},

		{name: "a young lock is left until it would expire",
			sit:  situation{last: rel(3, helm.StatusPendingUpgrade, func(r *helm.Release) { r.LastDeployed = now.Add(-time.Minute) })},
			want: doWaitLock, wantAfter: helmv1.DefaultTimeoutSeconds*time.Second - time.Minute + time.Second},
		{name: "a lock older than the timeout is cleared",
			sit:  situation{last: rel(3, helm.StatusPendingInstall, func(r *helm.Release) { r.LastDeployed = now.Add(-time.Hour) })},
			want: doUnlock},
		{name: "a pending rollback is judged by the rollback timeout",
			sit: situation{last: rel(3, helm.StatusPendingRollback, func(r *helm.Release) { r.LastDeployed = now.Add(-10 * time.Second) }),
				spec: helmv1.HelmReleaseSpec{Rollback: helmv1.Rollback{Timeout: ptrTo(int64(5))}}},
			want: doUnlock},

		{name: "a release of another HelmRelease is not taken over",
			sit: situation{antecedent: "ns:helmrelease/app", last: rel(1, helm.StatusDeployed, func(r *helm.Release) {
				r.Manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  annotations:\n    helm.fluxcd.io/antecedent: other:helmrelease/app\n"
			})},
			want: doNotOwned},

		{name: "the same failed upgrade is not repeated",
			sit: situation{last: rel(3, helm.StatusFailed), released: released(metav1.ConditionFalse, helmv1.UpgradeFailedReason),
				status: helmv1.HelmReleaseStatus{LastAttemptedDigest: desired}},
			want: doGiveUp},
		{name: "rollback.retry repeats it within maxRetries",
			sit: situation{last: rel(3, helm.StatusFailed), released: released(metav1.ConditionFalse, helmv1.UpgradeFailedReason),
				status: helmv1.HelmReleaseStatus{LastAttemptedDigest: desired, RollbackCount: 1},
				spec:   helmv1.HelmReleaseSpec{Rollback: helmv1.Rollback{Enable: true, Retry: true, MaxRetries: ptrTo(int64(2))}}},
			want: doUpgrade},
		{name: "but not beyond maxRetries",
			sit: situation{last: rel(3, helm.StatusFailed), released: released(metav1.ConditionFalse, helmv1.UpgradeFailedReason),
				status: helmv1.HelmReleaseStatus{LastAttemptedDigest: desired, RollbackCount: 3},
				spec:   helmv1.HelmReleaseSpec{Rollback: helmv1.Rollback{Enable: true, Retry: true, MaxRetries: ptrTo(int64(2))}}},
			want: doGiveUp},
		{name: "rollback.retry does not repeat a failed install",
			sit: situation{last: rel(1, helm.StatusFailed), released: released(metav1.ConditionFalse, helmv1.InstallFailedReason),
				status: helmv1.HelmReleaseStatus{LastAttemptedDigest: desired},
				spec:   helmv1.HelmReleaseSpec{Rollback: helmv1.Rollback{Enable: true, Retry: true}}},
			want: doGiveUp},
		{name: "a change after a failure upgrades",
			sit: situation{last: rel(3, helm.StatusFailed), released: released(metav1.ConditionFalse, helmv1.UpgradeFailedReason),
				status: helmv1.HelmReleaseStatus{LastAttemptedDigest: "older"}},
			want: doUpgrade},

		{name: "after a release, test when enabled", sit: situation{done: stepReleased, spec: helmv1.HelmReleaseSpec{Test: helmv1.Test{Enable: true}}}, want: doTest},
		{name: "after a release without tests, done", sit: situation{done: stepReleased}, want: doNothing},
		{name: "after passing tests, done", sit: situation{done: stepTested}, want: doNothing},
		{name: "a failed upgrade is remediated when rollback is enabled", sit: situation{done: stepUpgradeFailed, spec: helmv1.HelmReleaseSpec{Rollback: rollback}}, want: doRemediate},
		{name: "a failed upgrade without rollback gives up", sit: situation{done: stepUpgradeFailed}, want: doGiveUp},
		{name: "a failed install gives up", sit: situation{done: stepInstallFailed, spec: helmv1.HelmReleaseSpec{Rollback: rollback}}, want: doGiveUp},
		{name: "failed tests of an upgrade are remediated", sit: situation{done: stepTestFailed, spec: helmv1.HelmReleaseSpec{Rollback: rollback}}, want: doRemediate},
		{name: "failed tests of an install give up", sit: situation{done: stepTestFailed, install: true, spec: helmv1.HelmReleaseSpec{Rollback: rollback}}, want: doGiveUp},
		{name: "ignored test failures are done", sit: situation{done: stepTestFailed, spec: helmv1.HelmReleaseSpec{Test: helmv1.Test{Enable: true, IgnoreFailures: ptrTo(true)}}}, want: doNothing},
		{name: "after a remediation, give up", sit: situation{done: stepRemediated}, want: doGiveUp},

		// Changes made outside helmflux, with the Helm CLI.
		{name: "helm rollback: an older chart at a newer revision is upgraded back",
			sit: situation{status: recorded, last: rel(3, helm.StatusDeployed, func(r *helm.Release) {
				r.ChartVersion, r.Description, r.Labels[DigestLabel] = "1.0.0", "Rollback to 1", "old"
			})},
			want: doUpgrade, wantExternal: "revision 3 (Rollback to 1), chart app 1.0.0, not revision 2"},
		{name: "helm upgrade keeps helmflux's digest label but changes the values",
			sit:  situation{status: recorded, last: rel(3, helm.StatusDeployed, func(r *helm.Release) { r.ValuesChecksum = "other" })},
			want: doUpgrade, wantExternal: "revision 3"},
		{name: "helm uninstall: installed again", sit: situation{status: recorded}, want: doInstall, wantExternal: "was uninstalled"},
		{name: "a revision helmflux has not recorded yet but that runs the declared release is left alone",
			sit: situation{status: recorded, last: rel(3, helm.StatusDeployed)}, want: doNothing},
		{name: "someone's helm uninstall in progress is a lock too",
			sit:  situation{status: recorded, last: rel(2, helm.StatusUninstalling, func(r *helm.Release) { r.LastDeployed = now })},
			want: doWaitLock, wantAfter: helmv1.DefaultTimeoutSeconds*time.Second + time.Second},
		{name: "someone's helm upgrade in progress is a lock, not a change",
			sit:  situation{status: recorded, last: rel(3, helm.StatusPendingUpgrade, func(r *helm.Release) { r.LastDeployed = now })},
			want: doWaitLock, wantAfter: helmv1.DefaultTimeoutSeconds*time.Second + time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.sit
			s.now, s.chart, s.desired, s.checksum = now, chart, desired, checksum
			d := decide(s)
			if d.next != tt.want {
				t.Fatalf("decide = %s, want %s", d.next, tt.want)
			}
			if d.after != tt.wantAfter {
				t.Errorf("after = %s, want %s", d.after, tt.wantAfter)
			}
			if (tt.wantExternal == "") != (d.external == "") || !strings.Contains(d.external, tt.wantExternal) {
				t.Errorf("external = %q, want %q", d.external, tt.wantExternal)
			}
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestExternalChangeQuotesABoundedDescription: a foreign revision's
// description (someone's text, or Helm's error) reaches an Event cut short.
func TestExternalChangeQuotesABoundedDescription(t *testing.T) {
	s := situation{
		status: helmv1.HelmReleaseStatus{ReleaseName: "x", ReleaseStatus: helm.StatusDeployed, ReleaseRevision: 1},
		last:   &helm.Release{Name: "x", Version: 2, Status: helm.StatusDeployed, Description: strings.Repeat("d", 10000)},
	}
	if got := externalChange(s); len(got) > maxDescription+200 || !strings.Contains(got, "revision 2") {
		t.Errorf("external change message of %d bytes: %.80q", len(got), got)
	}
}
