package fluxapi_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/fluxapi"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

// app is a Deployment with a tag policy but not automated: only a release
// through the API changes its image.
const app = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: NS
  annotations:
    fluxcd.io/tag.app: semver:~1.0
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
        - name: app
          image: IMAGE
`

// secret must never leave the cluster through the API.
const secret = `apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: NS
stringData:
  password: CANARY
`

const canary = "fluxapi-canary-0f3c"

func manifest(tmpl, ns, image string) string {
	return strings.NewReplacer("NS", ns, "IMAGE", image, "CANARY", canary).Replace(tmpl)
}

// TestRoutesAnswerAsFluxd: the fixed routes, the versions fluxd dropped and
// unknown routes answer as fluxd did.
func TestRoutesAnswerAsFluxd(t *testing.T) {
	if code, body := call(t, http.MethodGet, "/v11/ping", nil, nil); code != http.StatusNoContent || body != "" {
		t.Errorf("ping: %d %q, want 204 and no body", code, body)
	}
	var v string
	if code, body := call(t, http.MethodGet, "/v11/version", nil, &v); code != http.StatusOK || v != version {
		t.Errorf("version: %d %s, want %q", code, body, version)
	}
	if code, body := call(t, http.MethodGet, "/v5/services", nil, nil); code != http.StatusGone {
		t.Errorf("/v5/services: %d %s, want 410", code, body)
	}
	code, body := call(t, http.MethodGet, "/v99/nothing", nil, nil)
	if e := decodeError(t, body); code != http.StatusNotFound || e.Type != "missing" || !strings.Contains(e.Help, "not supported") {
		t.Errorf("unknown route: %d %+v, want 404 missing, not supported", code, e)
	}
	code, body = call(t, http.MethodGet, "/v6/jobs?id=nosuchjob", nil, nil)
	if e := decodeError(t, body); code != http.StatusNotFound || !strings.Contains(e.Help, "nosuchjob") {
		t.Errorf("unknown job: %d %+v", code, e)
	}
	if code, body := call(t, http.MethodGet, "/v6/sync", nil, nil); code != http.StatusNotFound {
		t.Errorf("sync without ref: %d %s, want 404 as fluxd", code, body)
	}
}

// TestListAndRelease is fluxctl's story on the API: list the workloads and
// their images, plan a release, release, and see the one commit and the
// cluster follow it.
func TestListAndRelease(t *testing.T) {
	ns := testenv.NewNamespace(t, k8s, "fluxapi-")
	reg := registrytest.NewServer(t)
	image := reg.Host() + "/team/app"
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	reg.Push(t, "team/app", "1.0.0", t0)
	reg.Push(t, "team/app", "1.0.1", t0.Add(time.Hour))
	repo := gittest.NewRepo(t, map[string]string{"apps/app.yaml": manifest(app, ns, image+":1.0.0")})
	createGitSync(t, ns, repo.URL(), repo.Head(), nil)
	id := ns + ":deployment/app"

	// list-workloads
	var ws []fluxapi.ControllerStatus
	eventually(t, time.Minute, "the workload listed and ready", func() (bool, string) {
		call(t, http.MethodGet, "/v6/services?namespace="+ns, nil, &ws)
		return len(ws) == 1 && ws[0].Status == fluxapi.StatusReady, strings.Join(statuses(ws), ",")
	})
	w := ws[0]
	if w.ID != id || len(w.Containers) != 1 || w.Containers[0].Name != "app" || w.Containers[0].Current.ID != image+":1.0.0" ||
		w.Automated || w.Policies["tag.app"] != "semver:~1.0" || w.Rollout.Desired != 1 {
		t.Errorf("workload %+v", w)
	}
	// The legacy ID and the services filter find it too.
	var byID []fluxapi.ControllerStatus
	call(t, http.MethodGet, "/v11/services?namespace=&services="+ns+"/app", nil, &byID)
	if len(byID) != 1 || byID[0].ID != id {
		t.Errorf("by legacy ID: %+v", byID)
	}

	// list-images: the workload is not automated, so the first request
	// has the repository read in the background.
	var imgs []fluxapi.ImageStatus
	eventually(t, time.Minute, "the image's tags from the registry cache", func() (bool, string) {
		call(t, http.MethodGet, "/v10/images?containerFields=&namespace=&service="+id, nil, &imgs)
		return len(imgs) == 1 && len(imgs[0].Containers) == 1 && len(imgs[0].Containers[0].Available) == 2, ""
	})
	c := imgs[0].Containers[0]
	if c.Available[0].ID != image+":1.0.1" || c.Available[1].ID != image+":1.0.0" || c.Current.ID != image+":1.0.0" ||
		c.LatestFiltered == nil || c.LatestFiltered.ID != image+":1.0.1" {
		t.Errorf("container %+v: want 1.0.1 then 1.0.0, newest first, and 1.0.1 the latest filtered", c)
	}

	// release --dry-run: the plan, and no commit.
	before := repo.Head()
	release := func(kind string) (string, fluxapi.JobStatus) {
		job := submit(t, map[string]any{
			"type": "image", "cause": map[string]string{"Message": "ship it", "User": "Dev <dev@example.com>"},
			"spec": map[string]any{"ServiceSpecs": []string{id}, "ImageSpec": image + ":1.0.1", "Kind": kind, "Excludes": nil, "Force": false},
		})
		return job, waitJob(t, job)
	}
	_, plan := release("plan")
	if plan.StatusString != fluxapi.JobSucceeded || plan.Result.Revision != "" || plan.Result.Result[id].Status != fluxapi.ResultSuccess ||
		len(plan.Result.Result[id].PerContainer) != 1 || plan.Result.Result[id].PerContainer[0].Target != image+":1.0.1" {
		t.Fatalf("plan %+v", plan)
	}
	if repo.RemoteHead("main").Hash.String() != before {
		t.Fatal("a dry run pushed a commit")
	}

	// release: one commit, only the tag, and the cluster runs it.
	job, done := release("execute")
	rev := done.Result.Revision
	if done.StatusString != fluxapi.JobSucceeded || len(rev) != 40 || done.Err != "" {
		t.Fatalf("release %+v", done)
	}
	head := repo.RemoteHead("main")
	if head.Hash.String() != rev || head.ParentHashes[0].String() != before {
		t.Fatalf("the remote head is %s (parent %v), want the release %s on top of %s", head.Hash, head.ParentHashes, rev, before)
	}
	if got := repo.FileAt(head, "apps/app.yaml"); got != manifest(app, ns, image+":1.0.1") {
		t.Errorf("after the release apps/app.yaml reads\n%s", got)
	}
	for _, want := range []string{"Release " + image + ":1.0.1 to " + id, "ship it", "Helmflux-Release: " + image + " 1.0.0 -> 1.0.1", "Helmflux-Workload: " + id, "Helmflux-User: Dev <dev@example.com>"} {
		if !strings.Contains(head.Message, want) {
			t.Errorf("commit message lacks %q:\n%s", want, head.Message)
		}
	}
	var progress fluxapi.JobProgress
	call(t, http.MethodGet, "/v12/jobs?id="+job, nil, &progress)
	for _, want := range []string{"Calculating release actions.", "Clone OK.", "Pushed commit: Release " + image + ":1.0.1 to " + id, "Regrade 1 workload(s): " + id + "."} {
		if !slices.ContainsFunc(progress.Steps, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("the job's steps %q lack %q", progress.Steps, want)
		}
	}
	eventually(t, time.Minute, "the Deployment to run 1.0.1", func() (bool, string) {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app"}, d); err != nil {
			return false, err.Error()
		}
		return d.Spec.Template.Spec.Containers[0].Image == image+":1.0.1", d.Spec.Template.Spec.Containers[0].Image
	})
	eventually(t, time.Minute, "/v6/sync to report the release applied", func() (bool, string) {
		var pending []string
		code, body := call(t, http.MethodGet, "/v6/sync?ref="+rev[:7], nil, &pending)
		return code == http.StatusOK && pending != nil && len(pending) == 0, body
	})
}

func statuses(ws []fluxapi.ControllerStatus) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.ID+"="+w.Status)
	}
	return out
}

// TestBadRequestsCommitNothing: an unknown workload, a malformed image and
// an unknown update get fluxd's error bodies with a helpful message, and
// nothing is committed.
func TestBadRequestsCommitNothing(t *testing.T) {
	ns := testenv.NewNamespace(t, k8s, "fluxapi-bad-")
	repo := gittest.NewRepo(t, map[string]string{"apps/app.yaml": manifest(app, ns, "example.com/team/app:1.0.0")})
	createGitSync(t, ns, repo.URL(), repo.Head(), nil)
	before := repo.Head()
	for name, tc := range map[string]struct {
		spec     any
		code     int
		contains string
	}{
		"unknown workload": {map[string]any{"type": "image", "cause": map[string]string{}, "spec": map[string]any{
			"ServiceSpecs": []string{ns + ":deployment/nope"}, "ImageSpec": "example.com/team/app:1.0.1", "Kind": "execute"}},
			http.StatusNotFound, "not among the workloads of any GitSync"},
		"malformed image": {map[string]any{"type": "image", "cause": map[string]string{}, "spec": map[string]any{
			"ServiceSpecs": []string{ns + ":deployment/app"}, "ImageSpec": "Not An Image", "Kind": "execute"}},
			http.StatusBadRequest, "invalid image"},
		"image without a tag": {map[string]any{"type": "image", "cause": map[string]string{}, "spec": map[string]any{
			"ServiceSpecs": []string{ns + ":deployment/app"}, "ImageSpec": "example.com/team/app", "Kind": "execute"}},
			http.StatusBadRequest, "with a tag"},
		"policy outside every GitSync": {map[string]any{"type": "policy", "cause": map[string]string{}, "spec": map[string]any{
			"other:deployment/x": map[string]any{"add": map[string]string{"automated": "true"}, "remove": map[string]string{}}}},
			http.StatusNotFound, "not among the workloads"},
		"unknown policy": {map[string]any{"type": "policy", "cause": map[string]string{}, "spec": map[string]any{
			ns + ":deployment/app": map[string]any{"add": map[string]string{"frobnicate": "true"}, "remove": map[string]string{}}}},
			http.StatusBadRequest, "unknown policy"},
		"unknown type": {map[string]any{"type": "auto", "cause": map[string]string{}, "spec": map[string]any{}},
			http.StatusBadRequest, "unknown update type"},
	} {
		code, body := call(t, http.MethodPost, "/v9/update-manifests", tc.spec, nil)
		if e := decodeError(t, body); code != tc.code || !strings.Contains(e.Help, tc.contains) {
			t.Errorf("%s: %d %+v, want %d and help with %q", name, code, e, tc.code, tc.contains)
		}
	}
	if repo.RemoteHead("main").Hash.String() != before {
		t.Error("a refused request pushed a commit")
	}
}

// TestSyncIdentityAndExport: fluxctl sync, identity and save.
func TestSyncIdentityAndExport(t *testing.T) {
	ns := testenv.NewNamespace(t, k8s, "fluxapi-sync-")
	repo := gittest.NewRepo(t, map[string]string{
		"apps/app.yaml":    manifest(app, ns, "example.com/team/app:1.0.0"),
		"apps/secret.yaml": manifest(secret, ns, ""),
	})
	createGitSync(t, ns, repo.URL(), repo.Head(), nil)

	var cfg fluxapi.GitConfig
	if code, body := call(t, http.MethodPost, "/v9/git-repo-config", false, &cfg); code != http.StatusOK {
		t.Fatalf("git-repo-config: %d %s", code, body)
	}
	if !strings.HasPrefix(cfg.PublicSSHKey.Key, "ssh-ed25519 ") || cfg.Status != fluxapi.GitReady || cfg.Remote.URL != repo.URL() || cfg.Remote.Branch != "main" {
		t.Errorf("git config %+v", cfg)
	}
	// fluxctl identity prints key and randomart as they come; fluxd sent
	// them as ssh-keygen wrote them, each line ended.
	if strings.Count(cfg.PublicSSHKey.Key, "\n") != 1 || !strings.HasSuffix(cfg.PublicSSHKey.Key, "\n") {
		t.Errorf("key %q: want one line, ended by a newline as ssh-keygen -y ends it", cfg.PublicSSHKey.Key)
	}
	md5 := cfg.PublicSSHKey.Fingerprints["md5"]
	if !strings.HasPrefix(md5.Hash, "MD5:") || strings.Count(md5.Randomart, "\n") != 11 || !strings.HasSuffix(md5.Randomart, "+\n") {
		t.Errorf("md5 fingerprint %+v: want 11 lines, each ended by a newline as ssh-keygen -lv ends them", md5)
	}
	var again, regenerated fluxapi.GitConfig
	call(t, http.MethodPost, "/v9/git-repo-config", false, &again)
	call(t, http.MethodPost, "/v9/git-repo-config", true, &regenerated)
	if again.PublicSSHKey.Key != cfg.PublicSSHKey.Key || regenerated.PublicSSHKey.Key == cfg.PublicSSHKey.Key {
		t.Errorf("the key must stay until regenerated: %q, %q, %q", cfg.PublicSSHKey.Key, again.PublicSSHKey.Key, regenerated.PublicSSHKey.Key)
	}
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: idKey.Namespace, Name: idKey.Name}, s); err != nil ||
		!strings.Contains(string(s.Data["identity.pub"]), strings.Fields(regenerated.PublicSSHKey.Key)[1]) {
		t.Errorf("the identity Secret holds %q, want the regenerated key (%v)", s.Data["identity.pub"], err)
	}

	// sync: a new commit is fetched, and /v6/sync says when it is applied.
	head := repo.CommitFiles("more", map[string]string{"apps/more.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: more, namespace: " + ns + "}\n"})
	st := waitJob(t, submit(t, map[string]any{"type": "sync", "cause": map[string]string{}, "spec": map[string]any{}}))
	if st.StatusString != fluxapi.JobSucceeded || st.Result.Revision != head {
		t.Fatalf("sync job %+v, want revision %s", st, head)
	}
	eventually(t, time.Minute, "the fetched commit applied", func() (bool, string) {
		var pending []string
		code, body := call(t, http.MethodGet, "/v6/sync?ref="+head[:7], nil, &pending)
		return code == http.StatusOK && pending != nil && len(pending) == 0, body
	})
	if code, body := call(t, http.MethodGet, "/v6/sync?ref=0123456", nil, nil); code != http.StatusNotFound {
		t.Errorf("an unknown ref: %d %s, want 404", code, body)
	}

	// save: the objects as YAML, never a Secret.
	var export []byte
	if code, body := call(t, http.MethodGet, "/v6/export", nil, &export); code != http.StatusOK {
		t.Fatalf("export: %d %s", code, body)
	}
	yaml := string(export)
	for _, want := range []string{"kind: Deployment", "name: app", "kind: ConfigMap", "name: more"} {
		if !strings.Contains(yaml, want) {
			t.Errorf("export lacks %q:\n%s", want, yaml)
		}
	}
	if strings.Contains(yaml, "kind: Secret") || strings.Contains(yaml, canary) || strings.Contains(yaml, base64.StdEncoding.EncodeToString([]byte(canary))) {
		t.Errorf("export holds the Secret:\n%s", yaml)
	}
	if strings.Contains(yaml, "resourceVersion") || strings.Contains(yaml, "status:") || strings.Contains(yaml, "managedFields") || strings.Contains(yaml, "helmflux.dev/") {
		t.Errorf("export holds what the cluster set:\n%s", yaml)
	}
}

// TestPolicyChangesAreCommits: automate, lock, unlock and a tag policy each
// become one commit that edits only the workload's annotations, and the
// workload list shows the new policies once they are applied.
func TestPolicyChangesAreCommits(t *testing.T) {
	ns := testenv.NewNamespace(t, k8s, "fluxapi-policy-")
	repo := gittest.NewRepo(t, map[string]string{"apps/app.yaml": manifest(app, ns, "example.com/team/app:1.0.0")})
	createGitSync(t, ns, repo.URL(), repo.Head(), nil)
	id := ns + ":deployment/app"
	for _, tc := range []struct {
		name        string
		add, remove map[string]string
		subject     string
		want        func(fluxapi.ControllerStatus) bool
	}{
		{"automate", map[string]string{"automated": "true"}, map[string]string{}, "Automated: " + id,
			func(w fluxapi.ControllerStatus) bool { return w.Automated }},
		{"lock", map[string]string{"locked": "true", "locked_msg": "release freeze", "locked_user": "Dev <dev@example.com>"}, map[string]string{}, "Locked: " + id,
			func(w fluxapi.ControllerStatus) bool { return w.Locked && w.Policies["locked_msg"] == "release freeze" }},
		{"unlock", map[string]string{}, map[string]string{"locked": "true", "locked_msg": "true", "locked_user": "true"}, "Unlocked: " + id,
			func(w fluxapi.ControllerStatus) bool { return !w.Locked && w.Policies["locked_msg"] == "" }},
		{"tag", map[string]string{"tag.app": "glob:1.*"}, map[string]string{}, "Updated policies: " + id,
			func(w fluxapi.ControllerStatus) bool { return w.Policies["tag.app"] == "glob:1.*" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := repo.RemoteHead("main")
			st := waitJob(t, submit(t, map[string]any{
				"type": "policy", "cause": map[string]string{"User": "Dev <dev@example.com>"},
				"spec": map[string]any{id: map[string]any{"add": tc.add, "remove": tc.remove}},
			}))
			if st.StatusString != fluxapi.JobSucceeded || st.Result.Result[id].Status != fluxapi.ResultSuccess || len(st.Result.Revision) != 40 {
				t.Fatalf("job %+v", st)
			}
			head := repo.RemoteHead("main")
			if head.ParentHashes[0] != before.Hash || !strings.HasPrefix(head.Message, tc.subject+"\n") {
				t.Fatalf("commit %s (parent %v): %q, want one commit %q on %s", head.Hash, head.ParentHashes, head.Message, tc.subject, before.Hash)
			}
			if changed := gittest.ChangedPaths(t, head); len(changed) != 1 || changed[0] != "apps/app.yaml" {
				t.Errorf("the commit changes %v", changed)
			}
			old, now := repo.FileAt(before, "apps/app.yaml"), repo.FileAt(head, "apps/app.yaml")
			if _, rest, _ := strings.Cut(old, "spec:"); !strings.HasSuffix(now, "spec:"+rest) {
				t.Errorf("the commit changed more than the annotations:\n%s", now)
			}
			eventually(t, time.Minute, "the workload to show the policy", func() (bool, string) {
				var ws []fluxapi.ControllerStatus
				call(t, http.MethodGet, "/v11/services?namespace=&services="+id, nil, &ws)
				return len(ws) == 1 && tc.want(ws[0]), strings.Join(statuses(ws), ",")
			})
		})
	}
}

// TestTheIdentityIsTheDeployKeyOfGitSyncsWithoutSecret: as with fluxd's
// deploy key, a GitSync over SSH that names no secretRef fetches with the
// key `fluxctl identity` prints.
func TestTheIdentityIsTheDeployKeyOfGitSyncsWithoutSecret(t *testing.T) {
	var cfg fluxapi.GitConfig
	if code, body := call(t, http.MethodPost, "/v9/git-repo-config", false, &cfg); code != http.StatusOK {
		t.Fatalf("git-repo-config: %d %s", code, body)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(cfg.PublicSSHKey.Key))
	if err != nil {
		t.Fatalf("the identity %q does not parse: %v", cfg.PublicSSHKey.Key, err)
	}
	ns := testenv.NewNamespace(t, k8s, "fluxapi-identity-")
	repo := gittest.NewRepo(t, map[string]string{"apps/app.yaml": manifest(app, ns, "example.com/team/app:1.0.0")})
	srv := gittest.NewSSHServer(t, repo.Root(), pub)
	createGitSync(t, ns, srv.URL(gittest.RepoName), repo.Head(), func(gs *helmfluxv1alpha1.GitSync) {
		gs.Spec.InsecureIgnoreHostKey = true
	})
	if srv.Logins() == 0 {
		t.Error("the GitSync was applied without an SSH login")
	}
}

// TestSyncStatusKnowsAPushBeforeTheGitSyncDoes: right after a release job
// pushed, /v6/sync answers the commit as pending, never "not fetched",
// even while no GitSync has fetched it yet: fluxctl release polls it at
// once and gives up on the first error. A suspended GitSync holds that
// moment open.
func TestSyncStatusKnowsAPushBeforeTheGitSyncDoes(t *testing.T) {
	ns := testenv.NewNamespace(t, k8s, "fluxapi-pending-")
	repo := gittest.NewRepo(t, map[string]string{"apps/app.yaml": manifest(app, ns, "example.com/team/app:1.0.0")})
	gs := createGitSync(t, ns, repo.URL(), repo.Head(), nil)
	suspend(t, gs)
	id := ns + ":deployment/app"
	st := waitJob(t, submit(t, map[string]any{
		"type": "image", "cause": map[string]string{},
		"spec": map[string]any{"ServiceSpecs": []string{id}, "ImageSpec": "example.com/team/app:1.0.1", "Kind": "execute"},
	}))
	rev := st.Result.Revision
	if st.StatusString != fluxapi.JobSucceeded || len(rev) != 40 {
		t.Fatalf("release %+v", st)
	}
	for _, ref := range []string{rev, rev[:7]} {
		var pending []string
		if code, body := call(t, http.MethodGet, "/v6/sync?ref="+ref, nil, &pending); code != http.StatusOK || len(pending) != 1 || pending[0] != rev {
			t.Errorf("/v6/sync?ref=%s before the GitSync fetched the pushed commit: %d %s, want 200 [%q]", ref, code, body, rev)
		}
	}
	setSuspend(t, gs, false)
	eventually(t, time.Minute, "/v6/sync to report the release applied once the GitSync resumes", func() (bool, string) {
		var pending []string
		code, body := call(t, http.MethodGet, "/v6/sync?ref="+rev, nil, &pending)
		return code == http.StatusOK && pending != nil && len(pending) == 0, body
	})
}

// TestARefusedPushFailsTheJob: when the remote refuses the push (a
// protected branch, a server hook), the release job fails with the
// remote's reason and nothing is committed.
func TestARefusedPushFailsTheJob(t *testing.T) {
	ns := testenv.NewNamespace(t, k8s, "fluxapi-refused-")
	repo := gittest.NewRepo(t, map[string]string{"apps/app.yaml": manifest(app, ns, "example.com/team/app:1.0.0")})
	srv := gittest.NewHTTPServer(t, repo.Root())
	createGitSync(t, ns, srv.URL(gittest.RepoName), repo.Head(), nil)
	repo.Hook("pre-receive", "#!/bin/sh\necho 'main is protected: open a pull request' >&2\nexit 1\n")
	before := repo.RemoteHead("main").Hash
	st := waitJob(t, submit(t, map[string]any{
		"type": "image", "cause": map[string]string{},
		"spec": map[string]any{"ServiceSpecs": []string{ns + ":deployment/app"}, "ImageSpec": "example.com/team/app:1.0.1", "Kind": "execute"},
	}))
	if st.StatusString != fluxapi.JobFailed || !strings.Contains(st.Err, "push rejected") || !strings.Contains(st.Err, "hook declined") || st.Result.Revision != "" {
		t.Errorf("job %+v, want it failed on the push, with no revision", st)
	}
	if repo.RemoteHead("main").Hash != before {
		t.Error("a refused push left a commit on the remote")
	}
}

// workloads of every kind the API lists, each with one container.
const kinds = `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: NS}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: example.com/team/db:2.0.0}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: NS}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: example.com/team/agent:3.0.0}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: NS}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: report, image: example.com/team/report:4.0.0}]
---
apiVersion: helm.fluxcd.io/v1
kind: HelmRelease
metadata:
  name: web
  namespace: NS
  annotations:
    fluxcd.io/automated: "true"
spec:
  chart: {repository: "http://127.0.0.1:1/charts", name: web, version: 1.0.0}
  values:
    image:
      repository: example.com/team/web
      tag: 5.0.0
---
apiVersion: helm.fluxcd.io/v1
kind: HelmRelease
metadata:
  name: api
  namespace: NS
spec:
  chart: {repository: "http://127.0.0.1:1/charts", name: api, version: 1.0.0}
  valuesFrom:
    - gitFileRef: {path: values/api.yaml}
`

// apiValues is the values file of the HelmRelease api, in git beside it.
const apiValues = `image:
  repository: example.com/team/api
  tag: 6.0.0
`

// TestEveryWorkloadKindIsListed: StatefulSets, DaemonSets, CronJobs and
// HelmReleases (their images found in values, as automation finds them,
// values files in git included) are workloads too.
func TestEveryWorkloadKindIsListed(t *testing.T) {
	ns := testenv.NewNamespace(t, k8s, "fluxapi-kinds-")
	repo := gittest.NewRepo(t, map[string]string{"apps/kinds.yaml": strings.ReplaceAll(kinds, "NS", ns), "values/api.yaml": apiValues})
	createGitSync(t, ns, repo.URL(), repo.Head(), nil)
	want := map[string]string{
		ns + ":statefulset/db":  "db=example.com/team/db:2.0.0",
		ns + ":daemonset/agent": "agent=example.com/team/agent:3.0.0",
		ns + ":cronjob/nightly": "report=example.com/team/report:4.0.0",
		ns + ":helmrelease/web": "chart-image=example.com/team/web:5.0.0",
		ns + ":helmrelease/api": "chart-image=example.com/team/api:6.0.0",
	}
	var ws []fluxapi.ControllerStatus
	call(t, http.MethodGet, "/v6/services?namespace="+ns, nil, &ws)
	got := map[string]string{}
	for _, w := range ws {
		for _, c := range w.Containers {
			got[w.ID] = c.Name + "=" + c.Current.ID
		}
		if w.ID == ns+":helmrelease/web" && !w.Automated {
			t.Errorf("the HelmRelease's automated policy is missing: %+v", w)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("workloads %v, want %v", got, want)
	}
	for id, c := range want {
		if got[id] != c {
			t.Errorf("%s: %q, want %q", id, got[id], c)
		}
	}
}

// TestNotifySyncsTheRepository: a git change notification (/v11/notify,
// what fluxd's webhook relays send) syncs the GitSyncs of that URL now,
// not at their interval.
func TestNotifySyncsTheRepository(t *testing.T) {
	ns := testenv.NewNamespace(t, k8s, "fluxapi-notify-")
	repo := gittest.NewRepo(t, map[string]string{"apps/app.yaml": manifest(app, ns, "example.com/team/app:1.0.0")})
	createGitSync(t, ns, repo.URL(), repo.Head(), func(gs *helmfluxv1alpha1.GitSync) {
		gs.Spec.Interval.Duration = time.Hour
	})
	head := repo.CommitFiles("more", map[string]string{"apps/more.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: more, namespace: " + ns + "}\n"})
	body := map[string]any{"Kind": "git", "Source": map[string]string{"URL": repo.URL() + "/", "Branch": "main"}}
	if code, resp := call(t, http.MethodPost, "/v11/notify", body, nil); code != http.StatusAccepted {
		t.Fatalf("notify: %d %s", code, resp)
	}
	eventually(t, time.Minute, "the notified commit applied", func() (bool, string) {
		var pending []string
		code, resp := call(t, http.MethodGet, "/v6/sync?ref="+head, nil, &pending)
		return code == http.StatusOK && pending != nil && len(pending) == 0, resp
	})
	if code, resp := call(t, http.MethodPost, "/v11/notify", map[string]any{"Kind": "carrier-pigeon"}, nil); code != http.StatusBadRequest {
		t.Errorf("an unknown kind: %d %s, want 400", code, resp)
	}
}

// TestWhyAnswersFromAutomationStatus: GET /v12/why gives, for a workload,
// what image automation decided per container (the tag in git, the best
// candidate, the tags passed over and why) and its holds; /v12/holds lists
// the holds of every GitSync.
func TestWhyAnswersFromAutomationStatus(t *testing.T) {
	ns := testenv.NewNamespace(t, k8s, "fluxapi-why-")
	reg := registrytest.NewServer(t)
	image := reg.Host() + "/team/app"
	reg.PushTags(t, "team/app", "1.0.0", "2.0.0")
	repo := gittest.NewRepo(t, map[string]string{"apps/app.yaml": testenv.AutomatedDeployment(ns, "app", image+":1.0.0", "semver:~1.0")})
	createGitSync(t, ns, repo.URL(), repo.Head(), nil)
	id := ns + ":deployment/app"
	var why fluxapi.WorkloadImages
	eventually(t, time.Minute, "automation's decision in /v12/why", func() (bool, string) {
		code, body := call(t, http.MethodGet, "/v12/why?workload="+id, nil, &why)
		return code == http.StatusOK && len(why.Containers) == 1, body
	})
	c := why.Containers[0]
	if why.ID != id || why.GitSync != ns+"/apps" || c.Tag != "1.0.0" || c.Best != "1.0.0" ||
		len(c.PassedOver) != 1 || c.PassedOver[0].Tag != "2.0.0" || c.PassedOver[0].Reason != helmfluxv1alpha1.PassedFilter {
		t.Errorf("why %+v, want 1.0.0 kept and 2.0.0 passed over by the filter", why)
	}
	var holds []fluxapi.Hold
	if code, body := call(t, http.MethodGet, "/v12/holds?namespace="+ns, nil, &holds); code != http.StatusOK || holds == nil || len(holds) != 0 {
		t.Errorf("holds: %d %s, want an empty list", code, body)
	}
	if code, body := call(t, http.MethodGet, "/v12/why?workload="+ns+":deployment/nope", nil, nil); code != http.StatusNotFound {
		t.Errorf("why of an unknown workload: %d %s, want 404", code, body)
	}
}

// TestManyWorkloadsAreListed: a namespace with more workloads of one kind
// than listAtLeast (read with one List, not a Get each; the request count
// is what list_workloads_p50_ms shows) answers each workload with its own
// image, and leaves out one deleted since the apply.
func TestManyWorkloadsAreListed(t *testing.T) {
	ns := testenv.NewNamespace(t, k8s, "fluxapi-many-")
	files := map[string]string{}
	const n = 6
	for i := range n {
		name := fmt.Sprintf("app%d", i)
		files["apps/"+name+".yaml"] = strings.NewReplacer("name: app\n", "name: "+name+"\n", "{app: app}", "{app: "+name+"}").
			Replace(manifest(app, ns, fmt.Sprintf("example.com/team/%s:1.0.%d", name, i)))
	}
	repo := gittest.NewRepo(t, files)
	gs := createGitSync(t, ns, repo.URL(), repo.Head(), nil)
	// Suspended, the GitSync keeps its inventory and does not put app3 back
	// (it would within seconds, from the watch of what it applied).
	suspend(t, gs)
	gone := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app3"}}
	if err := k8s.Delete(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "app3 to be gone", func() (bool, string) {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(gone), &appsv1.Deployment{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	var ws []fluxapi.ControllerStatus
	eventually(t, 30*time.Second, "the listing to leave app3 out", func() (bool, string) {
		ws = nil
		call(t, http.MethodGet, "/v6/services?namespace="+ns, nil, &ws)
		return len(ws) == n-1, fmt.Sprint(len(ws))
	})
	for _, w := range ws {
		name := strings.TrimPrefix(w.ID, ns+":deployment/")
		want := fmt.Sprintf("example.com/team/%s:1.0.%s", name, strings.TrimPrefix(name, "app"))
		if len(w.Containers) != 1 || w.Containers[0].Name != name || w.Containers[0].Current.ID != want || name == "app3" {
			t.Errorf("%s: containers %+v, want %s running %s", w.ID, w.Containers, name, want)
		}
	}
}
