package helmrelease

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/operator/outcome"
)

// crdName is the name of the HelmRelease CustomResourceDefinition.
const crdName = "helmreleases.helm.fluxcd.io"

// reconcileDelete uninstalls the release of a deleted HelmRelease, then
// removes the finalizer. When the CRD itself is being deleted every
// HelmRelease goes with it; their releases are then left running, because
// removing a CRD is not a decision to remove every release.
func (r *Reconciler) reconcileDelete(ctx context.Context, s *scope) error {
	obj := s.obj
	if !controllerutil.ContainsFinalizer(obj, Finalizer) {
		return nil
	}
	log := ctrl.LoggerFrom(ctx)
	crdGoing, err := r.crdDeleting(ctx)
	if err != nil {
		return outcome.Retry(helmv1.UninstallFailedReason, err)
	}
	ns, name := obj.GetTargetNamespace(), obj.GetReleaseName()
	if crdGoing {
		log.Info("The HelmRelease CRD is being deleted; leaving the release installed", "release", name, "namespace", ns)
	} else if err := r.uninstall(ctx, s); err != nil {
		return err
	}
	patch := client.MergeFrom(obj.DeepCopy())
	controllerutil.RemoveFinalizer(obj, Finalizer)
	if err := r.Client.Patch(ctx, obj, patch); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("remove finalizer: %w", err))
	}
	return nil
}

// uninstall removes the release unless it belongs to another HelmRelease.
func (r *Reconciler) uninstall(ctx context.Context, s *scope) error {
	obj := s.obj
	ns, name := obj.GetTargetNamespace(), obj.GetReleaseName()
	if gone, err := r.serviceAccountGone(ctx, s); err != nil {
		return outcome.Retry(helmv1.UninstallFailedReason, err)
	} else if gone {
		r.leaveInstalled(ctx, s, fmt.Sprintf("its service account %s no longer exists", s.actor.serviceAccount))
		return nil
	}
	rel, err := s.actor.runner.Last(ctx, ns, name)
	if err != nil {
		reason, err := s.actor.refused(helmv1.UninstallFailedReason, err)
		if reason == helmv1.ForbiddenReason {
			if obj.Status.ReleaseRevision == 0 {
				// The account may not even read the release, and helmflux never
				// saw one for this HelmRelease: nothing of it to uninstall.
				ctrl.LoggerFrom(ctx).Info("Not uninstalling: the service account may not read the release, and none was ever recorded",
					"release", name, "namespace", ns, "serviceAccount", s.actor.serviceAccount)
				return nil
			}
			return r.leaveInstalledAfterTimeout(ctx, s, fmt.Sprintf("its service account %s may no longer read it", s.actor.serviceAccount), err)
		}
		return outcome.Retry(reason, err)
	}
	if rel == nil {
		return nil
	}
	if owner := rel.Owner(); owner != "" && owner != obj.Antecedent() {
		ctrl.LoggerFrom(ctx).Info("Leaving the release of another HelmRelease installed", "release", name, "owner", owner)
		return nil
	}
	if err := r.guard(ctx, s, "uninstall", rel, nil); err != nil {
		return err
	}
	if err := s.actor.runner.Uninstall(ctx, ns, name, obj.Spec.GetTimeout(), false); err != nil {
		reason, err := s.actor.refused(helmv1.UninstallFailedReason, err)
		if reason == helmv1.ReleaseRecordRefusedReason {
			return outcome.WaitForChange(reason, err)
		}
		if reason == helmv1.ForbiddenReason {
			if rel, lerr := s.actor.runner.Last(ctx, ns, name); lerr == nil && rel == nil {
				// Helm removed the records, though the account was refused
				// deleting some object: those stay.
				r.leaveInstalled(ctx, s, fmt.Sprintf("its service account %s was refused deleting some of its objects; the release's history is gone", s.actor.serviceAccount))
				return nil
			}
			return r.leaveInstalledAfterTimeout(ctx, s, fmt.Sprintf("its service account %s was refused the uninstall", s.actor.serviceAccount), err)
		}
		return outcome.Retry(reason, err)
	}
	if r.Events != nil {
		r.Events.Eventf(obj, nil, corev1.EventTypeNormal, helmv1.UninstalledReason, "Delete", "Uninstalled release %s from namespace %s", name, ns)
	}
	return nil
}

// forbiddenRetry bounds the wait between uninstalls a service account was
// refused, within the HelmRelease's timeout.
const forbiddenRetry = 5 * time.Second

// leaveInstalledAfterTimeout lets the release of a deleted HelmRelease go
// (leaveInstalled) once its service account has been refused for the
// HelmRelease's timeout since the deletion; until then it keeps the
// finalizer and retries, so a brief gap in the account's rights (a
// RoleBinding re-applied, a GitSync pass midway) does not leak the release.
// err is the refusal.
func (r *Reconciler) leaveInstalledAfterTimeout(ctx context.Context, s *scope, why string, err error) error {
	deadline := s.obj.DeletionTimestamp.Add(s.obj.Spec.GetTimeout())
	left := time.Until(deadline)
	if left <= 0 {
		r.leaveInstalled(ctx, s, why+fmt.Sprintf(", for the HelmRelease's timeout (%s) since its deletion", s.obj.Spec.GetTimeout()))
		return nil
	}
	return outcome.RetryAfter(helmv1.ForbiddenReason, min(left, forbiddenRetry), fmt.Errorf(
		"not uninstalled yet: %w; retrying until %s (the HelmRelease's timeout after its deletion), then leaving the release in place",
		err, deadline.UTC().Format(time.RFC3339)))
}

// leaveInstalled records that the release of a deleted HelmRelease is left
// in place because its service account cannot uninstall it: the account is
// gone or its rights went first (its namespace being deleted, a
// RoleBinding removed). Uninstalling as the operator would exceed the
// tenant's rights, and keeping the finalizer would hold the HelmRelease,
// and its namespace, for ever. why never quotes Helm's error.
func (r *Reconciler) leaveInstalled(ctx context.Context, s *scope, why string) {
	ns, name := s.obj.GetTargetNamespace(), s.obj.GetReleaseName()
	ctrl.LoggerFrom(ctx).Info("Leaving the release of the deleted HelmRelease in place", "release", name, "namespace", ns, "why", why)
	if r.Events != nil {
		r.Events.Eventf(s.obj, nil, corev1.EventTypeWarning, helmv1.ReleaseLeftInPlaceReason, "Delete",
			"Left release %s in namespace %s in place, not uninstalled: %s", name, ns, why)
	}
}

// serviceAccountGone tells whether the pass acts as a service account that
// no longer exists.
func (r *Reconciler) serviceAccountGone(ctx context.Context, s *scope) (bool, error) {
	if s.actor.serviceAccount == "" {
		return false, nil
	}
	ns, name, _ := strings.Cut(s.actor.serviceAccount, "/")
	sa := &metav1.PartialObjectMetadata{}
	sa.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ServiceAccount"))
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, sa)
	switch {
	case apierrors.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("read service account %s: %w", s.actor.serviceAccount, err)
	}
	return !sa.DeletionTimestamp.IsZero(), nil
}

// crdDeleting tells whether the HelmRelease CRD is being deleted or gone.
func (r *Reconciler) crdDeleting(ctx context.Context) (bool, error) {
	crd := &metav1.PartialObjectMetadata{}
	crd.SetGroupVersionKind(apiextensionsCRD)
	err := r.APIReader.Get(ctx, client.ObjectKey{Name: crdName}, crd)
	switch {
	case apierrors.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("read the HelmRelease CRD: %w", err)
	}
	return !crd.DeletionTimestamp.IsZero(), nil
}
