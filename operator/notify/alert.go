package notify

import (
	"context"
	"errors"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/outcome"
)

// AlertReconciler sets each Alert's Ready condition: whether its Secret
// holds a usable receiver URL. Secrets are not watched (nor cached), so an
// Alert not ready is checked again every minute, a ready one every ten, and
// at once on a change of its spec or annotations (a
// reconcile.fluxcd.io/requestedAt request).
type AlertReconciler struct {
	Client client.Client
	// APIReader reads Secrets (live: they are not cached).
	APIReader client.Reader
	// AllowLocalURLs accepts a loopback receiver (--allow-local-urls).
	AllowLocalURLs bool
}

// SetupWithManager registers the Alert controller.
func (r *AlertReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("alert").
		For(&helmfluxv1alpha1.Alert{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Complete(r)
}

// Reconcile checks the Alert's Secret and writes Ready.
func (r *AlertReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	a := &helmfluxv1alpha1.Alert{}
	if err := r.Client.Get(ctx, req.NamespacedName, a); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	base := a.DeepCopy()
	_, err := resolveAddress(ctx, r.APIReader, a, r.AllowLocalURLs)
	var bad *addressError
	if err != nil && !errors.As(err, &bad) {
		return ctrl.Result{}, err // reading the Secret failed: retried with backoff
	}
	c := outcome.Conditions{List: &a.Status.Conditions, Generation: a.Generation}
	next := 10 * time.Minute
	if bad != nil {
		c.Set(meta.ReadyCondition, metav1.ConditionFalse, bad.reason, bad.msg)
		next = time.Minute
	} else {
		c.Set(meta.ReadyCondition, metav1.ConditionTrue, helmfluxv1alpha1.AlertReadyReason, "the receiver's address is an http(s) URL")
	}
	a.Status.ObservedGeneration = a.Generation
	if err := patchStatus(ctx, r.Client, base, a); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: outcome.Jitter(next)}, nil
}

// patchStatus writes a's status with an optimistic lock: the Alert
// controller (Ready) and the Notifier (Delivered) both write the
// conditions list, which a merge patch replaces whole.
func patchStatus(ctx context.Context, c client.Client, base, a *helmfluxv1alpha1.Alert) error {
	return c.Status().Patch(ctx, a, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

// setDelivered records on the Alert that a message was given up on
// (failure set), or that one was delivered after that. It writes only on
// a change.
func (n *Notifier) setDelivered(ctx context.Context, key client.ObjectKey, failure error) {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		a := &helmfluxv1alpha1.Alert{}
		if err := n.APIReader.Get(ctx, key, a); err != nil {
			return client.IgnoreNotFound(err)
		}
		prev := apimeta.FindStatusCondition(a.Status.Conditions, helmfluxv1alpha1.DeliveredCondition)
		if failure == nil && (prev == nil || prev.Status == metav1.ConditionTrue) {
			return nil // nothing to say: delivering is the normal case
		}
		base := a.DeepCopy()
		c := outcome.Conditions{List: &a.Status.Conditions, Generation: a.Generation}
		if failure != nil {
			c.Set(helmfluxv1alpha1.DeliveredCondition, metav1.ConditionFalse, helmfluxv1alpha1.DeliveryFailedReason, failure.Error())
		} else {
			c.Set(helmfluxv1alpha1.DeliveredCondition, metav1.ConditionTrue, helmfluxv1alpha1.DeliveredReason, "the last message was delivered")
		}
		return patchStatus(ctx, n.Client, base, a)
	})
	if err != nil {
		n.Log.Error(err, "Write the Alert's Delivered condition", "alert", key)
	}
}
