package gitsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/outcome"
	"github.com/helmflux/helmflux/pkg/apply"
	"github.com/helmflux/helmflux/pkg/manifest"
)

// reconcileManifests checks out the fetched revision into a temporary
// directory and renders its manifests; a pass at the revision and
// generation rendered last reuses those objects. It writes no condition
// itself; a build error (malformed file, path escaping the checkout) names
// file and line and waits for the next commit.
func (r *Reconciler) reconcileManifests(ctx context.Context, s *scope) error {
	if r.Loads != nil {
		if err := r.Loads.Acquire(ctx, 1); err != nil {
			return outcome.Retry(helmfluxv1alpha1.BuildFailedReason, fmt.Errorf("wait for a free load slot: %w", err))
		}
		s.releaseLoad = func() { r.Loads.Release(1) }
	}
	if objs, rep, ok := r.states.renderedAt(s.obj, s.revision.String()); ok {
		r.noteFluxV1Configs(s.obj, rep.FluxV1Configs)
		s.objects = objs
		return nil
	}
	dir, err := os.MkdirTemp(r.WorkDir, "checkout-")
	if err != nil {
		return outcome.Retry(helmfluxv1alpha1.BuildFailedReason, fmt.Errorf("make checkout directory: %w", err))
	}
	defer os.RemoveAll(dir)

	if err := r.Git.Checkout(ctx, s.obj.Spec.URL, s.revision, dir); err != nil {
		return outcome.Retry(helmfluxv1alpha1.BuildFailedReason, fmt.Errorf("check out %s: %w", s.revision, err))
	}
	objs, rep, err := manifest.LoadReport(ctx, dir, s.obj.Spec.Paths, r.Manifests)
	if err != nil {
		return outcome.WaitForChange(helmfluxv1alpha1.BuildFailedReason, fmt.Errorf("revision %s: %w", s.revision, err))
	}
	r.noteFluxV1Configs(s.obj, rep.FluxV1Configs)
	owner := s.obj.Namespace + "/" + s.obj.Name
	shard, sharded := s.obj.GetLabels()[helmfluxv1alpha1.ShardLabel]
	for _, o := range objs {
		if sharded {
			inheritShard(o.Object, shard)
		}
		ann := o.Object.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[helmfluxv1alpha1.SyncAnnotation] = owner
		ann[helmfluxv1alpha1.SourceAnnotation] = o.Source
		if readsGitFiles(o.Object) {
			ann[helmv1.RevisionAnnotation] = s.revision.String()
		}
		o.Object.SetAnnotations(ann)
	}
	s.objects = objs
	r.states.keepRendered(s.obj, s.revision.String(), objs, rep)
	return nil
}

// noteFluxV1Configs sets FluxV1ConfigIgnored, with a Warning Event when it
// first appears or names other files, when the paths applied hold or lie
// under Flux v1 .flux.yaml files: their generators are not run, which a
// team moving from Flux v1 must hear about rather than find out from what
// was applied.
func (r *Reconciler) noteFluxV1Configs(obj *helmfluxv1alpha1.GitSync, files []string) {
	if len(files) == 0 {
		conds(obj).Remove(helmfluxv1alpha1.FluxV1ConfigIgnoredCondition)
		return
	}
	msg := fmt.Sprintf("%s: Flux v1 manifest generation (.flux.yaml) is not supported; its generators were not run and the plain YAML of these paths was applied as it is. Build with a kustomization.yaml instead, or commit the generated manifests", strings.Join(files, ", "))
	prev := apimeta.FindStatusCondition(obj.Status.Conditions, helmfluxv1alpha1.FluxV1ConfigIgnoredCondition)
	conds(obj).Set(helmfluxv1alpha1.FluxV1ConfigIgnoredCondition, metav1.ConditionTrue, helmfluxv1alpha1.FluxV1ConfigIgnoredReason, msg)
	if r.Events != nil && (prev == nil || prev.Message != msg) {
		r.Events.Eventf(obj, nil, corev1.EventTypeWarning, helmfluxv1alpha1.FluxV1ConfigIgnoredReason, "Build", "%s", msg)
	}
}

// shardedKinds are the kinds a shard's operator reconciles (its
// --watch-label-selector applies to them).
var shardedKinds = map[schema.GroupKind]bool{
	{Group: helmv1.GroupVersion.Group, Kind: helmv1.HelmReleaseKind}: true,
	{Group: helmfluxv1alpha1.GroupVersion.Group, Kind: "GitSync"}:    true,
	{Group: helmfluxv1alpha1.GroupVersion.Group, Kind: "Alert"}:      true,
}

// inheritShard gives obj, a HelmRelease, GitSync or Alert that names no
// shard (no sharding.fluxcd.io/key label), the shard of the GitSync that
// applies it, so that what a shard's GitSync applies is reconciled by the
// same shard and its gitFileRefs can read the GitSync. A label in git,
// another shard's included, is left as it is; other kinds are not touched.
func inheritShard(obj *unstructured.Unstructured, shard string) {
	if !shardedKinds[obj.GroupVersionKind().GroupKind()] {
		return
	}
	l := obj.GetLabels()
	if _, ok := l[helmfluxv1alpha1.ShardLabel]; ok {
		return
	}
	if l == nil {
		l = map[string]string{}
	}
	l[helmfluxv1alpha1.ShardLabel] = shard
	obj.SetLabels(l)
}

// readsGitFiles tells whether obj is a HelmRelease with values files in git
// (valuesFrom[].gitFileRef): it is stamped with the revision applied, so the
// HelmRelease controller reads them at that revision, and a commit that
// changes only a values file still reaches the release.
func readsGitFiles(obj *unstructured.Unstructured) bool {
	if obj.GroupVersionKind().GroupKind() != helmv1.GroupVersion.WithKind(helmv1.HelmReleaseKind).GroupKind() {
		return false
	}
	from, _, _ := unstructured.NestedSlice(obj.Object, "spec", "valuesFrom")
	for _, f := range from {
		if m, ok := f.(map[string]any); ok && m["gitFileRef"] != nil {
			return true
		}
	}
	return false
}

// reconcileApply applies the rendered objects, prunes what left git (when
// prune is on) and records the inventory. It sets lastAttemptedRevision,
// lastAppliedRevision and the inventory; Ready follows from its outcome.
func (r *Reconciler) reconcileApply(ctx context.Context, s *scope) error {
	obj := s.obj
	obj.Status.LastAttemptedRevision = s.revision.String()
	set := make([]*unstructured.Unstructured, 0, len(s.objects))
	for _, o := range s.objects {
		set = append(set, o.Object)
	}
	applier, err := r.applierFor(obj)
	if err != nil {
		return outcome.Retry(helmfluxv1alpha1.ApplyFailedReason, err)
	}
	s.applier = applier
	cs, err := applier.Sync(ctx, set, r.states.of(obj))
	var invalid *apply.InvalidError
	switch {
	case errors.As(err, &invalid):
		return outcome.WaitForChange(helmfluxv1alpha1.ValidationFailedReason, fmt.Errorf("revision %s: %w", s.revision, err))
	case err != nil:
		return outcome.Retry(helmfluxv1alpha1.ApplyFailedReason, fmt.Errorf("apply revision %s: %w", s.revision, err))
	}
	s.changes = cs

	previous, err := r.loadInventory(ctx, obj)
	if err != nil {
		return outcome.Retry(helmfluxv1alpha1.ApplyFailedReason, err)
	}
	current := inventoryOf(cs, s.objects, previous)
	next := current
	var pruneErr error
	if obj.Spec.Prune {
		next, pruneErr = r.prune(ctx, s, previous, current)
	}
	if err := r.storeInventory(ctx, obj, next); err != nil {
		return outcome.Retry(helmfluxv1alpha1.ApplyFailedReason, err)
	}
	if pruneErr != nil {
		return pruneErr
	}
	if len(cs.Failures()) == 0 && (s.pruned == nil || len(s.pruned.Failures()) == 0) {
		obj.Status.LastAppliedRevision = s.revision.String()
		s.applied = true
	}
	log := ctrl.LoggerFrom(ctx).V(1) // a pass that changed nothing
	if changed(s) {
		log = ctrl.LoggerFrom(ctx)
	}
	result := "success"
	if !s.applied {
		result = "partial"
	}
	log.Info("Applied revision", "revision", s.revision.String(), "outcome", result, "summary", summaryLine(s))
	return nil
}

// prune deletes the objects of previous that left git and returns the next
// inventory: current plus whatever could not be deleted yet.
func (r *Reconciler) prune(ctx context.Context, s *scope, previous, current []item) ([]item, error) {
	obj := s.obj
	force := false
	if token, ok := obj.GetAnnotations()[meta.ForceRequestAnnotation]; ok && token != obj.Status.LastHandledForceAt {
		force = true
		obj.Status.LastHandledForceAt = token
	}
	pruned, err := s.applier.Prune(ctx, ids(previous), ids(current), apply.PruneOptions{
		Owner: obj.Namespace + "/" + obj.Name, MaxPercent: obj.GetMaxPrunePercent(), Force: force,
	})
	var guard *apply.PruneGuardError
	switch {
	case errors.As(err, &guard):
		return union(current, previous), outcome.WaitForChange(helmfluxv1alpha1.PruneRefusedReason, err)
	case err != nil:
		return union(current, previous), outcome.Retry(helmfluxv1alpha1.PruneFailedReason, fmt.Errorf("prune: %w", err))
	}
	s.pruned = pruned
	var kept []item
	for _, res := range pruned.Results {
		if res.Action == apply.Failed {
			kept = append(kept, item{ID: res.ID, Version: res.Version})
		}
	}
	return union(current, kept), nil
}

// reconcileDelete prunes a deleted GitSync's objects when prune is on, then
// lets it go.
func (r *Reconciler) reconcileDelete(ctx context.Context, obj *helmfluxv1alpha1.GitSync) error {
	if obj.Spec.Prune && !obj.Spec.Suspend {
		if err := r.pruneDeleted(ctx, obj); err != nil {
			return err
		}
	}
	r.forgetRepository(ctx, obj)
	base := obj.DeepCopy()
	controllerutil.RemoveFinalizer(obj, Finalizer)
	return r.Client.Patch(ctx, obj, client.MergeFrom(base))
}

// pruneDeleted prunes every object of a deleted GitSync's inventory, as its
// service account. When that account is gone (its namespace is being
// deleted, say) the objects are left in place: nothing could delete them for
// the GitSync, and waiting would hold the GitSync and its namespace forever.
func (r *Reconciler) pruneDeleted(ctx context.Context, obj *helmfluxv1alpha1.GitSync) error {
	gone, err := r.serviceAccountGone(ctx, obj)
	if err != nil {
		return err
	}
	if gone {
		ctrl.LoggerFrom(ctx).Info("Not pruning the objects of the deleted GitSync: its service account is gone",
			"serviceAccount", r.serviceAccountOf(obj))
		return nil
	}
	previous, err := r.loadInventory(ctx, obj)
	if err != nil {
		return err
	}
	applier, err := r.applierFor(obj)
	if err != nil {
		return err
	}
	pruned, err := applier.Prune(ctx, ids(previous), nil, apply.PruneOptions{
		Owner: obj.Namespace + "/" + obj.Name, Force: true,
	})
	if err != nil {
		return fmt.Errorf("prune the objects of deleted GitSync: %w", err)
	}
	if f := pruned.Failures(); len(f) > 0 {
		f, _ = forbiddenFirst(f)
		return fmt.Errorf("prune the objects of deleted GitSync: %s", firstFailure(f))
	}
	return nil
}
