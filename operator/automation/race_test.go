package automation_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/automation"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

// races is how many times a human push races an automation push.
const races = 100

// updateHook logs every ref update the server accepts, so the test can
// check that none was a force push.
const updateHook = `#!/bin/sh
echo "$1 $2 $3" >> "$(dirname "$0")/../updates.log"
`

// TestHumanAndAutomationPushesRaceWithoutLoss races a person pushing with
// the git command line (pull --rebase on rejection, as people do) against
// automation commits, through a real git server: the two sides really
// collide (automation loses pushes and redoes its edit on the person's
// commit, the person's pushes are rejected), yet no pass fails, no human
// commit is lost, no update is forced and no automation commit is empty.
func TestHumanAndAutomationPushesRaceWithoutLoss(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs the git command line for the human side")
	}
	ns := newNamespace(t)
	reg := registrytest.NewServer(t)
	host := reg.Host()
	reg.PushTags(t, "team/app", "1.0.0")
	fill := strings.NewReplacer("NS", ns, "HOST", host).Replace
	deploy := strings.Replace(fill(deployYAML), "imagePullSecrets:\n        - name: regcred\n      ", "", 1)
	repo := gittest.NewRepo(t, map[string]string{"apps/deploy.yaml": deploy, "notes/human.txt": "0\n"})
	repo.Hook("update", updateHook)
	srv := gittest.NewHTTPServer(t, repo.Root())
	url := srv.URL(gittest.RepoName)
	human := cloneAsHuman(t, url)
	createGitSync(t, ns, "apps", url, nil)
	eventually(t, time.Minute, "a first pass", func() (bool, string) {
		gs := getGitSync(t, ns, "apps")
		return strings.HasPrefix(automationReady(gs), "True ImagesUpToDate"), automationReady(gs)
	})
	passes := passLog(ns, "apps")

	for i := 1; i <= races; i++ {
		tag := "1.0." + strconv.Itoa(i)
		reg.PushTags(t, "team/app", tag)
		done := make(chan error, 1)
		go func() { done <- human.commitAndPush(i) }()
		notify(t, host+"/team/app")
		if err := <-done; err != nil {
			t.Fatalf("race %d: the human push failed: %v", i, err)
		}
		eventually(t, time.Minute, "race "+strconv.Itoa(i)+" settled", func() (bool, string) {
			head := repo.RemoteHead("main")
			return strings.Contains(repo.FileAt(head, "apps/deploy.yaml"), "app:"+tag+`"`) &&
				repo.FileAt(head, "notes/human.txt") == strconv.Itoa(i)+"\n", head.Hash.String()
		})
	}

	humans, automation := map[string]bool{}, 0
	for _, cm := range repo.RemoteLog("main") {
		switch {
		case strings.HasPrefix(cm.Message, "human "):
			humans[strings.TrimSpace(cm.Message)] = true
		case cm.Author.Name == "helmflux":
			automation++
			if len(cm.ParentHashes) != 1 {
				t.Errorf("automation commit %s has %d parents", cm.Hash, len(cm.ParentHashes))
				continue
			}
			parent, err := cm.Parent(0)
			if err != nil {
				t.Fatal(err)
			}
			if parent.TreeHash == cm.TreeHash {
				t.Errorf("automation commit %s is empty", cm.Hash)
			}
		}
	}
	for i := 1; i <= races; i++ {
		if !humans["human "+strconv.Itoa(i)] {
			t.Errorf("human commit %d was lost", i)
		}
	}
	if automation != races {
		t.Errorf("%d automation commits, want %d (one per new tag)", automation, races)
	}
	assertNoForcedUpdates(t, repo)

	// The collisions happened, on both sides, and automation came through
	// each of its lost races by redoing the edit within the pass.
	retried, reasons := 0, map[string]int{}
	for _, p := range passes() {
		reasons[p.reason]++
		if p.attempts > 1 {
			retried++
		}
	}
	t.Logf("%d of %d human pushes were rejected first and redone after a pull --rebase; "+
		"%d automation passes lost a push race and redid their edit; pass outcomes %v", human.rejected, races, retried, reasons)
	if human.rejected == 0 {
		t.Error("no human push was rejected: automation never pushed first, so nothing raced")
	}
	if retried == 0 {
		t.Error("no automation push lost a race and was redone: the retry was never exercised")
	}
	for reason, n := range reasons {
		if reason != helmfluxv1alpha1.ImagesUpdatedReason && reason != helmfluxv1alpha1.ImagesUpToDateReason {
			t.Errorf("%d passes ended %s during the races, want every one to come through", n, reason)
		}
	}
}

// pass is what an automation pass logged when it ended.
type pass struct {
	reason   string
	attempts int
}

var (
	reasonField   = regexp.MustCompile(`"reason": ?"([^"]*)"`)
	attemptsField = regexp.MustCompile(`"pushAttempts": ?(\d+)`)
)

// passLog returns a function listing the automation passes over a GitSync
// that have ended since passLog was called.
func passLog(ns, name string) func() []pass {
	key := fmt.Sprintf(`{"name":"%s","namespace":"%s"}`, name, ns)
	skip := len(logs.String())
	return func() []pass {
		var out []pass
		for _, l := range strings.Split(logs.String()[skip:], "\n") {
			if !strings.Contains(l, automation.DoneMessage) || !strings.Contains(l, key) {
				continue
			}
			p := pass{}
			if m := reasonField.FindStringSubmatch(l); m != nil {
				p.reason = m[1]
			}
			if m := attemptsField.FindStringSubmatch(l); m != nil {
				p.attempts, _ = strconv.Atoi(m[1])
			}
			out = append(out, p)
		}
		return out
	}
}

// humanClone is a person's clone, driven with the git command line.
type humanClone struct {
	dir string
	// rejected counts pushes the server refused because automation was first.
	rejected int
}

func cloneAsHuman(t *testing.T, url string) *humanClone {
	t.Helper()
	h := &humanClone{dir: filepath.Join(t.TempDir(), "human")}
	if out, err := exec.Command("git", "clone", "-q", url, h.dir).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v: %s", err, out)
	}
	return h
}

func (h *humanClone) git(args ...string) error {
	cmd := exec.Command("git", append([]string{"-c", "user.name=human", "-c", "user.email=human@example.com", "-c", "pull.rebase=true"}, args...)...)
	cmd.Dir = h.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// commitAndPush commits a note and pushes it, pulling with rebase whenever
// the push is rejected, never forcing.
func (h *humanClone) commitAndPush(i int) error {
	if err := os.WriteFile(filepath.Join(h.dir, "notes", "human.txt"), []byte(strconv.Itoa(i)+"\n"), 0o600); err != nil {
		return err
	}
	if err := h.git("commit", "-q", "-am", "human "+strconv.Itoa(i)); err != nil {
		return err
	}
	var err error
	for range 20 {
		if err = h.git("push", "-q", "origin", "HEAD:main"); err == nil {
			return nil
		}
		h.rejected++
		if perr := h.git("pull", "-q", "origin", "main"); perr != nil {
			return perr
		}
	}
	return err
}

// assertNoForcedUpdates checks every update the server logged was a
// fast-forward.
func assertNoForcedUpdates(t *testing.T, repo *gittest.Repo) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo.BareDir(), "updates.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2*races {
		t.Fatalf("the server logged %d updates, want at least %d", len(lines), 2*races)
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 3 || strings.Trim(f[1], "0") == "" {
			continue
		}
		cmd := exec.Command("git", "merge-base", "--is-ancestor", f[1], f[2])
		cmd.Dir = repo.BareDir()
		if err := cmd.Run(); err != nil {
			t.Errorf("forced update of %s: %s is not an ancestor of %s", f[0], f[1], f[2])
		}
	}
}
