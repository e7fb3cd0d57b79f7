package automation_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxcd/pkg/apis/meta"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

// plainDeploy is an automated Deployment of HOST/team/NAME:1.0.0 without
// pull secrets.
func plainDeploy(ns, host, name, filter string) string {
	return testenv.AutomatedDeployment(ns, name, host+"/team/"+name+":1.0.0", filter)
}

// TestReadOnlyReportsWithoutWriting: a readOnly GitSync lists what it would
// change, in status and an Event, and the repository stays as it was.
func TestReadOnlyReportsWithoutWriting(t *testing.T) {
	ns := newNamespace(t)
	reg := registrytest.NewServer(t)
	reg.PushTags(t, "team/app", "1.0.0", "1.0.3")
	repo := gittest.NewRepo(t, map[string]string{"apps/app.yaml": plainDeploy(ns, reg.Host(), "app", "semver:~1.0")})
	before := repo.Head()
	createGitSync(t, ns, "apps", repo.URL(), func(gs *helmfluxv1alpha1.GitSync) { gs.Spec.ReadOnly = true })

	var gs *helmfluxv1alpha1.GitSync
	eventually(t, time.Minute, "the pending update reported", func() (bool, string) {
		gs = getGitSync(t, ns, "apps")
		return strings.HasPrefix(automationReady(gs), "True UpdatesPending"), automationReady(gs)
	})
	p := gs.Status.ImageAutomation.Pending
	if len(p) != 1 || p[0].From != "1.0.0" || p[0].To != "1.0.3" || p[0].Workload != ns+":deployment/app" || p[0].File != "apps/app.yaml" {
		t.Fatalf("pending %+v", p)
	}
	waitEvent(t, ns, helmfluxv1alpha1.UpdatesPendingReason, "would commit")
	// Passes that would each have committed, had the GitSync not been
	// readOnly: the second one started after the update was reported.
	testenv.WaitPasses(t, automationPasses(ns, "apps"), 2)
	if repo.RemoteHead("main").Hash.String() != before {
		t.Fatal("a readOnly GitSync pushed a commit")
	}
	if got := getGitSync(t, ns, "apps").Status.ImageAutomation.LastRevision; got != "main@sha1:"+before {
		t.Errorf("the passes started from %s, want main@sha1:%s", got, before)
	}
}

// TestBadInputIsReportedAndTheRestStillUpdates: a broken filter annotation, a
// malformed YAML file and a registry that fails each get a clear failure on
// the GitSync's status and an Event; the healthy workload is still updated.
func TestBadInputIsReportedAndTheRestStillUpdates(t *testing.T) {
	ns := newNamespace(t)
	reg := registrytest.NewServer(t)
	host := reg.Host()
	for _, r := range []string{"team/good", "team/badfilter", "team/broken"} {
		reg.PushTags(t, r, "1.0.0", "1.0.1")
	}
	reg.Fail(func(r *http.Request, _ int) (int, http.Header, string, bool) {
		if strings.Contains(r.URL.Path, "/team/broken/") {
			return http.StatusInternalServerError, nil, "registry on fire", true
		}
		return 0, nil, "", false
	})
	repo := gittest.NewRepo(t, map[string]string{
		"apps/good.yaml":      plainDeploy(ns, host, "good", "semver:~1.0"),
		"apps/badfilter.yaml": plainDeploy(ns, host, "badfilter", "regex:([unclosed"),
		"apps/broken.yaml":    plainDeploy(ns, host, "broken", "semver:~1.0"),
		"apps/zz-bad.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [oops\n",
		"apps/manual.yaml":    strings.Replace(plainDeploy(ns, host, "manual", "semver:~1.0"), `fluxcd.io/automated: "true"`, `fluxcd.io/automated: "false"`, 1),
	})
	createGitSync(t, ns, "apps", repo.URL(), nil)

	// The GitSync itself refuses the malformed file, so nothing is applied;
	// automation still works on the files it can read.
	var gs *helmfluxv1alpha1.GitSync
	eventually(t, time.Minute, "the good workload bumped", func() (bool, string) {
		s := repo.FileAt(repo.RemoteHead("main"), "apps/good.yaml")
		return strings.Contains(s, "good:1.0.1"), s
	})
	eventually(t, time.Minute, "the failures reported", func() (bool, string) {
		gs = getGitSync(t, ns, "apps")
		st := gs.Status.ImageAutomation
		return st != nil && len(st.Failures) == 3, automationReady(gs)
	})
	msgs := map[string]string{}
	for _, f := range gs.Status.ImageAutomation.Failures {
		msgs[f.Workload] += f.Message
	}
	if m := msgs[ns+":deployment/badfilter"]; !strings.Contains(m, "filter.fluxcd.io/app") {
		t.Errorf("bad filter failure %q does not name the annotation", m)
	}
	if m := msgs[ns+":deployment/broken"]; !strings.Contains(m, host+"/team/broken") {
		t.Errorf("registry failure %q does not name the image", m)
	}
	if m := msgs[""]; !strings.Contains(m, "apps/zz-bad.yaml") {
		t.Errorf("file failure %q does not name the file", m)
	}
	for _, f := range []string{"apps/badfilter.yaml", "apps/broken.yaml"} {
		if s := repo.FileAt(repo.RemoteHead("main"), f); !strings.Contains(s, ":1.0.0\n") {
			t.Errorf("%s changed:\n%s", f, s)
		}
	}
	waitEvent(t, ns, helmfluxv1alpha1.ScanFailedReason, "")
	// Only automated workloads' images are scanned.
	for _, r := range reg.Requests() {
		if strings.Contains(r.Path, "/team/manual/") {
			t.Fatalf("the image of a workload that is not automated was scanned: %s", r.Path)
		}
	}
	if gs.Status.ImageAutomation.AutomatedImages != 3 {
		t.Errorf("automatedImages = %d, want 3", gs.Status.ImageAutomation.AutomatedImages)
	}
}

// waitEvent waits for an Event with reason whose note contains text.
func waitEvent(t *testing.T, ns, reason, text string) {
	t.Helper()
	eventually(t, time.Minute, "a "+reason+" Event", func() (bool, string) {
		list := &eventsv1.EventList{}
		if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.Reason == reason && strings.Contains(e.Note, text) {
				return true, ""
			}
			seen = append(seen, e.Reason+": "+e.Note)
		}
		return false, strings.Join(seen, " | ")
	})
}

// TestNothingIsBuiltOnAnUnverifiedHead: with signature verification on, a
// signed automation commit must not vouch for an unsigned commit below it,
// so automation leaves an unverified head alone.
func TestNothingIsBuiltOnAnUnverifiedHead(t *testing.T) {
	ns := newNamespace(t)
	reg := registrytest.NewServer(t)
	reg.PushTags(t, "team/app", "1.0.0", "1.0.1")
	key := gittest.NewOpenPGPKey(t, "trusted")
	repo := gittest.NewRepo(t, map[string]string{"apps/app.yaml": plainDeploy(ns, reg.Host(), "app", "semver:~1.0")})
	repo.CommitFiles("unsigned", map[string]string{"README.md": "not signed\n"})
	before := repo.Head()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "keys"}, StringData: map[string]string{"trusted.asc": key.PublicArmored}}
	if err := k8s.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	createGitSync(t, ns, "apps", repo.URL(), func(gs *helmfluxv1alpha1.GitSync) {
		gs.Spec.Verify = &helmfluxv1alpha1.GitVerification{Mode: helmfluxv1alpha1.VerifyHead, SecretRef: &meta.LocalObjectReference{Name: "keys"}}
	})
	eventually(t, time.Minute, "the refusal reported", func() (bool, string) {
		gs := getGitSync(t, ns, "apps")
		return strings.Contains(automationReady(gs), "not verified"), automationReady(gs)
	})
	if repo.RemoteHead("main").Hash.String() != before {
		t.Fatal("automation pushed a commit on an unverified head")
	}
}
