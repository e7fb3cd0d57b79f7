package gitsync_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

// A pass over a revision that is applied, with nothing changed in git or in
// the cluster, writes nothing: no apply, no status, no Event. Counted from
// the operator's own requests, for the objects of this namespace.
func TestAnUnchangedPassMakesNoWrites(t *testing.T) {
	ns := newNamespace(t)
	repo := gittest.NewRepo(t, map[string]string{
		"settings.yaml": configMap(ns, "blue"),
		"web.yaml":      deployment(ns, 2),
	})
	createGitSync(t, ns, "steady", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Prune: true,
		Interval: metav1.Duration{Duration: 300 * time.Millisecond}})
	waitApplied(t, ns, "steady", repo.Head())
	waitPasses(t, ns, "steady", 3) // the first pass's Events are written by now

	scope := "/namespaces/" + ns + "/"
	before := len(requests.WritesTo(scope))
	waitPasses(t, ns, "steady", 10)
	if w := requests.WritesTo(scope)[before:]; len(w) > 0 {
		t.Errorf("ten unchanged passes made %d writes:\n%s", len(w), strings.Join(w, "\n"))
	}
	if r := ready(getGitSync(t, ns, "steady")); !strings.HasPrefix(r, "True") {
		t.Errorf("Ready: %s", r)
	}
}
