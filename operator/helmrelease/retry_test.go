package helmrelease_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/helm"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// neverReady are values whose Deployment never gets ready: a waited install
// or upgrade of them fails at its timeout.
var neverReady = "image: {tag: " + testenv.NeverReadyImageSuffix[1:] + "}"

// failedRevisions counts the failed revisions in a release's history.
func failedRevisions(h []string) int {
	n := 0
	for _, s := range h {
		if s == helm.StatusFailed {
			n++
		}
	}
	return n
}

// rollback.retry tries a failed upgrade again, once per interval, while
// rollbackCount is at most maxRetries: maxRetries+1 attempts, each rolled
// back, then no more. A requested reconcile is one more attempt.
func TestRollbackRetryMakesMaxRetriesPlusOneAttempts(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	const maxRetries = 2
	hr := repoRelease(ns, "retry", repo.URL(), "1.0.0", "")
	hr.Spec.Timeout = ptrTo(int64(3))
	hr.Spec.Rollback = helmv1.Rollback{Enable: true, Retry: true, MaxRetries: ptrTo(int64(maxRetries))}
	mustCreateHR(t, hr)
	waitReady(t, ns, "retry")
	release := ns + "-retry"

	update(t, ns, "retry", func(hr *helmv1.HelmRelease) { hr.Spec.Values = mustValues(neverReady) })
	// Each attempt is a failed revision and the rollback's deployed one.
	attempts := func(n int) string {
		return "superseded" + strings.Repeat(",failed,superseded", n-1) + ",failed,deployed"
	}
	eventually(t, 3*time.Minute, fmt.Sprintf("%d failed upgrades, each rolled back", maxRetries+1), func() (bool, string) {
		h := history(t, ns, release)
		st := getHR(t, ns, "retry").Status
		return strings.Join(h, ",") == attempts(maxRetries+1) && st.RollbackCount == maxRetries+1,
			fmt.Sprintf("%v, rollbackCount %d", h, st.RollbackCount)
	})
	// The interval is 300 ms: ten passes would have made three more attempts.
	waitPasses(t, ns, "retry", 10)
	if h := history(t, ns, release); failedRevisions(h) != maxRetries+1 || len(h) != 2*(maxRetries+1)+1 {
		t.Errorf("history after ten more passes: %v, want %d attempts", h, maxRetries+1)
	}
	hr = getHR(t, ns, "retry")
	if hr.Status.RollbackCount != maxRetries+1 {
		t.Errorf("rollbackCount after ten more passes = %d, want %d", hr.Status.RollbackCount, maxRetries+1)
	}
	if c := condition(hr, meta.ReadyCondition); !strings.HasPrefix(c, "False "+helmv1.UpgradeFailedReason) {
		t.Errorf("Ready: %s", c)
	}

	// A requested reconcile tries the same chart and values once more.
	update(t, ns, "retry", func(hr *helmv1.HelmRelease) {
		hr.Annotations = map[string]string{meta.ReconcileRequestAnnotation: "again"}
	})
	eventually(t, time.Minute, "the requested attempt rolled back", func() (bool, string) {
		h := history(t, ns, release)
		st := getHR(t, ns, "retry").Status
		return st.LastHandledReconcileAt == "again" && strings.Join(h, ",") == attempts(maxRetries+2) &&
			st.RollbackCount == maxRetries+2, fmt.Sprintf("%v, %+v", h, st)
	})
	waitPasses(t, ns, "retry", 10)
	if h := history(t, ns, release); failedRevisions(h) != maxRetries+2 {
		t.Errorf("history after the requested attempt and ten passes: %v, want %d attempts", h, maxRetries+2)
	}
}

// A failed install is not rolled back, even with rollback.enable, and not
// tried again, even with rollback.retry (which follows a rollback): the
// failed revision stays until something changes.
func TestAFailedInstallIsNotRolledBack(t *testing.T) {
	for _, retry := range []bool{false, true} {
		t.Run(fmt.Sprintf("retry=%v", retry), func(t *testing.T) {
			t.Parallel() // each waits out a timeout and ten passes
			ns := newNamespace(t)
			repo := helmtest.NewRepoServer(t)
			repo.Add(t, appChart("1.0.0"))
			hr := repoRelease(ns, "fresh", repo.URL(), "1.0.0", neverReady)
			hr.Spec.Timeout = ptrTo(int64(3))
			hr.Spec.Rollback = helmv1.Rollback{Enable: true, Retry: retry}
			phases := watchPhases(t, ns, "fresh")
			mustCreateHR(t, hr)
			waitCondition(t, ns, "fresh", helmv1.ReleasedCondition, "False "+helmv1.InstallFailedReason)
			waitPasses(t, ns, "fresh", 10)

			if h := history(t, ns, ns+"-fresh"); strings.Join(h, ",") != helm.StatusFailed {
				t.Errorf("history: %v, want the failed install alone", h)
			}
			hr = getHR(t, ns, "fresh")
			if c := condition(hr, helmv1.RolledBackCondition); c != "no "+helmv1.RolledBackCondition+" condition" {
				t.Errorf("RolledBack: %s", c)
			}
			if hr.Status.RollbackCount != 0 {
				t.Errorf("rollbackCount = %d, want 0", hr.Status.RollbackCount)
			}
			if c := condition(hr, meta.ReadyCondition); !strings.HasPrefix(c, "False "+helmv1.InstallFailedReason) {
				t.Errorf("Ready: %s", c)
			}
			if p := phases(); strings.Contains(p, string(helmv1.PhaseRollingBack)) {
				t.Errorf("phases %q include a rollback", p)
			}
		})
	}
}
