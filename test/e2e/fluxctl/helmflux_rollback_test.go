package fluxctl

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/object"
	"sigs.k8s.io/yaml"

	"github.com/helmflux/helmflux/api/fluxd"
)

// TestHelmfluxRollback: after two releases (1.0.0 → 1.0.1 → 1.0.2),
// `rollback --previous --dry-run` prints the patch of 1.0.2 → 1.0.1 and
// commits nothing; `rollback --to <the first commit> --lock -m` puts
// 1.0.0 back and locks the workload in one commit that names both
// releases it reverts, and the cluster runs 1.0.0; `-o json` answers the
// job's result; a rollback with nothing to do commits nothing; the
// command line needs exactly one of --to and --previous.
func TestHelmfluxRollback(t *testing.T) {
	s := newStory(t, storyOptions{files: appFiles(), tags: tags})
	id := s.ns + ":deployment/app"
	first := s.head()
	s.applied("app", s.image+":1.0.0")
	var releases []string
	for _, tag := range []string{"1.0.1", "1.0.2"} {
		// -o json: the job's result, for scripts.
		r := s.helmfluxOK("release", "-w", id, "-i", s.image+":"+tag, "-o", "json")
		var res fluxd.JobResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			s.fatalf("release -o json: %v\n%s", err, r)
		}
		releases = append(releases, s.head().Hash.String())
		if res.Revision != releases[len(releases)-1] || res.Result[id].Status != fluxd.ResultSuccess {
			s.errorf("release -o json: want revision %s and %s success, got %+v", releases[len(releases)-1], id, res)
		}
		s.applied("app", s.image+":"+tag)
	}

	// --dry-run: the patch of the newest release undone, nothing pushed.
	before := s.head()
	r := s.helmfluxOK("rollback", "-w", id, "--previous", "--dry-run")
	for _, want := range []string{"--- a/apps/app.yaml", "+++ b/apps/app.yaml", "-          image: " + s.image + ":1.0.2", "+          image: " + s.image + ":1.0.1"} {
		if !strings.Contains(r.stdout, "\n"+want+"\n") && !strings.HasPrefix(r.stdout, want+"\n") {
			s.errorf("rollback --dry-run: want the patch line %q:\n%s", want, r)
		}
	}
	if !strings.Contains(r.stderr, "Submitting dry-run rollback of "+id) || !strings.Contains(r.stderr, "Reverts "+releases[1][:7]) {
		s.errorf("rollback --dry-run: want the submission and the commit it would revert on stderr:\n%s", r)
	}
	s.unchanged(before, "rollback --dry-run")

	// --to the first commit, with a lock: one commit, both releases
	// reverted, the lock in the same commit; the cluster runs 1.0.0.
	r = s.helmfluxOK("rollback", "-w", id, "--to", first.Hash.String()[:9], "--lock", "-m", "1.0.1 and 1.0.2 leak memory", "--user", "Dev <dev@example.com>")
	if want := []string{"WORKLOAD STATUS UPDATES", id + " success app: " + s.image + ":1.0.2 -> 1.0.0"}; !reflect.DeepEqual(lines(r.stdout), want) {
		s.errorf("rollback --to: want the result table %q:\n%s", want, r)
	}
	head := s.oneCommit(before, pushed(r.stderr, "Commit applied:"), "apps/app.yaml")
	s.onlyTagAndLock(before, head, "1.0.2", "1.0.0", map[string]string{
		"fluxcd.io/locked": "true", "fluxcd.io/locked_msg": "1.0.1 and 1.0.2 leak memory", "fluxcd.io/locked_user": "Dev <dev@example.com>"})
	for _, want := range []string{"This reverts commit " + releases[1] + ".", "This reverts commit " + releases[0] + ".",
		"Helmflux-Rollback: " + releases[1], "Helmflux-Rollback: " + releases[0], "Helmflux-Workload: " + id, "1.0.1 and 1.0.2 leak memory"} {
		if !hasLine(head.Message, want) {
			s.errorf("the rollback commit lacks the line %q:\n%s", want, head.Message)
		}
	}
	s.applied("app", s.image+":1.0.0")
	s.eventuallyHelmflux("list-workloads to show app locked", func(r result) bool {
		return hasLine(r.stdout, id+" app "+s.image+":1.0.0 ready locked")
	}, "list-workloads", "-n", s.ns)

	// Nothing left to roll back to the first commit: no commit, and the
	// result says the workload was skipped.
	before = s.head()
	r = s.helmfluxOK("rollback", "-w", id, "--to", first.Hash.String(), "-o", "json")
	var res fluxd.JobResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		s.fatalf("rollback -o json: %v\n%s", err, r)
	}
	if res.Revision != "" || res.Result[id].Status != fluxd.ResultSkipped {
		s.errorf("rollback to where the workload already is: want no revision and %s skipped, got %+v", id, res)
	}
	s.unchanged(before, "a rollback with nothing to do")

	// The command line: exactly one of --to and --previous, and a workload.
	for _, args := range [][]string{
		{"rollback", "-w", id},
		{"rollback", "-w", id, "--previous", "--to", first.Hash.String()},
		{"rollback", "--previous"},
	} {
		if r := s.helmflux(args...); r.code != 2 {
			s.errorf("%v: want exit status 2:\n%s", args, r)
		}
	}
	// A commit that is not on the branch fails the job: exit 1, nothing pushed.
	if r := s.helmflux("rollback", "-w", id, "--to", strings.Repeat("e", 40)); r.code != 1 || !strings.Contains(r.stderr, "is not an ancestor of main") {
		s.errorf("rollback --to an unknown commit: want exit status 1 and why:\n%s", r)
	}
	s.unchanged(before, "a failed rollback")
}

// onlyTagAndLock checks that a rollback --lock commit changed app.yaml's
// tag from oldTag to newTag and added the lock annotations, nothing else.
func (s *story) onlyTagAndLock(before, after *object.Commit, oldTag, newTag string, lock map[string]string) {
	s.t.Helper()
	const file = "apps/app.yaml"
	was := strings.Replace(s.repo.FileAt(before, file), "image: "+s.image+":"+oldTag+"\n", "image: "+s.image+":"+newTag+"\n", 1)
	var want, got map[string]any
	if err := yaml.Unmarshal([]byte(was), &want); err != nil {
		s.t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(s.repo.FileAt(after, file)), &got); err != nil {
		s.t.Fatal(err)
	}
	md, _ := want["metadata"].(map[string]any)
	ann, _ := md["annotations"].(map[string]any)
	if ann == nil {
		ann = map[string]any{}
		md["annotations"] = ann
	}
	for k, v := range lock {
		ann[k] = v
	}
	if !reflect.DeepEqual(want, got) {
		s.errorf("commit %s should set the tag %s -> %s and lock %s, nothing else; it reads\n%s", after.Hash, oldTag, newTag, file, s.repo.FileAt(after, file))
	}
}
