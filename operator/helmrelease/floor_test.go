package helmrelease_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// An install or upgrade that is its pass's only step and does not wait
// costs what Helm's own action does plus one status write (and the
// install's finalizer and the Event saying what changed): no Reconciling
// checkpoint before the action, no list of the release's records for the
// install (the watched records show there are none), one for the upgrade,
// which Helm's action reuses. Counted from the operator's own requests,
// for the objects of this namespace.
func TestAnInstallAndAnUpgradeCostTheFloor(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	const name = "floor"
	status := "/namespaces/" + ns + "/helmreleases/" + name + "/status"
	records := "LIST /api/v1/namespaces/" + ns + "/secrets"
	lists := func(from int) []string {
		var out []string
		for _, r := range requests.ReadsTo("/namespaces/" + ns + "/")[from:] {
			if r == records {
				out = append(out, r)
			}
		}
		return out
	}
	reads0, writes0 := len(requests.ReadsTo("/namespaces/"+ns+"/")), len(requests.WritesTo(status))
	mustCreateHR(t, repoRelease(ns, name, repo.URL(), "1.0.0", ""))
	hr := waitReady(t, ns, name)
	if hr.Status.ReleaseRevision != 1 || hr.Status.Phase != helmv1.PhaseSucceeded {
		t.Fatalf("after the install: revision %d, phase %s", hr.Status.ReleaseRevision, hr.Status.Phase)
	}
	if w := requests.WritesTo(status)[writes0:]; len(w) != 1 {
		t.Errorf("the install wrote the status %d times, want 1:\n%s", len(w), strings.Join(w, "\n"))
	}
	if l := lists(reads0); len(l) != 0 {
		t.Errorf("the install listed the release's records %d times, want 0", len(l))
	}

	reads0, writes0 = len(requests.ReadsTo("/namespaces/"+ns+"/")), len(requests.WritesTo(status))
	update(t, ns, name, func(hr *helmv1.HelmRelease) { hr.Spec.Values = mustValues("message: upgraded") })
	eventually(t, 2*time.Minute, "the upgrade Ready", func() (bool, string) {
		hr = getHR(t, ns, name)
		return hr.Status.ObservedGeneration == hr.Generation && hr.Status.ReleaseRevision == 2, condition(hr, meta.ReadyCondition)
	})
	if c := condition(hr, meta.ReadyCondition); !strings.HasPrefix(c, "True UpgradeSucceeded") {
		t.Errorf("Ready after the upgrade: %s", c)
	}
	for _, c := range []string{meta.ReconcilingCondition, meta.StalledCondition} {
		if got := condition(hr, c); !strings.HasPrefix(got, "no ") {
			t.Errorf("%s after the upgrade: %s", c, got)
		}
	}
	if w := requests.WritesTo(status)[writes0:]; len(w) != 1 {
		t.Errorf("the upgrade wrote the status %d times, want 1:\n%s", len(w), strings.Join(w, "\n"))
	}
	if l := lists(reads0); len(l) != 1 {
		t.Errorf("the upgrade listed the release's records %d times, want 1", len(l))
	}
	if got := renderedValues(t, ns, ns+"-"+name)["message"]; got != "upgraded" {
		t.Errorf("the upgraded release renders message %v", got)
	}
}

// An install that may take a while, here for a pre-install hook Job whose
// Pod starts after 4s, still shows Installing while it runs, without a wait
// or tests: only an action that waits for nothing skips the checkpoint.
func TestASlowInstallStillShowsInstalling(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	ch := appChart("1.0.0")
	ch.Templates["hook.yaml"] = `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-pre-install
  annotations:
    helm.sh/hook: pre-install
    helm.sh/hook-delete-policy: hook-succeeded
spec:
  backoffLimit: 0
  template:
    metadata:
      annotations:
        ` + testenv.StartAfterAnnotation + `: "4s"
    spec:
      restartPolicy: Never
      containers:
      - name: hook
        image: example.com/hook:1
`
	repo.Add(t, ch)
	phases := watchPhases(t, ns, "slow")
	mustCreateHR(t, repoRelease(ns, "slow", repo.URL(), "1.0.0", ""))
	waitReady(t, ns, "slow")
	eventually(t, 10*time.Second, "phases Installing Succeeded", func() (bool, string) {
		got := phases()
		return got == "Installing Succeeded", got
	})
}
