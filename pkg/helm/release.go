package helm

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/storage/driver"
	helmtime "helm.sh/helm/v3/pkg/time"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
)

// Release statuses, as `helm status` prints them.
const (
	StatusDeployed        = string(release.StatusDeployed)
	StatusFailed          = string(release.StatusFailed)
	StatusSuperseded      = string(release.StatusSuperseded)
	StatusUninstalled     = string(release.StatusUninstalled)
	StatusPendingInstall  = string(release.StatusPendingInstall)
	StatusPendingUpgrade  = string(release.StatusPendingUpgrade)
	StatusPendingRollback = string(release.StatusPendingRollback)
	StatusUninstalling    = string(release.StatusUninstalling)
)

// Release is what the controller needs to know of one release revision.
type Release struct {
	Name         string
	Namespace    string
	Version      int
	Status       string
	Description  string
	ChartName    string
	ChartVersion string
	AppVersion   string
	// LastDeployed is when the revision's action started; for a pending
	// revision, when its lock was taken.
	LastDeployed time.Time
	// Labels are the labels of the storage record (the digests helmflux set).
	Labels map[string]string
	// Manifest is the rendered manifest, without hooks.
	Manifest string
	// FailedTests names the test hooks that failed in the last test run.
	FailedTests []string
	// ValuesChecksum is Checksum of the user values the revision was made
	// with, to compare with the values a HelmRelease declares.
	ValuesChecksum string
}

// Labels of Helm's release storage records (Secrets), set by Helm on every
// revision whoever made it: what a metadata-only watch can tell of a release
// without reading its content.
const (
	RecordOwnerLabel   = "owner"
	RecordOwner        = "helm"
	RecordNameLabel    = "name"
	RecordStatusLabel  = "status"
	RecordVersionLabel = "version"
)

// Record is what the labels of one storage record say of a revision.
type Record struct {
	Name    string
	Version int
	Status  string
}

// RecordOf reads a storage record's labels; ok is false for a Secret that is
// not a Helm release record.
func RecordOf(labels map[string]string) (rec Record, ok bool) {
	if labels[RecordOwnerLabel] != RecordOwner || labels[RecordNameLabel] == "" {
		return Record{}, false
	}
	v, err := strconv.Atoi(labels[RecordVersionLabel])
	if err != nil || v <= 0 {
		return Record{}, false
	}
	return Record{Name: labels[RecordNameLabel], Version: v, Status: labels[RecordStatusLabel]}, true
}

// Pending tells whether the revision holds the release's lock: an install,
// upgrade, rollback or uninstall in progress (or one that died midway).
func (r *Release) Pending() bool {
	return Locked(r.Status)
}

// Locked tells whether a release status is an action in progress.
func Locked(status string) bool {
	return release.Status(status).IsPending() || status == StatusUninstalling
}

func summarize(rel *release.Release) *Release {
	if rel == nil {
		return nil
	}
	out := &Release{Name: rel.Name, Namespace: rel.Namespace, Version: rel.Version, Labels: rel.Labels, Manifest: rel.Manifest,
		ValuesChecksum: Checksum(rel.Config)}
	if rel.Info != nil {
		out.Status = string(rel.Info.Status)
		out.Description = rel.Info.Description
		out.LastDeployed = rel.Info.LastDeployed.Time
		if rel.Info.Status == release.StatusUninstalling && !rel.Info.Deleted.IsZero() {
			out.LastDeployed = rel.Info.Deleted.Time // when the uninstall took the lock
		}
	}
	if rel.Chart != nil && rel.Chart.Metadata != nil {
		out.ChartName = rel.Chart.Metadata.Name
		out.ChartVersion = rel.Chart.Metadata.Version
		out.AppVersion = rel.Chart.Metadata.AppVersion
	}
	for _, h := range rel.Hooks {
		if isTest(h) && h.LastRun.Phase == release.HookPhaseFailed {
			out.FailedTests = append(out.FailedTests, h.Name)
		}
	}
	return out
}

func isTest(h *release.Hook) bool {
	for _, e := range h.Events {
		if e == release.HookTest {
			return true
		}
	}
	return false
}

// Last returns the newest revision of a release, or nil when there is none.
// It reads the release's storage records (one list of Secrets).
func (r *Runner) Last(ctx context.Context, namespace, name string) (*Release, error) {
	cfg, err := r.configuration(ctx, namespace, false)
	if err != nil {
		return nil, err
	}
	rel, err := cfg.Releases.Last(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read release %s/%s: %w", namespace, name, err)
	}
	return summarize(rel), nil
}

// LastGood returns the newest revision older than before that was deployed
// (now deployed or superseded): the target of a rollback. Nil when none.
func (r *Runner) LastGood(ctx context.Context, namespace, name string, before int) (*Release, error) {
	cfg, err := r.configuration(ctx, namespace, false)
	if err != nil {
		return nil, err
	}
	history, err := cfg.Releases.History(name)
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, fmt.Errorf("read the history of %s/%s: %w", namespace, name, err)
	}
	releaseutil.Reverse(history, releaseutil.SortByRevision)
	for _, rel := range history {
		if rel.Version >= before || rel.Info == nil {
			continue
		}
		if s := rel.Info.Status; s == release.StatusDeployed || s == release.StatusSuperseded {
			return summarize(rel), nil
		}
	}
	return nil, nil
}

// Current returns the revision an upgrade starts from, as Helm picks it:
// the newest one when it is deployed, else the deployed one, else a failed
// or superseded newest one. An upgrade deletes the objects of this revision
// that the new manifest no longer lists. Nil when there is none.
func (r *Runner) Current(ctx context.Context, namespace, name string) (*Release, error) {
	cfg, err := r.configuration(ctx, namespace, false)
	if err != nil {
		return nil, err
	}
	last, err := cfg.Releases.Last(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read release %s/%s: %w", namespace, name, err)
	}
	if last.Info == nil || last.Info.Status == release.StatusDeployed {
		return summarize(last), nil
	}
	deployed, err := cfg.Releases.Deployed(name)
	switch {
	case err == nil:
		return summarize(deployed), nil
	case errors.Is(err, driver.ErrNoDeployedReleases) || errors.Is(err, driver.ErrReleaseNotFound):
		return summarize(last), nil
	}
	return nil, fmt.Errorf("read the deployed revision of %s/%s: %w", namespace, name, err)
}

// Unlock marks a pending revision failed when its lock is older than
// olderThan, so the next action can proceed. It reports whether it did; a
// younger lock (someone's action in progress) is left alone.
func (r *Runner) Unlock(ctx context.Context, namespace, name string, olderThan time.Duration) (bool, error) {
	cfg, err := r.configuration(ctx, namespace, false)
	if err != nil {
		return false, err
	}
	rel, err := cfg.Releases.Last(name)
	if err != nil {
		return false, fmt.Errorf("read release %s/%s: %w", namespace, name, err)
	}
	if rel.Info == nil || !Locked(string(rel.Info.Status)) {
		return false, nil
	}
	since := rel.Info.LastDeployed.Time
	if rel.Info.Status == release.StatusUninstalling && !rel.Info.Deleted.IsZero() {
		since = rel.Info.Deleted.Time
	}
	age := time.Since(since)
	if age < olderThan {
		return false, nil
	}
	rel.Info.Description = fmt.Sprintf("Unlocked by helmflux: %s for %s, longer than the timeout %s",
		rel.Info.Status, age.Round(time.Second), olderThan)
	rel.Info.Status = release.StatusFailed
	rel.Info.LastDeployed = helmtime.Now()
	if err := cfg.Releases.Update(rel); err != nil {
		return false, fmt.Errorf("unlock release %s/%s: %w", namespace, name, err)
	}
	return true, nil
}

// Owner returns the antecedent annotation of the release's objects: the
// HelmRelease that owns it, "" when no object names one.
func (rel *Release) Owner() string {
	objs, err := rel.Objects()
	if err != nil {
		return ""
	}
	for _, o := range objs {
		if a := o.GetAnnotations()[helmv1.AntecedentAnnotation]; a != "" {
			return a
		}
	}
	return ""
}

// Objects parses the release's manifest into the objects Helm acts on:
// a document that is a list (has `items`) stands for its items. Namespaced
// objects without a namespace get the release's namespace, as Helm
// installed them; the caller clears it for cluster-scoped kinds (it knows
// the REST mappings).
func (rel *Release) Objects() ([]*unstructured.Unstructured, error) {
	manifests := releaseutil.SplitManifests(rel.Manifest)
	keys := make([]string, 0, len(manifests))
	for k := range manifests {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	out := make([]*unstructured.Unstructured, 0, len(keys))
	for _, k := range keys {
		doc := manifests[k]
		if strings.TrimSpace(doc) == "" {
			continue
		}
		m := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			return nil, fmt.Errorf("parse the manifest of release %s: %w", rel.Name, err)
		}
		out = flatten(out, m, rel.Namespace, 0)
	}
	return out, nil
}

// maxListDepth bounds the nesting of lists in lists that flatten follows.
const maxListDepth = 8

// flatten appends the object m to out, or, when m is a list (any document
// with an `items` array, whatever its kind, as Helm's decoder and kubectl's
// builder take it), the objects its items hold, recursively: the objects
// Helm acts on. A list nested deeper than maxListDepth is kept as it is, an
// object of a kind nobody serves.
func flatten(out []*unstructured.Unstructured, m map[string]any, namespace string, depth int) []*unstructured.Unstructured {
	if len(m) == 0 {
		return out
	}
	if items, ok := m["items"].([]any); ok && depth < maxListDepth {
		for _, it := range items {
			if im, ok := it.(map[string]any); ok {
				out = flatten(out, im, namespace, depth+1)
			}
		}
		return out
	}
	u := &unstructured.Unstructured{Object: m}
	if u.GetNamespace() == "" {
		u.SetNamespace(namespace)
	}
	return append(out, u)
}
