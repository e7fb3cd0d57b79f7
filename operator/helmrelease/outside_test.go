package helmrelease_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"helm.sh/helm/v3/pkg/chart/loader"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/pkg/helm"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// TestARequestedReconcileAtCreationActsOnce: the requestedAt token of an
// object created with the annotation is recorded on the first pass (it was
// lost to the finalizer patch, and the release upgraded a second time).
func TestARequestedReconcileAtCreationActsOnce(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	hr := repoRelease(ns, "asked", repo.URL(), "1.0.0", "")
	hr.Annotations = map[string]string{meta.ReconcileRequestAnnotation: "first"}
	mustCreateHR(t, hr)
	if got := waitReady(t, ns, "asked").Status.LastHandledReconcileAt; got != "first" {
		t.Errorf("lastHandledReconcileAt = %q, want first", got)
	}
	waitPasses(t, ns, "asked", 10)
	if h := history(t, ns, ns+"-asked"); len(h) != 1 {
		t.Errorf("history after ten passes: %v, want one revision", h)
	}

	// A new token is one more upgrade, once.
	update(t, ns, "asked", func(hr *helmv1.HelmRelease) { hr.Annotations[meta.ReconcileRequestAnnotation] = "second" })
	eventually(t, time.Minute, "the second request handled", func() (bool, string) {
		st := getHR(t, ns, "asked").Status
		return st.LastHandledReconcileAt == "second" && st.ReleaseRevision == 2, fmt.Sprintf("%+v", st)
	})
	waitPasses(t, ns, "asked", 10)
	if h := history(t, ns, ns+"-asked"); len(h) != 2 {
		t.Errorf("history after a second request and ten passes: %v, want two revisions", h)
	}
}

// TestAReleaseChangedWithHelmIsBroughtBack: a person's `helm rollback`,
// `helm upgrade` and `helm uninstall` (the Helm SDK's actions, as the CLI
// runs them) are noticed and undone, with an Event saying so.
func TestAReleaseChangedWithHelmIsBroughtBack(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	repo.Add(t, appChart("1.1.0"))
	mustCreateHR(t, repoRelease(ns, "web", repo.URL(), "1.0.0", "message: from-git"))
	waitReady(t, ns, "web")
	update(t, ns, "web", func(hr *helmv1.HelmRelease) { hr.Spec.Chart.Version = "1.1.0" })
	eventually(t, time.Minute, "upgraded to 1.1.0", func() (bool, string) {
		st := getHR(t, ns, "web").Status
		return st.ReleaseRevision == 2 && st.Revision == "1.1.0", fmt.Sprintf("%+v", st)
	})
	release := ns + "-web"
	ctx := context.Background()

	// helm rollback web 1: revision 3 runs chart 1.0.0.
	if err := runner.Rollback(ctx, ns, release, helm.RollbackOptions{Version: 1, Timeout: time.Minute, MaxHistory: 10}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, ns, release, 4, "1.1.0", "from-git")
	waitEvent(t, ns, "web", helmv1.ExternalChangeReason, "revision 3 (Rollback to 1), chart app 1.0.0")

	// helm upgrade --set message=by-hand: Helm keeps helmflux's labels.
	tgz, err := appChart("1.1.0").Package()
	if err != nil {
		t.Fatal(err)
	}
	ch, err := loader.LoadArchive(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runner.Upgrade(ctx, helm.Request{Namespace: ns, Name: release, Chart: ch,
		Values: map[string]any{"message": "by-hand"}, Timeout: time.Minute, MaxHistory: 10}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, ns, release, 6, "1.1.0", "from-git")
	waitEvent(t, ns, "web", helmv1.ExternalChangeReason, "revision 5 (Upgrade complete)")

	// helm uninstall: installed again.
	if err := runner.Uninstall(ctx, ns, release, time.Minute, false); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, ns, release, 1, "1.1.0", "from-git")
	waitEvent(t, ns, "web", helmv1.ExternalChangeReason, "was uninstalled")
	if hr := waitReady(t, ns, "web"); hr.Status.ReleaseRevision != 1 || hr.Status.Revision != "1.1.0" {
		t.Errorf("status after the reinstall: %+v", hr.Status)
	}
}

// waitRunning waits until the release's newest revision is revision, deployed
// from chart app at version with the message value, and the HelmRelease's
// status says so.
func waitRunning(t *testing.T, ns, release string, revision int, version, message string) {
	t.Helper()
	eventually(t, time.Minute, fmt.Sprintf("%s revision %d running %s", release, revision, version), func() (bool, string) {
		last, err := runner.Last(context.Background(), ns, release)
		if err != nil || last == nil {
			return false, fmt.Sprint(last, err)
		}
		hr := getHR(t, ns, strings.TrimPrefix(release, ns+"-"))
		ok := last.Version == revision && last.Status == helm.StatusDeployed && last.ChartVersion == version &&
			hr.Status.ReleaseRevision == revision
		return ok, fmt.Sprintf("revision %d %s chart %s; status revision %d", last.Version, last.Status, last.ChartVersion, hr.Status.ReleaseRevision)
	})
	if got := renderedValues(t, ns, release)["message"]; got != message {
		t.Errorf("message = %v, want %s", got, message)
	}
}

// waitEvent waits for an Event about the object with reason and a note
// containing note.
func waitEvent(t *testing.T, ns, name, reason, note string) {
	t.Helper()
	eventually(t, 30*time.Second, "Event "+reason+": "+note, func() (bool, string) {
		evs := events(t, ns, name)
		for _, e := range evs {
			if strings.HasPrefix(e, reason+": ") && strings.Contains(e, note) {
				return true, e
			}
		}
		return false, strings.Join(evs, "\n")
	})
}
