package restart

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

// The trailers of helmflux's commits, spelled out as the issue does: these
// tests read git the way a person (or a tool) reading git log would.
const (
	imageTrailer      = "Helmflux-Image"
	workloadTrailer   = "Helmflux-Workload"
	quarantineTrailer = "Helmflux-Quarantine"
)

// settingsYAML is an object beside the automated one, for a person's
// unrelated change.
const settingsYAML = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: NS
data:
  color: blue
`

// failingDeploymentYAML is an automated Deployment whose policy orders tags
// by creation time (glob, Flux v1's default) and whose rollout reports
// ProgressDeadlineExceeded soon after it stops making progress.
const failingDeploymentYAML = `# The app, on the newest build.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: NS
  annotations:
    fluxcd.io/automated: "true"
    fluxcd.io/tag.app: glob:*
spec:
  replicas: 1
  progressDeadlineSeconds: 5
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
        - name: app
          image: HOST/team/app:1.0.0  # written by helmflux
`

// valuesCanary is in the HelmRelease's values: no commit message may quote it.
const valuesCanary = "canary-values-7f3a"

// failingReleaseYAML is an automated HelmRelease that waits for its pods and
// rolls a failed upgrade back.
const failingReleaseYAML = `apiVersion: helm.fluxcd.io/v1
kind: HelmRelease
metadata:
  name: app
  namespace: NS
  annotations:
    fluxcd.io/automated: "true"
    fluxcd.io/tag.chart-image: glob:*
spec:
  releaseName: app
  chart:
    repository: CHARTS/
    name: simple
    version: 1.0.0
  wait: true
  timeout: 10
  rollback:
    enable: true
  values:
    # the image the chart runs
    image:
      repository: HOST/team/app
      tag: 1.0.0
    message: ` + valuesCanary + `
`

// t0 is when the first image was built; later tags are newer.
var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// TestARevertHoldsAgainstAutomation is the story of issue 12: automation
// bumps team/app 1.0.0 → 1.0.1; a person rolls that back with plain git —
// `git revert` of the automation commit, a hand edit of the tag, or the
// revert squashed into an unrelated change — and pushes, or with
// `helmflux rollback --previous` (issue 14), which commits for them. The cluster runs
// 1.0.0 again and stays there: later automation passes, before and after an
// operator restart (SIGKILL), commit nothing, and the GitSync's status shows
// the hold and the commit that caused it. A fixed build, 1.0.2, ends the
// hold: exactly one commit to 1.0.2, and the cluster runs it.
func TestARevertHoldsAgainstAutomation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rollBack func(s *story, bump string) string // returns the rollback commit
	}{
		{"git revert", asPerson(func(p *person, bump string) {
			p.git("revert", "--no-edit", bump)
		})},
		{"hand edit", asPerson(func(p *person, _ string) {
			p.edit("apps/app.yaml", "team/app:1.0.1\n", "team/app:1.0.0\n")
			p.git("commit", "-q", "-a", "-m", "Roll app back to 1.0.0\n\n1.0.1 breaks the checkout page.")
		})},
		{"squash", asPerson(func(p *person, bump string) {
			p.git("revert", "--no-commit", bump)
			p.edit("apps/settings.yaml", "color: blue", "color: green")
			p.git("commit", "-q", "-a", "-m", "Green settings; app back on 1.0.0")
			if got := p.git("diff", "--name-only", "HEAD~1", "HEAD"); got != "apps/app.yaml\napps/settings.yaml" {
				p.t.Fatalf("the squashed commit changes %q, want both files", got)
			}
		})},
		{"helmflux rollback", rollBackWithCLI},
	} {
		t.Run(tc.name, func(t *testing.T) { revertHolds(t, tc.rollBack) })
	}
}

// asPerson rolls back as a person with a clone: do, then push.
func asPerson(do func(p *person, bump string)) func(s *story, bump string) string {
	return func(s *story, bump string) string {
		p := cloneAsPerson(s.t, s.url)
		do(p, bump)
		return p.push()
	}
}

// rollBackWithCLI runs `helmflux rollback --previous` against the
// operator's API and checks what it committed: one commit on top of the
// bump, setting only the tag back, naming the bump it reverts.
func rollBackWithCLI(s *story, bump string) string {
	t := s.t
	t.Helper()
	id := s.ns + ":deployment/app"
	cmd := exec.Command(cliBinary(t), "--url", "http://"+s.api+"/api/flux", "rollback", "-w", id, "--previous", // #nosec G204 -- the CLI built for the test
		"-m", "1.0.1 breaks the checkout page", "--user", "Dev <dev@example.com>")
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "FLUX_URL=", "FLUX_SERVICE_TOKEN=")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), id+"  success  app: "+s.host+"/team/app:1.0.1 -> 1.0.0") || !strings.Contains(string(out), "Commit applied:") {
		s.fatalf("helmflux rollback: %v, want the container set back and the commit applied:\n%s", err, out)
	}
	head := s.head()
	if len(head.ParentHashes) != 1 || head.ParentHashes[0].String() != bump {
		s.fatalf("the rollback commit %s has parents %v, want exactly one commit on the bump %s", head.Hash, head.ParentHashes, bump)
	}
	for _, line := range []string{"This reverts commit " + bump + ".", "Helmflux-Rollback: " + bump, workloadTrailer + ": " + id} {
		if !hasLine(head.Message, line) {
			s.fatalf("the rollback commit's message lacks %q:\n%s", line, head.Message)
		}
	}
	if strings.Contains(head.Message, imageTrailer) {
		s.fatalf("the rollback commit carries %s, so automation would take it for its own:\n%s", imageTrailer, head.Message)
	}
	parent, err := head.Parent(0)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := parent.Patch(head)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := changedLines(patch.String()), []string{"-          image: " + s.host + "/team/app:1.0.1", "+          image: " + s.host + "/team/app:1.0.0"}; !slices.Equal(got, want) {
		s.fatalf("the rollback commit changes %q, want only the tag back:\n%s", got, patch)
	}
	return head.Hash.String()
}

// changedLines are a patch's removed and added lines, without the file
// headers.
func changedLines(patch string) []string {
	var out []string
	for _, l := range strings.Split(patch, "\n") {
		if (strings.HasPrefix(l, "-") || strings.HasPrefix(l, "+")) && !strings.HasPrefix(l, "---") && !strings.HasPrefix(l, "+++") {
			out = append(out, l)
		}
	}
	return out
}

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// cliBinary builds the helmflux CLI once for the package's tests.
func cliBinary(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		root, err := testenv.RepoRoot()
		if err != nil {
			cliErr = err
			return
		}
		dir, err := os.MkdirTemp("", "helmflux-cli-")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "helmflux")
		build := exec.Command("go", "build", "-o", cliPath, "./cli")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("build the CLI: %w\n%s", err, out)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

func revertHolds(t *testing.T, rollBack func(s *story, bump string) string) {
	s := newStory(t)
	s.reg.Push(t, "team/app", "1.0.0", t0)
	s.sync(map[string]string{
		"apps/app.yaml":      testenv.AutomatedDeployment(s.ns, "app", s.host+"/team/app:1.0.0", "semver:~1.0"),
		"apps/settings.yaml": strings.ReplaceAll(settingsYAML, "NS", s.ns),
	}, nil)
	image, workload := s.host+"/team/app", s.ns+":deployment/app"
	waitRunning(t, s.ns, "app", image+":1.0.0")
	s.waitUpToDate()

	// Automation bumps 1.0.0 → 1.0.1 in one commit, and the cluster runs it.
	base := s.head().Hash
	s.reg.Push(t, "team/app", "1.0.1", t0.Add(time.Hour))
	bump := s.waitAutomationCommit(base, workload, image, "1.0.0", "1.0.1")
	waitRunning(t, s.ns, "app", image+":1.0.1")

	// A person rolls it back with the git command line and pushes, or with
	// helmflux rollback.
	revert := rollBack(s, bump.Hash.String())
	passes := s.passes()

	// Five passes that began after the push (the first counted may have
	// begun before it) leave the person's commit the head; lastRevision
	// then shows the passes started from it.
	testenv.WaitPasses(t, passes, 6)
	if got := s.head(); got.Hash.String() != revert {
		s.fatalf("the rollback did not hold: %d commit(s) were pushed on top of the person's %s", len(s.since(revert)), revert)
	}
	if got, want := getGitSync(t, s.ns, "apps").Status.ImageAutomation.LastRevision, "main@sha1:"+revert; got != want {
		s.fatalf("the last pass started from %s, want %s: the passes did not see the rollback", got, want)
	}
	waitRunning(t, s.ns, "app", image+":1.0.0")
	want := helmfluxv1alpha1.ImageHold{
		Workload: workload, Container: "app", Image: image, Tag: "1.0.1", Current: "1.0.0",
		Reason: helmfluxv1alpha1.HoldRollback, Commit: revert,
	}
	s.expectHold(want)
	s.expectOneEvent(helmfluxv1alpha1.ImageHeldReason)

	// The hold is derived from git: a SIGKILLed operator, started again,
	// finds it and commits nothing either.
	passes = s.passes()
	s.op.Kill()
	s.op.Start()
	testenv.WaitPasses(t, passes, 5)
	if got := s.head(); got.Hash.String() != revert {
		s.fatalf("after the restart the rollback did not hold: %d commit(s) were pushed on top of the person's %s", len(s.since(revert)), revert)
	}
	s.expectHold(want)
	s.expectOneEvent(helmfluxv1alpha1.ImageHeldReason)

	// A fixed build moves forward as usual and ends the hold.
	s.reg.Push(t, "team/app", "1.0.2", t0.Add(2*time.Hour))
	fixed := s.waitAutomationCommit(plumbing.NewHash(revert), workload, image, "1.0.0", "1.0.2")
	waitRunning(t, s.ns, "app", image+":1.0.2")
	waitFor(t, time.Minute, "the hold to end", func() (bool, string) {
		return s.hold(workload, "app") == nil, s.status()
	})
	s.expectOneEvent(helmfluxv1alpha1.ImageHoldEndedReason)
	testenv.WaitPasses(t, s.passes(), 2)
	if n := len(s.since(revert)); n != 1 || s.head().Hash != fixed.Hash {
		s.fatalf("%d commits after the rollback, want exactly the one to 1.0.2 (%s)", n, fixed.Hash)
	}
}

// TestAFailedReleaseIsQuarantined: automation writes a tag whose pods never
// become ready — into a Deployment with a short progressDeadlineSeconds, or
// into a HelmRelease that waits and rolls a failed upgrade back. The rollout
// fails; helmflux commits the previous tag back, once, with a
// Helmflux-Quarantine trailer and the reason (no values), leaving the file
// byte for byte as it was; the cluster runs the old tag again; and no later
// pass writes the failed tag again.
func TestAFailedReleaseIsQuarantined(t *testing.T) {
	t.Run("deployment", func(t *testing.T) {
		s := newStory(t)
		s.reg.Push(t, "team/app", "1.0.0", t0)
		s.sync(map[string]string{"apps/app.yaml": strings.NewReplacer("NS", s.ns, "HOST", s.host).Replace(failingDeploymentYAML)}, nil)
		image, workload := s.host+"/team/app", s.ns+":deployment/app"
		waitRunning(t, s.ns, "app", image+":1.0.0")
		s.waitUpToDate()

		base := s.head().Hash
		s.reg.Push(t, "team/app", "never-ready", t0.Add(time.Hour))
		bump := s.waitAutomationCommit(base, workload, image, "1.0.0", "never-ready")
		s.waitFailedOr(bump, "the rollout of never-ready to exceed its progress deadline", func() (bool, string) {
			d := deployment(t, s.ns, "app")
			c := deploymentCondition(d, appsv1.DeploymentProgressing)
			return d.Spec.Template.Spec.Containers[0].Image == image+":never-ready" && c != nil &&
				c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded", fmt.Sprintf("%+v", d.Status)
		})

		q := s.waitQuarantine(bump, image, "never-ready")
		if msg := reasonText(q.Message); !strings.Contains(strings.ToLower(strings.ReplaceAll(msg, " ", "")), "progressdeadline") {
			s.fatalf("the quarantine commit's message gives no reason (ProgressDeadlineExceeded):\n%s", q.Message)
		}
		waitRunning(t, s.ns, "app", image+":1.0.0")
		s.expectNoRewrite(q)
		s.expectHold(helmfluxv1alpha1.ImageHold{
			Workload: workload, Container: "app", Image: image, Tag: "never-ready", Current: "1.0.0",
			Reason: helmfluxv1alpha1.HoldQuarantine, Commit: q.Hash.String(),
		})
		s.expectOneEvent(helmfluxv1alpha1.ImageQuarantinedReason)
	})

	t.Run("helmrelease", func(t *testing.T) {
		s := newStory(t)
		charts := helmtest.NewRepoServer(t)
		charts.Add(t, helmtest.Simple("simple", "1.0.0"))
		s.reg.Push(t, "team/app", "1.0.0", t0)
		s.sync(map[string]string{"apps/app.yaml": strings.NewReplacer("NS", s.ns, "HOST", s.host, "CHARTS", charts.URL()).Replace(failingReleaseYAML)}, nil)
		image, workload := s.host+"/team/app", s.ns+":helmrelease/app"
		waitRunning(t, s.ns, "app-simple", image+":1.0.0")
		s.waitUpToDate()

		base := s.head().Hash
		s.reg.Push(t, "team/app", "never-ready", t0.Add(time.Hour))
		bump := s.waitAutomationCommit(base, workload, image, "1.0.0", "never-ready")
		s.waitFailedOr(bump, "the upgrade to never-ready to fail and be rolled back", func() (bool, string) {
			hr := get(t, s.ns, "app")
			return hr.Status.Phase == helmv1.PhaseRolledBack && hr.Status.ObservedGeneration == hr.Generation, fmt.Sprintf("%+v", hr.Status)
		})

		q := s.waitQuarantine(bump, image, "never-ready")
		for _, cm := range s.repo.RemoteLog("main") {
			if strings.Contains(cm.Message, valuesCanary) {
				s.fatalf("commit %s quotes the release's values in its message", cm.Hash)
			}
		}
		// The release is upgraded back to the old tag from git.
		waitFor(t, 2*time.Minute, "the HelmRelease deployed from the quarantine commit", func() (bool, string) {
			hr := get(t, s.ns, "app")
			vals, err := hr.Spec.Values.Map()
			if err != nil {
				return false, err.Error()
			}
			img, _ := vals["image"].(map[string]any)
			tag := fmt.Sprint(img["tag"])
			return tag == "1.0.0" && hr.Status.ObservedGeneration == hr.Generation && hr.Status.ReleaseStatus == "deployed",
				fmt.Sprintf("values tag %s, status %+v", tag, hr.Status)
		})
		waitRunning(t, s.ns, "app-simple", image+":1.0.0")
		s.expectNoRewrite(q)
		s.expectHold(helmfluxv1alpha1.ImageHold{
			Workload: workload, Container: "chart-image", Image: image, Tag: "never-ready", Current: "1.0.0",
			Reason: helmfluxv1alpha1.HoldQuarantine, Commit: q.Hash.String(),
		})
		s.expectOneEvent(helmfluxv1alpha1.ImageQuarantinedReason)
	})
}

// TestAFailedReleaseStaysWhenQuarantineIsOff: with writeBack.quarantine
// false, a tag whose rollout fails stays in git — passes after the failure
// commit nothing — and the status says git has that tag.
func TestAFailedReleaseStaysWhenQuarantineIsOff(t *testing.T) {
	s := newStory(t)
	s.reg.Push(t, "team/app", "1.0.0", t0)
	s.sync(map[string]string{"apps/app.yaml": strings.NewReplacer("NS", s.ns, "HOST", s.host).Replace(failingDeploymentYAML)},
		&helmfluxv1alpha1.WriteBack{Quarantine: ptr(false)})
	image, workload := s.host+"/team/app", s.ns+":deployment/app"
	waitRunning(t, s.ns, "app", image+":1.0.0")
	s.waitUpToDate()

	base := s.head().Hash
	s.reg.Push(t, "team/app", "never-ready", t0.Add(time.Hour))
	bump := s.waitAutomationCommit(base, workload, image, "1.0.0", "never-ready")
	s.waitFailedOr(bump, "the rollout of never-ready to exceed its progress deadline", func() (bool, string) {
		c := deploymentCondition(deployment(t, s.ns, "app"), appsv1.DeploymentProgressing)
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded", fmt.Sprintf("%+v", c)
	})
	testenv.WaitPasses(t, s.passes(), 6)
	if h := s.head(); h.Hash != bump.Hash {
		s.fatalf("with writeBack.quarantine false, %d commit(s) followed the failed tag's %s", len(s.since(bump.Hash.String())), bump.Hash)
	}
	if h := s.hold(workload, "app"); h != nil {
		s.fatalf("with writeBack.quarantine false, a hold: %+v", *h)
	}
	st := getGitSync(t, s.ns, "apps").Status.ImageAutomation
	i := slices.IndexFunc(st.Containers, func(c helmfluxv1alpha1.ContainerImage) bool {
		return c.Workload == workload && c.Container == "app"
	})
	if i < 0 || st.Containers[i].Image != image || st.Containers[i].Tag != "never-ready" {
		s.fatalf("status.imageAutomation.containers does not say git has %s:never-ready for %s (app)", image, workload)
	}
}

// story is one test's world: its namespace, registry, git repository served
// by `git http-backend`, operator process and GitSync "apps".
type story struct {
	t    *testing.T
	ns   string
	reg  *registrytest.Server
	host string
	repo *gittest.Repo
	url  string
	op   *testenv.Operator
	// api is the operator's --listen address, where the CLI finds its API.
	api string
}

// newStory makes the namespace and the registry; push the first tags, then
// call sync.
func newStory(t *testing.T) *story {
	t.Helper()
	reg := registrytest.NewServer(t, registrytest.WithPlainHTTP())
	return &story{t: t, ns: testenv.NewNamespace(t, k8s, "rollback-"), reg: reg, host: reg.Host()}
}

// sync pushes files to a new repository served over smart HTTP, starts the
// operator with fast automation passes, tag lists read on every pass and
// a debug log (to count passes), and creates the GitSync of apps/ that
// fetches often enough for a person's push to be applied soon.
func (s *story) sync(files map[string]string, writeBack *helmfluxv1alpha1.WriteBack) {
	s.t.Helper()
	s.repo = gittest.NewRepo(s.t, files)
	s.url = gittest.NewHTTPServer(s.t, s.repo.Root()).URL(gittest.RepoName)
	api, err := testenv.FreeAddr()
	if err != nil {
		s.t.Fatal(err)
	}
	s.api = api
	s.op = testenv.StartOperator(s.t, env, "--automation-interval=1s", "--registry-poll-interval=0s",
		"--registry-insecure-host="+s.host, "--zap-log-level=debug", "--listen="+api)
	gs := &helmfluxv1alpha1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "apps"},
		Spec: helmfluxv1alpha1.GitSyncSpec{
			URL: s.url, Paths: []string{"apps"}, Interval: metav1.Duration{Duration: 2 * time.Second},
			WriteBack: writeBack,
		},
	}
	if err := k8s.Create(context.Background(), gs); err != nil {
		s.t.Fatal(err)
	}
}

// passes counts the automation passes over the GitSync that end from now on.
func (s *story) passes() func() int { return testenv.AutomationPasses(s.op.Log, s.ns, "apps") }

func (s *story) head() *object.Commit { s.t.Helper(); return s.repo.RemoteHead("main") }

// since returns the commits after base on the remote branch, newest first.
func (s *story) since(base string) []*object.Commit {
	s.t.Helper()
	var out []*object.Commit
	for _, cm := range s.repo.RemoteLog("main") {
		if cm.Hash.String() == base {
			return out
		}
		out = append(out, cm)
	}
	s.fatalf("%s is no longer on the remote branch", base)
	return nil
}

// waitUpToDate waits for a pass that finds nothing to do.
func (s *story) waitUpToDate() {
	s.t.Helper()
	waitFor(s.t, time.Minute, "a pass with nothing to do", func() (bool, string) {
		got := automationStatus(s.t, s.ns, "apps")
		return strings.HasPrefix(got, "True ImagesUpToDate"), got
	})
}

// waitAutomationCommit waits for the remote to move past base and checks
// that it did so by exactly one helmflux commit changing workload's image
// from → to, with the trailers that say so.
func (s *story) waitAutomationCommit(base plumbing.Hash, workload, image, from, to string) *object.Commit {
	s.t.Helper()
	waitFor(s.t, 2*time.Minute, "an automation commit "+from+" -> "+to, func() (bool, string) {
		h := s.head()
		return h.Hash != base, h.Hash.String()
	})
	after := s.since(base.String())
	if len(after) != 1 {
		s.fatalf("%d commits after %s, want one automation commit %s -> %s", len(after), base, from, to)
	}
	cm := after[0]
	if !isHelmflux(cm) {
		s.fatalf("commit %s is by %s, want helmflux", cm.Hash, cm.Author)
	}
	for _, line := range []string{
		fmt.Sprintf("%s: %s %s -> %s", imageTrailer, image, from, to),
		workloadTrailer + ": " + workload,
	} {
		if !hasLine(cm.Message, line) {
			s.fatalf("automation commit %s has no line %q", cm.Hash, line)
		}
	}
	return cm
}

// waitFailedOr waits until failed reports the release of bump failed, or
// helmflux already moved on from bump (a quick quarantine may undo the
// failure before a poll sees it).
func (s *story) waitFailedOr(bump *object.Commit, what string, failed func() (bool, string)) {
	s.t.Helper()
	waitFor(s.t, 2*time.Minute, what, func() (bool, string) {
		if s.head().Hash != bump.Hash {
			return true, ""
		}
		return failed()
	})
}

// waitQuarantine waits for helmflux's one commit after the failed bump that
// writes the previous tag back: a Helmflux-Quarantine trailer naming the
// repository and the tag, a reason, and the file as it was before the bump.
func (s *story) waitQuarantine(bump *object.Commit, image, tag string) *object.Commit {
	s.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for s.head().Hash == bump.Hash {
		if time.Now().After(deadline) {
			s.fatalf("no quarantine commit within 2m of the failed release of %s: the remote head is still the bump %s", tag, bump.Hash)
		}
		time.Sleep(100 * time.Millisecond) // polling, as waitFor does
	}
	after := s.since(bump.Hash.String())
	if len(after) != 1 {
		s.fatalf("%d commits after the failed bump %s, want one quarantine commit", len(after), bump.Hash)
	}
	q := after[0]
	if !isHelmflux(q) {
		s.fatalf("the commit after the failed bump, %s, is by %s, want helmflux", q.Hash, q.Author)
	}
	if line := quarantineTrailer + ": " + image + " " + tag; !hasLine(q.Message, line) {
		s.fatalf("commit %s has no line %q", q.Hash, line)
	}
	if reasonText(q.Message) == "" {
		s.fatalf("quarantine commit %s gives no reason outside its trailers", q.Hash)
	}
	if got := gittest.ChangedPaths(s.t, q); strings.Join(got, ",") != "apps/app.yaml" {
		s.fatalf("quarantine commit %s changes %v, want apps/app.yaml alone", q.Hash, got)
	}
	before, err := bump.Parent(0)
	if err != nil {
		s.t.Fatal(err)
	}
	if got, want := s.repo.FileAt(q, "apps/app.yaml"), s.repo.FileAt(before, "apps/app.yaml"); got != want {
		s.fatalf("after the quarantine commit apps/app.yaml is\n%s\nwant it byte for byte as before the bump:\n%s", got, want)
	}
	return q
}

// expectNoRewrite checks that five passes that began after q was pushed
// (and, by then, applied) leave q the head.
func (s *story) expectNoRewrite(q *object.Commit) {
	s.t.Helper()
	testenv.WaitPasses(s.t, s.passes(), 6)
	if h := s.head(); h.Hash != q.Hash {
		s.fatalf("the quarantined tag was written again: %d commit(s) after the quarantine commit %s", len(s.since(q.Hash.String())), q.Hash)
	}
}

// hold returns the GitSync's hold of a container, or nil.
func (s *story) hold(workload, container string) *helmfluxv1alpha1.ImageHold {
	s.t.Helper()
	st := getGitSync(s.t, s.ns, "apps").Status.ImageAutomation
	if st == nil {
		return nil
	}
	for i, h := range st.Holds {
		if h.Workload == workload && h.Container == container {
			return &st.Holds[i]
		}
	}
	return nil
}

// expectHold checks the GitSync's only hold is want, with a Since. Commit
// may be the full hash or a prefix of it (at least 7 characters, as git
// abbreviates), so both spellings of the implementation pass.
func (s *story) expectHold(want helmfluxv1alpha1.ImageHold) {
	s.t.Helper()
	var holds []helmfluxv1alpha1.ImageHold
	if st := getGitSync(s.t, s.ns, "apps").Status.ImageAutomation; st != nil {
		holds = st.Holds
	}
	if len(holds) != 1 {
		s.fatalf("%d holds in status.imageAutomation, want one: %+v", len(holds), want)
	}
	got := holds[0]
	commitOK := len(got.Commit) >= 7 && strings.HasPrefix(want.Commit, got.Commit)
	if got.Workload != want.Workload || got.Container != want.Container || got.Image != want.Image ||
		got.Tag != want.Tag || got.Current != want.Current || got.Reason != want.Reason || !commitOK || got.Since == nil {
		s.fatalf("hold %+v, want %+v (commit %s or a prefix of it, since set)", got, want, want.Commit)
	}
}

// expectOneEvent waits for an Event with reason about the GitSync (ImageHeld,
// ImageHoldEnded) or, for ImageQuarantined, about any object of the
// namespace, and checks there is exactly one, recorded once.
func (s *story) expectOneEvent(reason string) {
	s.t.Helper()
	list := func() []eventsv1.Event {
		l := &eventsv1.EventList{}
		if err := k8s.List(context.Background(), l, client.InNamespace(s.ns)); err != nil {
			s.t.Fatal(err)
		}
		var out []eventsv1.Event
		for _, e := range l.Items {
			onGitSync := e.Regarding.Kind == helmfluxv1alpha1.GitSyncKind && e.Regarding.Name == "apps"
			if e.Reason == reason && (onGitSync || reason == helmfluxv1alpha1.ImageQuarantinedReason) {
				out = append(out, e)
			}
		}
		return out
	}
	waitFor(s.t, time.Minute, "an Event "+reason, func() (bool, string) {
		return len(list()) > 0, describeEvents(s.ns)
	})
	got := list()
	n := 0
	for _, e := range got {
		n += max(1, int(e.DeprecatedCount))
		if e.Series != nil {
			n += int(e.Series.Count) - 1
		}
	}
	if n != 1 {
		s.fatalf("%s recorded %d times, want once:\n%s", reason, n, describeEvents(s.ns))
	}
}

// status is the GitSync's status.imageAutomation as JSON.
func (s *story) status() string {
	s.t.Helper()
	b, _ := json.MarshalIndent(getGitSync(s.t, s.ns, "apps").Status.ImageAutomation, "", "  ")
	return string(b)
}

// fatalf fails with what a reader needs to see why: the remote's log with
// whole messages and the automation status (the operator's log tail
// follows from StartOperator's cleanup).
func (s *story) fatalf(format string, args ...any) {
	s.t.Helper()
	var b strings.Builder
	for i, cm := range s.repo.RemoteLog("main") {
		if i == 10 {
			b.WriteString("...\n")
			break
		}
		fmt.Fprintf(&b, "commit %s by %s <%s>\n    %s\n", cm.Hash, cm.Author.Name, cm.Author.Email,
			strings.ReplaceAll(strings.TrimSpace(cm.Message), "\n", "\n    "))
	}
	s.t.Fatalf(format+"\n\nremote log, newest first:\n%s\nstatus.imageAutomation: %s", append(args, b.String(), s.status())...)
}

func describeEvents(ns string) string {
	l := &eventsv1.EventList{}
	if err := k8s.List(context.Background(), l, client.InNamespace(ns)); err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, e := range l.Items {
		count := e.DeprecatedCount
		if e.Series != nil {
			count = e.Series.Count
		}
		fmt.Fprintf(&b, "  %s %s/%s %s (x%d): %s\n", e.Type, e.Regarding.Kind, e.Regarding.Name, e.Reason, count, e.Note)
	}
	return b.String()
}

func isHelmflux(cm *object.Commit) bool { return cm.Author.Name == "helmflux" }

// hasLine reports whether msg has line as one of its lines.
func hasLine(msg, line string) bool { return slices.Contains(strings.Split(msg, "\n"), line) }

// reasonText is a commit message without its Helmflux-* trailers.
func reasonText(msg string) string {
	var keep []string
	for _, l := range strings.Split(msg, "\n") {
		if k, _, ok := strings.Cut(l, ": "); ok && strings.HasPrefix(k, "Helmflux-") && !strings.Contains(k, " ") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.TrimSpace(strings.Join(keep, "\n"))
}

func deployment(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
		t.Fatal(err)
	}
	return d
}

func deploymentCondition(d *appsv1.Deployment, typ appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i, c := range d.Status.Conditions {
		if c.Type == typ {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

// waitRunning waits until Deployment name runs image in all its replicas,
// rolled out and Ready.
func waitRunning(t *testing.T, ns, name, image string) {
	t.Helper()
	waitFor(t, 2*time.Minute, "Deployment "+name+" running "+image, func() (bool, string) {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			return false, err.Error()
		}
		got, st, want := d.Spec.Template.Spec.Containers[0].Image, d.Status, *d.Spec.Replicas
		return got == image && d.Generation == st.ObservedGeneration && st.UpdatedReplicas == want &&
			st.ReadyReplicas == want && st.Replicas == want, fmt.Sprintf("image %s, status %+v", got, st)
	})
}

// person is someone working on the repository with the git command line,
// as people do: clone, commit, push, pull --rebase when the push is
// rejected, never force.
type person struct {
	t   *testing.T
	dir string
	env []string
}

func cloneAsPerson(t *testing.T, url string) *person {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("a person's side needs the git command line:", err)
	}
	home := t.TempDir()
	p := &person{t: t, dir: filepath.Join(home, "clone"),
		env: append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")}
	p.run(home, "clone", "-q", url, p.dir)
	return p
}

// git runs a git command in the clone and returns its trimmed output.
func (p *person) git(args ...string) string {
	p.t.Helper()
	return p.run(p.dir, args...)
}

func (p *person) run(dir string, args ...string) string {
	p.t.Helper()
	out, err := p.try(dir, args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

func (p *person) try(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-c", "user.name=Dana Developer", "-c", "user.email=dana@example.com",
		"-c", "commit.gpgSign=false"}, args...)...) // #nosec G204 -- the test's own arguments
	cmd.Dir, cmd.Env = dir, p.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// edit replaces old with new, once, in a file of the clone.
func (p *person) edit(name, old, new string) {
	p.t.Helper()
	path := filepath.Join(p.dir, filepath.FromSlash(name))
	b, err := os.ReadFile(path)
	if err != nil {
		p.t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		p.t.Fatalf("%s has no %q:\n%s", name, old, b)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		p.t.Fatal(err)
	}
}

// push pushes HEAD to main, pulling with rebase whenever the push is
// rejected, and returns the commit pushed.
func (p *person) push() string {
	p.t.Helper()
	var err error
	for range 10 {
		if _, err = p.try(p.dir, "push", "-q", "origin", "HEAD:main"); err == nil {
			return p.git("rev-parse", "HEAD")
		}
		p.git("pull", "-q", "--rebase", "origin", "main")
	}
	p.t.Fatal(err)
	return ""
}
