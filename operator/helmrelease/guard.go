package helmrelease

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/operator/outcome"
	"github.com/helmflux/helmflux/pkg/helm"
)

// The release-record guard. A release's records are Secrets in its
// namespace, so whoever may write Secrets there may write a record that
// lists any object. With a service account, that account's RBAC bounds what
// acting on the record can do. Acting as the operator itself (legacy
// single-tenant mode, usually cluster-admin) it is this guard: drift
// correction, upgrades, rollbacks and uninstalls never create or delete a
// cluster-scoped object, or one in another namespace, that the release did
// not create (that lacks Helm's ownership annotations for it).

// guarded tells whether the pass acts as the operator itself, the only
// actor the guard applies to.
func (s *scope) guarded() bool { return s.actor.serviceAccount == "" }

// guard refuses verb (an upgrade, rollback or uninstall) when one of the
// records in deleting (whose objects the action may delete) or creating
// (whose objects it creates or overwrites) lists an object outside the
// release's namespace that the release did not create. It returns nil
// when the pass acts as a service account.
func (r *Reconciler) guard(ctx context.Context, s *scope, verb string, deleting, creating *helm.Release) error {
	if !s.guarded() {
		return nil
	}
	for _, c := range []struct {
		rel       *helm.Release
		mustExist bool
	}{{deleting, false}, {creating, true}} {
		if c.rel == nil {
			continue
		}
		objs, err := c.rel.Objects()
		if err != nil {
			return outcome.WaitForChange(helmv1.ReleaseRecordRefusedReason, fmt.Errorf("refused to %s: %w", verb, err))
		}
		names, err := r.unowned(ctx, s, objs, c.mustExist)
		if err != nil {
			return outcome.Retry(helmv1.ReconcileFailedReason, fmt.Errorf("check the record of %s before %s: %w", c.rel.Name, verb, err))
		}
		if len(names) > 0 {
			return refusal(s, verb, c.rel.Version, names)
		}
	}
	return nil
}

// unowned names the objects of objs that are cluster-scoped or in another
// namespace than the release's and that the release did not create (see
// helm.Unowned for mustExist).
func (r *Reconciler) unowned(ctx context.Context, s *scope, objs []*unstructured.Unstructured, mustExist bool) ([]string, error) {
	ns, name := s.obj.GetTargetNamespace(), s.obj.GetReleaseName()
	outside, err := helm.Outside(objs, ns, r.namespaced)
	if err != nil || len(outside) == 0 {
		return nil, err
	}
	return helm.Unowned(outside, ns, name, r.live(ctx), mustExist)
}

// namespaced tells a kind's scope from the operator's REST mappings.
func (r *Reconciler) namespaced(gvk schema.GroupVersionKind) (bool, error) {
	m, err := r.Client.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return false, err
	}
	return m.Scope.Name() == apimeta.RESTScopeNameNamespace, nil
}

// live reads an object's metadata, uncached, as the operator.
func (r *Reconciler) live(ctx context.Context) helm.Live {
	return func(o *unstructured.Unstructured) (map[string]string, bool, error) {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(o.GroupVersionKind())
		err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: o.GetNamespace(), Name: o.GetName()}, m)
		switch {
		case apierrors.IsNotFound(err):
			return nil, false, nil
		case err != nil:
			return nil, false, err
		}
		return m.GetAnnotations(), true, nil
	}
}

// refusal is the failure of a refused action: it waits for a change (of
// the record, or of the objects' ownership), it is no hot retry. It says
// what pkg/helm says when it refuses an action itself (helm.RefusedError).
func refusal(s *scope, verb string, revision int, names []string) error {
	return outcome.WaitForChange(helmv1.ReleaseRecordRefusedReason, &helm.RefusedError{
		Verb: verb, Namespace: s.obj.GetTargetNamespace(), Release: s.obj.GetReleaseName(), Revision: revision, Objects: names,
	})
}
