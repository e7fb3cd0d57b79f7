package helm

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"

	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// gitFixture is a git repository and a Charts with a git cache.
type gitFixture struct {
	repo *gittest.Repo
	dir  string // the Charts cache dir
	gc   *git.Cache
	c    *Charts
}

func newGitFixture(t *testing.T, files map[string]string) *gitFixture {
	t.Helper()
	gc, err := git.NewCache(filepath.Join(t.TempDir(), "git"))
	if err != nil {
		t.Fatal(err)
	}
	f := &gitFixture{repo: gittest.NewRepo(t, files), dir: filepath.Join(t.TempDir(), "charts"), gc: gc}
	f.c = newChartsIn(t, f.dir, gc)
	return f
}

// writeChart writes c unpacked into the worktree at dir (not committed).
func (f *gitFixture) writeChart(t *testing.T, dir string, c helmtest.Chart) {
	t.Helper()
	if err := c.WriteDir(filepath.Join(f.repo.WorkDir(), filepath.FromSlash(dir))); err != nil {
		t.Fatal(err)
	}
}

func (f *gitFixture) src(path string) ChartSource {
	return ChartSource{Git: f.repo.URL(), Ref: git.Ref{Branch: gittest.DefaultBranch}, Path: path}
}

func (f *gitFixture) load(t *testing.T, ref *ChartRef) *chart.Chart {
	t.Helper()
	ch, err := f.c.Load(testCtx(t), ref)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return ch
}

// deps lists a chart's subcharts as "name@version", sorted.
func deps(ch *chart.Chart) []string {
	var out []string
	for _, d := range ch.Dependencies() {
		out = append(out, d.Name()+"@"+d.Metadata.Version)
	}
	sort.Strings(out)
	return out
}

func TestGitResolveAndLoad(t *testing.T) {
	f := newGitFixture(t, map[string]string{"deploy/app.yaml": "kind: Namespace\n"})
	f.writeChart(t, "charts/app", helmtest.Simple("app", "1.0.0"))
	f.repo.Commit("add chart")

	ref := mustResolve(t, f.c, f.src("charts/app"))
	if ref.Name != "app" || ref.Version != "1.0.0" || ref.URL != "" {
		t.Errorf("resolved %s %s (URL %q)", ref.Name, ref.Version, ref.URL)
	}
	if want := gittest.DefaultBranch + "@sha1:" + f.repo.Head(); ref.Revision != want {
		t.Errorf("revision %s, want %s", ref.Revision, want)
	}
	if !digestRE.MatchString(ref.Digest) {
		t.Errorf("digest %q", ref.Digest)
	}
	for _, p := range []string{"charts/app/", "./charts/app", "charts//app"} {
		if d := mustResolve(t, f.c, f.src(p)).Digest; d != ref.Digest {
			t.Errorf("path %q: digest %s, want %s", p, d, ref.Digest)
		}
	}
	if ch := f.load(t, ref); ch.Name() != "app" || len(ch.Templates) != 4 {
		t.Errorf("loaded %s with %d templates", ch.Name(), len(ch.Templates))
	}

	// A commit elsewhere: new revision, same digest, no rebuild.
	f.repo.CommitFiles("elsewhere", map[string]string{"deploy/app.yaml": "kind: Namespace\nmetadata: {name: x}\n"})
	same := mustResolve(t, f.c, f.src("charts/app"))
	if same.Digest != ref.Digest || same.Revision == ref.Revision {
		t.Errorf("a commit outside the chart: digest %s -> %s, revision %s -> %s", ref.Digest, same.Digest, ref.Revision, same.Revision)
	}
	f.load(t, same)
	if n := f.c.Stats().GitBuilds; n != 1 {
		t.Errorf("%d builds, want 1", n)
	}

	// A commit to the chart: new digest, rebuilt with the change.
	f.repo.CommitFiles("values", map[string]string{"charts/app/values.yaml": "replicaCount: 3\n"})
	changed := mustResolve(t, f.c, f.src("charts/app"))
	if changed.Digest == ref.Digest {
		t.Fatal("a commit to the chart kept its digest")
	}
	if ch := f.load(t, changed); ch.Values["replicaCount"] != float64(3) {
		t.Errorf("replicaCount = %v after the change", ch.Values["replicaCount"])
	}
	if n := f.c.Stats().GitBuilds; n != 2 {
		t.Errorf("%d builds, want 2", n)
	}

	// After a restart the packaged chart comes from the cache dir.
	restarted := newChartsIn(t, f.dir, f.gc)
	if _, err := restarted.Load(testCtx(t), mustResolve(t, restarted, f.src("charts/app"))); err != nil {
		t.Fatal(err)
	}
	if n := restarted.Stats().GitBuilds; n != 0 {
		t.Errorf("%d builds after a restart, want 0", n)
	}
}

func TestGitDependencies(t *testing.T) {
	srv := helmtest.NewRepoServer(t)
	srv.Add(t, helmtest.Simple("dep", "1.0.0"))
	f := newGitFixture(t, nil)
	app := helmtest.Simple("app", "1.0.0")
	app.Dependencies = []helmtest.Dependency{
		{Name: "dep", Version: "1.x", Repository: srv.URL()},
		{Name: "common", Version: "0.x", Repository: "file://../common"},
	}
	f.writeChart(t, "charts/app", app)
	f.writeChart(t, "charts/app/charts/dep", helmtest.Simple("dep", "0.9.0")) // committed, outdated
	f.writeChart(t, "charts/common", helmtest.Simple("common", "0.1.0"))
	f.repo.Commit("chart with dependencies")

	ref := mustResolve(t, f.c, f.src("charts/app"))
	if got := deps(f.load(t, ref)); strings.Join(got, ",") != "common@0.1.0,dep@1.0.0" {
		t.Errorf("built dependencies %v", got)
	}

	skip := f.src("charts/app")
	skip.SkipDepUpdate = true
	skipRef := mustResolve(t, f.c, skip)
	if skipRef.Digest == ref.Digest {
		t.Error("SkipDepUpdate did not change the digest")
	}
	if got := deps(f.load(t, skipRef)); strings.Join(got, ",") != "dep@0.9.0" {
		t.Errorf("with SkipDepUpdate: dependencies %v, want the committed dep@0.9.0", got)
	}

	// A new dependency version in the repository changes the digest
	// without a commit.
	srv.Add(t, helmtest.Simple("dep", "1.1.0"))
	newer := mustResolve(t, f.c, f.src("charts/app"))
	if newer.Digest == ref.Digest || newer.Revision != ref.Revision {
		t.Fatalf("a new dependency version: digest %s -> %s, revision %s -> %s", ref.Digest, newer.Digest, ref.Revision, newer.Revision)
	}
	if got := deps(f.load(t, newer)); strings.Join(got, ",") != "common@0.1.0,dep@1.1.0" {
		t.Errorf("built dependencies %v", got)
	}

	// So does a change to a file:// dependency outside the chart directory.
	f.repo.CommitFiles("common", map[string]string{"charts/common/values.yaml": "message: changed\n"})
	if d := mustResolve(t, f.c, f.src("charts/app")).Digest; d == newer.Digest {
		t.Error("a change to a file:// dependency kept the digest")
	}

	// A lock file that still satisfies the range pins the version.
	f.repo.CommitFiles("lock", map[string]string{"charts/app/Chart.lock": "dependencies:\n- name: dep\n  repository: " + srv.URL() +
		"\n  version: 1.0.0\n- name: common\n  repository: file://../common\n  version: 0.1.0\ndigest: sha256:0\ngenerated: \"2024-01-01T00:00:00Z\"\n"})
	locked := mustResolve(t, f.c, f.src("charts/app"))
	if got := deps(f.load(t, locked)); strings.Join(got, ",") != "common@0.1.0,dep@1.0.0" {
		t.Errorf("with a lock file: dependencies %v, want dep@1.0.0", got)
	}

	// A reference without its resolved dependencies (copied from status,
	// say) still loads.
	bare := &ChartRef{Source: locked.Source, Name: locked.Name, Version: locked.Version, Digest: locked.Digest, Revision: locked.Revision}
	if err := os.Remove(f.c.chartFile(f.c.originOf(kindGit, bare.Source), bare.Digest)); err != nil {
		t.Fatal(err)
	}
	if got := deps(f.load(t, bare)); strings.Join(got, ",") != "common@0.1.0,dep@1.0.0" {
		t.Errorf("a bare reference: dependencies %v", got)
	}
}

func TestGitRefusesEscapes(t *testing.T) {
	srcs := map[string]string{"outside/Chart.yaml": "apiVersion: v2\nname: outside\nversion: 1.0.0\n"}
	f := newGitFixture(t, srcs)
	escaping := helmtest.Simple("escaping", "1.0.0")
	escaping.Dependencies = []helmtest.Dependency{{Name: "outside", Repository: "file://../../outside"}}
	f.writeChart(t, "app", escaping)
	absolute := helmtest.Simple("absolute", "1.0.0")
	absolute.Dependencies = []helmtest.Dependency{{Name: "etc", Repository: "file:///etc"}}
	f.writeChart(t, "absolute", absolute)
	f.writeChart(t, "leaky", helmtest.Simple("leaky", "1.0.0"))
	f.repo.Symlink("leaky/templates/leak.yaml", "../../../../../../../../etc/hostname")
	f.writeChart(t, "abslink", helmtest.Simple("abslink", "1.0.0"))
	f.repo.Symlink("abslink/files/passwd", "/etc/passwd")
	f.repo.Symlink("linkout", "../..")
	aliased := helmtest.Simple("aliased", "1.0.0")
	aliased.Dependencies = []helmtest.Dependency{{Name: "x", Version: "1.x", Repository: "@stable"}}
	f.writeChart(t, "aliased", aliased)
	f.repo.Commit("hostile charts")

	tests := []struct {
		path    string
		wantErr []error
	}{
		{path: "../x", wantErr: []error{ErrInvalidSource, git.ErrPathEscapes}},
		{path: "app/../../x", wantErr: []error{ErrInvalidSource, git.ErrPathEscapes}},
		{path: "/app", wantErr: []error{ErrInvalidSource, git.ErrPathEscapes}},
		{path: "app", wantErr: []error{ErrHostileChart, git.ErrPathEscapes}},
		{path: "absolute", wantErr: []error{ErrHostileChart, git.ErrPathEscapes}},
		{path: "leaky", wantErr: []error{ErrHostileChart, git.ErrPathEscapes}},
		{path: "abslink", wantErr: []error{ErrHostileChart, git.ErrPathEscapes}},
		{path: "linkout/x", wantErr: []error{git.ErrPathEscapes}},
		{path: "aliased", wantErr: []error{ErrInvalidChart}},
		{path: "missing", wantErr: nil}, // any error
		{path: "outside/Chart.yaml", wantErr: []error{git.ErrInvalidInput}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			ref, err := f.c.Resolve(testCtx(t), f.src(tt.path))
			if err == nil {
				_, err = f.c.Load(testCtx(t), ref)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			t.Log(err)
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("got %v, want %v", err, want)
				}
			}
		})
	}
	if _, err := f.c.Resolve(testCtx(t), ChartSource{Git: f.repo.URL(), Ref: git.Ref{Branch: "nope"}, Path: "app"}); !errors.Is(err, git.ErrRefNotFound) {
		t.Errorf("unknown branch: got %v, want git.ErrRefNotFound", err)
	}
}

func TestGitSymlinksInsideTheRepository(t *testing.T) {
	f := newGitFixture(t, map[string]string{"shared/values.yaml": "replicaCount: 5\n", "shared/tpl/extra.yaml": "kind: ConfigMap\n"})
	f.writeChart(t, "charts/app", helmtest.Simple("app", "1.0.0"))
	f.repo.Remove("charts/app/values.yaml")
	f.repo.Symlink("charts/app/values.yaml", "../../shared/values.yaml")
	f.repo.Symlink("charts/app/templates/shared", "../../../shared/tpl")
	f.repo.Symlink("app", "charts/app")
	f.repo.Commit("symlinks")
	ch := f.load(t, mustResolve(t, f.c, f.src("app")))
	if ch.Values["replicaCount"] != float64(5) {
		t.Errorf("replicaCount = %v, want 5 from the linked values.yaml", ch.Values["replicaCount"])
	}
	found := false
	for _, tpl := range ch.Templates {
		found = found || tpl.Name == "templates/shared/extra.yaml"
	}
	if !found {
		t.Error("the linked templates directory was not loaded")
	}
}
