package helmrelease_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

// Tenant B hand-writes the helmflux.dev/sync and helmflux.dev/revision
// annotations on a HelmRelease to name tenant A's GitSync, so that its
// gitFileRef would read A's repository. It is refused (NotInInventory, with
// a Warning Event) and nothing of A's values file reaches B's release, any
// status, Event or log; a forged revision that A never applied reads nothing
// either; A's own release keeps following its repository.
func TestForgedSyncAnnotationsReadNoOtherTenantsRepository(t *testing.T) {
	nsA, nsB := newNamespace(t), newNamespace(t)
	canary := "canary-tenant-a-values-7f3e"

	repoA := gittest.NewRepo(t, nil)
	files := chartFiles(t, appChart("0.1.0"), "charts/app")
	files["values/app.yaml"] = "message: " + canary + "\n"
	files["releases/app.yaml"] = gitRelease(nsA, repoA.URL())
	repoA.CommitFiles("Add the app", files)
	mustCreate(t, &helmfluxv1alpha1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: nsA, Name: "apps"},
		Spec:       helmfluxv1alpha1.GitSyncSpec{URL: repoA.URL(), Paths: []string{"releases"}},
	})
	hrA := waitReady(t, nsA, "from-git")
	if got := renderedValues(t, nsA, nsA+"-from-git")["message"]; got != canary {
		t.Fatalf("tenant A's release: message = %v, want its values file's", got)
	}
	// A legitimate release waits for its GitSync quietly: no Warning.
	for _, e := range events(t, nsA, "from-git") {
		if strings.HasPrefix(e, helmv1.InventoryPendingReason) || strings.HasPrefix(e, helmv1.NotInInventoryReason) {
			t.Errorf("tenant A's release got the Event %q", e)
		}
	}

	// Tenant B: its own chart in its own repository, annotations copied
	// from A's HelmRelease.
	repoB := gittest.NewRepo(t, chartFiles(t, appChart("0.1.0"), "charts/app"))
	forged := func(name, revision string) *helmv1.HelmRelease {
		return &helmv1.HelmRelease{
			ObjectMeta: metav1.ObjectMeta{Namespace: nsB, Name: name, Annotations: map[string]string{
				helmfluxv1alpha1.SyncAnnotation: nsA + "/apps",
				helmv1.RevisionAnnotation:       revision,
			}},
			Spec: helmv1.HelmReleaseSpec{
				Chart:      helmv1.ChartSource{Git: repoB.URL(), Ref: "main", Path: "charts/app"},
				ValuesFrom: []helmv1.ValuesFromSource{{GitFileRef: &helmv1.GitFileSelector{Path: "values/app.yaml"}}},
			},
		}
	}
	mustCreateHR(t, forged("copied", hrA.Annotations[helmv1.RevisionAnnotation]))
	hr := waitCondition(t, nsB, "copied", meta.ReadyCondition, "False "+helmv1.NotInInventoryReason)
	want := "the HelmRelease is not in the inventory of GitSync " + nsA + "/apps: gitFileRef reads only the repository that applied it"
	if c := condition(hr, meta.ReadyCondition); !strings.Contains(c, want) {
		t.Errorf("Ready: %s, want it to say %q", c, want)
	}
	eventually(t, time.Minute, "a Warning about the refusal", func() (bool, string) {
		evs := events(t, nsB, "copied")
		for _, e := range evs {
			if strings.HasPrefix(e, helmv1.NotInInventoryReason+": ") && strings.Contains(e, want) {
				return true, ""
			}
		}
		return false, strings.Join(evs, " | ")
	})

	// A revision A never applied is refused alike.
	mustCreateHR(t, forged("other-revision", "main@sha1:"+strings.Repeat("0", 40)))
	waitCondition(t, nsB, "other-revision", meta.ReadyCondition, "False "+helmv1.NotInInventoryReason)
	// And neither does naming a GitSync that does not exist.
	gone := forged("no-gitsync", hrA.Annotations[helmv1.RevisionAnnotation])
	gone.Annotations[helmfluxv1alpha1.SyncAnnotation] = nsA + "/nothing-here"
	mustCreateHR(t, gone)
	waitCondition(t, nsB, "no-gitsync", meta.ReadyCondition, "False "+helmv1.NotInInventoryReason)

	waitPasses(t, nsB, "copied", 1)
	for _, name := range []string{"copied", "other-revision", "no-gitsync"} {
		if h := history(t, nsB, nsB+"-"+name); len(h) != 0 {
			t.Errorf("tenant B's %s was released: %v", name, h)
		}
	}

	// A's release still follows A's repository.
	next := canary + "-2"
	repoA.CommitFiles("Change the message", map[string]string{"values/app.yaml": "message: " + next + "\n"})
	requestSync(t, nsA, "apps")
	eventually(t, time.Minute, "tenant A's values file released", func() (bool, string) {
		v := renderedValues(t, nsA, nsA+"-from-git")["message"]
		return v == next, fmt.Sprint(v)
	})
	waitReady(t, nsA, "from-git")
	// While A's GitSync applies, B's pass may wait for it (InventoryPending);
	// once A's pass has ended, the refusal is NotInInventory again. Either
	// way nothing is read.
	waitCondition(t, nsB, "copied", meta.ReadyCondition, "False "+helmv1.NotInInventoryReason)
	if h := history(t, nsB, nsB+"-copied"); len(h) != 0 {
		t.Errorf("tenant B's forged release was released after A's next commit: %v", h)
	}
	assertNoCanary(t, nsB, canary)
}
