package fluxapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/history"
	"github.com/helmflux/helmflux/pkg/policy"
	"github.com/helmflux/helmflux/pkg/update"
)

// RollbackTrailer names, in a rollback's commit, one commit whose image
// changes it undoes. A rollback carries no Helmflux-Image trailer: it is a
// person's change, so image automation holds the tag it went back below
// as it holds a git revert's.
const RollbackTrailer = "Helmflux-Rollback"

// Bounds of a rollback's history walk.
const (
	// rollbackCommits is the commit bound of image automation's hold walk
	// (operator/automation's DefaultHistoryCommits), so a rollback reads
	// as much history as a hold is derived from. The hold walk's age bound
	// is left out: it keeps old holds from lingering, while a rollback
	// names what it wants and may want a commit older than a year.
	rollbackCommits = 10_000
	// maxRollbackFile bounds one file version read from history.
	maxRollbackFile = 4 << 20
	// maxRollbackStates bounds the commits whose files one rollback reads.
	maxRollbackStates = 2000
	// minCommitPrefix is the shortest commit prefix `to` takes.
	minCommitPrefix = 7
	// maxLockText bounds locked_msg and locked_user, as checkPolicy does.
	maxLockText = 1024
)

// rollback answers POST /v12/rollback: it checks the spec and the
// workload, queues a job on the update-manifests queue and answers its ID.
func (s *Server) rollback(w http.ResponseWriter, r *http.Request) error {
	var spec RollbackSpec
	if err := json.NewDecoder(r.Body).Decode(&spec); err != nil {
		return badRequest("the rollback spec does not parse: %v", err)
	}
	id, err := checkRollback(spec)
	if err != nil {
		return err
	}
	if err := s.checkWorkloads(r.Context(), []ID{id}); err != nil {
		return err
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return serverError(err)
	}
	job, err := s.Jobs.Submit(UpdateSpec{Type: UpdateRollback, Cause: spec.Cause, Spec: raw})
	if err != nil {
		return serverError(err)
	}
	writeJSON(w, http.StatusOK, job)
	return nil
}

// checkRollback refuses a rollback no job could run and returns its
// workload.
func checkRollback(spec RollbackSpec) (ID, error) {
	if spec.Workload == "" {
		return ID{}, badRequest("name the workload to roll back: workload is <namespace>:<kind>/<name>")
	}
	id, err := ParseID(spec.Workload)
	if err != nil {
		return ID{}, badRequest("%v", err)
	}
	if id.legacy {
		return ID{}, badRequest("workload %q: a rollback names the workload in full, <namespace>:<kind>/<name>", spec.Workload)
	}
	const which = "to (a commit whose images to restore) and previous (undo the newest change of the workload's images)"
	switch {
	case spec.To != "" && spec.Previous:
		return ID{}, badRequest("set exactly one of %s, not both", which)
	case spec.To == "" && !spec.Previous:
		return ID{}, badRequest("set exactly one of %s", which)
	case spec.To != "" && !isCommitPrefix(spec.To):
		return ID{}, badRequest("to %q is not a commit: give its full hash or a unique prefix of at least %d hex digits", spec.To, minCommitPrefix)
	}
	return id, nil
}

// isCommitPrefix reports whether s is 7 to 40 hex digits.
func isCommitPrefix(s string) bool {
	if len(s) < minCommitPrefix || len(s) > 40 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// rollback runs a rollback job: on a fresh checkout of the workload's
// GitSync's branch it finds the target commit and sets every container
// whose image differs from the target's back to the target's tag, as one
// commit pushed through edit (no force push, redone on a lost race), which
// wakes the GitSync. A dry run computes the same and commits nothing.
func (wr *Writer) rollback(ctx context.Context, spec RollbackSpec, id ID, step func(string, ...any)) (JobResult, error) {
	ws, err := wr.Cluster.workloads(ctx, filter{ids: []ID{id}})
	if err != nil {
		return JobResult{}, err
	}
	if len(ws) == 0 {
		return JobResult{}, fmt.Errorf("workload %s is not among the workloads of any GitSync", id)
	}
	g := group{gitSync: ws[0].gitSync, ids: []ID{ws[0].id}}
	rb := &rollbackRun{wr: wr, url: g.gitSync.Spec.URL, spec: spec, id: ws[0].id, step: step,
		opts: git.LogOptions{MaxCommits: rollbackCommits}}
	var res JobResult
	rev, err := wr.editAt(ctx, g, step, func(head git.Revision, files []update.File, images map[string][]update.Image) (map[string][]byte, string, error) {
		res = JobResult{}
		return rb.edit(ctx, head, files, images[rb.id.String()], &res)
	})
	if err != nil {
		return JobResult{}, err
	}
	res.Revision = rev
	return res, nil
}

// rollbackRun is one rollback job's state across the attempts of its edit.
type rollbackRun struct {
	wr   *Writer
	url  string
	spec RollbackSpec
	id   ID
	step func(string, ...any)
	opts git.LogOptions

	// target is the commit whose images are restored, found on the first
	// attempt and kept when a lost race redoes the edit on a new head: the
	// rollback asked for stays the one computed, and what the new head
	// changed since is reverted too.
	target string
	// paths are the files that hold the workload and its images at the
	// head; states are the workload's images in them, by commit.
	paths  []string
	states map[string]imageState
}

// imageRef is one container's image as written.
type imageRef struct{ repository, tag string }

// imageState is a workload's images in its files at one commit.
type imageState struct {
	// found is false when the files there do not hold the workload.
	found bool
	refs  map[string]imageRef // by container
}

func (s imageState) equal(o imageState) bool {
	if s.found != o.found || len(s.refs) != len(o.refs) {
		return false
	}
	for c, r := range s.refs {
		if o.refs[c] != r {
			return false
		}
	}
	return true
}

// edit computes the rollback on the checkout of head, whose images of the
// workload are imgs; it fills res and returns the new files and message,
// nil files when there is nothing to commit (or on a dry run).
func (rb *rollbackRun) edit(ctx context.Context, head git.Revision, files []update.File, imgs []update.Image, res *JobResult) (map[string][]byte, string, error) {
	if len(imgs) == 0 {
		return nil, "", fmt.Errorf("no image references of %s found in git (its GitSync's paths and values files)", rb.id)
	}
	rb.paths = workloadPaths(files, imgs, rb.id.String())
	rb.states = map[string]imageState{}
	log, err := rb.wr.Git.Log(ctx, rb.url, head, rb.opts)
	if err != nil {
		return nil, "", err
	}
	if rb.target == "" {
		if rb.spec.Previous {
			rb.target, err = rb.previous(ctx, head, log)
		} else {
			rb.target, err = resolveCommit(log, head, rb.spec.To)
		}
		if err != nil {
			return nil, "", err
		}
	}
	short := history.Short(rb.target)
	rb.step("Calculating rollback of %s to %s.", rb.id, short)
	target, err := rb.state(ctx, rb.target)
	if err != nil {
		return nil, "", err
	}
	if !target.found {
		return nil, "", fmt.Errorf("%s holds no images of %s in %s: the workload was added or its file moved since; roll back to a later commit",
			short, rb.id, strings.Join(rb.paths, ", "))
	}
	reverted, err := rb.reverted(ctx, head, log)
	if err != nil {
		return nil, "", err
	}

	changes, per, err := rb.changes(imgs, target, short)
	if err != nil {
		return nil, "", err
	}
	if len(changes) == 0 {
		res.Result = map[string]WorkloadResult{rb.id.String(): {Status: ResultSkipped, Error: "already runs the images of " + short}}
		rb.step("%s already runs the images of %s: nothing to commit.", rb.id, short)
		return nil, "", nil
	}
	for _, c := range reverted {
		rb.step("Revert %s %s.", history.Short(c.Hash), c.Subject)
	}
	newFiles, errs := update.Apply(files, changes)
	if len(errs) > 0 {
		return nil, "", errors.Join(errs...)
	}
	for _, c := range changes {
		rb.step("Set container %s to %s in %s.", c.Image.Container, ref(c.Image.Repository, c.NewTag), c.Image.File)
	}
	if rb.spec.Lock {
		if err := rb.lock(files, newFiles, imgs[0].Object); err != nil {
			return nil, "", err
		}
	}
	patch, err := unifiedDiff(files, newFiles)
	if err != nil {
		return nil, "", err
	}
	res.Result = map[string]WorkloadResult{rb.id.String(): {Status: ResultSuccess, PerContainer: per}}
	res.Patch = capPatch(patch)
	res.Reverted = make([]Commit, len(reverted))
	for i, c := range reverted {
		res.Reverted[i] = Commit{Hash: c.Hash, Subject: c.Subject}
	}
	if rb.spec.DryRun {
		rb.step("Dry run: nothing committed.")
		return nil, "", nil
	}
	return newFiles, rb.message(short, reverted), nil
}

// changes sets each container of imgs back to its image in target.
func (rb *rollbackRun) changes(imgs []update.Image, target imageState, short string) ([]update.Change, []ContainerUpdate, error) {
	var changes []update.Change
	var per []ContainerUpdate
	for _, img := range imgs {
		t, ok := target.refs[img.Container]
		switch {
		case !ok:
			rb.step("Leave container %s as it is: %s did not have it.", img.Container, short)
			continue
		case t.tag == img.Tag && sameRepository(t.repository, img.Repository):
			continue
		case !sameRepository(t.repository, img.Repository):
			return nil, nil, fmt.Errorf("container %s runs %s, but %s had %s, another repository: a rollback sets tags only, so edit %s by hand",
				img.Container, ref(img.Repository, img.Tag), short, ref(t.repository, t.tag), img.File)
		case t.tag == "":
			return nil, nil, fmt.Errorf("container %s had no tag in %s: a rollback sets tags only, so edit %s by hand", img.Container, short, img.File)
		}
		changes = append(changes, update.Change{Image: img, NewTag: t.tag})
		per = append(per, ContainerUpdate{Container: img.Container, Current: ref(img.Repository, img.Tag), Target: ref(img.Repository, t.tag)})
	}
	return changes, per, nil
}

// lock adds the lock annotations to the rolled-back files, as fluxctl lock
// asks for them: locked, with the cause's message and user when known.
func (rb *rollbackRun) lock(files []update.File, newFiles map[string][]byte, obj update.ObjectRef) error {
	after := make([]update.File, len(files))
	for i, f := range files {
		after[i] = f
		if b, ok := newFiles[f.Path]; ok {
			after[i].Data = b
		}
	}
	add := map[string]string{policy.LockedKey: "true"}
	if m := lockText(rb.spec.Cause.Message); m != "" {
		add[policy.LockedMsgKey] = m
	}
	if u := lockText(rb.spec.Cause.User); u != "" {
		add[policy.LockedUserKey] = u
	}
	locked, errs := update.ApplyPolicies(after, []update.PolicyChange{{Object: obj, Add: add}})
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for p, b := range locked {
		newFiles[p] = b
	}
	rb.step("Lock %s.", rb.id)
	return nil
}

// lockText is s on one line of at most maxLockText bytes, what
// locked_msg and locked_user take.
func lockText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxLockText {
		return s
	}
	cut := maxLockText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// message is the rollback's commit message: the subject, the cause's
// message, a "This reverts commit" line per reverted commit as git revert
// writes it, and the trailers. No Helmflux-Image: see RollbackTrailer.
func (rb *rollbackRun) message(short string, reverted []git.LogEntry) string {
	var body strings.Builder
	if m := strings.TrimSpace(rb.spec.Cause.Message); m != "" {
		body.WriteString(m + "\n\n")
	}
	trailers := make([]string, 0, len(reverted))
	for _, c := range reverted {
		fmt.Fprintf(&body, "This reverts commit %s.\n", c.Hash)
		trailers = append(trailers, RollbackTrailer+": "+c.Hash)
	}
	cause := Cause{Message: body.String(), User: rb.spec.Cause.User}
	return commitMessage(fmt.Sprintf("Roll back %s to %s", rb.id, short), cause, trailers, []ID{rb.id})
}

// previous finds the newest commit that changed the workload's images and
// returns its first parent.
func (rb *rollbackRun) previous(ctx context.Context, head git.Revision, log git.LogResult) (string, error) {
	cands, err := rb.candidates(ctx, head, "", log)
	if err != nil {
		return "", err
	}
	for _, c := range cands {
		changed, err := rb.changed(ctx, c)
		if err != nil {
			return "", err
		}
		if !changed {
			continue
		}
		if len(c.Parents) == 0 {
			return "", fmt.Errorf("%s (%s), the first commit, added %s: there is no earlier version of its images to roll back to",
				history.Short(c.Hash), c.Subject, rb.id)
		}
		parent, err := rb.state(ctx, c.Parents[0])
		if err != nil {
			return "", err
		}
		if !parent.found {
			return "", fmt.Errorf("%s (%s) added %s or moved its file: there is no earlier version of its images to roll back to (give to: a commit instead)",
				history.Short(c.Hash), c.Subject, rb.id)
		}
		return c.Parents[0], nil
	}
	msg := fmt.Sprintf("no commit of %s's history changed the images of %s: there is no earlier version to roll back to", orHead(head), rb.id)
	if log.Truncated {
		msg += fmt.Sprintf(" (the walk reads the newest %d commits and stopped there; give to: a commit instead)", rollbackCommits)
	}
	return "", errors.New(msg)
}

// reverted returns the commits after the target that changed the
// workload's images, newest first.
func (rb *rollbackRun) reverted(ctx context.Context, head git.Revision, log git.LogResult) ([]git.LogEntry, error) {
	cands, err := rb.candidates(ctx, head, rb.target, log)
	if err != nil {
		return nil, err
	}
	var out []git.LogEntry
	for _, c := range cands {
		changed, err := rb.changed(ctx, c)
		if err != nil {
			return nil, err
		}
		if changed {
			out = append(out, c)
		}
	}
	return out, nil
}

// candidates are the commits newer than until (the whole walk for "")
// that changed one of the workload's files, newest first, as the walk
// orders them. Which of them changed its images, changed tells.
func (rb *rollbackRun) candidates(ctx context.Context, head git.Revision, until string, log git.LogResult) ([]git.LogEntry, error) {
	pos := make(map[string]int, len(log.Entries))
	for i, e := range log.Entries {
		pos[e.Hash] = i
	}
	seen := map[string]bool{}
	var out []git.LogEntry
	for _, p := range rb.paths {
		cs, err := rb.wr.Git.PathChanges(ctx, rb.url, head, p, until, rb.opts)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if !seen[c.Hash] {
				seen[c.Hash] = true
				out = append(out, c)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return pos[out[i].Hash] < pos[out[j].Hash] })
	return out, nil
}

// changed reports whether commit c changed the workload's images against
// its first parent (a root commit, against nothing).
func (rb *rollbackRun) changed(ctx context.Context, c git.LogEntry) (bool, error) {
	mine, err := rb.state(ctx, c.Hash)
	if err != nil {
		return false, err
	}
	var parent imageState
	if len(c.Parents) > 0 {
		if parent, err = rb.state(ctx, c.Parents[0]); err != nil {
			return false, err
		}
	}
	return !mine.equal(parent), nil
}

// state reads the workload's images from its files at commit hash.
func (rb *rollbackRun) state(ctx context.Context, hash string) (imageState, error) {
	if s, ok := rb.states[hash]; ok {
		return s, nil
	}
	if len(rb.states) >= maxRollbackStates {
		return imageState{}, fmt.Errorf("the rollback would read the files of more than %d commits: give to: a newer commit", maxRollbackStates)
	}
	var files []update.File
	for _, p := range rb.paths {
		data, err := rb.wr.Git.ReadFile(ctx, rb.url, git.Revision{Hash: hash}, p, maxRollbackFile)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return imageState{}, err
		}
		files = append(files, update.File{Path: p, Data: data})
	}
	found, _ := update.Find(files)
	st := imageState{refs: map[string]imageRef{}}
	for _, img := range found {
		if img.Object.String() == rb.id.String() {
			st.found = true
			st.refs[img.Container] = imageRef{repository: img.Repository, tag: img.Tag}
		}
	}
	rb.states[hash] = st
	return st, nil
}

// resolveCommit finds the commit of the walk whose hash starts with to.
func resolveCommit(log git.LogResult, head git.Revision, to string) (string, error) {
	to = strings.ToLower(to)
	var match []string
	for _, e := range log.Entries {
		if strings.HasPrefix(e.Hash, to) {
			match = append(match, e.Hash)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		msg := fmt.Sprintf("commit %s is not an ancestor of %s: roll back only to a commit of the branch", to, orHead(head))
		if log.Truncated {
			msg += fmt.Sprintf(" (the walk reads the newest %d commits and stopped there)", rollbackCommits)
		}
		return "", errors.New(msg)
	}
	return "", fmt.Errorf("%s names %d commits of %s: give more digits", to, len(match), orHead(head))
}

// orHead names a head as "main (abc1234)".
func orHead(head git.Revision) string {
	if head.Ref == "" {
		return history.Short(head.Hash)
	}
	return head.Ref + " (" + history.Short(head.Hash) + ")"
}

// workloadPaths are the files that hold the workload's images and the
// manifest that declares it, sorted: what a rollback reads at each commit.
func workloadPaths(files []update.File, imgs []update.Image, key string) []string {
	set := map[string]bool{}
	for _, img := range imgs {
		set[img.File] = true
	}
	byPath := make(map[string]update.File, len(files))
	for _, f := range files {
		byPath[f.Path] = f
	}
	name := []byte(imgs[0].Object.Name)
	for _, f := range files {
		if set[f.Path] || !bytes.Contains(f.Data, name) {
			continue
		}
		// A HelmRelease whose images all live in values files declares
		// the workload without holding an image.
		sub := []update.File{f}
		vfs, _ := update.ValuesFiles(sub)
		for _, v := range vfs {
			if vf, ok := byPath[v]; ok {
				sub = append(sub, vf)
			}
		}
		found, _ := update.Find(sub)
		for _, img := range found {
			if img.Object.String() == key {
				set[f.Path] = true
				break
			}
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// unifiedDiff is the patch of the changed files against files: a unified
// diff with 3 lines of context and a/ b/ paths, files sorted. It uses
// go-difflib rather than a diff of our own: a minimal line diff with
// correctly merged hunks is easy to get subtly wrong, and the library is
// small, dependency-free and long settled (testify's diff).
func unifiedDiff(files []update.File, changed map[string][]byte) (string, error) {
	old := make(map[string][]byte, len(files))
	for _, f := range files {
		old[f.Path] = f.Data
	}
	paths := make([]string, 0, len(changed))
	for p := range changed {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var b strings.Builder
	for _, p := range paths {
		d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A: diffLines(old[p]), B: diffLines(changed[p]), FromFile: "a/" + p, ToFile: "b/" + p, Context: 3,
		})
		if err != nil {
			return "", fmt.Errorf("diff %s: %w", p, err)
		}
		b.WriteString(d)
	}
	return b.String(), nil
}

// diffLines splits data into lines as a unified diff shows them, each
// with its line break. A last line without one gets git's "\ No newline
// at end of file" marker instead (difflib prints lines as they are), so
// the patch still applies.
func diffLines(data []byte) []string {
	if len(data) == 0 {
		return nil
	}
	lines := strings.SplitAfter(string(data), "\n")
	if last := len(lines) - 1; lines[last] == "" {
		lines = lines[:last]
	} else {
		lines[last] += "\n\\ No newline at end of file\n"
	}
	return lines
}

// maxPatch bounds the patch a rollback's job result keeps: up to maxJobs
// results stay in memory, and a long flow-style line would be copied whole.
const maxPatch = 64 << 10

// capPatch cuts a patch to maxPatch bytes at a line's end, saying so.
func capPatch(patch string) string {
	if len(patch) <= maxPatch {
		return patch
	}
	cut := strings.LastIndexByte(patch[:maxPatch], '\n') + 1
	return patch[:cut] + fmt.Sprintf("... (%d more bytes of the patch left out)\n", len(patch)-cut)
}
