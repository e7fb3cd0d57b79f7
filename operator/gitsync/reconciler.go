// Package gitsync is the GitSync controller: it keeps the cluster in step with
// the manifests and HelmReleases of a git repository. It only orchestrates:
// fetching is pkg/git, rendering pkg/manifest, applying pkg/apply.
package gitsync

import (
	"context"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"golang.org/x/sync/semaphore"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/gitcreds"
	"github.com/helmflux/helmflux/operator/impersonation"
	"github.com/helmflux/helmflux/operator/metrics"
	"github.com/helmflux/helmflux/operator/outcome"
	"github.com/helmflux/helmflux/pkg/apply"
	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/manifest"
)

// Finalizer lets the controller prune a deleted GitSync's objects (when prune is on).
const Finalizer = "helmflux.dev/finalizer"

// FieldManager is the server-side apply field manager of everything applied from git.
const FieldManager = "helmflux"

// Reconciler reconciles GitSyncs.
type Reconciler struct {
	// Client reads GitSyncs and Secrets (cached) and writes their status.
	Client client.Client
	// APIReader reads uncached: the GitSync again when its inventory
	// ConfigMap seems newer than its cached status.
	APIReader client.Reader
	// Applier applies and prunes through an uncached client, as the
	// operator: for GitSyncs without a service account.
	Applier *apply.Applier
	// Tenants builds the impersonating clients that apply and prune for
	// GitSyncs with a service account.
	Tenants *impersonation.Clients
	// DefaultServiceAccount is the service account of its own namespace a
	// GitSync that names none runs as; "" leaves those to the operator's
	// identity (single-tenant mode).
	DefaultServiceAccount string
	// Git fetches into the persistent repository cache.
	Git *git.Cache
	// Events records what changed and what failed.
	Events events.EventRecorder
	// WorkDir holds temporary checkouts; each is removed after its pass.
	WorkDir string
	// Manifests bounds what is read from a checkout.
	Manifests manifest.Options
	// Triggers receives GitSyncs to reconcile at once (push webhooks).
	Triggers <-chan event.GenericEvent
	// Concurrency is the number of GitSyncs reconciled in parallel.
	Concurrency int
	// Loads, when set, bounds the passes that hold a checkout's objects at
	// once (from checkout to the end of the apply): their memory is what
	// the manifest bounds allow each, times this.
	Loads *semaphore.Weighted
	// Identity is the operator's SSH key, for GitSyncs over SSH that name
	// no secret.
	Identity gitcreds.Identity
	// Metrics records each pass; nil records nothing.
	Metrics *metrics.Recorder
	// Watcher watches the kinds applied, metadata only, so that a pass
	// skips what nobody changed and a change by anyone else is corrected
	// at once (Heard); nil compares every object on every pass.
	Watcher *apply.Watcher
	// ApplyConcurrency is how many objects one pass dry-runs or applies at
	// once; 0 is pkg/apply's default.
	ApplyConcurrency int

	states states
}

// scope carries one reconcile's state from one sub-reconciler to the next.
type scope struct {
	obj      *helmfluxv1alpha1.GitSync
	revision git.Revision
	objects  []manifest.Object
	changes  *apply.ChangeSet
	// applier acts for the GitSync: as its service account, or the operator.
	applier *apply.Applier
	pruned  *apply.ChangeSet
	// markReconciling sets and patches Reconciling once there is work to do.
	markReconciling func() error
	// unverified is set when a commit after revision failed verification: the
	// verified part was applied, the rest waits.
	unverified error
	// applied is set when the pass applied revision completely (it became
	// status.lastAppliedRevision).
	applied bool
	// releaseLoad gives back the pass's slot of Reconciler.Loads.
	releaseLoad func()
}

// SetupWithManager registers the controller: GitSyncs whose spec or
// annotations change, and pushes from Triggers.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		For(&helmfluxv1alpha1.GitSync{}, builder.WithPredicates(
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.Concurrency)})
	if r.Triggers != nil {
		b = b.WatchesRawSource(source.Channel(r.Triggers, &handler.EnqueueRequestForObject{}))
	}
	if r.Watcher != nil {
		b = b.WatchesRawSource(r.states.source())
	}
	return b.Complete(r)
}

// Reconcile fetches the GitSync's revision, renders it and applies it.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	start := time.Now()
	obj := &helmfluxv1alpha1.GitSync{}
	if err := r.Client.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.Metrics.Deleted(metrics.KindGitSync, req.NamespacedName)
			r.states.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	base := obj.DeepCopy()
	s := &scope{obj: obj}
	s.markReconciling = func() error { return r.markReconciling(ctx, base, obj) }
	defer func() {
		if s.releaseLoad != nil {
			s.releaseLoad()
		}
	}()
	err := r.finish(ctx, base, s, r.reconcile(ctx, base, s))
	r.record(req.NamespacedName, s, start, err)
	return outcome.Result(err, obj.GetInterval())
}

// record feeds the pass to the metrics: a GitSync gone with its finalizer
// loses its series.
func (r *Reconciler) record(key types.NamespacedName, s *scope, start time.Time, err error) {
	obj := s.obj
	if !obj.DeletionTimestamp.IsZero() && !controllerutil.ContainsFinalizer(obj, Finalizer) {
		r.Metrics.Deleted(metrics.KindGitSync, key)
		r.states.forget(key)
		return
	}
	r.Metrics.Reconciled(metrics.KindGitSync, obj, start, err)
	if s.changes != nil {
		r.Metrics.Objects(key, metrics.ActionCreated, s.changes.Count(apply.Created))
		r.Metrics.Objects(key, metrics.ActionConfigured, s.changes.Count(apply.Configured))
		r.Metrics.Objects(key, metrics.ActionFailed, s.changes.Count(apply.Failed))
	}
	if s.pruned != nil {
		r.Metrics.Objects(key, metrics.ActionPruned, s.pruned.Count(apply.Deleted))
		r.Metrics.Objects(key, metrics.ActionFailed, s.pruned.Count(apply.Failed))
	}
	if s.applied {
		r.Metrics.Applied(key, time.Now())
	}
}

// reconcile runs the sub-reconcilers in order, stopping at the first error.
func (r *Reconciler) reconcile(ctx context.Context, base *helmfluxv1alpha1.GitSync, s *scope) error {
	obj := s.obj
	if !obj.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, obj)
	}
	if _, err := outcome.Begin(ctx, r.Client, base, obj, Finalizer, &obj.Status.LastHandledReconcileAt); err != nil {
		return outcome.Retry(helmfluxv1alpha1.ApplyFailedReason, err)
	}
	if obj.Spec.Suspend {
		ctrl.LoggerFrom(ctx).V(1).Info("Reconciliation is suspended", "gitsync", klog.KObj(obj))
		return nil
	}
	if obj.Generation != obj.Status.ObservedGeneration {
		if err := r.markReconciling(ctx, base, obj); err != nil {
			return outcome.Retry(helmfluxv1alpha1.ApplyFailedReason, err)
		}
	}
	for _, step := range []func(context.Context, *scope) error{r.reconcileSource, r.reconcileManifests, r.reconcileApply} {
		if err := step(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// markReconciling shows at once that a new generation or revision is being
// worked on. A pass with nothing new writes nothing.
func (r *Reconciler) markReconciling(ctx context.Context, base, obj *helmfluxv1alpha1.GitSync) error {
	if apimeta.IsStatusConditionTrue(obj.Status.Conditions, meta.ReconcilingCondition) {
		return nil
	}
	conds(obj).Reconciling(helmfluxv1alpha1.ProgressingReason, outcome.Processing(obj.Generation))
	return outcome.Checkpoint(ctx, r.Client, base, obj)
}

// finish sets Ready from the outcome, records events, and patches the
// status (outcome.Finish).
func (r *Reconciler) finish(ctx context.Context, base *helmfluxv1alpha1.GitSync, s *scope, err error) error {
	obj := s.obj
	if !obj.DeletionTimestamp.IsZero() && !controllerutil.ContainsFinalizer(obj, Finalizer) {
		return err // gone once the finalizer was removed
	}
	return outcome.Finish(ctx, r.Client, base, obj, err, helmfluxv1alpha1.ApplyFailedReason,
		func() { summarize(obj, s, err) },
		func(before, after *metav1.Condition) { r.recordEvents(obj, s, before, after) })
}

func (r *Reconciler) recordEvents(obj *helmfluxv1alpha1.GitSync, s *scope, before, after *metav1.Condition) {
	if r.Events == nil || after == nil {
		return
	}
	if s.changes != nil && changed(s) {
		r.Events.Eventf(obj, nil, corev1.EventTypeNormal, helmfluxv1alpha1.AppliedReason, "Apply",
			"%s", changeMessage(s))
	}
	if recovered(before, after) {
		r.Events.Eventf(obj, nil, corev1.EventTypeNormal, helmfluxv1alpha1.RecoveredReason, "Reconcile",
			"Sync recovered: %s", after.Message)
	}
	outcome.WarnOnChange(r.Events, obj, "Reconcile", before, after)
}

// recovered reports whether a pass made Ready True after passes that
// failed (not after a suspension): the one Event an Alert needs to say the
// failures it reported are over.
func recovered(before, after *metav1.Condition) bool {
	return before != nil && before.Status == metav1.ConditionFalse && before.Reason != helmfluxv1alpha1.SuspendedReason &&
		after.Status == metav1.ConditionTrue
}
