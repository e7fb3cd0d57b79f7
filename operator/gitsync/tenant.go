package gitsync

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/impersonation"
	"github.com/helmflux/helmflux/pkg/apply"
)

// serviceAccountOf returns the service account obj runs as: its own, else
// the operator's default; "" is the operator's own identity.
func (r *Reconciler) serviceAccountOf(obj *helmfluxv1alpha1.GitSync) string {
	if obj.Spec.ServiceAccountName != "" {
		return obj.Spec.ServiceAccountName
	}
	return r.DefaultServiceAccount
}

// applierFor returns the applier that dry-runs, applies and prunes for obj:
// one impersonating its service account, or the operator's own without one.
func (r *Reconciler) applierFor(obj *helmfluxv1alpha1.GitSync) (*apply.Applier, error) {
	sa := r.serviceAccountOf(obj)
	opts := []apply.Option{apply.WithWatcher(r.Watcher)}
	if r.ApplyConcurrency > 0 {
		opts = append(opts, apply.WithConcurrency(r.ApplyConcurrency))
	}
	if sa == "" {
		return r.Applier.With(opts...), nil
	}
	if r.Tenants == nil {
		return nil, errors.New("the operator has no impersonation set up for service account " + sa)
	}
	c, err := r.Tenants.For(obj.Namespace, sa)
	if err != nil {
		return nil, err
	}
	return apply.New(c, FieldManager, opts...), nil
}

// serviceAccountGone tells whether obj runs as a service account that no
// longer exists.
func (r *Reconciler) serviceAccountGone(ctx context.Context, obj *helmfluxv1alpha1.GitSync) (bool, error) {
	sa := r.serviceAccountOf(obj)
	if sa == "" {
		return false, nil
	}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: sa}, &corev1.ServiceAccount{})
	switch {
	case apierrors.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("read service account %s: %w", impersonation.Username(obj.Namespace, sa), err)
	}
	return false, nil
}

// forbiddenFirst returns failures with those the service account was
// refused (403) first, and whether there are any.
func forbiddenFirst(failures []apply.Result) ([]apply.Result, bool) {
	var forbidden, rest []apply.Result
	for _, f := range failures {
		if apierrors.IsForbidden(f.Err) {
			forbidden = append(forbidden, f)
		} else {
			rest = append(rest, f)
		}
	}
	return append(forbidden, rest...), len(forbidden) > 0
}
