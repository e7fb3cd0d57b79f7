package helmrelease

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/gitcreds"
	"github.com/helmflux/helmflux/operator/outcome"
	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/helm"
)

// verifiedChartWhy says, in messages about the applying GitSync's
// inventory, what the trust is for.
const verifiedChartWhy = "a git chart from a repository it verifies is verified as it verifies its commits"

// verifyChart makes a git chart from the repository of a GitSync with
// spec.verify pass that GitSync's verification: otherwise one unsigned
// commit that changes only the chart directory would reach the cluster,
// although the GitSync refuses the commit. The GitSyncs that count are every
// one in the HelmRelease's namespace and the one that applied it (trusted
// only when its inventory lists the HelmRelease, as for gitFileRef); each
// that follows the chart's repository (git.SameRepository) adds its mode
// and keys to src, and pkg/helm checks the chart's commit before it reads
// it. On failure it writes ChartFetched.
func (r *Reconciler) verifyChart(ctx context.Context, obj *helmv1.HelmRelease, src *helm.ChartSource) error {
	if src.Git == "" {
		return nil
	}
	syncs, err := r.verifyingSyncs(ctx, obj, src.Git)
	if err == nil {
		src.Verify, err = r.verifications(ctx, obj, syncs)
	}
	if err != nil {
		conds(obj).Set(helmv1.ChartFetchedCondition, metav1.ConditionFalse, chartFailReason(err), err.Error())
	}
	return err
}

// verifyingSyncs returns the GitSyncs with spec.verify that follow the
// chart's repository, sorted by namespace and name.
func (r *Reconciler) verifyingSyncs(ctx context.Context, obj *helmv1.HelmRelease, url string) ([]*helmfluxv1alpha1.GitSync, error) {
	follows := func(gs *helmfluxv1alpha1.GitSync) bool {
		v := gs.Spec.Verify
		return v != nil && v.Mode != helmfluxv1alpha1.VerifyNone && git.SameRepository(gs.Spec.URL, url)
	}
	// A shard sees only its own GitSyncs, but a verification binds the
	// charts of its repository whichever shard reconciles them: a label
	// must not be a way around it. So a shard reads them live.
	var reader client.Reader = r.Client
	if r.WatchLabelSelector != "" && r.APIReader != nil {
		reader = r.APIReader
	}
	list := &helmfluxv1alpha1.GitSyncList{}
	if err := reader.List(ctx, list, client.InNamespace(obj.Namespace)); err != nil {
		return nil, outcome.Retry(helmv1.ChartVerificationFailedReason, fmt.Errorf("list the GitSyncs of namespace %s: %w", obj.Namespace, err))
	}
	var out []*helmfluxv1alpha1.GitSync
	for i := range list.Items {
		if follows(&list.Items[i]) {
			out = append(out, &list.Items[i])
		}
	}
	ns, name, ok := strings.Cut(obj.GetAnnotations()[helmfluxv1alpha1.SyncAnnotation], "/")
	if !ok || ns == obj.Namespace { // none, or already listed above
		return out, nil
	}
	key := client.ObjectKey{Namespace: ns, Name: name}
	gs := &helmfluxv1alpha1.GitSync{}
	if err := reader.Get(ctx, key, gs); err != nil {
		// A GitSync that does not exist verifies nothing.
		return out, client.IgnoreNotFound(err)
	}
	if !follows(gs) {
		return out, nil
	}
	// The annotation is no proof: anyone who may write the HelmRelease may
	// write it. A GitSync that does not list the HelmRelease did not apply
	// it and has no say; one that is still applying it is waited for.
	applying, err := r.listing(ctx, obj, gs, verifiedChartWhy)
	if _, reason := outcome.Of(err, ""); reason == helmv1.NotInInventoryReason {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	return append(out, applying), nil
}

// verifications reads the mode and keys of each GitSync, from its own
// namespace. "all" checks every first-parent commit since the chart
// revision released last, as the GitSync checks those since the revision
// it applied last.
func (r *Reconciler) verifications(ctx context.Context, obj *helmv1.HelmRelease, syncs []*helmfluxv1alpha1.GitSync) ([]helm.GitVerification, error) {
	sort.Slice(syncs, func(i, j int) bool {
		return client.ObjectKeyFromObject(syncs[i]).String() < client.ObjectKeyFromObject(syncs[j]).String()
	})
	var out []helm.GitVerification
	for _, gs := range syncs {
		keyRing, err := gitcreds.KeyRing(ctx, r.Client, gs)
		if err != nil {
			return nil, outcome.Retry(helmv1.ChartVerificationFailedReason,
				fmt.Errorf("chart.git is verified as GitSync %s verifies its commits: %w", client.ObjectKeyFromObject(gs), err))
		}
		v := helm.GitVerification{KeyRing: keyRing, For: "GitSync " + client.ObjectKeyFromObject(gs).String()}
		if gs.Spec.Verify.Mode == helmfluxv1alpha1.VerifyAll {
			if released, err := git.ParseRevision(obj.Status.Revision); err == nil {
				v.Since = released.Hash
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// chartFailReason is the ChartFetched reason of a chart that failed.
func chartFailReason(err error) string {
	if errors.Is(err, helm.ErrUnverified) {
		return helmv1.ChartVerificationFailedReason
	}
	if _, reason := outcome.Of(err, ""); reason == helmv1.ChartVerificationFailedReason {
		return reason
	}
	return helmv1.ChartFetchFailedReason
}
