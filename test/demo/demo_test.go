package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	cliBin := filepath.Join(t.TempDir(), "helmflux")
	build = exec.Command("go", "build", "-o", cliBin, "./cli")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the CLI: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	state := t.TempDir()
	var out bytes.Buffer
	var listed, greeting, released, automated, held, rereleased string
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
				cli := demoCLI{t: t, bin: cliBin, url: "http://" + opts.hookAddr + "/api/flux"}
				held = rollBack(t, opts, repo, kubectl, cli)
				if held == "6.5.1 6.5.0 Rollback" {
					rereleased = releaseAgain(t, opts, kubectl, cli)
				}
			}
		}}
	if err := run(ctx, opts, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	// The narration tells the story: synced, installed, bumped, upgraded.
	for _, want := range []string{"] helmflux synced: GitSync helmflux-system/demo applied main@sha1:",
		"] helmflux installed: HelmRelease demo/podinfo: ", "] helmflux upgraded: HelmRelease demo/podinfo: ",
		"] helmflux bumped: image automation committed main@sha1:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo's narration lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(state, pidFile)); !os.IsNotExist(err) {
		t.Errorf("the demo left its pid file behind: %v", err)
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
		t.Errorf("after helmflux rollback the hold is %q, want tag 6.5.1 held with git at 6.5.0 (Rollback)", held)
	}
	if want := opts.registryAddr + "/podinfo:6.5.1"; rereleased != want {
		t.Errorf("after helmflux release of 6.5.1 the podinfo Deployment runs %q, want %q", rereleased, want)
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

// demoCLI runs bin/helmflux against the demo operator, as the README's
// `export FLUX_URL=...` does.
type demoCLI struct {
	t        *testing.T
	bin, url string
}

// run runs the CLI and returns its standard output and error; a non-zero
// exit fails the test.
func (c demoCLI) run(args ...string) (stdout, stderr string) {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...) // #nosec G204 -- the CLI built for the test
	cmd.Env = append(os.Environ(), "FLUX_URL="+c.url, "NO_COLOR=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		c.t.Errorf("helmflux %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	c.t.Logf("$ helmflux %s\n%s%s", strings.Join(args, " "), errOut.String(), out.String())
	return out.String(), errOut.String()
}

// rollBack is the README's rollback: the user lists the workloads, rolls
// the HelmRelease back to the tag before helmflux's commit with `helmflux
// rollback --previous`, and asks `helmflux why`. The release goes back to
// 6.5.0 and the GitSync reports the hold; the pass that found it committed
// nothing. It returns the hold as "<tag> <current> <reason>".
func rollBack(t *testing.T, opts options, repo *gogit.Repository, kubectl func(...string) string, cli demoCLI) string {
	t.Helper()
	const id = "demo:helmrelease/podinfo"
	out, _ := cli.run("list-workloads", "-n", "demo")
	if !strings.Contains(out, id) || !strings.Contains(out, opts.registryAddr+"/podinfo:6.5.1") || !strings.Contains(out, "automated") {
		t.Errorf("helmflux list-workloads -n demo: want %s automated at 6.5.1:\n%s", id, out)
	}
	out, errOut := cli.run("rollback", "-w", id, "--previous", "-m", "6.5.1 breaks the login page")
	if !strings.Contains(out, id+"  success") || !strings.Contains(errOut, "Commit applied:") {
		t.Errorf("helmflux rollback: want the workload's success and the commit applied:\n%s%s", out, errOut)
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
		t.Errorf("after the rollback the podinfo Deployment runs %q, want 6.5.0 again", image)
	}
	if out, _ := cli.run("why", "-w", id); !strings.Contains(out, "in git    6.5.0") || !strings.Contains(out, "hold: rollback 6.5.1 keeps 6.5.0") {
		t.Errorf("helmflux why: want 6.5.0 in git and the hold of 6.5.1:\n%s", out)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Error(err)
		return hold
	}
	pull := &gogit.PullOptions{RemoteName: "origin", ReferenceName: plumbing.NewBranchReferenceName("main"), SingleBranch: true}
	if err := wt.Pull(pull); err != nil {
		t.Errorf("git pull of the rollback commit: %v", err)
	}
	if head, err := repo.Head(); err == nil {
		if c, err := repo.CommitObject(head.Hash()); err == nil && !strings.HasPrefix(c.Message, "Roll back "+id) {
			t.Errorf("after the hold was reported the head is %q, want the rollback commit: automation committed over it", c.Message)
		}
	}
	return hold
}

// releaseAgain is the README's last step: the user releases 6.5.1 by hand
// once it is fixed; a person's release ends the hold. It returns the image
// the podinfo Deployment then runs.
func releaseAgain(t *testing.T, opts options, kubectl func(...string) string, cli demoCLI) string {
	t.Helper()
	out, errOut := cli.run("release", "-w", "demo:helmrelease/podinfo", "-i", opts.registryAddr+"/podinfo:6.5.1", "-m", "the login page is fixed")
	if !strings.Contains(out, "chart-image: "+opts.registryAddr+"/podinfo:6.5.0 -> 6.5.1") || !strings.Contains(errOut, "Commit applied:") {
		t.Errorf("helmflux release: want chart-image 6.5.0 -> 6.5.1 and the commit applied:\n%s%s", out, errOut)
	}
	var image string
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		image = kubectl("get", "deployment", "demo-podinfo", "-n", "demo", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
		if image == opts.registryAddr+"/podinfo:6.5.1" {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return image
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

// make demo-stop stops the process named in the demo's pid file with
// SIGTERM, as Ctrl-C would, and waits until it is gone; with no demo it
// says so.
func TestDemoStop(t *testing.T) {
	state := t.TempDir()
	var out bytes.Buffer
	if err := stopDemo(state, &out, time.Second); err != nil || !strings.Contains(out.String(), "No demo is running") {
		t.Fatalf("without a demo: %v %q", err, out.String())
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep command")
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(t.TempDir(), "demo")
	if err := os.WriteFile(fake, b, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(fake, "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	// Start returns when the exec has begun, which can be before the
	// kernel has set up the new program's arguments: /proc/<pid>/cmdline
	// reads empty in that window, on a loaded machine long enough for
	// stopDemo to take the process for another one. The real demo writes
	// its pid file itself, well after that.
	for deadline := time.Now().Add(10 * time.Second); !isDemo(cmd.Process.Pid); {
		if time.Now().After(deadline) {
			t.Fatalf("the fake demo (pid %d) never showed its command line", cmd.Process.Pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.WriteFile(filepath.Join(state, pidFile), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	go func() {
		// The process is reaped here, so that stopDemo sees it gone.
		err := <-waited
		waited <- err
	}()
	if err := stopDemo(state, &out, 30*time.Second); err != nil {
		t.Fatalf("stop: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "The demo stopped") {
		t.Errorf("output %q", out.String())
	}
	if err := <-waited; err == nil {
		t.Errorf("the demo process ended without a signal")
	}
}
