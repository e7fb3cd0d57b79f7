package fluxctl

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/helmflux/helmflux/api/fluxd"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
)

// web is a workload that nothing locks and no policy filters: with app it
// gives a release to --all two updates to choose from.
const web = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: NS
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: IMAGE:1.0.0
`

// in is the story for a subtest: the same world, failures reported to t.
func (s *story) in(t *testing.T) *story {
	st := *s
	st.t = t
	return &st
}

// createdColumn is list-images' CREATED cell, RFC 822 in UTC.
var createdColumn = regexp.MustCompile(` \d\d [A-Z][a-z]{2} \d\d \d\d:\d\d UTC$`)

// withoutCreated is out's lines (see lines) without the CREATED cell.
func withoutCreated(out string) []string {
	ls := lines(out)
	for i := range ls {
		ls[i] = createdColumn.ReplaceAllString(ls[i], "")
	}
	return ls
}

// TestHelmfluxListWorkloads: list-workloads (and its alias
// list-controllers) shows each workload's ID, container, image, status and
// policy flags; -a lists every namespace, -c only the workloads with that
// container, --no-headers leaves out the header, and -o json is the API's
// []fluxd.ControllerStatus.
func TestHelmfluxListWorkloads(t *testing.T) {
	s := newStory(t, storyOptions{files: appFiles(), tags: tags})
	appRow := s.ns + ":deployment/app app " + s.image + ":1.0.0 ready"
	workerRow := s.ns + ":deployment/worker worker " + s.image + ":1.0.0 ready automated,locked"

	r := s.eventuallyHelmflux("list-workloads to show both workloads ready", func(r result) bool {
		return hasLine(r.stdout, appRow) && hasLine(r.stdout, workerRow)
	}, "list-workloads", "-n", s.ns)
	if want := []string{"WORKLOAD CONTAINER IMAGE RELEASE POLICY", appRow, workerRow}; !reflect.DeepEqual(lines(r.stdout), want) {
		t.Errorf("list-workloads -n %s: want the header and the two rows in order:\n%s", s.ns, r)
	}
	if r.stderr != "" {
		t.Errorf("list-workloads wrote to stderr:\n%s", r)
	}
	if r := s.helmfluxOK("list-controllers", "-n", s.ns); !reflect.DeepEqual(lines(r.stdout), []string{"WORKLOAD CONTAINER IMAGE RELEASE POLICY", appRow, workerRow}) {
		t.Errorf("list-controllers lists other than list-workloads:\n%s", r)
	}
	if r := s.helmfluxOK("list-workloads", "-a"); !hasLine(r.stdout, appRow) || !hasLine(r.stdout, workerRow) || lines(r.stdout)[0] != "WORKLOAD CONTAINER IMAGE RELEASE POLICY" {
		t.Errorf("list-workloads -a lacks the workloads:\n%s", r)
	}
	if r := s.helmfluxOK("list-workloads", "-n", s.ns, "-c", "worker"); !reflect.DeepEqual(lines(r.stdout), []string{"WORKLOAD CONTAINER IMAGE RELEASE POLICY", workerRow}) {
		t.Errorf("list-workloads -c worker: want only the worker:\n%s", r)
	}
	if r := s.helmfluxOK("list-workloads", "-n", s.ns, "--no-headers"); !reflect.DeepEqual(lines(r.stdout), []string{appRow, workerRow}) {
		t.Errorf("list-workloads --no-headers: want the two rows only:\n%s", r)
	}
	// A namespace with no workloads: the header alone.
	if r := s.helmfluxOK("list-workloads", "-n", s.ns+"-nothing"); !reflect.DeepEqual(lines(r.stdout), []string{"WORKLOAD CONTAINER IMAGE RELEASE POLICY"}) {
		t.Errorf("list-workloads of an empty namespace:\n%s", r)
	}

	r = s.helmfluxOK("list-workloads", "-n", s.ns, "-o", "json")
	var ws []fluxd.ControllerStatus
	if err := json.Unmarshal([]byte(r.stdout), &ws); err != nil {
		t.Fatalf("list-workloads -o json does not decode into []fluxd.ControllerStatus: %v\n%s", err, r)
	}
	if len(ws) != 2 || ws[0].ID != s.ns+":deployment/app" || ws[1].ID != s.ns+":deployment/worker" {
		t.Fatalf("list-workloads -o json: want app and worker, in order: %+v", ws)
	}
	a, w := ws[0], ws[1]
	if len(a.Containers) != 1 || a.Containers[0].Name != "app" || a.Containers[0].Current == nil || a.Containers[0].Current.ID != s.image+":1.0.0" ||
		a.Status != fluxd.StatusReady || a.Automated || a.Locked || a.Policies["tag.app"] != "semver:~1.0" {
		t.Errorf("list-workloads -o json: app is %+v", a)
	}
	if !w.Automated || !w.Locked || w.Policies["automated"] != "true" || w.Policies["locked"] != "true" {
		t.Errorf("list-workloads -o json: the worker is not automated and locked: %+v", w)
	}
	if r := s.helmfluxOK("list-workloads", "-n", s.ns+"-nothing", "-o", "json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("list-workloads -o json of an empty namespace: want []:\n%s", r)
	}
}

// TestHelmfluxListImages: list-images shows per container its repository
// and the tags newest first, the running one marked '->; -l keeps the
// newest tags and the running one, eliding those between; -o json is the
// API's []fluxd.ImageStatus.
func TestHelmfluxListImages(t *testing.T) {
	s := newStory(t, storyOptions{files: appFiles(), tags: tags})
	id := s.ns + ":deployment/app"
	// The first request has the repository read in the background (app is
	// not automated); the tags show once they are cached.
	r := s.eventuallyHelmflux("list-images to show team/app's tags", func(r result) bool {
		return strings.Contains(r.stdout, "1.1.0")
	}, "list-images", "-w", id)
	want := []string{
		"WORKLOAD CONTAINER IMAGE CREATED",
		id + " app " + s.image,
		"| 1.1.0", "| 1.0.2", "| 1.0.1", "'-> 1.0.0",
	}
	if got := withoutCreated(r.stdout); !reflect.DeepEqual(got, want) {
		t.Errorf("list-images -w: want newest first with 1.0.0 marked running:\n%s\ngot (normalised) %q", r, got)
	}
	// Where the CREATED column is filled, it is the tag's build time.
	for i, tag := range tags {
		created := t0.Add(time.Duration(i) * time.Hour).Format(time.RFC822)
		for _, l := range lines(r.stdout) {
			if f := strings.Fields(l); len(f) > 1 && f[1] == tag && createdColumn.MatchString(l) && !strings.HasSuffix(l, created) {
				t.Errorf("list-images: %s was built %s, the table says %q", tag, created, l)
			}
		}
	}

	// -l 2: the two newest, then what is left out, then the running one.
	r = s.helmfluxOK("list-images", "-w", id, "-l", "2", "--no-headers")
	want = []string{id + " app " + s.image, "| 1.1.0", "| 1.0.2", ":   (1 image(s) omitted)", "'-> 1.0.0"}
	if got := withoutCreated(r.stdout); !reflect.DeepEqual(got, lines(strings.Join(want, "\n"))) {
		t.Errorf("list-images -l 2 --no-headers: want the two newest, the elision and the running tag:\n%s\ngot (normalised) %q", r, got)
	}
	// -n: both workloads, each with its running tag marked.
	r = s.eventuallyHelmflux("list-images -n to show both workloads' tags", func(r result) bool {
		return strings.Count(r.stdout, "'-> 1.0.0") == 2
	}, "list-images", "-n", s.ns)
	if !hasLine(r.stdout, s.ns+":deployment/worker worker "+s.image) || !hasLine(r.stdout, id+" app "+s.image) {
		t.Errorf("list-images -n %s lacks a workload:\n%s", s.ns, r)
	}

	r = s.helmfluxOK("list-images", "-w", id, "-o", "json")
	var images []fluxd.ImageStatus
	if err := json.Unmarshal([]byte(r.stdout), &images); err != nil {
		t.Fatalf("list-images -o json does not decode into []fluxd.ImageStatus: %v\n%s", err, r)
	}
	if len(images) != 1 || images[0].ID != id || len(images[0].Containers) != 1 {
		t.Fatalf("list-images -o json: want one workload with one container: %+v", images)
	}
	c := images[0].Containers[0]
	var avail []string
	for _, a := range c.Available {
		avail = append(avail, a.ID)
	}
	wantAvail := []string{s.image + ":1.1.0", s.image + ":1.0.2", s.image + ":1.0.1", s.image + ":1.0.0"}
	if c.Name != "app" || c.Current == nil || c.Current.ID != s.image+":1.0.0" || !reflect.DeepEqual(avail, wantAvail) {
		t.Errorf("list-images -o json: want app running 1.0.0 and the tags newest first %v: %+v (available %v)", wantAvail, c, avail)
	}
}

// releaseFiles are app (semver:~1.0), worker (locked) and web (no
// policy).
func releaseFiles() map[string]string {
	files := appFiles()
	files["apps/web.yaml"] = web
	return files
}

// stepLine is a numbered job step as helmflux prints it on stderr.
var stepLine = regexp.MustCompile(`(?m)^ ?\d+\. \S`)

// TestHelmfluxRelease: release --update-image, --update-all-images,
// --interactive (with a pick on stdin), --exclude, --force (to a locked
// workload) and --watch each show the
// result table and the job's steps, push exactly one commit that changes
// only the tag, and return once the cluster applied it; --dry-run and an
// interactive "none" commit nothing; a release the operator refuses ends
// with exit status 1 and its message; a rollout that never becomes ready
// ends --watch with exit status 4 when --timeout runs out.
func TestHelmfluxRelease(t *testing.T) {
	s := newStory(t, storyOptions{files: releaseFiles(), tags: tags})
	app, webID, worker := s.ns+":deployment/app", s.ns+":deployment/web", s.ns+":deployment/worker"
	s.applied("app", s.image+":1.0.0")
	s.applied("web", s.image+":1.0.0")

	t.Run("update-image", func(t *testing.T) {
		s := s.in(t)
		before := s.head()
		r := s.helmfluxOK("release", "--workload", app, "--update-image", s.image+":1.0.1", "--user", "Dev <dev@example.com>", "-m", "ship it")
		if want := []string{"WORKLOAD STATUS UPDATES", app + " success app: " + s.image + ":1.0.0 -> 1.0.1"}; !reflect.DeepEqual(lines(r.stdout), want) {
			s.errorf("release --update-image: want the result table %q:\n%s", want, r)
		}
		short := pushed(r.stderr, "Commit pushed:")
		if !strings.HasPrefix(r.stderr, "Submitting release ...\n") || !stepLine.MatchString(r.stderr) ||
			short == "" || pushed(r.stderr, "Commit applied:") != short || !regexp.MustCompile(`(?m)^Took \d`).MatchString(r.stderr) {
			s.errorf("release --update-image: want the submission, the numbered steps, the commit pushed and applied and the time taken on stderr:\n%s", r)
		}
		head := s.oneCommit(before, short, "apps/app.yaml")
		s.onlyTag(before, head, "apps/app.yaml", "1.0.0", "1.0.1")
		for _, want := range []string{"ship it", "Dev <dev@example.com>"} {
			if !strings.Contains(head.Message, want) {
				t.Errorf("the commit message lacks %q:\n%s", want, head.Message)
			}
		}
		s.applied("app", s.image+":1.0.1")
	})

	t.Run("update-all-images", func(t *testing.T) {
		s := s.in(t)
		// The newest tag the tag policy (semver:~1.0) allows, 1.0.2, not
		// the newest, 1.1.0.
		before := s.head()
		r := s.helmfluxOK("release", "--workload", app, "--update-all-images", "--no-headers")
		if want := []string{app + " success app: " + s.image + ":1.0.1 -> 1.0.2"}; !reflect.DeepEqual(lines(r.stdout), want) {
			s.errorf("release --update-all-images --no-headers: want only the row %q:\n%s", want, r)
		}
		head := s.oneCommit(before, pushed(r.stderr, "Commit applied:"), "apps/app.yaml")
		s.onlyTag(before, head, "apps/app.yaml", "1.0.1", "1.0.2")
		s.applied("app", s.image+":1.0.2")
	})

	t.Run("dry-run", func(t *testing.T) {
		s := s.in(t)
		// helmflux waited for the job, so a commit would be on the remote
		// by now.
		before := s.head()
		r := s.helmfluxOK("release", "--workload", app, "--update-image", s.image+":1.1.0", "--dry-run")
		if !strings.HasPrefix(r.stderr, "Submitting dry-run release ...\n") || !hasLine(r.stdout, app+" success app: "+s.image+":1.0.2 -> 1.1.0") ||
			strings.Contains(r.stderr, "Commit pushed") {
			s.errorf("release --dry-run: want the plan and no commit:\n%s", r)
		}
		s.unchanged(before, "release --dry-run")
		if got := s.deployment("app").Spec.Template.Spec.Containers[0].Image; got != s.image+":1.0.2" {
			t.Errorf("after the dry run the Deployment asks for %s", got)
		}
	})

	t.Run("interactive", func(t *testing.T) {
		s := s.in(t)
		// The plan lists both updates, numbered (worker is locked); "1"
		// releases the first, app's, alone.
		before := s.head()
		r := s.run(helmfluxTool, "1\n", "release", "--all", "--update-image", s.image+":1.1.0", "--interactive")
		if r.code != 0 {
			s.fatalf("%s", r)
		}
		for _, want := range []string{
			"  1) " + app + " app: " + s.image + ":1.0.2 -> 1.1.0\n",
			"  2) " + webID + " web: " + s.image + ":1.0.0 -> 1.1.0\n",
			"Release which? [all (Enter), none, or numbers such as 1,3]: ",
			"Submitting selected release ...\n",
		} {
			if !strings.Contains(r.stderr, want) {
				s.errorf("release --interactive: want %q on stderr:\n%s", want, r)
			}
		}
		// The plan's table, then the release's.
		planned := []string{"WORKLOAD STATUS UPDATES",
			app + " success app: " + s.image + ":1.0.2 -> 1.1.0",
			webID + " success web: " + s.image + ":1.0.0 -> 1.1.0",
			worker + " skipped locked"}
		released := []string{"WORKLOAD STATUS UPDATES", app + " success app: " + s.image + ":1.0.2 -> 1.1.0"}
		if got := lines(r.stdout); !reflect.DeepEqual(got, append(planned, released...)) {
			s.errorf("release --interactive: want the plan %q then the release %q:\n%s", planned, released, r)
		}
		head := s.oneCommit(before, pushed(r.stderr, "Commit applied:"), "apps/app.yaml")
		s.onlyTag(before, head, "apps/app.yaml", "1.0.2", "1.1.0")
		s.applied("app", s.image+":1.1.0")
		if got := s.deployment("web").Spec.Template.Spec.Containers[0].Image; got != s.image+":1.0.0" {
			t.Errorf("web was not picked, but asks for %s", got)
		}

		// "none" releases nothing.
		before = s.head()
		r = s.run(helmfluxTool, "none\n", "release", "--all", "--update-image", s.image+":1.0.1", "--interactive")
		if r.code != 0 || !strings.Contains(r.stderr, "Nothing released.") || strings.Contains(r.stderr, "Submitting selected release") {
			s.errorf("release --interactive, none: want nothing released:\n%s", r)
		}
		s.unchanged(before, `release --interactive answered "none"`)
	})

	t.Run("exclude", func(t *testing.T) {
		s := s.in(t)
		// --all but app: web is released, the locked worker skipped, app
		// not in the result at all. -n qualifies the short names.
		before := s.head()
		r := s.helmfluxOK("release", "-n", s.ns, "--all", "--exclude", "deployment/app", "--update-image", s.image+":1.0.2")
		want := []string{"WORKLOAD STATUS UPDATES", webID + " success web: " + s.image + ":1.0.0 -> 1.0.2", worker + " skipped locked"}
		if !reflect.DeepEqual(lines(r.stdout), want) {
			s.errorf("release --all --exclude: want %q:\n%s", want, r)
		}
		head := s.oneCommit(before, pushed(r.stderr, "Commit applied:"), "apps/web.yaml")
		s.onlyTag(before, head, "apps/web.yaml", "1.0.0", "1.0.2")
		s.applied("web", s.image+":1.0.2")
		if got := s.deployment("app").Spec.Template.Spec.Containers[0].Image; got != s.image+":1.1.0" {
			t.Errorf("app was excluded, but asks for %s", got)
		}
	})

	t.Run("watch", func(t *testing.T) {
		s := s.in(t)
		// kube-controller-manager and kwok roll the Deployment out here:
		// --watch returns once the new Pod is ready.
		before := s.head()
		r := s.helmfluxOK("release", "-w", webID, "-i", s.image+":1.1.0", "--watch")
		if !strings.Contains(r.stderr, "Monitoring rollout ...\n") || !strings.Contains(r.stderr, webID+" ready: 1 of 1 updated, 1 ready\n") ||
			!strings.Contains(r.stderr, "All workloads are ready.\n") {
			s.errorf("release --watch: want the rollout followed until ready:\n%s", r)
		}
		head := s.oneCommit(before, pushed(r.stderr, "Commit applied:"), "apps/web.yaml")
		s.onlyTag(before, head, "apps/web.yaml", "1.0.2", "1.1.0")
		// Ready means rolled out: the Deployment says so now, not
		// eventually.
		d := s.deployment("web")
		if st := d.Status; st.ObservedGeneration != d.Generation || st.UpdatedReplicas != 1 || st.ReadyReplicas != 1 || st.AvailableReplicas != 1 || st.Replicas != 1 ||
			d.Spec.Template.Spec.Containers[0].Image != s.image+":1.1.0" {
			s.errorf("release --watch said all workloads are ready; the Deployment is at generation %d asking for %s with status %+v",
				d.Generation, d.Spec.Template.Spec.Containers[0].Image, st)
		}
	})

	t.Run("force", func(t *testing.T) {
		s := s.in(t)
		// The worker is locked: a release skips it and commits nothing,
		// unless --force.
		before := s.head()
		r := s.helmfluxOK("release", "-w", worker, "-i", s.image+":1.0.1")
		if want := []string{"WORKLOAD STATUS UPDATES", worker + " skipped locked"}; !reflect.DeepEqual(lines(r.stdout), want) ||
			!strings.Contains(r.stderr, "Nothing to commit") {
			s.errorf("release to a locked workload: want it skipped and nothing committed:\n%s", r)
		}
		s.unchanged(before, "release to a locked workload")
		r = s.helmfluxOK("release", "-w", worker, "-i", s.image+":1.0.1", "--force")
		if !hasLine(r.stdout, worker+" success worker: "+s.image+":1.0.0 -> 1.0.1") {
			s.errorf("release --force to a locked workload: want it released:\n%s", r)
		}
		head := s.oneCommit(before, pushed(r.stderr, "Commit applied:"), "apps/worker.yaml")
		s.onlyTag(before, head, "apps/worker.yaml", "1.0.0", "1.0.1")
		s.applied("worker", s.image+":1.0.1")
	})

	t.Run("refused", func(t *testing.T) {
		s := s.in(t)
		before := s.head()
		r := s.helmflux("release", "--workload", s.ns+":deployment/nope", "--update-image", s.image+":1.0.1")
		if r.code != 1 || !strings.Contains(r.stderr, "Error: workload "+s.ns+":deployment/nope is not among the workloads of any GitSync") || r.stdout != "" {
			s.errorf("release of an unknown workload: want exit status 1 and the operator's message:\n%s", r)
		}
		s.unchanged(before, "release of an unknown workload")
	})

	t.Run("watch times out", func(t *testing.T) {
		s := s.in(t)
		// A Pod that never becomes ready: --watch gives up when --timeout
		// runs out, with exit status 4; the commit is pushed and applied.
		before := s.head()
		r := s.helmflux("release", "-w", webID, "-i", s.image+testenv.NeverReadyImageSuffix, "--watch", "--timeout", "8s")
		if r.code != 4 || !strings.Contains(r.stderr, "gave up after 8s waiting for the rollout") || !strings.Contains(r.stderr, "Monitoring rollout ...") {
			s.errorf("release --watch of a rollout that never ends: want exit status 4 and the timeout:\n%s", r)
		}
		s.oneCommit(before, pushed(r.stderr, "Commit applied:"), "apps/web.yaml")
	})
}

// TestHelmfluxPolicyCommands: automate, deautomate, lock, unlock and policy
// each show the result table, push one commit that changes only the
// workload's annotations, and list-workloads then shows the flags.
func TestHelmfluxPolicyCommands(t *testing.T) {
	s := newStory(t, storyOptions{files: appFiles(), tags: tags})
	id := s.ns + ":deployment/app"
	row := id + " app " + s.image + ":1.0.0 ready"
	s.eventuallyHelmflux("list-workloads to show app ready", func(r result) bool { return hasLine(r.stdout, row) }, "list-workloads", "-n", s.ns)

	for _, step := range []struct {
		name   string
		args   []string
		want   map[string]string // the annotations after the step
		flags  string            // list-workloads' POLICY column after it
		policy map[string]string // list-workloads -o json's Policies after it
	}{
		{"automate", []string{"automate", "-w", id}, map[string]string{"fluxcd.io/tag.app": "semver:~1.0", "fluxcd.io/automated": "true"}, "automated",
			map[string]string{"automated": "true", "tag.app": "semver:~1.0"}},
		{"deautomate", []string{"deautomate", "-n", s.ns, "-w", "deployment/app"}, map[string]string{"fluxcd.io/tag.app": "semver:~1.0"}, "",
			map[string]string{"tag.app": "semver:~1.0"}},
		{"lock", []string{"lock", "-w", id, "-m", "release freeze", "--user", "me"},
			map[string]string{"fluxcd.io/tag.app": "semver:~1.0", "fluxcd.io/locked": "true", "fluxcd.io/locked_msg": "release freeze", "fluxcd.io/locked_user": "me"},
			"locked", map[string]string{"tag.app": "semver:~1.0", "locked": "true", "locked_msg": "release freeze", "locked_user": "me"}},
		{"unlock", []string{"unlock", "-w", id}, map[string]string{"fluxcd.io/tag.app": "semver:~1.0"}, "",
			map[string]string{"tag.app": "semver:~1.0"}},
		{"policy tag", []string{"policy", "-w", id, "--tag", "app=1.*"}, map[string]string{"fluxcd.io/tag.app": "glob:1.*"}, "",
			map[string]string{"tag.app": "glob:1.*"}},
		{"policy tag-all", []string{"policy", "-w", id, "--tag-all", "semver:~1"}, map[string]string{"fluxcd.io/tag.app": "semver:~1"}, "",
			map[string]string{"tag.app": "semver:~1"}},
		{"policy automate lock", []string{"policy", "-w", id, "--automate", "--lock", "--user", "me"},
			map[string]string{"fluxcd.io/tag.app": "semver:~1", "fluxcd.io/automated": "true", "fluxcd.io/locked": "true", "fluxcd.io/locked_user": "me"},
			"automated,locked", map[string]string{"tag.app": "semver:~1", "automated": "true", "locked": "true", "locked_user": "me"}},
		// '*' (every tag) removes the filter.
		{"policy remove tag unlock", []string{"policy", "-w", id, "--tag", "app=*", "--unlock"},
			map[string]string{"fluxcd.io/automated": "true"}, "automated", map[string]string{"automated": "true"}},
	} {
		t.Run(step.name, func(t *testing.T) {
			s := s.in(t)
			before := s.head()
			r := s.helmfluxOK(step.args...)
			if want := []string{"WORKLOAD STATUS UPDATES", id + " success"}; !reflect.DeepEqual(lines(r.stdout), want) {
				s.errorf("%s: want the workload's success in the result table:\n%s", step.name, r)
			}
			short := pushed(r.stderr, "Commit pushed:")
			if !stepLine.MatchString(r.stderr) || pushed(r.stderr, "Commit applied:") != short {
				s.errorf("%s: want the job's steps and the commit pushed and applied:\n%s", step.name, r)
			}
			head := s.oneCommit(before, short, "apps/app.yaml")
			s.annotationsOnly(before, head, "apps/app.yaml", step.want)
			// Applied: list-workloads shows the flags at once.
			want := strings.TrimSpace(row + " " + step.flags)
			if r := s.helmfluxOK("list-workloads", "-n", s.ns); !hasLine(r.stdout, want) {
				s.errorf("after %s, list-workloads lacks %q:\n%s", step.name, want, r)
			}
			r = s.helmfluxOK("list-workloads", "-n", s.ns, "-o", "json")
			var ws []fluxd.ControllerStatus
			if err := json.Unmarshal([]byte(r.stdout), &ws); err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(ws, func(w fluxd.ControllerStatus) bool { return w.ID == id })
			if i < 0 || !reflect.DeepEqual(ws[i].Policies, step.policy) {
				s.errorf("after %s, list-workloads -o json: want %s's policies %v:\n%s", step.name, id, step.policy, r)
			}
		})
	}

	// A workload outside every GitSync: the operator's message, exit
	// status 1, nothing committed.
	before := s.head()
	r := s.helmflux("lock", "-n", s.ns, "-w", "deployment/nope")
	if r.code != 1 || !strings.Contains(r.stderr, "Error: workload "+s.ns+":deployment/nope is not among the workloads of any GitSync") {
		s.errorf("lock of an unknown workload: want exit status 1 and the operator's message:\n%s", r)
	}
	s.unchanged(before, "lock of an unknown workload")
}

// TestHelmfluxSync: sync fetches a commit pushed a moment ago and prints
// its full hash on stdout once the cluster has it (-o json: the remote,
// the branch and the revision).
func TestHelmfluxSync(t *testing.T) {
	s := newStory(t, storyOptions{files: appFiles(), tags: tags})
	head := s.repo.CommitFiles("add extra", map[string]string{"apps/extra.yaml": s.expand(strings.ReplaceAll(settings, "settings", "extra"))})
	r := s.helmfluxOK("sync")
	if r.stdout != head+"\n" {
		s.errorf("sync: want the revision %s alone on stdout:\n%s", head, r)
	}
	for _, want := range []string{"Synchronizing with " + s.gitURL, "Revision of main to apply is " + head[:7], "Waiting for " + head[:7] + " to be applied ...", "Done."} {
		if !strings.Contains(r.stderr, want) {
			s.errorf("sync: want %q on stderr:\n%s", want, r)
		}
	}
	// Done means applied: the ConfigMap is there now, not eventually.
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: "extra"}, &corev1.ConfigMap{}); err != nil {
		s.errorf("helmflux sync said Done, but the ConfigMap of %s is not in the cluster: %v", head[:7], err)
	}
	if got := s.lastApplied(); got != head {
		s.errorf("the GitSync applied %s, want %s", got, head)
	}

	head = s.repo.CommitFiles("add more", map[string]string{"apps/more.yaml": s.expand(strings.ReplaceAll(settings, "settings", "more"))})
	r = s.helmfluxOK("sync", "-o", "json")
	var got map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("sync -o json: %v\n%s", err, r)
	}
	if want := map[string]string{"url": s.gitURL, "branch": "main", "revision": head}; !reflect.DeepEqual(got, want) {
		s.errorf("sync -o json: want %v:\n%s", want, r)
	}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: "more"}, &corev1.ConfigMap{}); err != nil {
		s.errorf("helmflux sync -o json returned, but the ConfigMap of %s is not in the cluster: %v", head[:7], err)
	}
}

// TestHelmfluxIdentityAndSave: with --api-token-file, helmflux needs
// --token and says so (exit status 3) when it is missing or wrong;
// identity prints the operator's ssh-ed25519 deploy key (the same until -r
// makes a new one and the identity Secret holds it; -l its MD5
// fingerprint, -v with its picture, -o json all of it), and save the
// objects of the GitSync as YAML without the Secret or what the cluster
// set, on stdout or one file per object.
func TestHelmfluxIdentityAndSave(t *testing.T) {
	const token = "helmflux-e2e-token-9c4a"
	s := newStory(t, storyOptions{files: appFiles(), tags: tags, token: token})

	for name, args := range map[string][]string{
		"no token":    {"--url", s.url, "identity"},
		"wrong token": {"--url", s.url, "--token", "not-" + token, "identity"},
	} {
		r := s.runCmd(s.rawCmd(context.Background(), helmfluxTool, args...), args)
		if r.code != 3 || !strings.Contains(r.stderr, "the operator refused the token: set --token (or FLUX_SERVICE_TOKEN) to the token of its --api-token-file") ||
			r.stdout != "" {
			s.errorf("%s: want exit status 3 and what to do:\n%s", name, r)
		}
	}

	key := s.identityKey
	secretKey := func() []byte {
		t.Helper()
		sec := &corev1.Secret{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: "flux-identity"}, sec); err != nil {
			t.Fatal(err)
		}
		return sec.Data["identity.pub"]
	}
	first := key(s.helmfluxOK("identity"))
	if k, _, _, _, err := ssh.ParseAuthorizedKey(secretKey()); err != nil || string(k.Marshal()) != string(first.Marshal()) {
		t.Errorf("the identity Secret holds %q, not the key identity printed (%v)", secretKey(), err)
	}
	if again := key(s.helmfluxOK("identity")); string(again.Marshal()) != string(first.Marshal()) {
		t.Error("identity printed another key without -r")
	}
	regenerated := key(s.helmfluxOK("identity", "-r"))
	if string(regenerated.Marshal()) == string(first.Marshal()) {
		t.Error("identity -r printed the same key")
	}
	if k, _, _, _, err := ssh.ParseAuthorizedKey(secretKey()); err != nil || string(k.Marshal()) != string(regenerated.Marshal()) {
		t.Errorf("the identity Secret holds %q, want the regenerated key (%v)", secretKey(), err)
	}

	md5 := "MD5:" + ssh.FingerprintLegacyMD5(regenerated)
	if r := s.helmfluxOK("identity", "-l"); r.stdout != md5+"\n" {
		t.Errorf("identity -l: want %s:\n%s", md5, r)
	}
	// fluxctl's -v: the fingerprint and its picture as ssh-keygen -lv
	// draws it, with or without -l.
	for _, args := range [][]string{{"identity", "-l", "-v"}, {"identity", "-v"}} {
		r := s.helmfluxOK(args...)
		ls := strings.Split(r.stdout, "\n")
		if len(ls) != 13 || ls[0] != md5 || ls[1] != "+--[ED25519 256]--+" || ls[11] != "+------[MD5]------+" || ls[12] != "" {
			t.Errorf("%s: want the fingerprint and its 11-line picture, every line ended:\n%q", strings.Join(args, " "), r.stdout)
		}
	}
	r := s.helmfluxOK("identity", "-o", "json")
	var pk fluxd.PublicKey
	if err := json.Unmarshal([]byte(r.stdout), &pk); err != nil {
		t.Fatalf("identity -o json does not decode into fluxd.PublicKey: %v\n%s", err, r)
	}
	if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pk.Key)); err != nil || string(k.Marshal()) != string(regenerated.Marshal()) ||
		pk.Fingerprints["md5"].Hash != md5 || pk.Fingerprints["sha256"].Hash != ssh.FingerprintSHA256(regenerated) {
		t.Errorf("identity -o json: want the key and its fingerprints %s, %s:\n%s", md5, ssh.FingerprintSHA256(regenerated), r)
	}

	// save: the objects as YAML on stdout, never the Secret, nothing the
	// cluster set.
	r = s.helmfluxOK("save")
	docs := map[string]map[string]any{}
	for _, doc := range strings.Split(strings.TrimPrefix(r.stdout, "---\n"), "\n---\n") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil || obj == nil {
			t.Fatalf("save: a document does not parse (%v):\n%s", err, doc)
		}
		md, _ := obj["metadata"].(map[string]any)
		docs[obj["kind"].(string)+"/"+md["namespace"].(string)+"/"+md["name"].(string)] = obj
		for _, f := range []string{"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink", "ownerReferences"} {
			if _, ok := md[f]; ok {
				t.Errorf("save: %s %s has metadata.%s, which the cluster set", obj["kind"], md["name"], f)
			}
		}
		if _, ok := obj["status"]; ok {
			t.Errorf("save: %s %s has a status", obj["kind"], md["name"])
		}
	}
	var names []string
	for k := range docs {
		names = append(names, k)
	}
	slices.Sort(names)
	if want := []string{"ConfigMap/" + s.ns + "/settings", "Deployment/" + s.ns + "/app", "Deployment/" + s.ns + "/worker"}; !reflect.DeepEqual(names, want) {
		t.Errorf("save: want %v, got %v:\n%s", want, names, r)
	}
	if d := docs["Deployment/"+s.ns+"/app"]; d != nil {
		md := d["metadata"].(map[string]any)
		if !strings.Contains(r.stdout, "image: "+s.image+":1.0.0\n") || !reflect.DeepEqual(md["annotations"], map[string]any{"fluxcd.io/tag.app": "semver:~1.0"}) {
			t.Errorf("save: the Deployment lacks its image or has other annotations than git's: %v", d)
		}
	}
	if strings.Contains(r.stdout, "kind: Secret") || strings.Contains(r.stdout, canary) || strings.Contains(r.stdout, "deployment.kubernetes.io/revision") {
		t.Errorf("save prints the Secret or what the cluster set:\n%s", r)
	}

	// save --out: one file per object, by namespace, the same YAML.
	dir := t.TempDir()
	r = s.helmfluxOK("save", "--out", dir)
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	if want := []string{filepath.Join(s.ns, "app-dep.yaml"), filepath.Join(s.ns, "settings-cm.yaml"), filepath.Join(s.ns, "worker-dep.yaml")}; !reflect.DeepEqual(files, want) {
		t.Errorf("save --out wrote %v, want %v", files, want)
	}
	appFile := filepath.Join(dir, s.ns, "app-dep.yaml")
	if !hasLine(r.stdout, "Saving Deployment 'app' to "+appFile) {
		t.Errorf("save --out: want the files named:\n%s", r)
	}
	b, err := os.ReadFile(appFile) // #nosec G304 -- the test's own directory
	var obj map[string]any
	if err != nil || yaml.Unmarshal(b, &obj) != nil || !reflect.DeepEqual(obj, docs["Deployment/"+s.ns+"/app"]) {
		t.Errorf("save --out wrote %s: %q (%v), want the Deployment save prints", appFile, b, err)
	}
}

// TestHelmfluxWhy: with image automation running, why names each
// container of an automated workload, the tag in git and running, the best
// candidate its filter allows and the newer tag it passed over, with the
// reason; -o json is the same account as the API's fluxd.WorkloadImages
// with the running images.
func TestHelmfluxWhy(t *testing.T) {
	s := newStory(t, storyOptions{
		files: map[string]string{"apps/auto.yaml": testenv.AutomatedDeployment("NS", "auto", "IMAGE:1.0.0", "semver:~1.0")},
		// semver:~1.0 allows 1.0.1, not the newest, 1.1.0.
		tags:               []string{"1.0.0", "1.0.1", "1.1.0"},
		automationInterval: 2 * time.Second,
	})
	id := s.ns + ":deployment/auto"
	// Automation writes 1.0.1 to git and the GitSync applies it.
	r := s.eventuallyHelmflux("why to show 1.0.1 in git and running", func(r result) bool {
		return hasLine(r.stdout, "in git 1.0.1") && hasLine(r.stdout, "running 1.0.1")
	}, "why", "-w", id)
	want := []string{
		id + " (GitSync " + s.ns + "/apps)",
		"app " + s.image,
		"in git 1.0.1",
		"running 1.0.1",
		"best 1.0.1 (up to date)",
	}
	got := lines(r.stdout)
	if len(got) < len(want) || !reflect.DeepEqual(got[:len(want)], want) {
		s.errorf("why: want the container's tags first %q:\n%s", want, r)
	}
	passed := slices.Index(got, "passed over:")
	if passed < 0 || passed+1 >= len(got) || got[passed+1] != "1.1.0 filter does not match semver:~1.0" {
		s.errorf("why: want 1.1.0 passed over for the filter:\n%s", r)
	}
	if !strings.HasPrefix(got[len(got)-1], "Last automation pass: ") {
		s.errorf("why: want the last automation pass at the end:\n%s", r)
	}

	r = s.helmfluxOK("why", "-n", s.ns, "-w", "deployment/auto", "-o", "json")
	var ans struct {
		fluxd.WorkloadImages
		Running map[string]string `json:"running"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &ans); err != nil {
		t.Fatalf("why -o json: %v\n%s", err, r)
	}
	wantC := []helmfluxv1alpha1.ContainerImage{{Workload: id, Container: "app", Image: s.image, Tag: "1.0.1", Best: "1.0.1"}}
	if len(ans.Containers) == 1 {
		wantC[0].Message = ans.Containers[0].Message
		wantC[0].PassedOver = ans.Containers[0].PassedOver
	}
	if ans.ID != id || ans.GitSync != s.ns+"/apps" || !reflect.DeepEqual(ans.Containers, wantC) || !reflect.DeepEqual(ans.Running, map[string]string{"app": s.image + ":1.0.1"}) ||
		len(ans.Containers) != 1 || len(ans.Containers[0].PassedOver) == 0 ||
		ans.Containers[0].PassedOver[0] != (helmfluxv1alpha1.PassedOverTag{Tag: "1.1.0", Reason: helmfluxv1alpha1.PassedFilter, Message: "does not match semver:~1.0"}) {
		s.errorf("why -o json: want app at 1.0.1, best 1.0.1, 1.1.0 passed over for the filter, running 1.0.1:\n%s", r)
	}

	// A workload outside every GitSync: the operator's message, exit 1.
	if r := s.helmflux("why", "-w", s.ns+":deployment/nope"); r.code != 1 || !strings.Contains(r.stderr, "workload "+s.ns+":deployment/nope is not among the workloads of any GitSync") {
		s.errorf("why of an unknown workload: want exit status 1 and the operator's message:\n%s", r)
	}
}

// closedURL is an API URL where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + addr + "/api/flux"
}

// TestHelmfluxVersion: version prints the CLI's own version and never
// touches the network: --url may point nowhere.
func TestHelmfluxVersion(t *testing.T) {
	s := bareStory(t)
	args := []string{"--url", closedURL(t), "version"}
	r := s.runCmd(s.rawCmd(context.Background(), helmfluxTool, args...), args)
	if r.code != 0 || r.stdout != helmfluxVersion+"\n" || r.stderr != "" {
		t.Errorf("version: want %s alone on stdout:\n%s", helmfluxVersion, r)
	}
}

// TestHelmfluxCompletion: completion bash, zsh and fish print a script for
// helmflux; bash loads it and registers the completion, and the command
// the scripts call completes helmflux's own commands.
func TestHelmfluxCompletion(t *testing.T) {
	s := bareStory(t)
	for shell, marker := range map[string]string{
		"bash": "__start_helmflux",
		"zsh":  "#compdef helmflux",
		"fish": "complete -c helmflux",
	} {
		args := []string{"completion", shell}
		r := s.runCmd(s.rawCmd(context.Background(), helmfluxTool, args...), args)
		if r.code != 0 || !strings.Contains(r.stdout, marker) || r.stderr != "" {
			t.Errorf("completion %s: want exit status 0 and a script with %q:\n%s", shell, marker, r)
		}
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		script := `source <("$1" completion bash) && complete -p helmflux`
		cmd := s.rawCmd(context.Background(), helmfluxTool)
		cmd.Path, cmd.Args = bash, []string{"bash", "-c", script, "bash", helmfluxTool.bin}
		r := s.runCmd(cmd, []string{"-c", script})
		if r.code != 0 || !strings.Contains(r.stdout, "__start_helmflux helmflux") {
			t.Errorf("bash does not register helmflux's completion:\n%s", r)
		}
	} else {
		t.Log("no bash here: the bash script is not loaded")
	}
	args := []string{"__complete", "list-"}
	r := s.runCmd(s.rawCmd(context.Background(), helmfluxTool, args...), args)
	if r.code != 0 || !regexp.MustCompile(`(?m)^list-images\tList the images`).MatchString(r.stdout) || !regexp.MustCompile(`(?m)^list-workloads\tList the workloads`).MatchString(r.stdout) {
		t.Errorf("__complete list-: want helmflux's list commands:\n%s", r)
	}
}

// TestHelmfluxExitCodes: a command line that cannot run ends with exit
// status 2 before anything is asked of the operator; an operator that
// cannot be reached, with 3 and what to set.
func TestHelmfluxExitCodes(t *testing.T) {
	s := bareStory(t)
	// Nothing listens at --url: a usage error that tried to connect would
	// end with 3, not 2.
	url := closedURL(t)
	run := func(args ...string) result {
		t.Helper()
		args = append([]string{"--url", url}, args...)
		return s.runCmd(s.rawCmd(context.Background(), helmfluxTool, args...), args)
	}
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"unknown flag", []string{"list-workloads", "--bogus"}, "unknown flag: --bogus"},
		{"unknown command", []string{"list-everything"}, `unknown command "list-everything" for "helmflux"`},
		{"an argument", []string{"sync", "now"}, `unknown command "now" for "helmflux sync"`},
		{"bad output format", []string{"list-workloads", "-o", "yaml"}, `--output-format "yaml": want tab or json`},
		{"no workload to release", []string{"release", "--update-image", "example.com/app:1"}, "name the workloads: --workload <id> (repeatable) or --all"},
		{"no image to release", []string{"release", "--all"}, "name the image: --update-image <image:tag> or --update-all-images"},
		{"dry run and interactive", []string{"release", "--all", "--update-all-images", "--dry-run", "--interactive"}, "[dry-run interactive] were all set"},
		{"no workload to automate", []string{"automate"}, `required flag(s) "workload" not set`},
		{"automate and deautomate", []string{"policy", "-w", "default:deployment/app", "--automate", "--deautomate"}, "[automate deautomate] were all set"},
		{"nothing to change", []string{"policy", "-w", "default:deployment/app"}, "nothing to change: give at least one policy flag"},
		{"bad tag filter", []string{"policy", "-w", "default:deployment/app", "--tag", "app"}, `--tag "app": want <container>=<filter>`},
		{"no workload to explain", []string{"why"}, `required flag(s) "workload" not set`},
		{"not an http URL", []string{"--url", "127.0.0.1:3030", "list-workloads"}, `--url "127.0.0.1:3030" is not an http:// or https:// URL`},
	} {
		if r := run(tc.args...); r.code != 2 || !strings.Contains(r.stderr, tc.msg) || r.stdout != "" {
			t.Errorf("%s: want exit status 2 and %q:\n%s", tc.name, tc.msg, r)
		}
	}

	if r := run("list-workloads"); r.code != 3 || !strings.Contains(r.stderr, "cannot reach the operator at "+url) || !strings.Contains(r.stderr, "is --url right, or the port-forward up?") {
		t.Errorf("--url where nothing listens: want exit status 3 and what to check:\n%s", r)
	}
	// No --url and a kubeconfig with no cluster: nothing to port-forward
	// with.
	args := []string{"list-workloads"}
	if r := s.runCmd(s.rawCmd(context.Background(), helmfluxTool, args...), args); r.code != 3 || !strings.Contains(r.stderr, "no --url and no usable kubeconfig to port-forward with") {
		t.Errorf("no --url and no kubeconfig: want exit status 3 and what to set:\n%s", r)
	}
}
