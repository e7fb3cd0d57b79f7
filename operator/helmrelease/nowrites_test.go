package helmrelease_test

import (
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// A pass over a release that runs what its HelmRelease declares writes
// nothing: no Helm revision, no status, no Event, and with drift detection
// on no correction either. Counted from the operator's own requests, for
// the objects of this namespace.
func TestAnUnchangedPassMakesNoWrites(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	mustCreateHR(t, repoRelease(ns, "plain", repo.URL(), "1.0.0", ""))
	drifting := repoRelease(ns, "drift", repo.URL(), "1.0.0", "")
	drifting.Spec.DriftDetection = &helmv1.DriftDetection{Mode: helmv1.DriftDetectionEnabled}
	mustCreateHR(t, drifting)
	names := []string{"plain", "drift"}
	for _, name := range names {
		waitReady(t, ns, name)
		waitPasses(t, ns, name, 3) // the first passes' Events are written by now
	}

	scope := "/namespaces/" + ns + "/"
	before := len(requests.WritesTo(scope))
	for _, name := range names {
		waitPasses(t, ns, name, 10)
	}
	if w := requests.WritesTo(scope)[before:]; len(w) > 0 {
		t.Errorf("ten unchanged passes over each release made %d writes:\n%s", len(w), strings.Join(w, "\n"))
	}
	for _, name := range names {
		if c := condition(getHR(t, ns, name), meta.ReadyCondition); !strings.HasPrefix(c, "True") {
			t.Errorf("%s Ready: %s", name, c)
		}
	}
}
