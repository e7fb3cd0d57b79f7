package fluxapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/checkout"
	"github.com/helmflux/helmflux/operator/gitcreds"
	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/registry"
	"github.com/helmflux/helmflux/pkg/update"
)

// Trailer keys of the API's commits. A release asked for through the API
// is a person's change, not automation's: it does not carry
// Helmflux-Image, so a release to a lower tag holds like a git revert.
const (
	ReleaseTrailer  = "Helmflux-Release"
	WorkloadTrailer = "Helmflux-Workload"
	UserTrailer     = "Helmflux-User"
)

// Writer runs update-manifests jobs. Each writes to the repository of the
// GitSync whose inventory holds the workloads, through the same
// edit → commit → push path as image automation (a fresh checkout, only
// real changes, no force push, the edit redone on a lost race), and wakes
// that GitSync so the commit is applied at once.
type Writer struct {
	// Client reads GitSyncs and their Secrets.
	Client   client.Client
	Git      *git.Cache
	Registry *registry.Client
	Cluster  *Cluster
	// Identity is the operator's SSH key, for GitSyncs over SSH that name
	// no secret.
	Identity gitcreds.Identity
	// Wake asks the GitSync controller to sync a GitSync now, on whichever
	// replica leads; it only logs a failure (the interval syncs it anyway).
	Wake func(ctx context.Context, key types.NamespacedName)

	// heads are the last commit a job pushed to or fetched from each
	// repository URL: /v6/sync knows them before any GitSync's status
	// does, as fluxd's own clone knew what it had pushed.
	mu    sync.Mutex
	heads map[string]string
}

// remember records hash as the latest commit a job saw of url.
func (wr *Writer) remember(url, hash string) {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	if wr.heads == nil {
		wr.heads = map[string]string{}
	}
	wr.heads[url] = hash
}

// head returns the latest commit a job saw of url, "" when none.
func (wr *Writer) head(url string) string {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	return wr.heads[url]
}

// Run is the Jobs' Runner.
func (wr *Writer) Run(ctx context.Context, spec UpdateSpec, step func(string, ...any)) (JobResult, error) {
	switch spec.Type {
	case UpdateSync:
		return wr.sync(ctx, step)
	case UpdateImages:
		var s ImageReleaseSpec
		if err := json.Unmarshal(spec.Spec, &s); err != nil {
			return JobResult{}, err
		}
		rel, err := parseRelease(s)
		if err != nil {
			return JobResult{}, err
		}
		return wr.release(ctx, spec.Cause, rel, step)
	case UpdateContainers:
		var s ContainersReleaseSpec
		if err := json.Unmarshal(spec.Spec, &s); err != nil {
			return JobResult{}, err
		}
		rel, err := parseContainers(s)
		if err != nil {
			return JobResult{}, err
		}
		return wr.release(ctx, spec.Cause, rel, step)
	case UpdatePolicy:
		var s map[string]PolicyUpdate
		if err := json.Unmarshal(spec.Spec, &s); err != nil {
			return JobResult{}, err
		}
		changes, err := parsePolicies(s)
		if err != nil {
			return JobResult{}, err
		}
		return wr.policies(ctx, spec.Cause, changes, step)
	case UpdateRollback:
		var s RollbackSpec
		if err := json.Unmarshal(spec.Spec, &s); err != nil {
			return JobResult{}, err
		}
		id, err := checkRollback(s)
		if err != nil {
			return JobResult{}, err
		}
		return wr.rollback(ctx, s, id, step)
	}
	return JobResult{}, fmt.Errorf("unknown update type %q", spec.Type)
}

// group is the workloads of one GitSync.
type group struct {
	gitSync *helmfluxv1alpha1.GitSync
	ids     []ID
}

// groups sorts workloads by the GitSync they belong to.
func groups(ws []workload) []group {
	byKey := map[string]*group{}
	var keys []string
	for _, w := range ws {
		k := w.gitSync.Namespace + "/" + w.gitSync.Name
		if byKey[k] == nil {
			byKey[k] = &group{gitSync: w.gitSync}
			keys = append(keys, k)
		}
		byKey[k].ids = append(byKey[k].ids, w.id)
	}
	sort.Strings(keys)
	out := make([]group, 0, len(keys))
	for _, k := range keys {
		out = append(out, *byKey[k])
	}
	return out
}

// releaseTargets returns the workloads a release names, less its excludes.
func (wr *Writer) releaseTargets(ctx context.Context, rel release) ([]workload, error) {
	f := filter{}
	if !rel.all {
		f.ids = rel.ids
	}
	ws, err := wr.Cluster.workloads(ctx, f)
	if err != nil {
		return nil, err
	}
	out := ws[:0]
	for _, w := range ws {
		if !rel.excluded(w.id) {
			out = append(out, w)
		}
	}
	return out, nil
}

// release runs an image or containers release.
func (wr *Writer) release(ctx context.Context, cause Cause, rel release, step func(string, ...any)) (JobResult, error) {
	step("Calculating release actions.")
	ws, err := wr.releaseTargets(ctx, rel)
	if err != nil {
		return JobResult{}, err
	}
	res := JobResult{Result: map[string]WorkloadResult{}}
	for _, g := range groups(ws) {
		step("%s to %s", releaseWhat(rel), joinIDs(g.ids))
		rev, err := wr.edit(ctx, g, step, func(files []update.File, images map[string][]update.Image) (map[string][]byte, string, error) {
			var changes []update.Change
			var summary []string
			for _, id := range g.ids {
				p := rel.planWorkload(ctx, wr.Registry, id, images[id.String()])
				res.Result[id.String()] = p.result
				changes = append(changes, p.changes...)
				if len(p.changes) > 0 {
					step("Update %d image(s) in the resource definition file %s for %s: %s.", len(p.changes), p.file, id, containerList(p.result.PerContainer))
				}
				for _, c := range p.result.PerContainer {
					summary = append(summary, fmt.Sprintf("%s: %s %s -> %s", ReleaseTrailer, repoOf(c.Target), tagOf(c.Current), tagOf(c.Target)))
				}
			}
			if rel.plan || len(changes) == 0 {
				return nil, "", nil
			}
			newFiles, errs := update.Apply(files, changes)
			if len(errs) > 0 {
				return nil, "", errors.Join(errs...)
			}
			step("Update pod controller OK.")
			return newFiles, commitMessage(releaseSubject(rel, g.ids), cause, summary, g.ids), nil
		})
		if err != nil {
			return JobResult{}, err
		}
		if rev != "" {
			res.Revision = rev
			step("Regrade %d workload(s): %s.", len(g.ids), joinIDs(g.ids))
		}
	}
	return res, nil
}

// editFunc computes the new files of one GitSync's repository and the
// commit message; nil files commit nothing.
type editFunc func(files []update.File, images map[string][]update.Image) (map[string][]byte, string, error)

// edit runs fn on a fresh checkout of g's branch and commits and pushes
// what it returns; it returns the pushed commit, "" when none.
func (wr *Writer) edit(ctx context.Context, g group, step func(string, ...any), fn editFunc) (string, error) {
	return wr.editAt(ctx, g, step, func(_ git.Revision, files []update.File, images map[string][]update.Image) (map[string][]byte, string, error) {
		return fn(files, images)
	})
}

// headEditFunc is an editFunc that also gets the head its checkout is of,
// for edits that read the branch's history.
type headEditFunc func(head git.Revision, files []update.File, images map[string][]update.Image) (map[string][]byte, string, error)

// editAt is edit for a headEditFunc.
func (wr *Writer) editAt(ctx context.Context, g group, step func(string, ...any), fn headEditFunc) (string, error) {
	gs := g.gitSync
	if gs.Spec.ReadOnly {
		return "", fmt.Errorf("GitSync %s/%s is readOnly: helmflux does not write to its repository", gs.Namespace, gs.Name)
	}
	if ref := gs.Spec.Ref; ref != nil && (ref.Tag != "" || ref.SemVer != "") {
		return "", fmt.Errorf("GitSync %s/%s follows a tag, not a branch: there is nothing to commit to", gs.Namespace, gs.Name)
	}
	auth, err := gitcreds.Credentials(ctx, wr.Client, gs, wr.Identity)
	if err != nil {
		return "", err
	}
	opts, err := gitcreds.PushOptions(ctx, wr.Client, gs, auth)
	if err != nil {
		return "", err
	}
	step("Clone the config repo.")
	var subject string
	res, err := wr.Git.CommitAndPush(ctx, gs.Spec.URL, opts, func(ctx context.Context, dir string, head git.Revision) (git.Edit, error) {
		rd, err := checkout.Open(dir)
		if err != nil {
			return git.Edit{}, err
		}
		defer func() { _ = rd.Close() }()
		files, errs := rd.YAMLUnder(gs.Spec.Paths)
		files, verrs := rd.WithValuesFiles(files)
		for _, err := range append(errs, verrs...) {
			if errors.Is(err, checkout.ErrTooMuch) {
				return git.Edit{}, err
			}
		}
		step("Clone OK.")
		found, _ := update.Find(files)
		images := map[string][]update.Image{}
		for _, img := range found {
			id := img.Object.String()
			images[id] = append(images[id], img)
		}
		newFiles, msg, err := fn(head, files, images)
		if err != nil || len(newFiles) == 0 {
			return git.Edit{}, err
		}
		subject, _, _ = strings.Cut(msg, "\n")
		step("Commit and push the config repo.")
		return git.Edit{Files: newFiles, Message: msg}, nil
	})
	if err != nil {
		return "", err
	}
	if res.Commit.Hash == "" {
		return "", nil
	}
	step("Pushed commit: %s (%s)", subject, res.Commit.Hash[:7])
	wr.remember(gs.Spec.URL, res.Commit.Hash)
	if wr.Wake != nil {
		wr.Wake(ctx, types.NamespacedName{Namespace: gs.Namespace, Name: gs.Name})
	}
	return res.Commit.Hash, nil
}

// commitMessage is the subject, the cause's message, who asked, and the
// trailers: what changed and which workloads.
func commitMessage(subject string, cause Cause, trailers []string, ids []ID) string {
	var b strings.Builder
	b.WriteString(oneLine(subject))
	if m := strings.TrimSpace(cause.Message); m != "" {
		b.WriteString("\n\n" + m)
	}
	b.WriteString("\n\n")
	seen := map[string]bool{}
	for _, t := range trailers {
		if !seen[t] {
			seen[t] = true
			b.WriteString(oneLine(t) + "\n")
		}
	}
	for _, id := range ids {
		fmt.Fprintf(&b, "%s: %s\n", WorkloadTrailer, id)
	}
	if u := strings.TrimSpace(cause.User); u != "" {
		fmt.Fprintf(&b, "%s: %s\n", UserTrailer, oneLine(u))
	}
	return b.String()
}

func releaseWhat(rel release) string {
	switch {
	case rel.latest:
		return "Release latest images"
	case rel.containers != nil:
		return "Release containers"
	}
	return "Release " + rel.image
}

func releaseSubject(rel release, ids []ID) string {
	return releaseWhat(rel) + " to " + joinIDs(ids)
}

func joinIDs(ids []ID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	return strings.Join(s, ", ")
}

func containerList(cs []ContainerUpdate) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s (%s -> %s)", c.Container, c.Current, c.Target))
	}
	return strings.Join(parts, ", ")
}

func repoOf(ref string) string {
	repo, _, _ := update.SplitRef(ref)
	return repo
}

func tagOf(ref string) string {
	if _, tag, ok := update.SplitRef(ref); ok && tag != "" {
		return tag
	}
	return "<none>"
}

// oneLine keeps text on one line of at most 200 bytes.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= 200 {
		return s
	}
	cut := 200
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut-- // never split a character
	}
	return s[:cut]
}
