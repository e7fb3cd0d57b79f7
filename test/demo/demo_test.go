package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/helmflux/helmflux/internal/testenv"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// The demo a new user runs: a control plane they can reach with the printed
// kubeconfig, the operator following pushes to plain manifests and to a
// HelmRelease, and writing a new image tag from the registry back to git.
func TestDemoStartsAReachableControlPlane(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	operator := filepath.Join(t.TempDir(), "helmflux-operator")
	build := exec.Command("go", "build", "-o", operator, "./operator")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the operator: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	state := t.TempDir()
	var out bytes.Buffer
	var listed, greeting, released, automated, held string
	var opts options
	opts = options{root: root, stateDir: state, operator: operator,
		gitAddr: freeAddr(t), hookAddr: freeAddr(t), chartAddr: freeAddr(t), registryAddr: freeAddr(t), onReady: func(kubeconfig string) {
			defer cancel()
			kubectl := func(args ...string) string {
				cmd := exec.Command(filepath.Join(root, "bin", "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
				b, err := cmd.CombinedOutput()
				if err != nil {
					t.Errorf("kubectl %v: %v\n%s", args, err, b)
				}
				return string(b)
			}
			listed = kubectl("get", "gitsyncs,helmreleases,deployments,services", "-A", "-o", "name")

			// The user's story: edit, commit, push; the cluster follows.
			work := filepath.Join(state, "work")
			welcome := filepath.Join(work, "apps", "welcome.yaml")
			b, err := os.ReadFile(welcome)
			if err != nil {
				t.Error(err)
				return
			}
			if err := os.WriteFile(welcome, []byte(strings.Replace(string(b), "Hello from git", "Hello again", 1)), 0o600); err != nil {
				t.Error(err)
				return
			}
			repo, err := gogit.PlainOpen(work)
			if err != nil {
				t.Error(err)
				return
			}
			srv := &gitServer{url: "unused"}
			if err := srv.commitAndPush(context.Background(), repo, "Change the greeting"); err != nil {
				t.Error(err)
				return
			}
			deadline := time.Now().Add(time.Minute)
			for time.Now().Before(deadline) {
				greeting = kubectl("get", "configmap", "welcome", "-n", "demo", "-o", "jsonpath={.data.greeting}")
				if greeting == "Hello again" {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}

			// The Helm release follows a commit too.
			podinfo := filepath.Join(work, "apps", "podinfo.yaml")
			b, err = os.ReadFile(podinfo)
			if err != nil {
				t.Error(err)
				return
			}
			if err := os.WriteFile(podinfo, []byte(strings.Replace(string(b), "version: 6.5.0", "version: 6.5.1", 1)), 0o600); err != nil {
				t.Error(err)
				return
			}
			if err := srv.commitAndPush(context.Background(), repo, "Upgrade podinfo"); err != nil {
				t.Error(err)
				return
			}
			deadline = time.Now().Add(2 * time.Minute)
			for time.Now().Before(deadline) {
				released = kubectl("get", "helmrelease", "podinfo", "-n", "demo", "-o",
					`jsonpath={.status.revision} {.status.conditions[?(@.type=="Ready")].status}`)
				if released == "6.5.1 True" {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if released != "6.5.1 True" {
				return
			}

			// A CI pipeline pushes a new image: helmflux commits its tag to
			// the values file, and the release follows that commit.
			automated = pushNewImage(t, opts, repo, kubectl, "6.5.1")
			if automated == opts.registryAddr+"/podinfo:6.5.1" {
				held = revertImage(t, opts, repo, kubectl)
			}
		}}
	if err := run(ctx, opts, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"gitsync.helmflux.dev/demo", "helmrelease.helm.fluxcd.io/podinfo", "deployment.apps/hello", "service/hello"} {
		if !strings.Contains(listed, want) {
			t.Errorf("kubectl get lists %q, want it to hold %s", listed, want)
		}
	}
	if released != "6.5.1 True" {
		t.Errorf("after the upgrade commit the HelmRelease is %q, want revision 6.5.1 and Ready", released)
	}
	if !strings.Contains(listed, "deployment.apps/demo-podinfo") {
		t.Errorf("the podinfo release's Deployment is missing: %s", listed)
	}
	if want := opts.registryAddr + "/podinfo:6.5.1"; automated != want {
		t.Errorf("after push-tag 6.5.1 the podinfo Deployment runs %q, want %q", automated, want)
	}
	if held != "6.5.1 6.5.0 Rollback" {
		t.Errorf("after the revert of helmflux's commit the hold is %q, want tag 6.5.1 held with git at 6.5.0 (Rollback)", held)
	}
	if !strings.Contains(out.String(), "push-tag 6.5.1") {
		t.Errorf("demo output does not say how to push a new image:\n%s", out.String())
	}
	if greeting != "Hello again" {
		t.Errorf("after the push the greeting is %q, want %q", greeting, "Hello again")
	}
	if !strings.Contains(out.String(), "export KUBECONFIG="+filepath.Join(state, "kubeconfig")) {
		t.Errorf("demo output does not say how to reach the cluster:\n%s", out.String())
	}
}

// pushNewImage runs `demo push-tag tag` and checks what a user then sees: one
// commit by helmflux on top of their clone's head that changes only the tag
// in values/podinfo.yaml, and the release upgraded to it. It returns the
// image the podinfo Deployment ends up running.
func pushNewImage(t *testing.T, opts options, repo *gogit.Repository, kubectl func(...string) string, tag string) string {
	t.Helper()
	const valuesFile = "values/podinfo.yaml"
	head, err := repo.Head()
	if err != nil {
		t.Error(err)
		return ""
	}
	before, err := repo.CommitObject(head.Hash())
	if err != nil {
		t.Error(err)
		return ""
	}
	oldValues := fileAt(t, before, valuesFile)
	oldRelease := kubectl("get", "helmrelease", "podinfo", "-n", "demo", "-o", "jsonpath={.status.releaseRevision}")

	var pushed bytes.Buffer
	if err := pushTags(context.Background(), opts, &pushed, []string{tag}); err != nil {
		t.Errorf("push-tag %s: %v\n%s", tag, err, pushed.String())
		return ""
	}

	// The tag lists of the first pass stay cached for --registry-poll-interval
	// (5m): only push-tag's registry notification brings the commit this
	// soon.
	wt, err := repo.Worktree()
	if err != nil {
		t.Error(err)
		return ""
	}
	pull := &gogit.PullOptions{RemoteName: "origin", ReferenceName: plumbing.NewBranchReferenceName("main"), SingleBranch: true}
	deadline := time.Now().Add(time.Minute)
	for {
		err = wt.Pull(pull)
		if err == nil || time.Now().After(deadline) {
			break
		}
		if !errors.Is(err, gogit.NoErrAlreadyUpToDate) {
			t.Errorf("git pull: %v", err)
			return ""
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("no commit reached the demo repository within a minute of push-tag %s (git pull: %v)", tag, err)
		return ""
	}
	head, err = repo.Head()
	if err != nil {
		t.Error(err)
		return ""
	}
	commit, err := repo.CommitObject(head.Hash())
	if err != nil {
		t.Error(err)
		return ""
	}
	if len(commit.ParentHashes) != 1 || commit.ParentHashes[0] != before.Hash {
		t.Errorf("the new head %s has parents %v, want exactly one new commit on top of %s", commit.Hash, commit.ParentHashes, before.Hash)
	}
	if commit.Author.Name != "helmflux" {
		t.Errorf("the image commit is by %q, want helmflux", commit.Author.Name)
	}
	changed := changedFiles(t, before, commit)
	if len(changed) != 1 || changed[0] != valuesFile {
		t.Errorf("the image commit changes %v, want only %s", changed, valuesFile)
	}
	want := strings.Replace(oldValues, "tag: 6.5.0", "tag: "+tag, 1)
	if got := fileAt(t, commit, valuesFile); got != want {
		t.Errorf("after the image commit %s reads\n%s\nwant only the tag changed:\n%s", valuesFile, got, want)
	}

	// The GitSync applies the commit; the HelmRelease reads the values file
	// at it and upgrades: a new Helm release revision, Ready, the new image.
	var release, image string
	deadline = time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		release = kubectl("get", "helmrelease", "podinfo", "-n", "demo", "-o",
			`jsonpath={.status.releaseRevision} {.status.conditions[?(@.type=="Ready")].status}`)
		image = kubectl("get", "deployment", "demo-podinfo", "-n", "demo", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
		rev, ready, _ := strings.Cut(release, " ")
		if rev != oldRelease && ready == "True" && image == opts.registryAddr+"/podinfo:"+tag {
			return image
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("after the image commit the HelmRelease is %q (release revision, Ready), want a release revision after %s and Ready", release, oldRelease)
	return image
}

// revertImage is the README's last step: the user reverts helmflux's image
// commit and pushes. The release goes back to 6.5.0 and the GitSync reports
// the hold; the pass that found it committed nothing. It returns the hold
// as "<tag> <current> <reason>".
func revertImage(t *testing.T, opts options, repo *gogit.Repository, kubectl func(...string) string) string {
	t.Helper()
	head, err := repo.Head()
	if err != nil {
		t.Error(err)
		return ""
	}
	bump, err := repo.CommitObject(head.Hash())
	if err != nil {
		t.Error(err)
		return ""
	}
	parent, err := bump.Parent(0)
	if err != nil {
		t.Error(err)
		return ""
	}
	work := filepath.Join(opts.stateDir, "work")
	const valuesFile = "values/podinfo.yaml"
	if err := os.WriteFile(filepath.Join(work, valuesFile), []byte(fileAt(t, parent, valuesFile)), 0o600); err != nil {
		t.Error(err)
		return ""
	}
	srv := &gitServer{url: "unused"}
	if err := srv.commitAndPush(context.Background(), repo, "Revert \""+strings.SplitN(bump.Message, "\n", 2)[0]+"\"\n\nThis reverts commit "+bump.Hash.String()+"."); err != nil {
		t.Error(err)
		return ""
	}
	var image, hold string
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		image = kubectl("get", "deployment", "demo-podinfo", "-n", "demo", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
		hold = kubectl("get", "gitsync", "demo", "-n", "helmflux-system", "-o",
			"jsonpath={.status.imageAutomation.holds[0].tag} {.status.imageAutomation.holds[0].current} {.status.imageAutomation.holds[0].reason}")
		if image == opts.registryAddr+"/podinfo:6.5.0" && hold == "6.5.1 6.5.0 Rollback" {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if image != opts.registryAddr+"/podinfo:6.5.0" {
		t.Errorf("after the revert the podinfo Deployment runs %q, want 6.5.0 again", image)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Error(err)
		return hold
	}
	err = wt.Pull(&gogit.PullOptions{RemoteName: "origin", ReferenceName: plumbing.NewBranchReferenceName("main"), SingleBranch: true})
	if !errors.Is(err, gogit.NoErrAlreadyUpToDate) {
		t.Errorf("after the hold was reported, git pull says %v, want already up to date: automation committed over the revert", err)
	}
	return hold
}

// fileAt returns the content of path at commit c.
func fileAt(t *testing.T, c *object.Commit, path string) string {
	t.Helper()
	f, err := c.File(path)
	if err != nil {
		t.Errorf("%s at %s: %v", path, c.Hash, err)
		return ""
	}
	s, err := f.Contents()
	if err != nil {
		t.Errorf("%s at %s: %v", path, c.Hash, err)
	}
	return s
}

// changedFiles returns the paths that differ between the trees of two
// commits.
func changedFiles(t *testing.T, from, to *object.Commit) []string {
	t.Helper()
	a, err := from.Tree()
	if err != nil {
		t.Error(err)
		return nil
	}
	b, err := to.Tree()
	if err != nil {
		t.Error(err)
		return nil
	}
	changes, err := object.DiffTree(a, b)
	if err != nil {
		t.Error(err)
		return nil
	}
	var paths []string
	for _, c := range changes {
		name := c.To.Name
		if name == "" {
			name = c.From.Name
		}
		paths = append(paths, name)
	}
	return paths
}
