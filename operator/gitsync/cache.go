package gitsync

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git"
)

// forgetRepository removes the cached repository of a deleted GitSync,
// unless another GitSync or a HelmRelease's chart.git names the same
// repository (git.SameRepository, which errs towards "same": a cache kept
// too long costs disk, one removed too soon only a clone). A failure is
// logged, not returned: the cache is no reason to hold a deletion.
func (r *Reconciler) forgetRepository(ctx context.Context, obj *helmfluxv1alpha1.GitSync) {
	log := ctrl.LoggerFrom(ctx)
	syncs := &helmfluxv1alpha1.GitSyncList{}
	if err := r.Client.List(ctx, syncs); err != nil {
		log.Error(err, "Keeping the git cache of the deleted GitSync: cannot list GitSyncs")
		return
	}
	for i := range syncs.Items {
		o := &syncs.Items[i]
		if o.UID != obj.UID && o.DeletionTimestamp.IsZero() && git.SameRepository(o.Spec.URL, obj.Spec.URL) {
			return
		}
	}
	releases := &helmv1.HelmReleaseList{}
	if err := r.Client.List(ctx, releases); err != nil {
		log.Error(err, "Keeping the git cache of the deleted GitSync: cannot list HelmReleases")
		return
	}
	for i := range releases.Items {
		if c := releases.Items[i].Spec.Chart; c.IsGit() && git.SameRepository(c.Git, obj.Spec.URL) {
			return
		}
	}
	if err := r.Git.Remove(ctx, obj.Spec.URL); err != nil {
		log.Error(err, "Could not remove the git cache of the deleted GitSync")
		return
	}
	log.V(1).Info("Removed the git cache of the deleted GitSync")
}
