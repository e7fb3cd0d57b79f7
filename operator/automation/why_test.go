package automation_test

import (
	"strings"
	"testing"
	"time"

	"net/http"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

// TestStatusSaysWhyAnImageIsNotUpdating: status.imageAutomation.containers
// answers "why is my image not updating?" for each automated container —
// a newer tag outside the filter, a locked workload, a registry that fails
// (naming its host) — beside one that is up to date.
func TestStatusSaysWhyAnImageIsNotUpdating(t *testing.T) {
	ns := newNamespace(t)
	reg := registrytest.NewServer(t)
	host := reg.Host()
	reg.PushTags(t, "team/filtered", "1.0.0", "1.0.1", "2.0.0")
	reg.PushTags(t, "team/locked", "1.0.0", "1.0.1")
	reg.PushTags(t, "team/broken", "1.0.0")
	reg.Fail(func(r *http.Request, _ int) (int, http.Header, string, bool) {
		if strings.Contains(r.URL.Path, "/team/broken/") {
			return http.StatusInternalServerError, nil, "registry on fire", true
		}
		return 0, nil, "", false
	})
	locked := strings.Replace(plainDeploy(ns, host, "locked", "semver:~1.0"),
		"fluxcd.io/automated: \"true\"", "fluxcd.io/automated: \"true\"\n    fluxcd.io/locked: \"true\"\n    fluxcd.io/locked_msg: waiting for QA", 1)
	if locked == plainDeploy(ns, host, "locked", "semver:~1.0") {
		t.Fatal("the lock annotation was not added to the manifest")
	}
	repo := gittest.NewRepo(t, map[string]string{
		"apps/filtered.yaml": plainDeploy(ns, host, "filtered", "semver:~1.0"),
		"apps/locked.yaml":   locked,
		"apps/broken.yaml":   plainDeploy(ns, host, "broken", "semver:~1.0"),
	})
	createGitSync(t, ns, "apps", repo.URL(), nil)

	byName := map[string]helmfluxv1alpha1.ContainerImage{} // by workload name
	eventually(t, time.Minute, "a report for each of the three containers, with 1.0.1 written", func() (bool, string) {
		gs := getGitSync(t, ns, "apps")
		if gs.Status.ImageAutomation == nil {
			return false, "no status"
		}
		clear(byName)
		for _, c := range gs.Status.ImageAutomation.Containers {
			byName[strings.TrimPrefix(c.Workload, ns+":deployment/")] = c
		}
		return len(byName) == 3 && byName["filtered"].Tag == "1.0.1", automationReady(gs)
	})
	f := byName["filtered"]
	if f.Workload != ns+":deployment/filtered" || f.Image != host+"/team/filtered" || f.Best != "1.0.1" ||
		len(f.PassedOver) != 1 || f.PassedOver[0].Tag != "2.0.0" || f.PassedOver[0].Reason != helmfluxv1alpha1.PassedFilter ||
		!strings.Contains(f.PassedOver[0].Message, "semver:~1.0") {
		t.Errorf("filtered: %+v, want 1.0.1 best and 2.0.0 passed over by the filter semver:~1.0", f)
	}
	l := byName["locked"]
	if l.Tag != "1.0.0" || len(l.PassedOver) != 1 || l.PassedOver[0].Reason != helmfluxv1alpha1.PassedLocked ||
		!strings.Contains(l.PassedOver[0].Message, "waiting for QA") {
		t.Errorf("locked: %+v, want it reported locked with its message", l)
	}
	b := byName["broken"]
	if len(b.PassedOver) != 1 || b.PassedOver[0].Reason != helmfluxv1alpha1.PassedRegistryError ||
		!strings.Contains(b.PassedOver[0].Message, host) {
		t.Errorf("broken: %+v, want a registry error naming %s", b, host)
	}
}
