package fluxctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

// app is released through fluxctl: a tag policy, not automated.
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
          image: IMAGE:1.0.0
`

// worker shows policy flags in list-workloads; locked, so automation
// never touches it.
const worker = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
  namespace: NS
  annotations:
    fluxcd.io/automated: "true"
    fluxcd.io/locked: "true"
spec:
  replicas: 1
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
      containers:
        - name: worker
          image: IMAGE:1.0.0
`

const settings = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: NS
data:
  level: info
`

// secret must never leave the cluster through fluxctl save.
const secret = `apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: NS
stringData:
  password: CANARY
`

const canary = "fluxctl-canary-7d2e"

// tags are team/app's tags, oldest first: semver:~1.0 allows all but 1.1.0,
// the newest.
var tags = []string{"1.0.0", "1.0.1", "1.0.2", "1.1.0"}

func appFiles() map[string]string {
	return map[string]string{"apps/app.yaml": app, "apps/worker.yaml": worker, "apps/settings.yaml": settings, "apps/secret.yaml": secret}
}

// lines returns out's non-empty lines with runs of white space made one
// space, as a person reads a table.
func lines(out string) []string {
	var ls []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			ls = append(ls, l)
		}
	}
	return ls
}

// hasLine reports whether out has the line want (white space normalised).
func hasLine(out, want string) bool {
	for _, l := range lines(out) {
		if l == want {
			return true
		}
	}
	return false
}

// pushed returns the short hash fluxctl printed after label ("Commit
// pushed:"), "" when it printed none.
func pushed(out, label string) string {
	m := regexp.MustCompile(regexp.QuoteMeta(label) + `\s+([0-9a-f]{7})\b`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

// head returns the remote's main.
func (s *story) head() *object.Commit { return s.repo.RemoteHead(gittest.DefaultBranch) }

// oneCommit checks that the remote's head is one commit on before, the one
// fluxctl named (short), changing only the paths given; it returns it.
func (s *story) oneCommit(before *object.Commit, short string, paths ...string) *object.Commit {
	s.t.Helper()
	head := s.head()
	if len(head.ParentHashes) != 1 || head.ParentHashes[0] != before.Hash {
		s.fatalf("the remote head %s has parents %v, want one commit on %s", head.Hash, head.ParentHashes, before.Hash)
	}
	if short == "" || !strings.HasPrefix(head.Hash.String(), short) {
		s.fatalf("fluxctl named commit %q, the remote head is %s", short, head.Hash)
	}
	if changed := gittest.ChangedPaths(s.t, head); !reflect.DeepEqual(changed, paths) {
		s.fatalf("commit %s changes %v, want only %v", head.Hash, changed, paths)
	}
	return head
}

// unchanged fails when the remote moved from before.
func (s *story) unchanged(before *object.Commit, what string) {
	s.t.Helper()
	if h := s.head(); h.Hash != before.Hash {
		s.errorf("%s pushed commit %s (%q)", what, h.Hash, h.Message)
	}
}

// deployment reads a Deployment of the story's namespace.
func (s *story) deployment(name string) *appsv1.Deployment {
	s.t.Helper()
	d := &appsv1.Deployment{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: name}, d); err != nil {
		s.t.Fatal(err)
	}
	return d
}

// applied checks that the Deployment asks for image at once — fluxctl said
// the commit was applied — and waits until its rollout is done: one Pod,
// Running and Ready, with that image.
func (s *story) applied(name, image string) {
	s.t.Helper()
	if got := s.deployment(name).Spec.Template.Spec.Containers[0].Image; got != image {
		s.fatalf("fluxctl reported the commit applied, but Deployment %s asks for %s, want %s", name, got, image)
	}
	testenv.Eventually(s.t, time.Minute, "Deployment "+name+" to run "+image, func() (bool, string) {
		d := s.deployment(name)
		st := d.Status
		if st.ObservedGeneration < d.Generation || st.UpdatedReplicas != 1 || st.AvailableReplicas != 1 || st.Replicas != 1 {
			return false, fmt.Sprintf("%+v", st)
		}
		pods := &corev1.PodList{}
		if err := k8s.List(context.Background(), pods, client.InNamespace(s.ns), client.MatchingLabels{"app": name}); err != nil {
			return false, err.Error()
		}
		var running []string
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
				running = append(running, p.Spec.Containers[0].Image)
			}
		}
		return len(running) == 1 && running[0] == image, fmt.Sprint(running)
	})
}

// onlyTag checks that the commit changed app.yaml's tag from old to new and
// nothing else.
func (s *story) onlyTag(before, after *object.Commit, file, oldTag, newTag string) {
	s.t.Helper()
	was, now := s.repo.FileAt(before, file), s.repo.FileAt(after, file)
	oldRef, newRef := "image: "+s.image+":"+oldTag+"\n", "image: "+s.image+":"+newTag+"\n"
	if strings.Count(was, oldRef) != 1 || now != strings.Replace(was, oldRef, newRef, 1) {
		s.errorf("commit %s should change only the tag %s -> %s of %s; it reads\n%s", after.Hash, oldTag, newTag, file, now)
	}
}

// TestListWorkloadsAndImages: list-workloads (and list-controllers, -a,
// -c, -o json) shows each workload's ID, container, image, status and
// policy flags; list-images (-w and -n) its tags newest first, the running
// one marked.
func TestListWorkloadsAndImages(t *testing.T) {
	s := newStory(t, storyOptions{files: appFiles(), tags: tags})
	appRow := s.ns + ":deployment/app app " + s.image + ":1.0.0 ready"
	workerRow := s.ns + ":deployment/worker worker " + s.image + ":1.0.0 ready automated,locked"

	r := s.eventuallyOK("list-workloads to show both workloads ready", func(r result) bool {
		return hasLine(r.stdout, appRow) && hasLine(r.stdout, workerRow)
	}, "list-workloads", "-n", s.ns)
	if ls := lines(r.stdout); len(ls) != 3 || ls[0] != "WORKLOAD CONTAINER IMAGE RELEASE POLICY" {
		t.Errorf("list-workloads -n %s: want the header and two rows:\n%s", s.ns, r.stdout)
	}
	if r := s.ok("list-controllers", "-n", s.ns); !hasLine(r.stdout, appRow) || !hasLine(r.stdout, workerRow) {
		t.Errorf("list-controllers lists other than list-workloads:\n%s", r)
	}
	if r := s.ok("list-workloads", "-a"); !hasLine(r.stdout, appRow) || !hasLine(r.stdout, workerRow) {
		t.Errorf("list-workloads -a lacks the workloads:\n%s", r)
	}
	if r := s.ok("list-workloads", "-n", s.ns, "-c", "worker"); len(lines(r.stdout)) != 2 || !hasLine(r.stdout, workerRow) {
		t.Errorf("list-workloads -c worker: want only the worker:\n%s", r)
	}

	r = s.ok("list-workloads", "-n", s.ns, "-o", "json")
	var ws []struct {
		ID         string
		Containers []struct {
			Name    string
			Current struct{ ID string }
		}
		Status            string
		Automated, Locked bool
		Policies          map[string]string
	}
	if err := json.Unmarshal([]byte(r.stdout), &ws); err != nil {
		t.Fatalf("list-workloads -o json: %v\n%s", err, r)
	}
	byID := map[string]int{}
	for i, w := range ws {
		byID[w.ID] = i
	}
	a, ok := byID[s.ns+":deployment/app"]
	if !ok || len(ws) != 2 || ws[a].Containers[0].Name != "app" || ws[a].Containers[0].Current.ID != s.image+":1.0.0" ||
		ws[a].Status != "ready" || ws[a].Automated || ws[a].Policies["tag.app"] != "semver:~1.0" {
		t.Errorf("list-workloads -o json: %+v", ws)
	}
	if w, ok := byID[s.ns+":deployment/worker"]; !ok || !ws[w].Automated || !ws[w].Locked {
		t.Errorf("list-workloads -o json: the worker is not automated and locked: %+v", ws)
	}

	// The first request reads the repository in the background (app is not
	// automated); fluxctl shows the tags once they are cached.
	r = s.eventuallyOK("list-images to show team/app's tags", func(r result) bool {
		return strings.Contains(r.stdout, "1.1.0")
	}, "list-images", "-w", s.ns+":deployment/app")
	want := []string{
		"WORKLOAD CONTAINER IMAGE CREATED",
		s.ns + ":deployment/app app " + s.image,
		"| 1.1.0", "| 1.0.2", "| 1.0.1", "'-> 1.0.0",
	}
	got := lines(r.stdout)
	for i := range got {
		// The CREATED column, when the cache knows the times.
		got[i] = regexp.MustCompile(` \d\d [A-Z][a-z]{2} \d\d \d\d:\d\d [A-Z]+$`).ReplaceAllString(got[i], "")
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("list-images -w: want newest first with 1.0.0 marked running:\n%s\ngot (normalised) %q", r, got)
	}
	r = s.eventuallyOK("list-images -n to show both workloads' tags", func(r result) bool {
		return strings.Count(r.stdout, "'-> 1.0.0") == 2
	}, "list-images", "-n", s.ns)
	if !hasLine(r.stdout, s.ns+":deployment/worker worker "+s.image) || !hasLine(r.stdout, s.ns+":deployment/app app "+s.image) {
		t.Errorf("list-images -n %s lacks a workload:\n%s", s.ns, r)
	}
}

// TestRelease: release --update-image, --update-all-images, --dry-run and
// --interactive each show the result and, but for the dry run, push one
// commit that changes only the tag and wait until the cluster applied it.
func TestRelease(t *testing.T) {
	s := newStory(t, storyOptions{files: appFiles(), tags: tags})
	id := s.ns + ":deployment/app"
	s.applied("app", s.image+":1.0.0")

	// release --update-image
	before := s.head()
	r := s.ok("release", "--workload", id, "--update-image", s.image+":1.0.1", "--user", "Dev <dev@example.com>", "-m", "ship it")
	if !hasLine(r.stdout, "WORKLOAD STATUS UPDATES") || !hasLine(r.stdout, id+" success app: "+s.image+":1.0.0 -> 1.0.1") {
		s.errorf("release --update-image: want the result table:\n%s", r)
	}
	if !strings.Contains(r.stderr, "Submitting release ...") || pushed(r.stderr, "Commit applied:") != pushed(r.stderr, "Commit pushed:") {
		s.errorf("release --update-image: want the commit pushed and applied:\n%s", r)
	}
	head := s.oneCommit(before, pushed(r.stderr, "Commit pushed:"), "apps/app.yaml")
	s.onlyTag(before, head, "apps/app.yaml", "1.0.0", "1.0.1")
	for _, want := range []string{"ship it", "Dev <dev@example.com>"} {
		if !strings.Contains(head.Message, want) {
			t.Errorf("the commit message lacks %q:\n%s", want, head.Message)
		}
	}
	s.applied("app", s.image+":1.0.1")

	// release --update-all-images: the newest tag the tag policy
	// (semver:~1.0) allows, 1.0.2, not the newest, 1.1.0.
	before = s.head()
	r = s.ok("release", "--workload", id, "--update-all-images")
	if !hasLine(r.stdout, id+" success app: "+s.image+":1.0.1 -> 1.0.2") {
		s.errorf("release --update-all-images: want 1.0.1 -> 1.0.2:\n%s", r)
	}
	head = s.oneCommit(before, pushed(r.stderr, "Commit applied:"), "apps/app.yaml")
	s.onlyTag(before, head, "apps/app.yaml", "1.0.1", "1.0.2")
	s.applied("app", s.image+":1.0.2")

	// release --dry-run: the plan, no commit. fluxctl waited for the job,
	// so a commit would be on the remote by now.
	before = s.head()
	r = s.ok("release", "--workload", id, "--update-image", s.image+":1.1.0", "--dry-run")
	if !strings.Contains(r.stderr, "Submitting dry-run release ...") || !hasLine(r.stdout, id+" success app: "+s.image+":1.0.2 -> 1.1.0") ||
		strings.Contains(r.stderr, "Commit pushed") {
		s.errorf("release --dry-run: want the plan and no commit:\n%s", r)
	}
	s.unchanged(before, "release --dry-run")
	if got := s.deployment("app").Spec.Template.Spec.Containers[0].Image; got != s.image+":1.0.2" {
		t.Errorf("after the dry run the Deployment asks for %s", got)
	}

	// release --interactive: the menu comes up on the terminal with the
	// update checked; Enter releases it.
	before = s.head()
	r = s.interactive("release", "--workload", id, "--update-image", s.image+":1.1.0", "--interactive")
	if !strings.Contains(r.stdout, "\u25c9 "+id) || !strings.Contains(r.stdout, "app: "+s.image+":1.0.2 -> 1.1.0") ||
		!strings.Contains(r.stderr, "Submitting selected release ...") {
		s.errorf("release --interactive: want the checked update in the menu and the selected release submitted:\n%s", r)
	}
	head = s.oneCommit(before, pushed(r.stderr, "Commit applied:"), "apps/app.yaml")
	s.onlyTag(before, head, "apps/app.yaml", "1.0.2", "1.1.0")
	s.applied("app", s.image+":1.1.0")
}

// interactive runs fluxctl with a pseudo-terminal as its controlling
// terminal, waits for the release menu and presses Enter.
func (s *story) interactive(args ...string) result {
	s.t.Helper()
	master, slave, err := openPTY()
	if err != nil {
		s.t.Skipf("no pseudo-terminal for release --interactive: %v", err)
	}
	defer master.Close()
	ctx, cancel := context.WithTimeout(context.Background(), fluxctlTimeout)
	defer cancel()
	cmd := s.cmd(ctx, fluxctlTool, args...)
	var stdout, stderr syncBuffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, &stdout, &stderr
	cmd.SysProcAttr = controllingTTY()
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	_ = slave.Close()
	go func() { _, _ = io.Copy(io.Discard, master) }() // nothing is echoed; drain anyway
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	res := func(err error) result {
		r := result{tool: "fluxctl", args: args, stdout: stdout.String(), stderr: stderr.String()}
		if err != nil {
			r.code = -1
			if cmd.ProcessState != nil {
				r.code = cmd.ProcessState.ExitCode()
			}
		}
		return r
	}
	testenv.Eventually(s.t, time.Minute, "fluxctl's release menu", func() (bool, string) {
		select {
		case err := <-done:
			s.fatalf("fluxctl ended before its menu came up: %s", res(err))
		default:
		}
		return strings.Contains(stdout.String(), "hit [Enter] to release selected"), stdout.String()
	})
	if _, err := master.Write([]byte("\r")); err != nil {
		s.t.Fatal(err)
	}
	r := res(<-done)
	logRun(s.t, r)
	if r.code != 0 {
		s.fatalf("%s", r)
	}
	return r
}

// annotationsOnly checks that file changed between two commits in its
// annotations only, and that they are now want.
func (s *story) annotationsOnly(before, after *object.Commit, file string, want map[string]string) {
	s.t.Helper()
	was, now := s.repo.FileAt(before, file), s.repo.FileAt(after, file)
	parse := func(text string) (map[string]any, map[string]string) {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(text), &obj); err != nil {
			s.t.Fatalf("%s: %v\n%s", file, err, text)
		}
		md, _ := obj["metadata"].(map[string]any)
		ann := map[string]string{}
		if m, ok := md["annotations"].(map[string]any); ok {
			for k, v := range m {
				ann[k] = fmt.Sprint(v)
			}
		}
		delete(md, "annotations")
		return obj, ann
	}
	wasObj, _ := parse(was)
	nowObj, ann := parse(now)
	if !reflect.DeepEqual(wasObj, nowObj) {
		s.errorf("commit %s changed more than the annotations of %s:\n%s", after.Hash, file, now)
	}
	if !reflect.DeepEqual(ann, want) {
		s.errorf("after commit %s the annotations of %s are %v, want %v", after.Hash, file, ann, want)
	}
	// Outside the annotations the text is byte for byte what it was.
	_, wasSpec, _ := strings.Cut(was, "\nspec:")
	_, nowSpec, _ := strings.Cut(now, "\nspec:")
	wasHead, _, _ := strings.Cut(was, "  annotations:")
	nowHead, _, _ := strings.Cut(now, "  annotations:")
	if wasSpec != nowSpec || wasHead != nowHead {
		s.errorf("commit %s rewrote %s outside its annotations:\n%s", after.Hash, file, now)
	}
}

// TestPolicyCommands: automate, deautomate, lock, unlock and policy each
// push one commit that changes only the workload's annotations, and
// list-workloads then shows the flags.
func TestPolicyCommands(t *testing.T) {
	s := newStory(t, storyOptions{files: appFiles(), tags: tags})
	id := s.ns + ":deployment/app"
	row := s.ns + ":deployment/app app " + s.image + ":1.0.0 ready"
	s.eventuallyOK("list-workloads to show app ready", func(r result) bool { return hasLine(r.stdout, row) }, "list-workloads", "-n", s.ns)

	for _, step := range []struct {
		args   []string
		want   map[string]string // the annotations after the step
		flags  string            // list-workloads' POLICY column after it
		policy map[string]string // some of list-workloads -o json's Policies after it
	}{
		{[]string{"automate", "-w", id}, map[string]string{"fluxcd.io/tag.app": "semver:~1.0", "fluxcd.io/automated": "true"}, "automated",
			map[string]string{"automated": "true"}},
		{[]string{"deautomate", "-w", id}, map[string]string{"fluxcd.io/tag.app": "semver:~1.0"}, "", nil},
		{[]string{"lock", "-w", id, "-m", "release freeze", "--user", "me"},
			map[string]string{"fluxcd.io/tag.app": "semver:~1.0", "fluxcd.io/locked": "true", "fluxcd.io/locked_msg": "release freeze", "fluxcd.io/locked_user": "me"},
			"locked", map[string]string{"locked_msg": "release freeze", "locked_user": "me"}},
		{[]string{"unlock", "-w", id}, map[string]string{"fluxcd.io/tag.app": "semver:~1.0"}, "", nil},
		{[]string{"policy", "-w", id, "--tag", "app=1.*"}, map[string]string{"fluxcd.io/tag.app": "glob:1.*"}, "",
			map[string]string{"tag.app": "glob:1.*"}},
		{[]string{"policy", "-w", id, "--tag-all", "semver:~1"}, map[string]string{"fluxcd.io/tag.app": "semver:~1"}, "",
			map[string]string{"tag.app": "semver:~1"}},
	} {
		name := strings.Join(step.args[:1], "")
		if name == "policy" {
			name += " " + step.args[3]
		}
		t.Run(name, func(t *testing.T) {
			st := *s
			st.t = t
			before := st.head()
			r := st.ok(step.args...)
			if !hasLine(r.stdout, id+" success") {
				st.errorf("%s: want the workload's success in the result table:\n%s", name, r)
			}
			head := st.oneCommit(before, pushed(r.stderr, "Commit pushed:"), "apps/app.yaml")
			st.annotationsOnly(before, head, "apps/app.yaml", step.want)
			want := strings.TrimSpace(row + " " + step.flags)
			r = st.eventuallyOK("list-workloads to show "+want, func(r result) bool { return hasLine(r.stdout, want) }, "list-workloads", "-n", st.ns)
			r = st.ok("list-workloads", "-n", st.ns, "-o", "json")
			var ws []struct {
				ID       string
				Policies map[string]string
			}
			if err := json.Unmarshal([]byte(r.stdout), &ws); err != nil {
				t.Fatal(err)
			}
			for _, w := range ws {
				for k, v := range step.policy {
					if w.ID == id && w.Policies[k] != v {
						st.errorf("list-workloads -o json: %s has policies %v, want %s=%s", id, w.Policies, k, v)
					}
				}
			}
		})
	}
}

// TestSync: fluxctl sync fetches a commit pushed a moment ago, names it,
// and returns once the cluster has it.
func TestSync(t *testing.T) {
	s := newStory(t, storyOptions{files: appFiles(), tags: tags})
	head := s.repo.CommitFiles("add extra", map[string]string{"apps/extra.yaml": s.expand(strings.ReplaceAll(settings, "settings", "extra"))})
	r := s.ok("sync")
	for _, want := range []string{"Synchronizing with " + s.gitURL, "Revision of main to apply is " + head[:7], "Waiting for " + head[:7] + " to be applied ...", "Done."} {
		if !strings.Contains(r.stderr, want) {
			s.errorf("sync: want %q:\n%s", want, r)
		}
	}
	// Done means applied: the ConfigMap is there now, not eventually.
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: "extra"}, &corev1.ConfigMap{}); err != nil {
		s.errorf("fluxctl sync said Done, but the ConfigMap of %s is not in the cluster: %v", head[:7], err)
	}
	if got := s.lastApplied(); got != head {
		s.errorf("the GitSync applied %s, want %s", got, head)
	}
	// Nothing to fetch: sync names the same revision again.
	if r := s.ok("sync"); !strings.Contains(r.stderr, "Revision of main to apply is "+head[:7]) || !strings.Contains(r.stderr, "Done.") {
		s.errorf("a second sync:\n%s", r)
	}
}

// TestIdentityAndSaveWithAToken: with --api-token-file, fluxctl needs
// --token; identity prints the operator's ssh-ed25519 deploy key (the same
// until -r makes a new one, -l and -v its fingerprint and picture), and
// save the objects of the GitSync as YAML, without the Secret.
func TestIdentityAndSaveWithAToken(t *testing.T) {
	const token = "fluxctl-e2e-token-5f1b"
	s := newStory(t, storyOptions{files: appFiles(), tags: tags, token: token})

	for name, args := range map[string][]string{
		"no token":    {"--url", s.url, "identity"},
		"wrong token": {"--url", s.url, "--token", "not-" + token, "identity"},
	} {
		r := s.runCmd(s.rawCmd(context.Background(), fluxctlTool, args...), args)
		if r.code == 0 || !strings.Contains(r.stderr, "== Error ==") || !strings.Contains(r.stderr, "missing or incorrect token") ||
			strings.Contains(r.stdout, "ssh-") {
			s.errorf("%s: want fluxctl's authentication error:\n%s", name, r)
		}
	}

	key := s.identityKey
	first := key(s.ok("identity"))
	if again := key(s.ok("identity")); string(again.Marshal()) != string(first.Marshal()) {
		t.Error("identity printed another key without -r")
	}
	regenerated := key(s.ok("identity", "-r"))
	if string(regenerated.Marshal()) == string(first.Marshal()) {
		t.Error("identity -r printed the same key")
	}
	sec := &corev1.Secret{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: "flux-identity"}, sec); err != nil {
		t.Fatal(err)
	}
	if k, _, _, _, err := ssh.ParseAuthorizedKey(sec.Data["identity.pub"]); err != nil || string(k.Marshal()) != string(regenerated.Marshal()) {
		t.Errorf("the identity Secret holds %q, want the regenerated key (%v)", sec.Data["identity.pub"], err)
	}
	md5 := ssh.FingerprintLegacyMD5(regenerated)
	if r := s.ok("identity", "-l"); strings.TrimSpace(r.stdout) != "MD5:"+md5 {
		t.Errorf("identity -l: want MD5:%s:\n%s", md5, r)
	}
	// As ssh-keygen -lv draws it, every line ended, the last too.
	r := s.ok("identity", "-v")
	ls := strings.Split(r.stdout, "\n")
	if len(ls) != 13 || ls[0] != "MD5:"+md5 || ls[1] != "+--[ED25519 256]--+" || ls[11] != "+------[MD5]------+" || ls[12] != "" {
		t.Errorf("identity -v: want the fingerprint and its 11-line picture:\n%s", r)
	}

	// save: the objects as YAML on stdout, never the Secret.
	r = s.ok("save")
	docs := map[string]map[string]any{}
	for _, doc := range strings.Split(r.stdout, "---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("save: a document does not parse (%v):\n%s", err, doc)
		}
		md, _ := obj["metadata"].(map[string]any)
		docs[fmt.Sprintf("%v/%v/%v", obj["kind"], md["namespace"], md["name"])] = obj
	}
	for _, want := range []string{"Deployment/" + s.ns + "/app", "Deployment/" + s.ns + "/worker"} {
		if docs[want] == nil {
			t.Errorf("save lacks %s:\n%s", want, r)
		}
	}
	if d := docs["Deployment/"+s.ns+"/app"]; d != nil {
		if !strings.Contains(fmt.Sprint(d["spec"]), s.image+":1.0.0") || !strings.Contains(fmt.Sprint(d["metadata"]), "fluxcd.io/tag.app:semver:~1.0") {
			t.Errorf("save: the Deployment lacks its image or annotations: %v", d)
		}
	}
	if strings.Contains(r.stdout, "kind: Secret") || strings.Contains(r.stdout, canary) || strings.Contains(r.stdout, "resourceVersion") {
		t.Errorf("save prints the Secret or what the cluster set:\n%s", r)
	}

	// save -o: one file per object, by namespace.
	dir := t.TempDir()
	r = s.ok("save", "-o", dir)
	app := filepath.Join(dir, s.ns, "app-dep.yaml")
	if !strings.Contains(r.stdout, "Saving Deployment 'app' to "+app) {
		t.Errorf("save -o: want the files named:\n%s", r)
	}
	b, err := os.ReadFile(app)
	if err != nil || !strings.Contains(string(b), "image: "+s.image+":1.0.0") {
		t.Errorf("save -o wrote %s: %q (%v)", app, b, err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, s.ns))
	for _, e := range entries {
		if strings.Contains(e.Name(), "Secret") || strings.Contains(e.Name(), "creds") {
			t.Errorf("save -o wrote the Secret: %s", e.Name())
		}
	}
}

// TestBadRequestsCommitNothing: a release of an unknown workload, a release
// of a malformed image (one fluxctl accepts, the registry would not) and a
// policy on a workload outside every GitSync end with fluxctl's "== Error =="
// and the operator's message, and nothing is committed.
func TestBadRequestsCommitNothing(t *testing.T) {
	s := newStory(t, storyOptions{files: appFiles(), tags: tags})
	before := s.head()
	for _, tc := range []struct {
		name string
		args []string
		help string
	}{
		{"unknown workload", []string{"release", "--workload", s.ns + ":deployment/nope", "--update-image", s.image + ":1.0.1"},
			"workload " + s.ns + ":deployment/nope is not among the workloads of any GitSync"},
		{"malformed image", []string{"release", "--workload", s.ns + ":deployment/app", "--update-image", s.reg.Host() + "/Team/App:1.0.1"},
			`invalid image "` + s.reg.Host() + `/Team/App:1.0.1"`},
		{"policy outside every GitSync", []string{"automate", "-w", "elsewhere:deployment/app"},
			"workload elsewhere:deployment/app is not among the workloads of any GitSync"},
		{"unknown workload to lock", []string{"lock", "-n", s.ns, "-w", "deployment/nope"},
			"workload " + s.ns + ":deployment/nope is not among the workloads of any GitSync"},
	} {
		r := s.fluxctl(tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, "== Error ==\n\n"+tc.help) {
			s.errorf("%s: want a non-zero exit, \"== Error ==\" and %q:\n%s", tc.name, tc.help, r)
		}
		// The operator refuses before it queues a job: no commit, ever.
		s.unchanged(before, tc.name)
	}
}

// identityKey parses what identity printed: one line, ended as ssh-keygen
// -y ends it, holding an ssh-ed25519 public key.
func (s *story) identityKey(r result) ssh.PublicKey {
	s.t.Helper()
	if !strings.HasPrefix(r.stdout, "ssh-ed25519 ") || strings.Count(r.stdout, "\n") != 1 || !strings.HasSuffix(r.stdout, "\n") {
		s.fatalf("identity: want one line with an ssh-ed25519 key:\n%q", r.stdout)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(r.stdout))
	if err != nil {
		s.fatalf("identity prints no valid key (%v):\n%s", err, r)
	}
	return k
}
