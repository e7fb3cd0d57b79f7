package apply

import (
	"context"
	"errors"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/manifest"
)

// DefaultMaxPrunePercent is the share of an inventory a prune may delete unforced.
const DefaultMaxPrunePercent = 50

// PruneOptions say which objects a prune may delete.
type PruneOptions struct {
	// Owner is the helmflux.dev/sync annotation value an object must carry to be
	// deleted; an object another sync took over is left alone.
	Owner string
	// MaxPercent is the largest share of the inventory deleted without Force;
	// 0 means DefaultMaxPrunePercent, 100 disables the guard.
	MaxPercent int
	// Force deletes past the guard.
	Force bool
}

// PruneGuardError says a prune was refused because it would delete too much.
type PruneGuardError struct {
	Stale, Total, MaxPercent int
}

func (e *PruneGuardError) Error() string {
	if e.Stale == e.Total {
		return fmt.Sprintf("prune refused: it would delete all %d objects of the inventory; "+
			"if that is intended, set the reconcile.fluxcd.io/forceAt annotation to prune once", e.Total)
	}
	return fmt.Sprintf("prune refused: it would delete %d of %d objects (%d%%), more than the %d%% allowed; "+
		"if that is intended, set the reconcile.fluxcd.io/forceAt annotation to prune once",
		e.Stale, e.Total, e.Stale*100/e.Total, e.MaxPercent)
}

// Stale returns the IDs of previous that are not in current, in deletion
// order: everything else first, then Namespaces and CRDs.
func Stale(previous, current []ObjectID) []ObjectID {
	keep := make(map[ObjectID]bool, len(current))
	for _, id := range current {
		keep[id] = true
	}
	var out []ObjectID
	for _, id := range previous {
		if !keep[id] {
			out = append(out, id)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

func rank(id ObjectID) int {
	switch id.GroupKind() {
	case namespaceGK:
		return 1
	case crdGK:
		return 2
	}
	return 0
}

// Prune deletes the objects of previous that are not in current and that this
// sync still owns. It refuses, changing nothing, when that would empty the
// inventory or delete more than opts.MaxPercent of it (one object is always
// allowed), unless opts.Force.
func (a *Applier) Prune(ctx context.Context, previous, current []ObjectID, opts PruneOptions) (*ChangeSet, error) {
	stale := Stale(previous, current)
	maxPercent := opts.MaxPercent
	if maxPercent <= 0 {
		maxPercent = DefaultMaxPrunePercent
	}
	total := len(previous)
	tooMany := len(stale) > 1 && len(stale)*100 > maxPercent*total
	if len(stale) > 0 && !opts.Force && (len(stale) == total || tooMany) {
		return nil, &PruneGuardError{Stale: len(stale), Total: total, MaxPercent: maxPercent}
	}

	cs := &ChangeSet{}
	for _, id := range stale {
		if err := ctx.Err(); err != nil {
			return cs, err
		}
		cs.Results = append(cs.Results, a.deleteOwned(ctx, id, opts.Owner))
	}
	return cs, nil
}

var errNotOwned = errors.New("not deleted: another sync or a person owns it now")

func (a *Applier) deleteOwned(ctx context.Context, id ObjectID, owner string) Result {
	res := Result{ID: id, Action: Skipped}
	mapping, err := a.client.RESTMapper().RESTMapping(id.GroupKind())
	if meta.IsNoMatchError(err) {
		res.Err = errors.New("not deleted: its kind is no longer served")
		return res
	} else if err != nil {
		res.Action, res.Err = Failed, fmt.Errorf("look up kind: %w", err)
		return res
	}
	res.Version = mapping.GroupVersionKind.GroupVersion().String()

	live := &metav1.PartialObjectMetadata{}
	live.SetGroupVersionKind(mapping.GroupVersionKind)
	if err := a.client.Get(ctx, client.ObjectKey{Namespace: id.Namespace, Name: id.Name}, live); apierrors.IsNotFound(err) {
		res.Err = errors.New("already deleted")
		return res
	} else if err != nil {
		res.Action, res.Err = Failed, fmt.Errorf("read live object: %w", err)
		return res
	}
	ann := live.GetAnnotations()
	res.Source = ann[helmfluxv1alpha1.SourceAnnotation]
	switch {
	case ann[helmfluxv1alpha1.SyncAnnotation] != owner:
		res.Err = errNotOwned
		return res
	case isIgnored(ann):
		res.Err = fmt.Errorf("not deleted: annotated %s", manifest.AnnotationIgnore)
		return res
	}
	err = a.client.Delete(ctx, live, client.PropagationPolicy(metav1.DeletePropagationBackground),
		client.Preconditions{UID: &live.UID})
	if err != nil && !apierrors.IsNotFound(err) {
		res.Action, res.Err = Failed, fmt.Errorf("delete: %w", err)
		return res
	}
	res.Action, res.Err = Deleted, nil
	return res
}

// isIgnored tells whether annotations exempt an object from pruning:
// fluxcd.io/ignore "true" or "sync_only" (or the flux.weave.works/ form).
func isIgnored(ann map[string]string) bool {
	for _, k := range []string{manifest.AnnotationIgnore, manifest.AnnotationIgnoreLegacy} {
		if v := ann[k]; v == manifest.IgnoreTrue || v == manifest.IgnoreSyncOnly {
			return true
		}
	}
	return false
}
