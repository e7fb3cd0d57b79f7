package helmrelease_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// chartFiles returns a chart's files keyed by their path under dir.
func chartFiles(t *testing.T, c helmtest.Chart, dir string) map[string]string {
	t.Helper()
	tmp := t.TempDir()
	if err := c.WriteDir(tmp); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	err := filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p) // #nosec G304 -- the test's own temp dir
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tmp, p)
		out[filepath.ToSlash(filepath.Join(dir, rel))] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// gitRelease is a HelmRelease, as committed to git, whose chart and values
// file live in the same repository.
func gitRelease(ns, repoURL string) string {
	return fmt.Sprintf(`apiVersion: helm.fluxcd.io/v1
kind: HelmRelease
metadata:
  name: from-git
  namespace: %s
spec:
  chart:
    git: %s
    ref: main
    path: charts/app
  valuesFrom:
  - gitFileRef:
      path: values/app.yaml
  values:
    replicaCount: 1
`, ns, repoURL)
}

func TestGitChartAndValuesFileFollowTheCommitThatDeliveredThem(t *testing.T) {
	ns := newNamespace(t)
	repo := gittest.NewRepo(t, nil)
	files := chartFiles(t, appChart("0.1.0"), "charts/app")
	files["values/app.yaml"] = "message: first\n"
	files["releases/app.yaml"] = gitRelease(ns, repo.URL())
	repo.CommitFiles("Add the app", files)

	gs := &helmfluxv1alpha1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apps"},
		Spec:       helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Paths: []string{"releases"}},
	}
	mustCreate(t, gs)
	hr := waitReady(t, ns, "from-git")
	release := ns + "-from-git"
	if got := renderedValues(t, ns, release)["message"]; got != "first" {
		t.Errorf("message = %v, want first", got)
	}
	if !strings.HasPrefix(hr.Status.Revision, "main@sha1:") || !strings.HasPrefix(hr.Status.ChartDigest, "sha256:") {
		t.Errorf("status: %+v", hr.Status)
	}

	// A commit that changes only the values file reaches the release.
	head := repo.CommitFiles("Change the message", map[string]string{"values/app.yaml": "message: second\n"})
	requestSync(t, ns, "apps")
	eventually(t, time.Minute, "the values file released", func() (bool, string) {
		v := renderedValues(t, ns, release)["message"]
		return v == "second", fmt.Sprint(v)
	})
	hr = waitReady(t, ns, "from-git")
	if !strings.HasSuffix(hr.Annotations[helmv1.RevisionAnnotation], head) {
		t.Errorf("revision annotation %q, want commit %s", hr.Annotations[helmv1.RevisionAnnotation], head)
	}
	if h := history(t, ns, release); len(h) != 2 {
		t.Errorf("history: %v", h)
	}

	// So does a commit that changes the inline values of the HelmRelease.
	repo.CommitFiles("Scale the app", map[string]string{
		"releases/app.yaml": strings.Replace(gitRelease(ns, repo.URL()), "replicaCount: 1", "replicaCount: 2", 1),
	})
	requestSync(t, ns, "apps")
	eventually(t, time.Minute, "the inline values released", func() (bool, string) {
		r := *deployment(t, ns, release).Spec.Replicas
		return r == 2, fmt.Sprint(r)
	})
	if h := history(t, ns, release); len(h) != 3 {
		t.Errorf("history: %v", h)
	}

	// A commit that touches neither chart nor values makes no new revision:
	// once the GitSync applied it and stamped the HelmRelease with it, the
	// HelmRelease's passes over that revision change nothing.
	unrelated := repo.CommitFiles("Unrelated", map[string]string{"README.md": "hello\n"})
	requestSync(t, ns, "apps")
	eventually(t, time.Minute, "the unrelated commit applied and delivered", func() (bool, string) {
		gs := &helmfluxv1alpha1.GitSync{}
		if err := k8s.Get(context.Background(), clientKey(ns, "apps"), gs); err != nil {
			return false, err.Error()
		}
		rev := getHR(t, ns, "from-git").Annotations[helmv1.RevisionAnnotation]
		return strings.HasSuffix(gs.Status.LastAppliedRevision, unrelated) && strings.HasSuffix(rev, unrelated),
			gs.Status.LastAppliedRevision + "; HelmRelease at " + rev
	})
	waitPasses(t, ns, "from-git", 5)
	if h := history(t, ns, release); len(h) != 3 {
		t.Errorf("an unrelated commit made a revision: %v", h)
	}
	if hr := waitReady(t, ns, "from-git"); hr.Status.ReleaseRevision != 3 {
		t.Errorf("releaseRevision after the unrelated commit = %d, want 3", hr.Status.ReleaseRevision)
	}

	// A values path that leaves the repository is refused.
	repo.CommitFiles("Escape", map[string]string{
		"releases/app.yaml": strings.Replace(gitRelease(ns, repo.URL()), "values/app.yaml", "../../../etc/passwd", 1),
	})
	requestSync(t, ns, "apps")
	hr = waitCondition(t, ns, "from-git", meta.ReadyCondition, "False "+helmv1.InvalidSpecReason)
	if c := condition(hr, meta.ReadyCondition); !strings.Contains(c, `gitFileRef ../../../etc/passwd: path "../../../etc/passwd" leaves its root`) {
		t.Errorf("Ready: %s", c)
	}
}

// requestSync asks the GitSync for a pass at once, as `helmflux sync` does.
func requestSync(t *testing.T, ns, name string) {
	t.Helper()
	gs := &helmfluxv1alpha1.GitSync{}
	if err := k8s.Get(context.Background(), clientKey(ns, name), gs); err != nil {
		t.Fatal(err)
	}
	if gs.Annotations == nil {
		gs.Annotations = map[string]string{}
	}
	gs.Annotations[meta.ReconcileRequestAnnotation] = time.Now().Format(time.RFC3339Nano)
	if err := k8s.Update(context.Background(), gs); err != nil {
		t.Fatal(err)
	}
}

// chart.ref names a branch or, when no branch has that name, a tag, as the
// Helm Operator documented: a chart pinned to a tag installs the tagged
// commit, not the branch that moved on.
func TestAGitChartRefMayNameATag(t *testing.T) {
	ns := newNamespace(t)
	repo := gittest.NewRepo(t, chartFiles(t, appChart("0.1.0"), "charts/app"))
	repo.AnnotatedTag("v0.1.0", "the first release")
	repo.CommitFiles("A newer chart on main", chartFiles(t, appChart("0.2.0"), "charts/app"))
	mustCreateHR(t, &helmv1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tagged"},
		Spec:       helmv1.HelmReleaseSpec{Chart: helmv1.ChartSource{Git: repo.URL(), Ref: "v0.1.0", Path: "charts/app"}},
	})
	hr := waitReady(t, ns, "tagged")
	if c := condition(hr, helmv1.ChartFetchedCondition); !strings.Contains(c, "chart app 0.1.0") {
		t.Errorf("ChartFetched: %s, want the tagged chart app 0.1.0", c)
	}

	if h := history(t, ns, ns+"-tagged"); len(h) != 1 {
		t.Errorf("history %v, want one release of the tagged chart", h)
	}
}
