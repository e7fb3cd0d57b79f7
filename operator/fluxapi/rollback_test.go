package fluxapi_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/fluxapi"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

// shop is a Deployment of two containers, with comments a rollback must
// keep. Its lines are numbered in the patches below: the shop's image is
// line 15.
const shop = `# The shop's front end.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: NS
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers:
        - name: shop
          image: example.com/team/shop:SHOP  # the build under test
        - name: proxy
          image: example.com/team/proxy:PROXY
`

const (
	shopImage  = "example.com/team/shop"
	proxyImage = "example.com/team/proxy"
)

func shopYAML(ns, shopTag, proxyTag string, replicas int) string {
	return strings.NewReplacer("NS", ns, "SHOP", shopTag, "PROXY", proxyTag, "REPLICAS", fmt.Sprint(replicas)).Replace(shop)
}

// autoCommit commits files with the message image automation writes for
// one tag change (operator/automation's DefaultMessageTemplate and
// trailers), so the history reads as automation made it.
func autoCommit(repo *gittest.Repo, files map[string]string, id, container, image, from, to string, opts ...gittest.CommitOption) string {
	msg := fmt.Sprintf("Auto-release %s:%s\n\n- %s (%s): %s %s -> %s\n\nHelmflux-Image: %s %s -> %s\nHelmflux-Workload: %s\n",
		image, to, id, container, image, from, to, image, from, to, id)
	return repo.CommitFiles(msg, files, opts...)
}

// now dates a commit now rather than in gittest's 2024: automation's hold
// walk reads only the last year.
func now(o *gogit.CommitOptions) {
	sig := &object.Signature{Name: "helmflux", Email: "helmflux@example.com", When: time.Now()}
	o.Author, o.Committer = sig, sig
}

// rollback posts a rollback and returns its job ID.
func rollback(t *testing.T, spec fluxapi.RollbackSpec) string {
	t.Helper()
	var id string
	if code, body := call(t, http.MethodPost, "/v12/rollback", spec, &id); code != http.StatusOK {
		t.Fatalf("POST /v12/rollback: %d %s", code, body)
	}
	return id
}

// steps returns a job's progress.
func steps(t *testing.T, job string) []string {
	t.Helper()
	var p fluxapi.JobProgress
	if code, body := call(t, http.MethodGet, "/v12/jobs?id="+job, nil, &p); code != http.StatusOK {
		t.Fatalf("GET /v12/jobs: %d %s", code, body)
	}
	return p.Steps
}

func hasStep(steps []string, prefix string) bool {
	return slices.ContainsFunc(steps, func(s string) bool { return strings.HasPrefix(s, prefix) })
}

func waitImage(t *testing.T, ns, name, container, image string) {
	t.Helper()
	// Well under the GitSync's minute: the job wakes it.
	eventually(t, 30*time.Second, "the Deployment to run "+image, func() (bool, string) {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			return false, err.Error()
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == container {
				return c.Image == image, c.Image
			}
		}
		return false, "no container " + container
	})
}

// TestRollbackPrevious: after two automation commits and a person's edit
// of the same file, `previous` undoes the newest image change only: one
// commit that sets the tag line back and keeps everything else the file
// holds (the person's edit, the comments), carries no Helmflux-Image
// trailer, and the cluster runs the old tag at once.
func TestRollbackPrevious(t *testing.T) {
	ns := testenv.NewNamespace(t, k8s, "fluxapi-rb-prev-")
	id := ns + ":deployment/shop"
	repo := gittest.NewRepo(t, map[string]string{
		"apps/shop.yaml":     shopYAML(ns, "1.0.0", "2.0.0", 1),
		"apps/settings.yaml": manifest(settingsCM, ns, ""),
	})
	c1 := autoCommit(repo, map[string]string{"apps/shop.yaml": shopYAML(ns, "1.0.1", "2.0.0", 1)}, id, "shop", shopImage, "1.0.0", "1.0.1")
	c2 := autoCommit(repo, map[string]string{"apps/shop.yaml": shopYAML(ns, "1.0.2", "2.0.0", 1)}, id, "shop", shopImage, "1.0.1", "1.0.2")
	repo.CommitFiles("Scale the shop to two replicas", map[string]string{"apps/shop.yaml": shopYAML(ns, "1.0.2", "2.0.0", 2)})
	head := repo.CommitFiles("Green settings", map[string]string{"apps/settings.yaml": strings.ReplaceAll(manifest(settingsCM, ns, ""), "blue", "green")})
	createGitSync(t, ns, repo.URL(), head, nil)

	job := rollback(t, fluxapi.RollbackSpec{Workload: id, Previous: true,
		Cause: fluxapi.Cause{Message: "1.0.2 breaks the checkout page", User: "Dev <dev@example.com>"}})
	st := waitJob(t, job)
	rev := st.Result.Revision
	if st.StatusString != fluxapi.JobSucceeded || len(rev) != 40 {
		t.Fatalf("rollback %+v", st)
	}
	cm := repo.RemoteHead("main")
	if cm.Hash.String() != rev || cm.ParentHashes[0].String() != head {
		t.Fatalf("the remote head is %s (parent %v), want the rollback %s on %s", cm.Hash, cm.ParentHashes, rev, head)
	}
	if changed := gittest.ChangedPaths(t, cm); !slices.Equal(changed, []string{"apps/shop.yaml"}) {
		t.Errorf("the rollback changes %v, want apps/shop.yaml only", changed)
	}
	if got, want := repo.FileAt(cm, "apps/shop.yaml"), shopYAML(ns, "1.0.1", "2.0.0", 2); got != want {
		t.Errorf("after the rollback apps/shop.yaml reads\n%s\nwant\n%s", got, want)
	}
	wantMsg := "Roll back " + id + " to " + c1[:7] + "\n\n1.0.2 breaks the checkout page\n\nThis reverts commit " + c2 + ".\n\n" +
		"Helmflux-Rollback: " + c2 + "\nHelmflux-Workload: " + id + "\nHelmflux-User: Dev <dev@example.com>\n"
	if cm.Message != wantMsg {
		t.Errorf("commit message\n%q\nwant\n%q", cm.Message, wantMsg)
	}
	wantPatch := `--- a/apps/shop.yaml
+++ b/apps/shop.yaml
@@ -12,6 +12,6 @@
     spec:
       containers:
         - name: shop
-          image: example.com/team/shop:1.0.2  # the build under test
+          image: example.com/team/shop:1.0.1  # the build under test
         - name: proxy
           image: example.com/team/proxy:2.0.0
`
	if st.Result.Patch != wantPatch {
		t.Errorf("patch\n%s\nwant\n%s", st.Result.Patch, wantPatch)
	}
	if len(st.Result.Reverted) != 1 || st.Result.Reverted[0].Hash != c2 || st.Result.Reverted[0].Subject != "Auto-release "+shopImage+":1.0.2" {
		t.Errorf("reverted %+v, want %s only", st.Result.Reverted, c2)
	}
	r := st.Result.Result[id]
	if r.Status != fluxapi.ResultSuccess || len(r.PerContainer) != 1 ||
		r.PerContainer[0] != (fluxapi.ContainerUpdate{Container: "shop", Current: shopImage + ":1.0.2", Target: shopImage + ":1.0.1"}) {
		t.Errorf("result %+v", r)
	}
	got := steps(t, job)
	for _, want := range []string{
		"Clone OK.",
		"Calculating rollback of " + id + " to " + c1[:7] + ".",
		"Revert " + c2[:7] + " Auto-release " + shopImage + ":1.0.2.",
		"Commit and push the config repo.",
		"Pushed commit: Roll back " + id + " to " + c1[:7] + " (" + rev[:7] + ")",
	} {
		if !hasStep(got, want) {
			t.Errorf("the job's steps %q lack %q", got, want)
		}
	}
	waitImage(t, ns, "shop", "shop", shopImage+":1.0.1")
}

const settingsCM = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: NS
data:
  color: blue
`

// TestRollbackToACommit: `to` an older commit (by a prefix) restores its
// images and names both automation commits it reverts; a dry run before
// returns the same patch and pushes nothing; asking again has nothing to
// do and commits nothing; a commit off the branch is refused.
func TestRollbackToACommit(t *testing.T) {
	ns := testenv.NewNamespace(t, k8s, "fluxapi-rb-to-")
	id := ns + ":deployment/shop"
	repo := gittest.NewRepo(t, map[string]string{"apps/shop.yaml": shopYAML(ns, "1.0.0", "2.0.0", 1)})
	base := repo.Head()
	c1 := autoCommit(repo, map[string]string{"apps/shop.yaml": shopYAML(ns, "1.0.1", "2.0.0", 1)}, id, "shop", shopImage, "1.0.0", "1.0.1")
	c2 := autoCommit(repo, map[string]string{"apps/shop.yaml": shopYAML(ns, "1.0.2", "2.0.0", 1)}, id, "shop", shopImage, "1.0.1", "1.0.2")
	// A commit on another branch, never on main.
	repo.Branch("side")
	side := repo.CommitFiles("Elsewhere", map[string]string{"apps/shop.yaml": shopYAML(ns, "9.9.9", "2.0.0", 1)})
	repo.Switch("main")
	head := repo.Head()
	createGitSync(t, ns, repo.URL(), head, nil)
	wantPatch := `--- a/apps/shop.yaml
+++ b/apps/shop.yaml
@@ -12,6 +12,6 @@
     spec:
       containers:
         - name: shop
-          image: example.com/team/shop:1.0.2  # the build under test
+          image: example.com/team/shop:1.0.0  # the build under test
         - name: proxy
           image: example.com/team/proxy:2.0.0
`
	wantReverted := []fluxapi.Commit{
		{Hash: c2, Subject: "Auto-release " + shopImage + ":1.0.2"},
		{Hash: c1, Subject: "Auto-release " + shopImage + ":1.0.1"},
	}

	// The dry run: the patch, and the remote as it was.
	job := rollback(t, fluxapi.RollbackSpec{Workload: id, To: base[:9], DryRun: true})
	dry := waitJob(t, job)
	if dry.StatusString != fluxapi.JobSucceeded || dry.Result.Revision != "" || dry.Result.Patch != wantPatch || !slices.Equal(dry.Result.Reverted, wantReverted) {
		t.Fatalf("dry run %+v, want patch\n%s", dry, wantPatch)
	}
	if got := repo.RemoteHead("main").Hash.String(); got != head {
		t.Fatalf("a dry run moved the remote head to %s", got)
	}
	if got := steps(t, job); hasStep(got, "Commit and push") || hasStep(got, "Pushed commit") || !hasStep(got, "Dry run:") {
		t.Errorf("dry run steps %q", got)
	}

	// The rollback: one commit, the patch the dry run showed.
	st := waitJob(t, rollback(t, fluxapi.RollbackSpec{Workload: id, To: base, Cause: fluxapi.Cause{User: "Dev <dev@example.com>"}}))
	if st.StatusString != fluxapi.JobSucceeded || len(st.Result.Revision) != 40 || st.Result.Patch != wantPatch || !slices.Equal(st.Result.Reverted, wantReverted) {
		t.Fatalf("rollback %+v", st)
	}
	cm := repo.RemoteHead("main")
	if cm.ParentHashes[0].String() != head || repo.FileAt(cm, "apps/shop.yaml") != shopYAML(ns, "1.0.0", "2.0.0", 1) {
		t.Fatalf("rollback commit %s on %v:\n%s", cm.Hash, cm.ParentHashes, repo.FileAt(cm, "apps/shop.yaml"))
	}
	wantMsg := "Roll back " + id + " to " + base[:7] + "\n\nThis reverts commit " + c2 + ".\nThis reverts commit " + c1 + ".\n\n" +
		"Helmflux-Rollback: " + c2 + "\nHelmflux-Rollback: " + c1 + "\nHelmflux-Workload: " + id + "\nHelmflux-User: Dev <dev@example.com>\n"
	if cm.Message != wantMsg {
		t.Errorf("commit message\n%q\nwant\n%q", cm.Message, wantMsg)
	}
	waitImage(t, ns, "shop", "shop", shopImage+":1.0.0")

	// Again: the workload runs the target's images already.
	rolled := cm.Hash.String()
	job = rollback(t, fluxapi.RollbackSpec{Workload: id, To: base})
	again := waitJob(t, job)
	if again.StatusString != fluxapi.JobSucceeded || again.Result.Revision != "" || again.Result.Patch != "" ||
		again.Result.Result[id].Status != fluxapi.ResultSkipped {
		t.Errorf("a rollback with nothing to do: %+v", again)
	}
	if got := steps(t, job); !hasStep(got, id+" already runs the images of "+base[:7]) {
		t.Errorf("steps %q lack that the workload already runs the target's images", got)
	}
	if got := repo.RemoteHead("main").Hash.String(); got != rolled {
		t.Errorf("a rollback with nothing to do pushed %s", got)
	}

	// A commit that is not on the branch.
	off := waitJob(t, rollback(t, fluxapi.RollbackSpec{Workload: id, To: side}))
	if off.StatusString != fluxapi.JobFailed || !strings.Contains(off.Err, "not an ancestor") || !strings.Contains(off.Err, "main") {
		t.Errorf("a rollback to a commit off the branch: %+v", off)
	}
	if got := repo.RemoteHead("main").Hash.String(); got != rolled {
		t.Errorf("a refused rollback pushed %s", got)
	}
}

// web is a HelmRelease with one image in its inline values and another in
// a values file outside the GitSync's paths.
const web = `apiVersion: helm.fluxcd.io/v1
kind: HelmRelease
metadata:
  name: web
  namespace: NS
spec:
  chart: {repository: "http://127.0.0.1:1/charts", name: web, version: 1.0.0}
  valuesFrom:
    - gitFileRef: {path: values/web.yaml}
  values:
    # the chart's own image
    image:
      repository: example.com/team/web
      tag: WEB
`

const webValues = `# worker settings
worker:
  image:
    repository: example.com/team/worker
    tag: WORKER
  replicas: 2
`

// TestRollbackHelmReleaseValues: a HelmRelease's images in its values and
// in a values file roll back like a workload's: `previous` sets the values
// file's tag back, `to` the inline one too, each line alone.
func TestRollbackHelmReleaseValues(t *testing.T) {
	ns := testenv.NewNamespace(t, k8s, "fluxapi-rb-hr-")
	id := ns + ":helmrelease/web"
	hr := func(tag string) string { return strings.NewReplacer("NS", ns, "WEB", tag).Replace(web) }
	values := func(tag string) string { return strings.ReplaceAll(webValues, "WORKER", tag) }
	repo := gittest.NewRepo(t, map[string]string{"apps/web.yaml": hr("5.0.0"), "values/web.yaml": values("3.0.0")})
	base := repo.Head()
	c1 := autoCommit(repo, map[string]string{"apps/web.yaml": hr("5.0.1")}, id, "chart-image", "example.com/team/web", "5.0.0", "5.0.1")
	c2 := autoCommit(repo, map[string]string{"values/web.yaml": values("3.0.1")}, id, "worker", "example.com/team/worker", "3.0.0", "3.0.1")
	createGitSync(t, ns, repo.URL(), c2, nil)

	st := waitJob(t, rollback(t, fluxapi.RollbackSpec{Workload: id, Previous: true}))
	if st.StatusString != fluxapi.JobSucceeded || len(st.Result.Revision) != 40 || len(st.Result.Reverted) != 1 || st.Result.Reverted[0].Hash != c2 {
		t.Fatalf("previous %+v", st)
	}
	prev := repo.RemoteHead("main")
	if changed := gittest.ChangedPaths(t, prev); !slices.Equal(changed, []string{"values/web.yaml"}) || repo.FileAt(prev, "values/web.yaml") != values("3.0.0") ||
		repo.FileAt(prev, "apps/web.yaml") != hr("5.0.1") {
		t.Errorf("previous changed %v", changed)
	}
	if !strings.HasPrefix(st.Result.Patch, "--- a/values/web.yaml\n+++ b/values/web.yaml\n") || !strings.Contains(st.Result.Patch, "\n-    tag: 3.0.1\n+    tag: 3.0.0\n") {
		t.Errorf("patch\n%s", st.Result.Patch)
	}

	// Every image change since base is reverted: the first rollback's too.
	st = waitJob(t, rollback(t, fluxapi.RollbackSpec{Workload: id, To: base}))
	if st.StatusString != fluxapi.JobSucceeded || len(st.Result.Revision) != 40 {
		t.Fatalf("to %+v", st)
	}
	var reverted []string
	for _, c := range st.Result.Reverted {
		reverted = append(reverted, c.Hash)
	}
	if want := []string{prev.Hash.String(), c2, c1}; !slices.Equal(reverted, want) {
		t.Errorf("reverted %v, want %v", reverted, want)
	}
	to := repo.RemoteHead("main")
	if changed := gittest.ChangedPaths(t, to); !slices.Equal(changed, []string{"apps/web.yaml"}) || repo.FileAt(to, "apps/web.yaml") != hr("5.0.0") {
		t.Errorf("to changed %v:\n%s", changed, repo.FileAt(to, "apps/web.yaml"))
	}
	if !strings.HasPrefix(st.Result.Patch, "--- a/apps/web.yaml\n+++ b/apps/web.yaml\n") || !strings.Contains(st.Result.Patch, "\n-      tag: 5.0.1\n+      tag: 5.0.0\n") {
		t.Errorf("patch\n%s", st.Result.Patch)
	}
}

// TestRollbackOneOfTwoContainersAndLock: of a workload's two containers,
// `previous` sets back only the one the newest image change moved, and
// --lock writes the lock annotations (the cause's message and user, as
// fluxctl lock does) in the same commit.
func TestRollbackOneOfTwoContainersAndLock(t *testing.T) {
	ns := testenv.NewNamespace(t, k8s, "fluxapi-rb-lock-")
	id := ns + ":deployment/shop"
	repo := gittest.NewRepo(t, map[string]string{"apps/shop.yaml": shopYAML(ns, "1.0.0", "2.0.0", 1)})
	autoCommit(repo, map[string]string{"apps/shop.yaml": shopYAML(ns, "1.0.0", "2.0.1", 1)}, id, "proxy", proxyImage, "2.0.0", "2.0.1")
	c2 := autoCommit(repo, map[string]string{"apps/shop.yaml": shopYAML(ns, "1.0.1", "2.0.1", 1)}, id, "shop", shopImage, "1.0.0", "1.0.1")
	createGitSync(t, ns, repo.URL(), c2, nil)

	st := waitJob(t, rollback(t, fluxapi.RollbackSpec{Workload: id, Previous: true, Lock: true,
		Cause: fluxapi.Cause{Message: "1.0.1 breaks checkout", User: "Dev <dev@example.com>"}}))
	if st.StatusString != fluxapi.JobSucceeded || len(st.Result.Revision) != 40 {
		t.Fatalf("rollback %+v", st)
	}
	if r := st.Result.Result[id]; len(r.PerContainer) != 1 || r.PerContainer[0].Container != "shop" || r.PerContainer[0].Target != shopImage+":1.0.0" {
		t.Errorf("result %+v, want the shop container only", r)
	}
	cm := repo.RemoteHead("main")
	if cm.ParentHashes[0].String() != c2 {
		t.Fatalf("want one commit on %s, got %s on %v", c2, cm.Hash, cm.ParentHashes)
	}
	got := repo.FileAt(cm, "apps/shop.yaml")
	lock := "  annotations:\n    fluxcd.io/locked: \"true\"\n    fluxcd.io/locked_msg: \"1.0.1 breaks checkout\"\n    fluxcd.io/locked_user: \"Dev <dev@example.com>\"\n"
	want := strings.Replace(shopYAML(ns, "1.0.0", "2.0.1", 1), "  namespace: "+ns+"\n", "  namespace: "+ns+"\n"+lock, 1)
	if got != want {
		t.Errorf("after the rollback apps/shop.yaml reads\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(st.Result.Patch, "+    fluxcd.io/locked: \"true\"\n") || strings.Contains(st.Result.Patch, "proxy:2.0.") && strings.Contains(st.Result.Patch, "-          image: example.com/team/proxy") {
		t.Errorf("patch\n%s", st.Result.Patch)
	}
	eventually(t, time.Minute, "the workload to show the lock", func() (bool, string) {
		var ws []fluxapi.ControllerStatus
		call(t, http.MethodGet, "/v11/services?namespace=&services="+id, nil, &ws)
		return len(ws) == 1 && ws[0].Locked && ws[0].Policies["locked_msg"] == "1.0.1 breaks checkout", strings.Join(statuses(ws), ",")
	})
}

// TestRollbackBadRequests: an unknown workload is fluxd's "missing"; a
// spec naming both or neither of to and previous, or a to that is no
// commit hash, is a 400 that says what to do; update-manifests refuses
// the rollback type. Nothing is queued or committed.
func TestRollbackBadRequests(t *testing.T) {
	ns := testenv.NewNamespace(t, k8s, "fluxapi-rb-bad-")
	id := ns + ":deployment/shop"
	repo := gittest.NewRepo(t, map[string]string{"apps/shop.yaml": shopYAML(ns, "1.0.0", "2.0.0", 1)})
	createGitSync(t, ns, repo.URL(), repo.Head(), nil)
	before := repo.Head()
	for name, tc := range map[string]struct {
		spec     any
		code     int
		contains string
	}{
		"unknown workload": {fluxapi.RollbackSpec{Workload: ns + ":deployment/nope", Previous: true}, http.StatusNotFound, "not among the workloads of any GitSync"},
		"both":             {fluxapi.RollbackSpec{Workload: id, Previous: true, To: before}, http.StatusBadRequest, "exactly one of"},
		"neither":          {fluxapi.RollbackSpec{Workload: id}, http.StatusBadRequest, "exactly one of"},
		"no workload":      {fluxapi.RollbackSpec{Previous: true}, http.StatusBadRequest, "name the workload"},
		"bad workload":     {fluxapi.RollbackSpec{Workload: "shop", Previous: true}, http.StatusBadRequest, "<namespace>:<kind>/<name>"},
		"short to":         {fluxapi.RollbackSpec{Workload: id, To: "abc12"}, http.StatusBadRequest, "at least 7 hex digits"},
		"not hex":          {fluxapi.RollbackSpec{Workload: id, To: "HEAD~1"}, http.StatusBadRequest, "at least 7 hex digits"},
		"not JSON":         {"roll it back", http.StatusBadRequest, "does not parse"},
	} {
		code, body := call(t, http.MethodPost, "/v12/rollback", tc.spec, nil)
		if e := decodeError(t, body); code != tc.code || !strings.Contains(e.Help, tc.contains) {
			t.Errorf("%s: %d %+v, want %d and help with %q", name, code, e, tc.code, tc.contains)
		}
	}
	code, body := call(t, http.MethodPost, "/v9/update-manifests", map[string]any{"type": fluxapi.UpdateRollback, "cause": map[string]string{},
		"spec": fluxapi.RollbackSpec{Workload: id, Previous: true}}, nil)
	if e := decodeError(t, body); code != http.StatusBadRequest || !strings.Contains(e.Help, "unknown update type") {
		t.Errorf("update-manifests of type rollback: %d %+v, want 400", code, e)
	}
	// previous on a workload no commit changed the images of fails the job.
	st := waitJob(t, rollback(t, fluxapi.RollbackSpec{Workload: id, Previous: true}))
	if st.StatusString != fluxapi.JobFailed || !strings.Contains(st.Err, "no earlier") {
		t.Errorf("previous without history: %+v", st)
	}
	if repo.RemoteHead("main").Hash.String() != before {
		t.Error("a refused rollback pushed a commit")
	}
}

// TestARollbackHoldsAgainstAutomation: the rollback commit carries no
// Helmflux-Image trailer, so image automation takes the lower tag as a
// person's rollback (issue 12's hold): a real pass after it commits
// nothing, keeps the rolled-back tag and reports the hold with the
// rollback commit as its cause.
func TestARollbackHoldsAgainstAutomation(t *testing.T) {
	ns := testenv.NewNamespace(t, k8s, "fluxapi-rb-hold-")
	reg := registrytest.NewServer(t)
	image := reg.Host() + "/team/app"
	reg.PushTags(t, "team/app", "1.0.0", "1.0.1")
	id := ns + ":deployment/app"
	repo := gittest.NewRepo(t, map[string]string{"apps/app.yaml": testenv.AutomatedDeployment(ns, "app", image+":1.0.0", "semver:~1.0")})
	bump := autoCommit(repo, map[string]string{"apps/app.yaml": testenv.AutomatedDeployment(ns, "app", image+":1.0.1", "semver:~1.0")}, id, "app", image, "1.0.0", "1.0.1", now)
	gs := createGitSync(t, ns, repo.URL(), bump, nil)
	// The first pass finds 1.0.1 current and best: nothing to write.
	eventually(t, time.Minute, "the first automation pass", func() (bool, string) {
		got := getGitSync(t, gs)
		st := got.Status.ImageAutomation
		return st != nil && st.LastRevision == "main@sha1:"+bump, fmt.Sprintf("%+v", st)
	})

	st := waitJob(t, rollback(t, fluxapi.RollbackSpec{Workload: id, Previous: true, Cause: fluxapi.Cause{Message: "1.0.1 leaks memory"}}))
	rb := st.Result.Revision
	if st.StatusString != fluxapi.JobSucceeded || len(rb) != 40 {
		t.Fatalf("rollback %+v", st)
	}
	if msg := repo.RemoteHead("main").Message; strings.Contains(msg, "Helmflux-Image") {
		t.Fatalf("the rollback commit carries Helmflux-Image:\n%s", msg)
	}

	// A pass now (a spec change starts one): it starts from the rollback,
	// holds 1.0.1 and writes nothing.
	got := getGitSync(t, gs)
	patch := client.MergeFrom(got.DeepCopy())
	got.Spec.Interval.Duration = 2 * time.Minute
	if err := k8s.Patch(context.Background(), got, patch); err != nil {
		t.Fatal(err)
	}
	var hold *helmfluxv1alpha1.ImageHold
	eventually(t, time.Minute, "a pass from the rollback commit", func() (bool, string) {
		st := getGitSync(t, gs).Status.ImageAutomation
		if st == nil || st.LastRevision != "main@sha1:"+rb {
			return false, fmt.Sprintf("%+v", st)
		}
		for i := range st.Holds {
			if st.Holds[i].Workload == id {
				hold = &st.Holds[i]
			}
		}
		return true, ""
	})
	if head := repo.RemoteHead("main"); head.Hash.String() != rb {
		t.Fatalf("automation pushed %s on top of the rollback %s:\n%s", head.Hash, rb, head.Message)
	}
	if hold == nil || hold.Tag != "1.0.1" || hold.Current != "1.0.0" || hold.Reason != helmfluxv1alpha1.HoldRollback || hold.Commit != rb {
		t.Fatalf("hold %+v, want 1.0.1 held at 1.0.0 by the rollback %s", hold, rb)
	}
	waitImage(t, ns, "app", "app", image+":1.0.0")
}

func getGitSync(t *testing.T, gs *helmfluxv1alpha1.GitSync) *helmfluxv1alpha1.GitSync {
	t.Helper()
	got := &helmfluxv1alpha1.GitSync{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(gs), got); err != nil {
		t.Fatal(err)
	}
	return got
}
