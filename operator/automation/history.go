package automation

import (
	"context"
	"fmt"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/history"
	"github.com/helmflux/helmflux/pkg/update"
)

// Defaults of the history walk holds are derived from.
const (
	// DefaultHistoryCommits is how many commits the walk reads at most.
	DefaultHistoryCommits = 10_000
	// DefaultHistoryAge is how old a commit the walk reads at most.
	DefaultHistoryAge = 365 * 24 * time.Hour
)

// HistoryLimits bound the history walk. A hold whose commits lie beyond
// them is not known, so automation writes as it would without it.
type HistoryLimits struct {
	// Commits is the most commits read; 0 is DefaultHistoryCommits.
	Commits int
	// Age is the oldest commit read; 0 is DefaultHistoryAge.
	Age time.Duration
}

func (l HistoryLimits) options(now time.Time) git.LogOptions {
	o := git.LogOptions{MaxCommits: l.Commits, Since: now.Add(-DefaultHistoryAge)}
	if o.MaxCommits <= 0 {
		o.MaxCommits = DefaultHistoryCommits
	}
	if l.Age > 0 {
		o.Since = now.Add(-l.Age)
	}
	return o
}

// history walks the branch history at head for the trailers holds come
// from. A walk that fails is logged and gives nil: no hold known, and the
// pass goes on as it would without holds.
func (r *Reconciler) history(ctx context.Context, obj *helmfluxv1alpha1.GitSync, head git.Revision) []git.LogEntry {
	res, err := r.Git.Log(ctx, obj.Spec.URL, head, r.History.options(time.Now()))
	if err != nil {
		ctrl.LoggerFrom(ctx).Info("Holds are unknown for this pass: the history walk failed", "gitsync", klog.KObj(obj), "error", err.Error())
		return nil
	}
	return res.Entries
}

// maxCauseReads bounds the file versions cause reads.
const maxCauseReads = 20

// maxCauseFile bounds one file version cause reads.
const maxCauseFile = 4 << 20

// causeCache remembers the causes found: they depend only on immutable
// commits and the tag git has now.
type causeCache = lru.Cache[string, git.LogEntry]

// maxCauses bounds the causes remembered.
const maxCauses = 4096

// cause finds the commit that left img at its current tag, below the tag
// w's commit wrote: of the commits since w's that changed img's file, the
// oldest of the newest run in which the file gives img its current tag.
// When the file alone does not say (a values file, whose image belongs to
// a HelmRelease elsewhere), the oldest such commit not made by helmflux.
func (r *Reconciler) cause(ctx context.Context, url string, head git.Revision, img update.Image, w history.Written) (git.LogEntry, bool) {
	key := strings.Join([]string{url, w.Commit.Hash, img.File, workloadID(img.Object), img.Container, img.Tag}, "\x00")
	if r.causes != nil {
		if c, ok := r.causes.Get(key); ok {
			return c, true
		}
	}
	changes, err := r.Git.PathChanges(ctx, url, head, img.File, w.Commit.Hash, r.History.options(time.Now()))
	if err != nil || len(changes) == 0 {
		return git.LogEntry{}, false
	}
	// changes are newest first: follow the run of versions that give img
	// its current tag back to its oldest, and remember the oldest change
	// not made by helmflux in case the file alone cannot say.
	var found, fallback *git.LogEntry
	running, reads := true, 0
	for i := range changes {
		e := &changes[i]
		if !history.IsHelmflux(*e) {
			fallback = e
		}
		if !running {
			continue
		}
		if reads == maxCauseReads {
			running = false
			continue
		}
		reads++
		tag, ok := r.tagAt(ctx, url, e.Hash, img)
		if !ok || tag != img.Tag {
			running = false
			continue
		}
		found = e
	}
	if found == nil {
		found = fallback
	}
	if found == nil {
		return git.LogEntry{}, false
	}
	if r.causes != nil {
		r.causes.Add(key, *found)
	}
	return *found, true
}

// tagAt reads img's tag from its file at commit hash; ok is false when the
// file there does not name img.
func (r *Reconciler) tagAt(ctx context.Context, url, hash string, img update.Image) (string, bool) {
	data, err := r.Git.ReadFile(ctx, url, git.Revision{Hash: hash}, img.File, maxCauseFile)
	if err != nil {
		return "", false
	}
	images, _ := update.Find([]update.File{{Path: img.File, Data: data}})
	for _, other := range images {
		if other.Object == img.Object && other.Container == img.Container && other.Repository == img.Repository {
			return other.Tag, true
		}
	}
	return "", false
}

// releaseFailed reports whether the release of img at tag failed after
// since, the time of the commit that wrote tag: a Deployment whose
// rollout of that tag exceeded its progress deadline, or a HelmRelease
// whose install or upgrade failed (rolled back or not) since then. The
// reason names the object and the failure, never values.
func (r *Reconciler) releaseFailed(ctx context.Context, img update.Image, tag string, since time.Time) (string, bool) {
	key := client.ObjectKey{Namespace: namespaceOf(img.Object), Name: img.Object.Name}
	switch img.Object.Kind {
	case "Deployment":
		if r.APIReader == nil {
			return "", false
		}
		d := &appsv1.Deployment{}
		if err := r.APIReader.Get(ctx, key, d); err != nil {
			return "", false
		}
		return deploymentFailed(d, img.Container, tag)
	case helmv1.HelmReleaseKind:
		hr := &helmv1.HelmRelease{}
		if err := r.Client.Get(ctx, key, hr); err != nil {
			return "", false
		}
		return helmReleaseFailed(hr, since)
	}
	return "", false
}

// deploymentFailed: the Deployment runs tag in container and its rollout
// exceeded the progress deadline.
func deploymentFailed(d *appsv1.Deployment, container, tag string) (string, bool) {
	runs := false
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == container {
			_, t, ok := update.SplitRef(c.Image)
			runs = ok && t == tag
		}
	}
	for _, c := range d.Status.Conditions {
		if runs && c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
			return fmt.Sprintf("the rollout of Deployment %s/%s exceeded its progress deadline", d.Namespace, d.Name), true
		}
	}
	return "", false
}

// helmReleaseFailed: the HelmRelease's last install or upgrade failed, and
// the failure was recorded after since.
func helmReleaseFailed(hr *helmv1.HelmRelease, since time.Time) (string, bool) {
	c := apimeta.FindStatusCondition(hr.Status.Conditions, helmv1.ReleasedCondition)
	if c == nil || c.Status != "False" || c.LastTransitionTime.Time.Before(since.Truncate(time.Second)) {
		return "", false
	}
	switch c.Reason {
	case helmv1.UpgradeFailedReason, helmv1.InstallFailedReason, helmv1.TestFailedReason:
	default:
		return "", false
	}
	what := "failed"
	if rb := apimeta.FindStatusCondition(hr.Status.Conditions, helmv1.RolledBackCondition); rb != nil && rb.Status == "True" {
		what = "failed and was rolled back"
	}
	return fmt.Sprintf("the release of HelmRelease %s/%s %s (%s)", hr.Namespace, hr.Name, what, c.Reason), true
}

// holdEvents records one Event when a hold starts and one when it ends.
func (r *Reconciler) holdEvents(obj *helmfluxv1alpha1.GitSync, before, after []helmfluxv1alpha1.ImageHold, p *plan) {
	if p == nil {
		return
	}
	id := func(h helmfluxv1alpha1.ImageHold) string {
		return h.Workload + "\x00" + h.Container + "\x00" + h.Tag + "\x00" + h.Reason
	}
	was, is := map[string]bool{}, map[string]bool{}
	for _, h := range before {
		was[id(h)] = true
	}
	for _, h := range after {
		is[id(h)] = true
		if !was[id(h)] {
			r.Events.Eventf(obj, nil, corev1.EventTypeNormal, helmfluxv1alpha1.ImageHeldReason, "Hold",
				"%s (%s): %s held at %s: %s", h.Workload, h.Container, h.Image, orNone(h.Current), h.Message)
		}
	}
	for _, h := range before {
		if !is[id(h)] {
			r.Events.Eventf(obj, nil, corev1.EventTypeNormal, helmfluxv1alpha1.ImageHoldEndedReason, "Hold",
				"%s (%s): the hold of %s at %s ended", h.Workload, h.Container, h.Image, h.Tag)
		}
	}
}
