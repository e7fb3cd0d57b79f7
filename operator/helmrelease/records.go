package helmrelease

import (
	"context"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlevent "sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/pkg/helm"
)

// releaseIndex indexes HelmReleases by the release they manage,
// "<target namespace>/<release name>".
const releaseIndex = ".helmflux.release"

// Records tells from Helm's storage records, watched as metadata only, whether
// a release is still at the revision helmflux recorded: a `helm rollback`,
// `upgrade` or `uninstall` by someone else shows in the records' labels
// (version, status) without a read of the API server.
type Records struct {
	// Cache is the manager's cache, whose metadata informer of Secrets the
	// HelmRelease controller's watches start.
	Cache client.Reader

	mu sync.Mutex
	// busy counts the passes that act on a release, from their first Helm
	// action until their status is written: the revisions written meanwhile
	// are their own, not someone else's change. A pass that only looks (and
	// finds someone's lock, say) is not busy, so the end of someone's
	// command wakes it.
	busy map[string]int
	// recorded is the revision and status helmflux last wrote into a
	// status, per release, so that its own records arriving late are
	// recognised even before the cache holds that status.
	recorded map[string]helm.Record
}

func releaseKey(namespace, name string) string { return namespace + "/" + name }

// Unchanged tells whether the newest cached record of a release is the one
// helmflux recorded (its revision and status; Name is not compared). Records
// the cache has not seen yet (older than the recorded revision) count as
// unchanged; no record at all does not.
func (r *Records) Unchanged(ctx context.Context, namespace, name string, recorded helm.Record) bool {
	newest, err := r.newest(ctx, namespace, name)
	if err != nil {
		return false
	}
	switch {
	case newest.Version == 0:
		return false
	case newest.Version < recorded.Version:
		return true
	}
	return newest.Version == recorded.Version && newest.Status == recorded.Status
}

// None tells whether a release has no revision at all: the cache holds no
// record of it, helmflux has recorded none (recorded, from the status, nor
// since), and no pass acts on it. A just-made record the cache has not
// seen yet is the only one it can miss.
func (r *Records) None(ctx context.Context, namespace, name string, recorded helm.Record) bool {
	if recorded.Version > 0 {
		return false
	}
	if last, ok := r.expected(releaseKey(namespace, name), recorded); !ok || last.Version > 0 {
		return false
	}
	newest, err := r.newest(ctx, namespace, name)
	return err == nil && newest.Version == 0
}

// recordOf is the release revision a HelmRelease's status records.
func recordOf(obj *helmv1.HelmRelease) helm.Record {
	return helm.Record{Name: obj.Status.ReleaseName, Version: obj.Status.ReleaseRevision, Status: obj.Status.ReleaseStatus}
}

// newest returns the newest cached record of a release; Version 0 when
// there is none.
func (r *Records) newest(ctx context.Context, namespace, name string) (helm.Record, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	err := r.Cache.List(ctx, list, client.InNamespace(namespace),
		client.MatchingLabels{helm.RecordOwnerLabel: helm.RecordOwner, helm.RecordNameLabel: name})
	if err != nil {
		return helm.Record{}, err
	}
	var newest helm.Record
	for _, item := range list.Items {
		if rec, ok := helm.RecordOf(item.Labels); ok && rec.Version > newest.Version {
			newest = rec
		}
	}
	return newest, nil
}

// begin marks a pass acting on the release of obj.
func (r *Records) begin(obj *helmv1.HelmRelease) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.busy == nil {
		r.busy, r.recorded = map[string]int{}, map[string]helm.Record{}
	}
	r.busy[releaseKey(obj.GetTargetNamespace(), obj.GetReleaseName())]++
}

// end closes a pass over the release of obj, once its status is written:
// one that acted is no longer busy, and what the status records is
// remembered (nothing, for a deleted HelmRelease).
func (r *Records) end(obj *helmv1.HelmRelease, acted, deleted bool) {
	key := releaseKey(obj.GetTargetNamespace(), obj.GetReleaseName())
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recorded == nil {
		r.busy, r.recorded = map[string]int{}, map[string]helm.Record{}
	}
	if acted {
		if r.busy[key]--; r.busy[key] <= 0 {
			delete(r.busy, key)
		}
	}
	if rec := recordOf(obj); !deleted && rec.Version > 0 {
		r.recorded[key] = rec
	} else {
		delete(r.recorded, key)
	}
}

// expected returns what to compare the records of a release with (what
// helmflux last recorded, else the cached status), and false while a pass
// over it is in progress.
func (r *Records) expected(key string, status helm.Record) (helm.Record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.busy[key] > 0 {
		return helm.Record{}, false
	}
	if rec, ok := r.recorded[key]; ok {
		return rec, true
	}
	return status, true
}

// isRecord passes the events of Helm's storage records only.
var isRecord = predicate.NewPredicateFuncs(func(o client.Object) bool {
	_, ok := helm.RecordOf(o.GetLabels())
	return ok
})

// recordChanged passes record events that may be someone else's change: a
// new record, a removed one, or a status or version label that moved.
var recordChanged = predicate.And(isRecord, predicate.Funcs{
	UpdateFunc: func(e ctrlevent.UpdateEvent) bool {
		a, b := e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels()
		return a[helm.RecordStatusLabel] != b[helm.RecordStatusLabel] || a[helm.RecordVersionLabel] != b[helm.RecordVersionLabel]
	},
})

// ownersOf maps a storage record to the HelmReleases of its release whose
// recorded revision it no longer matches.
func (r *Reconciler) ownersOf(ctx context.Context, o client.Object) []reconcile.Request {
	rec, ok := helm.RecordOf(o.GetLabels())
	if !ok {
		return nil
	}
	key := releaseKey(o.GetNamespace(), rec.Name)
	if newest, err := r.Records.newest(ctx, o.GetNamespace(), rec.Name); err == nil && helm.Locked(newest.Status) {
		return nil // someone's helm command in progress: its last record comes next
	}
	list := &helmv1.HelmReleaseList{}
	if err := r.Client.List(ctx, list, client.MatchingFields{releaseIndex: key}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "List the HelmReleases of a release", "release", key)
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		hr := &list.Items[i]
		want, ok := r.Records.expected(key, recordOf(hr))
		if !ok || r.Records.Unchanged(ctx, o.GetNamespace(), rec.Name, want) {
			continue
		}
		ctrl.LoggerFrom(ctx).V(1).Info("Release changed outside a pass", "release", key,
			"revision", strconv.Itoa(rec.Version), "status", rec.Status)
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(hr)})
	}
	return out
}
