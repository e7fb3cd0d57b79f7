package gitsync_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

// suspend: true stops syncing: the passes say Suspended and neither fetch
// nor apply, a requested pass included; set back to false, the GitSync
// applies what it missed. Suspending records one Warning event.
func TestSuspendStopsSyncingUntilResumed(t *testing.T) {
	ns := newNamespace(t)
	repo := gittest.NewRepo(t, map[string]string{"settings.yaml": configMap(ns, "blue")})
	createGitSync(t, ns, "paused", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Suspend: true})
	eventually(t, "the GitSync suspended", func() (bool, string) {
		r := ready(getGitSync(t, ns, "paused"))
		return strings.HasPrefix(r, "False "+helmfluxv1alpha1.SuspendedReason), r
	})
	gs := waitHandled(t, ns, "paused", requestReconcile(t, ns, "paused"))
	if r := ready(gs); !strings.HasPrefix(r, "False "+helmfluxv1alpha1.SuspendedReason) {
		t.Errorf("Ready after a requested pass: %s", r)
	}
	if gs.Status.LastFetchedRevision != "" || gs.Status.LastAppliedRevision != "" {
		t.Errorf("a suspended GitSync fetched %q and applied %q", gs.Status.LastFetchedRevision, gs.Status.LastAppliedRevision)
	}
	if color := settingsColor(t, ns); color != "" {
		t.Errorf("a suspended GitSync applied the ConfigMap (color %q)", color)
	}

	setSuspend(t, ns, "paused", false)
	waitApplied(t, ns, "paused", repo.Head())
	if color := settingsColor(t, ns); color != "blue" {
		t.Errorf("color after resuming = %q, want blue", color)
	}
	// Written before the Applied event of the resumed pass, the Warning of
	// the requested pass would be there by now.
	assertEvent(t, ns, "ConfigMap/"+ns+"/settings created")
	if n := suspendedEvents(t, ns, "paused"); n != 1 {
		t.Errorf("%d Suspended events for one suspension, want 1", n)
	}

	setSuspend(t, ns, "paused", true)
	eventually(t, "the GitSync suspended again", func() (bool, string) {
		r := ready(getGitSync(t, ns, "paused"))
		return strings.HasPrefix(r, "False "+helmfluxv1alpha1.SuspendedReason), r
	})
	applied := repo.Head()
	repo.Write(map[string]string{"settings.yaml": configMap(ns, "red")})
	red := repo.Commit("red")
	gs = waitHandled(t, ns, "paused", requestReconcile(t, ns, "paused"))
	if strings.HasSuffix(gs.Status.LastFetchedRevision, red) || !strings.HasSuffix(gs.Status.LastAppliedRevision, applied) {
		t.Errorf("a suspended GitSync moved: fetched %s, applied %s", gs.Status.LastFetchedRevision, gs.Status.LastAppliedRevision)
	}
	if color := settingsColor(t, ns); color != "blue" {
		t.Errorf("a suspended GitSync applied a new commit: color %q", color)
	}

	setSuspend(t, ns, "paused", false)
	waitApplied(t, ns, "paused", red)
	if color := settingsColor(t, ns); color != "red" {
		t.Errorf("color after resuming again = %q, want red", color)
	}
}

func setSuspend(t *testing.T, ns, name string, suspend bool) {
	t.Helper()
	gs := getGitSync(t, ns, name)
	patch := client.MergeFrom(gs.DeepCopy())
	gs.Spec.Suspend = suspend
	if err := k8s.Patch(context.Background(), gs, patch); err != nil {
		t.Fatal(err)
	}
}

// settingsColor returns the color of the ConfigMap settings, "" when there is none.
func settingsColor(t *testing.T, ns string) string {
	t.Helper()
	cm := &corev1.ConfigMap{}
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "settings"}, cm)
	if apierrors.IsNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return cm.Data["color"]
}

// suspendedEvents counts the Suspended events about a GitSync, repeats of
// one event (an event series) included.
func suspendedEvents(t *testing.T, ns, name string) int {
	t.Helper()
	evs := &eventsv1.EventList{}
	if err := k8s.List(context.Background(), evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs.Items {
		if e.Regarding.Name != name || e.Reason != helmfluxv1alpha1.SuspendedReason {
			continue
		}
		if e.Series != nil {
			n += int(e.Series.Count)
		} else {
			n++
		}
	}
	return n
}
