package helmrelease_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// injectedTemplate is appChart's ConfigMap with one more key: what an
// unsigned commit that changes only the chart's templates adds.
const injectedTemplate = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-values
data:
  message: {{ .Values.message | quote }}
  values.json: {{ toJson .Values | quote }}
  injected: "yes"
`

// injected reports whether a release's ConfigMap shows injectedTemplate.
func injected(t *testing.T, ns, release string) bool {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(context.Background(), clientKey(ns, release+"-values"), cm); err != nil {
		t.Fatal(err)
	}
	_, ok := cm.Data["injected"]
	return ok
}

// Issue 15: a GitSync with verify refuses unsigned commits, and a git chart
// from its repository is held to the same rule. A signed commit installs the
// chart; an unsigned commit that changes only the chart's templates (which
// the GitSync refuses to apply) is refused by the HelmRelease too
// (ChartVerificationFailed on ChartFetched and Ready, a Warning Event) and
// the release stays as it was; a signed commit on top recovers. A
// HelmRelease in the same namespace whose git chart comes from an unrelated
// repository follows its unsigned commits all along.
func TestAnUnsignedChartCommitOfAVerifiedRepositoryIsRefused(t *testing.T) {
	ns := newNamespace(t)
	key := gittest.NewOpenPGPKey(t, "release manager")
	mustCreate(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "trusted-keys"},
		Data:       map[string][]byte{"manager.asc": []byte(key.PublicArmored)},
	})
	repo := gittest.NewRepo(t, nil)
	files := chartFiles(t, appChart("0.1.0"), "charts/app")
	files["values/app.yaml"] = "message: signed\n"
	files["releases/app.yaml"] = gitRelease(ns, repo.URL())
	repo.CommitFiles("Add the app", files, gittest.SignedBy(key))
	mustCreate(t, &helmfluxv1alpha1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apps"},
		Spec: helmfluxv1alpha1.GitSyncSpec{
			URL: repo.URL(), Paths: []string{"releases"},
			Verify: &helmfluxv1alpha1.GitVerification{
				Mode: helmfluxv1alpha1.VerifyHead, SecretRef: &meta.LocalObjectReference{Name: "trusted-keys"},
			},
		},
	})
	release := ns + "-from-git"
	hr := waitReady(t, ns, "from-git")
	if c := condition(hr, helmv1.ChartFetchedCondition); !strings.HasPrefix(c, "True ") {
		t.Errorf("ChartFetched of the signed chart: %s", c)
	}
	if injected(t, ns, release) {
		t.Fatal("the signed chart already shows the injected key")
	}

	// Another tenant app in the namespace, its chart from an unrelated
	// repository that nobody signs.
	other := gittest.NewRepo(t, chartFiles(t, appChart("0.1.0"), "charts/app"))
	mustCreateHR(t, &helmv1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other"},
		Spec:       helmv1.HelmReleaseSpec{Chart: helmv1.ChartSource{Git: other.URL(), Ref: "main", Path: "charts/app"}},
	})
	waitReady(t, ns, "other")

	// The attack: an unsigned commit that changes only the chart.
	unsigned := repo.CommitFiles("Change the chart", map[string]string{"charts/app/templates/configmap.yaml": injectedTemplate})
	hr = waitCondition(t, ns, "from-git", helmv1.ChartFetchedCondition, "False "+helmv1.ChartVerificationFailedReason)
	want := "git chart commit not verified for GitSync " + ns + "/apps: commit " + unsigned + " is not verified: commit is not signed"
	if c := condition(hr, helmv1.ChartFetchedCondition); !strings.Contains(c, want) {
		t.Errorf("ChartFetched: %s, want it to say %q", c, want)
	}
	hr = waitCondition(t, ns, "from-git", meta.ReadyCondition, "False "+helmv1.ChartVerificationFailedReason)
	if c := condition(hr, meta.ReadyCondition); !strings.Contains(c, want) {
		t.Errorf("Ready: %s, want it to say %q", c, want)
	}
	eventually(t, time.Minute, "a Warning about the unsigned chart", func() (bool, string) {
		evs := events(t, ns, "from-git")
		return containsAny(evs, helmv1.ChartVerificationFailedReason+": ") && containsAny(evs, want), strings.Join(evs, " | ")
	})
	// The other app follows its unverified repository meanwhile.
	other.CommitFiles("Change the chart", map[string]string{"charts/app/templates/configmap.yaml": injectedTemplate})
	eventually(t, time.Minute, "the unrelated repository's chart released", func() (bool, string) {
		h := history(t, ns, ns+"-other")
		return len(h) == 2 && injected(t, ns, ns+"-other"), fmt.Sprint(h)
	})
	waitReady(t, ns, "other")
	waitPasses(t, ns, "from-git", 3)
	if h := history(t, ns, release); len(h) != 1 || injected(t, ns, release) {
		t.Errorf("the unsigned chart was released: history %v", h)
	}
	if c := condition(getHR(t, ns, "from-git"), meta.ReadyCondition); !strings.HasPrefix(c, "False "+helmv1.ChartVerificationFailedReason) {
		t.Errorf("Ready after more passes: %s", c)
	}

	// A signed commit on top: the GitSync applies it ("head" checks the
	// head alone) and so does the HelmRelease.
	signed := repo.CommitFiles("Sign off the chart", map[string]string{"values/app.yaml": "message: signed again\n"}, gittest.SignedBy(key))
	requestSync(t, ns, "apps")
	eventually(t, time.Minute, "the signed chart released", func() (bool, string) {
		v := renderedValues(t, ns, release)["message"]
		return v == "signed again" && injected(t, ns, release), fmt.Sprint(v)
	})
	hr = waitReady(t, ns, "from-git")
	// One upgrade, or two when the chart's new head is seen before the
	// GitSync stamps the new values revision: both from the signed commit.
	if h := history(t, ns, release); !strings.HasSuffix(hr.Status.Revision, signed) || len(h) < 2 || len(h) > 3 {
		t.Errorf("after the signed commit: revision %s, history %v", hr.Status.Revision, h)
	}
}

// A GitSync with verify that applies a HelmRelease into another namespace
// holds its git chart to its rule too, trusted through its inventory (the
// helmflux.dev/sync annotation alone proves nothing), with its keys read
// from its own namespace, and whatever the spelling of the URL (here a
// trailing slash).
func TestAGitChartIsVerifiedAsTheGitSyncThatAppliedIt(t *testing.T) {
	nsSync, nsApp := newNamespace(t), newNamespace(t)
	key := gittest.NewOpenPGPKey(t, "release manager")
	mustCreate(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: nsSync, Name: "trusted-keys"},
		Data:       map[string][]byte{"manager.asc": []byte(key.PublicArmored)},
	})
	repo := gittest.NewRepo(t, nil)
	files := chartFiles(t, appChart("0.1.0"), "charts/app")
	files["values/app.yaml"] = "message: signed\n"
	files["releases/app.yaml"] = gitRelease(nsApp, repo.URL()+"/")
	repo.CommitFiles("Add the app", files, gittest.SignedBy(key))
	mustCreate(t, &helmfluxv1alpha1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: nsSync, Name: "apps"},
		Spec: helmfluxv1alpha1.GitSyncSpec{
			URL: repo.URL(), Paths: []string{"releases"},
			Verify: &helmfluxv1alpha1.GitVerification{
				Mode: helmfluxv1alpha1.VerifyAll, SecretRef: &meta.LocalObjectReference{Name: "trusted-keys"},
			},
		},
	})
	release := nsApp + "-from-git"
	waitReady(t, nsApp, "from-git")

	unsigned := repo.CommitFiles("Change the chart", map[string]string{"charts/app/templates/configmap.yaml": injectedTemplate})
	hr := waitCondition(t, nsApp, "from-git", meta.ReadyCondition, "False "+helmv1.ChartVerificationFailedReason)
	want := "for GitSync " + nsSync + "/apps: commit " + unsigned + " is not verified: commit is not signed"
	if c := condition(hr, meta.ReadyCondition); !strings.Contains(c, want) {
		t.Errorf("Ready: %s, want it to say %q", c, want)
	}
	// "all": a signed commit on top does not make the unsigned one pass.
	// Each pass after this commit resolves it.
	repo.CommitFiles("Sign off the chart", map[string]string{"README.md": "signed\n"}, gittest.SignedBy(key))
	waitPasses(t, nsApp, "from-git", 3)
	if h := history(t, nsApp, release); len(h) != 1 || injected(t, nsApp, release) {
		t.Errorf("the unsigned chart was released: history %v", h)
	}
	if c := condition(getHR(t, nsApp, "from-git"), meta.ReadyCondition); !strings.HasPrefix(c, "False "+helmv1.ChartVerificationFailedReason) || !strings.Contains(c, want) {
		t.Errorf("Ready after the signed commit on top: %s, want it to say %q", c, want)
	}
}

// A gitFileRef of a HelmRelease applied by a GitSync with verify reads at
// the revision the helmflux.dev/revision annotation names only when it is
// the one the GitSync applied or is signed as it demands: someone who may
// edit the HelmRelease, pointing the annotation at an unsigned commit the
// GitSync refused, gets ValuesVerificationFailed and the release keeps its
// values; pointing it back recovers.
func TestAGitFileRefAtARefusedCommitIsRefused(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	key := gittest.NewOpenPGPKey(t, "release manager")
	mustCreate(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "trusted-keys"},
		Data:       map[string][]byte{"manager.asc": []byte(key.PublicArmored)},
	})
	charts := helmtest.NewRepoServer(t)
	charts.Add(t, appChart("1.0.0"))
	repo := gittest.NewRepo(t, nil)
	repo.CommitFiles("Add the app", map[string]string{
		"values/app.yaml": "message: signed\n",
		"releases/app.yaml": fmt.Sprintf(`apiVersion: helm.fluxcd.io/v1
kind: HelmRelease
metadata:
  name: vals
  namespace: %s
spec:
  chart:
    repository: %s
    name: app
    version: 1.0.0
  valuesFrom:
  - gitFileRef:
      path: values/app.yaml
`, ns, charts.URL()),
	}, gittest.SignedBy(key))
	mustCreate(t, &helmfluxv1alpha1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apps"},
		Spec: helmfluxv1alpha1.GitSyncSpec{
			URL: repo.URL(), Paths: []string{"releases"},
			Verify: &helmfluxv1alpha1.GitVerification{
				Mode: helmfluxv1alpha1.VerifyHead, SecretRef: &meta.LocalObjectReference{Name: "trusted-keys"},
			},
		},
	})
	release := ns + "-vals"
	waitReady(t, ns, "vals")
	if v := renderedValues(t, ns, release)["message"]; v != "signed" {
		t.Fatalf("message = %v, want signed", v)
	}
	// An unsigned commit changes the values file; the GitSync fetches and
	// refuses it, then stops applying (so it rewrites no annotation while
	// the test writes one).
	unsigned := repo.CommitFiles("Change the values", map[string]string{"values/app.yaml": "message: forged\n"})
	requestSync(t, ns, "apps")
	gs := &helmfluxv1alpha1.GitSync{}
	eventually(t, time.Minute, "the GitSync refuses the unsigned commit", func() (bool, string) {
		if err := k8s.Get(ctx, clientKey(ns, "apps"), gs); err != nil {
			return false, err.Error()
		}
		for _, c := range gs.Status.Conditions {
			if c.Reason == helmfluxv1alpha1.VerificationFailedReason && strings.Contains(c.Message, unsigned) {
				return true, c.Message
			}
		}
		return false, fmt.Sprint(gs.Status.Conditions)
	})
	gs.Spec.Suspend = true
	if err := k8s.Update(ctx, gs); err != nil {
		t.Fatal(err)
	}
	applied := getHR(t, ns, "vals").Annotations[helmv1.RevisionAnnotation]
	update(t, ns, "vals", func(hr *helmv1.HelmRelease) {
		hr.Annotations[helmv1.RevisionAnnotation] = "main@sha1:" + unsigned
	})
	hr := waitCondition(t, ns, "vals", meta.ReadyCondition, "False "+helmv1.ValuesVerificationFailedReason)
	want := "revision main@sha1:" + unsigned + " (annotation " + helmv1.RevisionAnnotation + ") is not the one GitSync " + ns + "/apps applied"
	if c := condition(hr, meta.ReadyCondition); !strings.Contains(c, want) || !strings.Contains(c, "commit is not signed") {
		t.Errorf("Ready: %s, want it to say %q", c, want)
	}
	waitPasses(t, ns, "vals", 3)
	if v := renderedValues(t, ns, release)["message"]; v != "signed" {
		t.Errorf("message after the forged annotation = %v, want signed", v)
	}
	if h := history(t, ns, release); len(h) != 1 {
		t.Errorf("history: %v", h)
	}
	update(t, ns, "vals", func(hr *helmv1.HelmRelease) { hr.Annotations[helmv1.RevisionAnnotation] = applied })
	waitReady(t, ns, "vals")
}
