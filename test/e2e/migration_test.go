package e2e

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

// migrationDir holds the worked example of docs/migrating.md: a Flux v1
// repository in the shape of flux-get-started (repo/) and the GitSync that
// replaces fluxd (cluster/gitsync.yaml).
var migrationDir = filepath.Join("testdata", "migration")

// The example's URLs, which the guide tells the reader to replace with
// theirs, and which this test replaces with its local servers: nothing else
// of the files is changed.
const (
	exampleGitURL   = "git@github.com:acme/flux-config"
	exampleChartURL = "https://stefanprodan.github.io/podinfo"
	exampleRegistry = "ghcr.io/"
)

// TestMigrationGuideWorkedExample runs the guide's worked example: the Flux v1
// repository, unchanged but for its URLs, served over smart HTTP, its podinfo
// chart from a Helm repository and its hello chart from the same git
// repository, and the guide's GitSync. The namespaces and workloads are
// applied, both HelmReleases are released, and one automation pass commits
// the newer podinfo tag that Flux v1's annotations allow into the Deployment
// and the HelmRelease values, changing nothing else of either file.
func TestMigrationGuideWorkedExample(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.NewServer(t, registrytest.WithPlainHTTP())
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	reg.Push(t, "stefanprodan/podinfo", "6.5.0", t0)
	reg.Push(t, "stefanprodan/podinfo", "6.5.1", t0.Add(time.Hour))
	reg.Push(t, "stefanprodan/podinfo", "6.6.0", t0.Add(2*time.Hour)) // outside semver:~6.5

	charts := helmtest.NewRepoServer(t)
	charts.Add(t, helmtest.Simple("podinfo", "6.5.0"))

	// The remote starts empty so that its URL is known before the files,
	// which name it (chart.git), are committed.
	repo := gittest.NewRepo(t, nil)
	gitURL := gittest.NewHTTPServer(t, repo.Root()).URL(gittest.RepoName)
	local := strings.NewReplacer(exampleGitURL, gitURL, exampleChartURL, charts.URL(), exampleRegistry, reg.Host()+"/")
	files := map[string]string{}
	for name, content := range migrationFiles(t, "repo") {
		files[name] = local.Replace(content)
	}
	head := repo.CommitFiles("Flux v1 repository, as fluxd and helm-operator synced it", files)

	ensureNamespace(t, "helmflux-system")
	gs := &helmfluxv1alpha1.GitSync{}
	if err := yaml.UnmarshalStrict([]byte(local.Replace(migrationFiles(t, "cluster")["gitsync.yaml"])), gs); err != nil {
		t.Fatalf("read the guide's GitSync: %v", err)
	}
	if err := k8s.Create(ctx, gs, client.FieldValidation("Strict")); err != nil {
		t.Fatalf("create the guide's GitSync: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpDiagnostics(t, "demo")
			t.Logf("GitSync status: %+v", getGitSync(t, gs.Namespace, gs.Name).Status)
		}
	})

	// Namespaces and workloads applied, from the first commit.
	eventually(t, readyTimeout, "the GitSync Ready at the first commit", func() (bool, bool, string) {
		cur := getGitSync(t, gs.Namespace, gs.Name)
		ready := apimeta.FindStatusCondition(cur.Status.Conditions, meta.ReadyCondition)
		if ready == nil {
			return false, false, "no Ready condition"
		}
		return ready.Status == metav1.ConditionTrue && cur.Status.LastAppliedRevision != "", false, ready.Reason + ": " + ready.Message
	})
	if c := apimeta.FindStatusCondition(getGitSync(t, gs.Namespace, gs.Name).Status.Conditions, "FluxV1ConfigIgnored"); c != nil {
		t.Errorf("the example has no .flux.yaml, yet the GitSync reports %s: %s", c.Reason, c.Message)
	}
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "podinfo"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "podinfo"}},
	} {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Errorf("%T %s from git: %v", obj, obj.GetName(), err)
		}
	}

	// Both HelmReleases released under the Helm Operator's release names.
	hello := waitReady(t, "demo", "hello")
	if hello.Status.ReleaseName != "demo-hello" || !strings.HasPrefix(hello.Status.Revision, "main@sha1:") {
		t.Errorf("hello: release %q revision %q, want demo-hello from the git chart on main", hello.Status.ReleaseName, hello.Status.Revision)
	}
	cm := &corev1.ConfigMap{}
	eventually(t, readyTimeout, "the git chart's ConfigMap", func() (bool, bool, string) {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "demo-hello"}, cm)
		return err == nil && cm.Data["greeting"] == "Hello from git", false, errString(err) + " " + cm.Data["greeting"]
	})
	waitReady(t, "demo", "podinfo")

	// One automation commit: 6.5.1, the newest tag semver:~6.5 allows, in
	// both files; every other byte, Flux v1's annotations included, stays.
	var bump string
	eventually(t, readyTimeout, "the automation commit", func() (bool, bool, string) {
		cm := repo.RemoteHead("main")
		bump = cm.Hash.String()
		return bump != head, false, "head " + bump
	})
	commit := repo.RemoteHead("main")
	got := gittest.ChangedPaths(t, commit)
	slices.Sort(got)
	if !slices.Equal(got, []string{"releases/podinfo.yaml", "workloads/podinfo-dep.yaml"}) {
		t.Errorf("the automation commit changed %v, want the HelmRelease and the Deployment", got)
	}
	if commit.Author.Name != "flux" || commit.Author.Email != "flux@acme.example" {
		t.Errorf("the automation commit's author is %s <%s>, want the GitSync's writeBack.author", commit.Author.Name, commit.Author.Email)
	}
	for name, edit := range map[string][2]string{
		"workloads/podinfo-dep.yaml": {"podinfo:6.5.0", "podinfo:6.5.1"},
		"releases/podinfo.yaml":      {"tag: 6.5.0", "tag: 6.5.1"},
	} {
		want := strings.Replace(files[name], edit[0], edit[1], 1)
		if got := repo.FileAt(commit, name); got != want {
			t.Errorf("%s after the automation commit:\n%s\nwant:\n%s", name, got, want)
		}
	}

	// The cluster follows the commit: the Deployment and the release's.
	for _, name := range []string{"podinfo", "demo-podinfo"} {
		want := reg.Host() + "/stefanprodan/podinfo:6.5.1"
		eventually(t, readyTimeout, "Deployment "+name+" running "+want, func() (bool, bool, string) {
			d := &appsv1.Deployment{}
			if err := k8s.Get(ctx, client.ObjectKey{Namespace: "demo", Name: name}, d); err != nil {
				return false, false, err.Error()
			}
			got := d.Spec.Template.Spec.Containers[0].Image
			return got == want, false, got
		})
	}
	if hr := waitReady(t, "demo", "podinfo"); hr.Status.ReleaseRevision < 2 {
		t.Errorf("podinfo: release revision %d after the values changed, want an upgrade", hr.Status.ReleaseRevision)
	}
}

// migrationFiles reads testdata/migration/<dir>: path (slash-separated,
// relative to dir) to content.
func migrationFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	root := filepath.Join(migrationDir, dir)
	files := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// getGitSync reads a GitSync.
func getGitSync(t *testing.T, ns, name string) *helmfluxv1alpha1.GitSync {
	t.Helper()
	gs := &helmfluxv1alpha1.GitSync{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, gs); err != nil {
		t.Fatal(err)
	}
	return gs
}

// errString is err's message, or "" for nil.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
