package helmrelease

import (
	"context"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
)

var apiextensionsCRD = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

// Field indexes of HelmReleases by the ConfigMaps and Secrets they read,
// "<namespace>/<name>", so a change of one reconciles exactly its readers.
const (
	configMapIndex = ".helmflux.configMaps"
	secretIndex    = ".helmflux.secrets"
	// syncIndex indexes HelmReleases with a gitFileRef or a git chart by the
	// GitSync their helmflux.dev/sync annotation names.
	syncIndex = ".helmflux.sync"
)

// SetupWithManager registers the controller: HelmReleases whose spec or
// annotations change, the ConfigMaps and Secrets they take values from, the
// GitSyncs that HelmReleases wait for to list them in their inventory, and
// Helm's storage records of their releases (all watched as metadata only:
// their data is never cached).
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Records == nil {
		r.Records = &Records{Cache: mgr.GetCache()}
	}
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &helmv1.HelmRelease{}, configMapIndex, func(o client.Object) []string {
		return references(o.(*helmv1.HelmRelease), false)
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &helmv1.HelmRelease{}, secretIndex, func(o client.Object) []string {
		return references(o.(*helmv1.HelmRelease), true)
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &helmv1.HelmRelease{}, releaseIndex, func(o client.Object) []string {
		hr := o.(*helmv1.HelmRelease)
		return []string{releaseKey(hr.GetTargetNamespace(), hr.GetReleaseName())}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &helmv1.HelmRelease{}, syncIndex, func(o client.Object) []string {
		return syncOf(o.(*helmv1.HelmRelease))
	}); err != nil {
		return err
	}
	changed := builder.WithPredicates(predicate.ResourceVersionChangedPredicate{})
	return ctrl.NewControllerManagedBy(mgr).
		For(&helmv1.HelmRelease{}, builder.WithPredicates(
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.readersOf(configMapIndex)), builder.OnlyMetadata, changed).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.readersOf(secretIndex)), builder.OnlyMetadata, changed).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.ownersOf), builder.OnlyMetadata,
			builder.WithPredicates(recordChanged)).
		Watches(&helmfluxv1alpha1.GitSync{}, handler.EnqueueRequestsFromMapFunc(r.waitingFor), changed).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.Concurrency)}).
		Complete(r)
}

// references lists the ConfigMaps (or Secrets) a HelmRelease reads.
func references(hr *helmv1.HelmRelease, secrets bool) []string {
	var out []string
	add := func(ns, name string) {
		if ns == "" {
			ns = hr.Namespace
		}
		out = append(out, ns+"/"+name)
	}
	for _, v := range hr.Spec.GetValuesFrom() {
		switch {
		case secrets && v.SecretKeyRef != nil:
			add(v.SecretKeyRef.Namespace, v.SecretKeyRef.Name)
		case !secrets && v.ConfigMapKeyRef != nil:
			add(v.ConfigMapKeyRef.Namespace, v.ConfigMapKeyRef.Name)
		}
	}
	if secrets && hr.Spec.Chart.ChartPullSecret != nil {
		add("", hr.Spec.Chart.ChartPullSecret.Name)
	}
	if secrets && hr.Spec.Chart.SecretRef != nil {
		add(hr.Spec.Chart.SecretRef.Namespace, hr.Spec.Chart.SecretRef.Name)
	}
	return out
}

// syncOf is the GitSync a HelmRelease with a gitFileRef or a git chart
// (verifyChart) names in its helmflux.dev/sync annotation, as
// "<namespace>/<name>".
func syncOf(hr *helmv1.HelmRelease) []string {
	owner, ok := hr.GetAnnotations()[helmfluxv1alpha1.SyncAnnotation]
	if !ok {
		return nil
	}
	if hr.Spec.Chart.IsGit() {
		return []string{owner}
	}
	for _, v := range hr.Spec.GetValuesFrom() {
		if v.GitFileRef != nil {
			return []string{owner}
		}
	}
	return nil
}

// waitingFor maps a GitSync to the HelmReleases it does not list in its
// inventory yet (InventoryPending, NotInInventory), so that a HelmRelease
// the GitSync has just created reads its values files as soon as the
// GitSync's pass ends, even when the pass looked over when it was refused.
func (r *Reconciler) waitingFor(ctx context.Context, o client.Object) []reconcile.Request {
	list := &helmv1.HelmReleaseList{}
	if err := r.Client.List(ctx, list, client.MatchingFields{syncIndex: o.GetNamespace() + "/" + o.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "List the HelmReleases that name a GitSync", "index", syncIndex)
		return nil
	}
	var out []reconcile.Request
	for _, hr := range list.Items {
		c := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
		if c != nil && (c.Reason == helmv1.InventoryPendingReason || c.Reason == helmv1.NotInInventoryReason) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&hr)})
		}
	}
	return out
}

// readersOf maps a ConfigMap or Secret to the HelmReleases that read it.
func (r *Reconciler) readersOf(index string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &helmv1.HelmReleaseList{}
		if err := r.Client.List(ctx, list, client.MatchingFields{index: o.GetNamespace() + "/" + o.GetName()}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "List the HelmReleases that read an object", "index", index)
			return nil
		}
		out := make([]reconcile.Request, 0, len(list.Items))
		for _, hr := range list.Items {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&hr)})
		}
		return out
	}
}
