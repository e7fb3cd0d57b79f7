package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/prometheus/client_golang/prometheus"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/helmflux/helmflux/operator/outcome"
	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/helm"
	"github.com/helmflux/helmflux/pkg/registry"
)

// Kinds of the reconcile metrics, as Flux's dashboards name kinds.
const (
	KindGitSync     = "GitSync"
	KindHelmRelease = "HelmRelease"
)

// Results of helmflux_reconcile_total.
const (
	ResultSuccess = "success"
	ResultFailure = "failure" // a transient failure, retried with backoff
	ResultWaiting = "waiting" // waits for a change elsewhere, or for a known time
	ResultStalled = "stalled" // only a change of the spec helps
)

// Actions of helmflux_gitsync_objects_total.
const (
	ActionCreated    = "created"
	ActionConfigured = "configured"
	ActionPruned     = "pruned"
	ActionFailed     = "failed"
)

// ConditionTypes are the conditions gotk_reconcile_condition reports.
var ConditionTypes = []string{meta.ReadyCondition, meta.StalledCondition}

// conditionStatuses are the statuses each condition type has a series for;
// the current one is 1, the others 0, as Flux reports them.
var conditionStatuses = []metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown}

// Recorder holds the collectors. Its methods are safe for concurrent use
// and do nothing on a nil Recorder.
type Recorder struct {
	reconcileDuration  *prometheus.HistogramVec
	reconcileCondition *prometheus.GaugeVec
	reconcileTotal     *prometheus.CounterVec

	gitsyncApplied *prometheus.GaugeVec
	gitsyncObjects *prometheus.CounterVec

	helmAction *prometheus.HistogramVec

	automationCommits *prometheus.CounterVec
	automationHolds   *prometheus.GaugeVec

	registryRequests    *prometheus.CounterVec
	registryRateLimited *prometheus.CounterVec
	registryThrottled   *prometheus.CounterVec

	gitPushRetries *prometheus.CounterVec
	gitFetch       *prometheus.HistogramVec

	jobsQueued prometheus.GaugeFunc
	queued     atomic.Pointer[func() int]

	hosts hostLabels
}

// MaxHosts bounds the values of the host label. Hosts come from image
// references and git URLs that anyone who may write a workload or a
// GitSync chooses; the first MaxHosts distinct ones keep their own series
// and the others are counted under OtherHost, so that no tenant can grow
// the operator's memory and every scrape with made-up hosts.
const MaxHosts = 100

// OtherHost is the host label of hosts past MaxHosts.
const OtherHost = "other"

// hostLabels hands out host label values, MaxHosts distinct at most.
type hostLabels struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

func (h *hostLabels) of(host string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.seen[host]; ok {
		return host
	}
	if len(h.seen) >= MaxHosts {
		return OtherHost
	}
	if h.seen == nil {
		h.seen = make(map[string]struct{}, MaxHosts)
	}
	h.seen[host] = struct{}{}
	return host
}

// New returns a Recorder whose collectors are registered nowhere yet.
func New() *Recorder {
	r := &Recorder{
		// Flux's name, labels and buckets (fluxcd/pkg/runtime/metrics).
		reconcileDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gotk_reconcile_duration_seconds",
			Help:    "The duration in seconds of a GitSync or HelmRelease reconciliation.",
			Buckets: prometheus.ExponentialBuckets(10e-9, 10, 10),
		}, []string{"kind", "name", "namespace"}),
		reconcileCondition: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gotk_reconcile_condition",
			Help: "The current condition status of a GitSync or HelmRelease: 1 for the status it has, 0 for the others.",
		}, []string{"kind", "name", "namespace", "type", "status"}),
		reconcileTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helmflux_reconcile_total",
			Help: "Reconcile passes by kind and result (success, failure, waiting, stalled).",
		}, []string{"kind", "result"}),

		gitsyncApplied: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "helmflux_gitsync_last_applied_timestamp_seconds",
			Help: "When a GitSync last applied its revision completely (Unix seconds).",
		}, []string{"namespace", "name"}),
		gitsyncObjects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helmflux_gitsync_objects_total",
			Help: "Objects a GitSync created, configured, pruned or failed to apply or prune.",
		}, []string{"namespace", "name", "action"}),

		helmAction: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "helmflux_helm_action_duration_seconds",
			Help:    "The duration of Helm actions (install, upgrade, test, rollback, uninstall) by outcome.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"action", "outcome"}),

		automationCommits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helmflux_automation_commits_total",
			Help: "Commits image automation pushed for a GitSync.",
		}, []string{"namespace", "name"}),
		automationHolds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "helmflux_automation_holds",
			Help: "Image holds (rollbacks, quarantined tags) in force for a GitSync at its last automation pass.",
		}, []string{"namespace", "name"}),

		registryRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helmflux_registry_requests_total",
			Help: "Requests to registry hosts by HTTP status code (\"error\" when no answer came).",
		}, []string{"host", "code"}),
		registryRateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helmflux_registry_rate_limited_total",
			Help: "Requests held back by the client: waited for the host's rate limit, or refused while the host asked for a pause.",
		}, []string{"host"}),
		registryThrottled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helmflux_registry_throttled_total",
			Help: "Answers of registry hosts that asked for a pause (429 or TOOMANYREQUESTS).",
		}, []string{"host"}),

		gitPushRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helmflux_git_push_retries_total",
			Help: "Pushes redone on a new branch head because another writer pushed first.",
		}, []string{"host"}),
		gitFetch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "helmflux_git_fetch_duration_seconds",
			Help:    "The duration of git fetches (a ref advertisement when nothing changed) by host and outcome.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"host", "outcome"}),
	}
	r.jobsQueued = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "helmflux_fluxapi_jobs_queued",
		Help: "Jobs of the fluxd API (fluxctl release, automate, ...) waiting to run.",
	}, func() float64 {
		if f := r.queued.Load(); f != nil {
			return float64((*f)())
		}
		return 0
	})
	return r
}

// Collectors returns every collector, to register.
func (r *Recorder) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		r.reconcileDuration, r.reconcileCondition, r.reconcileTotal,
		r.gitsyncApplied, r.gitsyncObjects, r.helmAction,
		r.automationCommits, r.automationHolds,
		r.registryRequests, r.registryRateLimited, r.registryThrottled,
		r.gitPushRetries, r.gitFetch, r.jobsQueued,
	}
}

var (
	defaultOnce sync.Once
	defaultRec  *Recorder
)

// Default returns the Recorder registered on controller-runtime's registry,
// the one the manager's metrics server serves. It is made once per process:
// every manager of a process (tests start several) shares it, as they share
// controller-runtime's own metrics.
func Default() *Recorder {
	defaultOnce.Do(func() {
		defaultRec = New()
		ctrlmetrics.Registry.MustRegister(defaultRec.Collectors()...)
	})
	return defaultRec
}

// Reconciled records a finished pass over a GitSync or HelmRelease: its
// duration since start, its result from the error it ended with, and its
// conditions.
func (r *Recorder) Reconciled(kind string, obj outcome.Object, start time.Time, err error) {
	if r == nil {
		return
	}
	ns, name := obj.GetNamespace(), obj.GetName()
	r.reconcileDuration.WithLabelValues(kind, name, ns).Observe(time.Since(start).Seconds())
	r.reconcileTotal.WithLabelValues(kind, resultOf(err)).Inc()
	for _, typ := range ConditionTypes {
		status := metav1.ConditionUnknown
		if c := apimeta.FindStatusCondition(obj.GetConditions(), typ); c != nil {
			status = c.Status
		} else if typ != meta.ReadyCondition {
			status = metav1.ConditionFalse // Stalled is removed, not set False
		}
		for _, s := range conditionStatuses {
			v := 0.0
			if s == status {
				v = 1
			}
			r.reconcileCondition.WithLabelValues(kind, name, ns, typ, string(s)).Set(v)
		}
	}
}

// resultOf maps a pass's error to its result label.
func resultOf(err error) string {
	if err == nil {
		return ResultSuccess
	}
	switch class, _ := outcome.Of(err, ""); class {
	case outcome.Stalled:
		return ResultStalled
	case outcome.Waiting, outcome.Delayed:
		return ResultWaiting
	}
	return ResultFailure
}

// Deleted removes the series of an object that is gone: its duration and
// conditions, and for a GitSync its applied time, object counts and
// automation series.
func (r *Recorder) Deleted(kind string, key types.NamespacedName) {
	if r == nil {
		return
	}
	r.reconcileDuration.DeletePartialMatch(prometheus.Labels{"kind": kind, "namespace": key.Namespace, "name": key.Name})
	r.reconcileCondition.DeletePartialMatch(prometheus.Labels{"kind": kind, "namespace": key.Namespace, "name": key.Name})
	if kind == KindGitSync {
		l := prometheus.Labels{"namespace": key.Namespace, "name": key.Name}
		r.gitsyncApplied.DeletePartialMatch(l)
		r.gitsyncObjects.DeletePartialMatch(l)
		r.automationCommits.DeletePartialMatch(l)
		r.automationHolds.DeletePartialMatch(l)
	}
}

// Applied records a GitSync pass that applied its revision completely, at now.
func (r *Recorder) Applied(key types.NamespacedName, now time.Time) {
	if r == nil {
		return
	}
	r.gitsyncApplied.WithLabelValues(key.Namespace, key.Name).Set(float64(now.UnixNano()) / 1e9)
}

// Objects adds n objects with action (Action*) to a GitSync's counts.
func (r *Recorder) Objects(key types.NamespacedName, action string, n int) {
	if r == nil || n <= 0 {
		return
	}
	r.gitsyncObjects.WithLabelValues(key.Namespace, key.Name, action).Add(float64(n))
}

// Committed counts a commit image automation pushed for a GitSync.
func (r *Recorder) Committed(key types.NamespacedName) {
	if r == nil {
		return
	}
	r.automationCommits.WithLabelValues(key.Namespace, key.Name).Inc()
}

// Holds sets the holds in force for a GitSync.
func (r *Recorder) Holds(key types.NamespacedName, n int) {
	if r == nil {
		return
	}
	r.automationHolds.WithLabelValues(key.Namespace, key.Name).Set(float64(n))
}

// HelmAction is a helm.ActionObserver.
func (r *Recorder) HelmAction(action helm.Action, took time.Duration, err error) {
	if r == nil {
		return
	}
	r.helmAction.WithLabelValues(string(action), outcomeOf(err)).Observe(took.Seconds())
}

func outcomeOf(err error) string {
	if err != nil {
		return "failure"
	}
	return "success"
}

// JobsQueued makes helmflux_fluxapi_jobs_queued report queued; the last
// queue given wins (one per operator process).
func (r *Recorder) JobsQueued(queued func() int) {
	if r == nil || queued == nil {
		return
	}
	r.queued.Store(&queued)
}

// Registry returns the registry.Observer that feeds the registry metrics.
func (r *Recorder) Registry() registry.Observer {
	if r == nil {
		return nil
	}
	return registryObserver{r}
}

type registryObserver struct{ r *Recorder }

func (o registryObserver) Request(host string, code int) {
	c := "error"
	if code > 0 {
		c = strconv.Itoa(code)
	}
	o.r.registryRequests.WithLabelValues(o.r.hosts.of(host), c).Inc()
}

func (o registryObserver) RateLimited(host string) {
	o.r.registryRateLimited.WithLabelValues(o.r.hosts.of(host)).Inc()
}

func (o registryObserver) Throttled(host string) {
	o.r.registryThrottled.WithLabelValues(o.r.hosts.of(host)).Inc()
}

// Git returns the git.Observer that feeds the git metrics.
func (r *Recorder) Git() git.Observer {
	if r == nil {
		return nil
	}
	return gitObserver{r}
}

type gitObserver struct{ r *Recorder }

func (o gitObserver) Fetched(host string, took time.Duration, err error) {
	o.r.gitFetch.WithLabelValues(o.r.hosts.of(host), outcomeOf(err)).Observe(took.Seconds())
}

func (o gitObserver) Pushed(host string, retries int) {
	o.r.gitPushRetries.WithLabelValues(o.r.hosts.of(host)).Add(float64(max(retries, 0)))
}
