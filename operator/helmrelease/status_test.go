package helmrelease

import (
	"errors"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/operator/outcome"
)

func TestSummarize(t *testing.T) {
	released := func(obj *helmv1.HelmRelease) {
		conds(obj).Set(helmv1.ReleasedCondition, metav1.ConditionTrue, helmv1.UpgradeSucceededReason, "Upgraded app 1.0.0 → 1.1.0")
	}
	tests := []struct {
		name       string
		prepare    func(*helmv1.HelmRelease)
		acted      bool
		err        error
		wantReady  string // "Status Reason"
		wantMsg    string // substring
		wantStall  bool
		wantObsGen bool
		wantPhase  helmv1.HelmReleasePhase
	}{
		{name: "an upgrade", prepare: released, acted: true,
			wantReady: "True UpgradeSucceeded", wantMsg: "Upgraded app", wantObsGen: true, wantPhase: helmv1.PhaseSucceeded},
		{name: "a pass that did nothing keeps the last message",
			prepare: func(obj *helmv1.HelmRelease) {
				released(obj)
				conds(obj).Set(meta.ReadyCondition, metav1.ConditionTrue, helmv1.UpgradeSucceededReason, "Upgraded app 1.0.0 → 1.1.0")
			},
			wantReady: "True UpgradeSucceeded", wantMsg: "Upgraded app", wantObsGen: true, wantPhase: helmv1.PhaseSucceeded},
		{name: "a network error is retried and keeps observedGeneration",
			prepare: released, err: outcome.Retry(helmv1.ChartFetchFailedReason, errors.New("fetch index: connection refused")),
			wantReady: "False ChartFetchFailed", wantMsg: "connection refused"},
		{name: "a failed upgrade waits for a change",
			err:       outcome.WaitForChange(helmv1.UpgradeFailedReason, errors.New("upgrade x: timed out")),
			wantReady: "False UpgradeFailed", wantMsg: "timed out", wantObsGen: true},
		{name: "a refused spec stalls",
			err:       outcome.Stall(helmv1.InvalidSpecReason, errors.New("path leaves its root")),
			wantReady: "False InvalidSpec", wantStall: true, wantObsGen: true},
		{name: "an upgrade whose tests failed but are ignored",
			prepare: func(obj *helmv1.HelmRelease) {
				released(obj)
				obj.Status.Phase = helmv1.PhaseTestFailed
				conds(obj).Set(helmv1.TestedCondition, metav1.ConditionFalse, helmv1.TestFailedReason, "tests failed: [x-test]")
			},
			acted: true, wantReady: "True UpgradeSucceeded", wantMsg: "tests failed", wantObsGen: true, wantPhase: helmv1.PhaseTestFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := &helmv1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns", Generation: 3}}
			obj.Status.ObservedGeneration = 2
			setReconciling(obj, helmv1.PhaseUpgrading)
			if tt.prepare != nil {
				tt.prepare(obj)
			}
			s := &scope{obj: obj, action: actionResult{acted: tt.acted}}
			summarize(obj, s, tt.err)
			ready := apimeta.FindStatusCondition(obj.Status.Conditions, meta.ReadyCondition)
			if got := string(ready.Status) + " " + ready.Reason; got != tt.wantReady {
				t.Errorf("Ready = %s, want %s", got, tt.wantReady)
			}
			if !strings.Contains(ready.Message, tt.wantMsg) {
				t.Errorf("Ready message %q does not contain %q", ready.Message, tt.wantMsg)
			}
			if apimeta.FindStatusCondition(obj.Status.Conditions, meta.ReconcilingCondition) != nil {
				t.Error("Reconciling was not removed")
			}
			if got := apimeta.IsStatusConditionTrue(obj.Status.Conditions, meta.StalledCondition); got != tt.wantStall {
				t.Errorf("Stalled = %v, want %v", got, tt.wantStall)
			}
			if got := obj.Status.ObservedGeneration == 3; got != tt.wantObsGen {
				t.Errorf("observedGeneration moved = %v, want %v", got, tt.wantObsGen)
			}
			if tt.wantPhase != "" && obj.Status.Phase != tt.wantPhase {
				t.Errorf("phase = %s, want %s", obj.Status.Phase, tt.wantPhase)
			}
		})
	}
}

func TestDesiredDigestFitsALabel(t *testing.T) {
	d := desiredDigest("sha256:abc", "def")
	if len(d) > 63 || d == desiredDigest("sha256:abc", "deg") || d != desiredDigest("sha256:abc", "def") {
		t.Errorf("digest %q", d)
	}
}
