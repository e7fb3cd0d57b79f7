// Package helmrelease is the HelmRelease controller: it keeps each Helm release
// in step with its HelmRelease. It only orchestrates: charts and Helm actions
// are pkg/helm, values files from git pkg/git, drift checks pkg/apply.
package helmrelease

import (
	"context"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/operator/gitcreds"
	"github.com/helmflux/helmflux/operator/metrics"
	"github.com/helmflux/helmflux/operator/outcome"
	"github.com/helmflux/helmflux/pkg/apply"
	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/helm"
)

// Finalizer lets the controller uninstall the release of a deleted HelmRelease.
const Finalizer = "helm.fluxcd.io/finalizer"

// DriftFieldManager is the server-side apply field manager of drift corrections.
const DriftFieldManager = "helmflux-drift"

// DefaultInterval is the Helm Operator's --charts-sync-interval default.
const DefaultInterval = 3 * time.Minute

// Reconciler reconciles HelmReleases.
type Reconciler struct {
	// Client reads HelmReleases (cached) and ConfigMaps and Secrets (uncached)
	// and writes status.
	Client client.Client
	// APIReader reads what must not be cached (the HelmRelease CRD on
	// deletion, a GitSync whose inventory ConfigMap seems newer than its
	// cached status).
	APIReader client.Reader
	// Runner runs Helm actions.
	Runner *helm.Runner
	// Charts resolves and loads charts.
	Charts *helm.Charts
	// Git reads values files (gitFileRef) from the GitSyncs' repository cache.
	Git *git.Cache
	// Records watches Helm's storage records, to notice a release changed
	// outside helmflux; nil trusts the status alone.
	Records *Records
	// Drift compares and corrects live objects (uncached client).
	Drift *apply.Applier
	// Events records what changed and what failed.
	Events events.EventRecorder
	// Interval is the time between passes over an unchanged HelmRelease.
	Interval time.Duration
	// AllowCrossNamespaceRefs lets valuesFrom and chart secrets name other namespaces.
	AllowCrossNamespaceRefs bool
	// NoCrossNamespaceRefs refuses every reference to another namespace,
	// AllowCrossNamespaceRefs or not, and a targetNamespace other than the
	// HelmRelease's own (the lockdown profile).
	NoCrossNamespaceRefs bool
	// Identity is the operator's SSH key, for chart.git sources over SSH
	// that name no secret.
	Identity gitcreds.Identity
	// Concurrency is the number of HelmReleases reconciled in parallel.
	Concurrency int
	// DefaultServiceAccount is the service account, in each HelmRelease's
	// namespace, that HelmReleases without spec.serviceAccountName act as;
	// empty acts as the operator (Runner and Drift).
	DefaultServiceAccount string

	// WatchLabelSelector is the operator's --watch-label-selector, "" for
	// none: a gitFileRef naming a GitSync the cache does not hold says it
	// may be another shard's.
	WatchLabelSelector string
	// Metrics records each pass; nil records nothing.
	Metrics *metrics.Recorder

	// actors are the Runners and drift Appliers of service accounts.
	actors actors
}

// scope carries one reconcile's state from one sub-reconciler to the next.
type scope struct {
	obj *helmv1.HelmRelease
	// actor is who the pass acts as for Helm and drift detection.
	actor    *actor
	chartRef *helm.ChartRef
	// loadChart loads the chart on first use; an unchanged pass never does.
	loadChart func(context.Context) (*chart.Chart, error)
	values    map[string]any
	checksum  string
	// requested is set when a reconcile.fluxcd.io/requestedAt not yet handled asks for an upgrade.
	requested bool
	// action is what the pass did, for events and the Ready message.
	action actionResult
	// beginActing marks, before the pass's first Helm action, that the
	// storage records written from now on until the status is written are
	// its own (see Records); acting is set once it did.
	beginActing func()
	acting      bool
	// failure is the failed action the pass gives up on, and its reason.
	failure       error
	failureReason string
	// markReconciling sets and patches Reconciling once there is work to do.
	markReconciling func(phase helmv1.HelmReleasePhase) error
	// checkpoint patches the status as it is now (what markReconciling
	// writes once it set Reconciling).
	checkpoint func() error
	// mask holds the values that came from Secrets, to mask in every
	// condition, Event and log line the pass writes (Helm's errors quote
	// values). It lives for the pass only.
	mask outcome.Mask
}

// Reconcile resolves the chart and values of a HelmRelease and installs,
// upgrades, tests or rolls back its release when they changed.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	start := time.Now()
	obj := &helmv1.HelmRelease{}
	if err := r.Client.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.Metrics.Deleted(metrics.KindHelmRelease, req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	base := obj.DeepCopy()
	s := &scope{obj: obj}
	if r.Records != nil {
		defer func() {
			r.Records.end(obj, s.acting, !obj.DeletionTimestamp.IsZero() && !controllerutil.ContainsFinalizer(obj, Finalizer))
		}()
	}
	s.beginActing = func() {
		if r.Records != nil && !s.acting {
			s.acting = true
			r.Records.begin(obj)
		}
	}
	s.checkpoint = func() error {
		s.mask.Conditions(obj.Status.Conditions) // a checkpoint writes what earlier steps set
		return outcome.Checkpoint(ctx, r.Client, base, obj)
	}
	s.markReconciling = func(phase helmv1.HelmReleasePhase) error {
		markReconciling(obj, phase)
		return s.checkpoint()
	}
	err := r.finish(ctx, base, s, r.reconcile(ctx, base, s))
	if !obj.DeletionTimestamp.IsZero() && !controllerutil.ContainsFinalizer(obj, Finalizer) {
		r.Metrics.Deleted(metrics.KindHelmRelease, req.NamespacedName)
	} else if ctx.Err() == nil {
		r.Metrics.Reconciled(metrics.KindHelmRelease, obj, start, err)
	}
	return outcome.Result(err, r.interval())
}

// reconcile runs the sub-reconcilers in order, stopping at the first error.
func (r *Reconciler) reconcile(ctx context.Context, base *helmv1.HelmRelease, s *scope) error {
	obj := s.obj
	a, err := r.actorFor(obj)
	if err != nil {
		return outcome.Retry(helmv1.ReconcileFailedReason, err)
	}
	s.actor = a
	if !obj.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, s)
	}
	if err := r.checkTargetNamespace(obj); err != nil {
		return err
	}
	requested, err := outcome.Begin(ctx, r.Client, base, obj, Finalizer, &obj.Status.LastHandledReconcileAt)
	if err != nil {
		return outcome.Retry(helmv1.ReconcileFailedReason, err)
	}
	s.requested = requested
	ctrl.LoggerFrom(ctx).V(1).Info("Reconciling", "helmrelease", klog.KObj(obj))
	for _, step := range []func(context.Context, *scope) error{
		r.reconcileChart, r.reconcileValues, r.reconcileRelease, r.reconcileDrift,
	} {
		if err := step(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reconciler) interval() time.Duration {
	if r.Interval <= 0 {
		return DefaultInterval
	}
	return r.Interval
}

// markReconciling sets what shows that the controller works on the
// HelmRelease (s.markReconciling writes it at once); phase, when set, says
// which action runs. A pass with nothing to do writes nothing.
func markReconciling(obj *helmv1.HelmRelease, phase helmv1.HelmReleasePhase) {
	if phase != "" {
		obj.Status.Phase = phase
	}
	setReconciling(obj, phase)
}

// finish sets Ready from the outcome, records events and patches the
// status (outcome.Finish), unless the operator is shutting down. It is
// where the pass's text leaves it: the error (logged, by controller-runtime
// too), the conditions and the Events are masked of Secret values here.
func (r *Reconciler) finish(ctx context.Context, base *helmv1.HelmRelease, s *scope, err error) error {
	obj := s.obj
	err = s.mask.Error(err)
	if !obj.DeletionTimestamp.IsZero() && !controllerutil.ContainsFinalizer(obj, Finalizer) {
		return err // gone once the finalizer was removed
	}
	if ctx.Err() != nil {
		// Shutting down: Helm marked an interrupted action failed; the next
		// process retries it, so record nothing that would stop it.
		ctrl.LoggerFrom(ctx).Info("Interrupted by the shutdown; the next run retries")
		return nil
	}
	ferr := outcome.Finish(ctx, r.Client, base, obj, err, helmv1.ReconcileFailedReason,
		func() { summarize(obj, s, err); s.mask.Conditions(obj.Status.Conditions) },
		func(before, after *metav1.Condition) { r.recordEvents(obj, s, before, after) })
	logActions(ctx, obj, s)
	return ferr
}

// logActions writes one line per Helm action the pass took (install,
// upgrade, test, rollback, uninstall, drift correction), with the release,
// the chart version and the outcome: what the Events say, for log search.
func logActions(ctx context.Context, obj *helmv1.HelmRelease, s *scope) {
	log := ctrl.LoggerFrom(ctx)
	for _, e := range s.action.events {
		result := "success"
		if e.warning {
			result = "failure"
		}
		log.Info(s.mask.String(e.message), "reason", e.reason, "outcome", result,
			"release", obj.GetReleaseName(), "targetNamespace", obj.GetTargetNamespace(), "chartVersion", obj.Status.Revision)
	}
}
