// Package controllers wires helmflux's controllers and HTTP endpoints into a
// controller-runtime manager: the one place that builds what they share (git
// cache, applier, trigger channel), used by the operator, the tests and the
// benchmarks alike.
package controllers

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/semaphore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/automation"
	"github.com/helmflux/helmflux/operator/fluxapi"
	"github.com/helmflux/helmflux/operator/gitcreds"
	"github.com/helmflux/helmflux/operator/gitsync"
	"github.com/helmflux/helmflux/operator/helmrelease"
	"github.com/helmflux/helmflux/operator/impersonation"
	"github.com/helmflux/helmflux/operator/metrics"
	"github.com/helmflux/helmflux/operator/notify"
	"github.com/helmflux/helmflux/operator/webhook"
	"github.com/helmflux/helmflux/pkg/apply"
	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/helm"
	"github.com/helmflux/helmflux/pkg/registry"
)

// NewScheme returns a scheme with the Kubernetes types and helmflux's APIs.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(helmv1.AddToScheme(s))
	utilruntime.Must(helmfluxv1alpha1.AddToScheme(s))
	return s
}

// DefaultApplyConcurrency is how many objects a GitSync pass dry-runs or
// applies at once by default (--apply-concurrency).
const DefaultApplyConcurrency = 16

// LeaderElectionID is the name of the Lease, in the operator's namespace,
// whose holder is the one replica that reconciles; its holderIdentity begins
// with the holder's hostname (its Pod's name), which the CLI reads to reach
// the leader.
const LeaderElectionID = "helmflux-operator.helmflux.dev"

// LeaseName is the leader election Lease of the operators that watch
// selector: LeaderElectionID for everything (""), else LeaderElectionID with
// a suffix derived from the selector's canonical form, so that the
// replicas of one shard elect a leader among themselves and never wait for
// another shard's.
func LeaseName(selector labels.Selector) string {
	if selector == nil || selector.Empty() {
		return LeaderElectionID
	}
	sum := sha256.Sum256([]byte(selector.String()))
	return LeaderElectionID + "-" + hex.EncodeToString(sum[:4])
}

// Options configure the controllers.
type Options struct {
	// Concurrency is the number of objects of each kind reconciled in parallel.
	Concurrency int
	// CacheDir holds the git repository cache and temporary checkouts.
	CacheDir string
	// CacheMaxSize, CacheMaxAge and CacheSweepInterval bound the caches
	// under CacheDir (see sweepCaches); zero values are the defaults, a
	// negative size or age no bound.
	CacheMaxSize       int64
	CacheMaxAge        time.Duration
	CacheSweepInterval time.Duration
	// MaxConcurrentLoads bounds the GitSync passes that hold a checkout's
	// objects at once; 0 is DefaultMaxConcurrentLoads.
	MaxConcurrentLoads int
	// Listen is the address of the HTTP API and push receiver; "" serves none.
	Listen string
	// HelmInterval is the time between passes over an unchanged HelmRelease
	// (the Helm Operator's --charts-sync-interval).
	HelmInterval time.Duration
	// ChartIndexInterval is the time between two refreshes of a chart
	// repository's index (--chart-index-interval); 0 is
	// ChartIndexInterval(HelmInterval).
	ChartIndexInterval time.Duration
	// DefaultServiceAccount is the service account, of the object's own
	// namespace, that GitSyncs and HelmReleases naming none in
	// spec.serviceAccountName act as (impersonated); "" leaves those to the
	// operator's own identity (single-tenant mode).
	DefaultServiceAccount string
	// AllowCrossNamespaceRefs lets HelmReleases read values and chart
	// credentials from other namespaces.
	AllowCrossNamespaceRefs bool
	// NoCrossNamespaceRefs refuses every reference to another namespace
	// (AllowCrossNamespaceRefs or not), a HelmRelease targetNamespace other
	// than its own, and image pull Secrets of workloads outside their
	// GitSync's namespace (--no-cross-namespace-refs, the lockdown profile).
	NoCrossNamespaceRefs bool
	// AllowLocalURLs lets GitSync urls, HelmRelease chart.git and
	// chart.repository (http(s) and oci://, the archive URLs their indexes
	// name, redirects), externalSourceRef values and the image registries
	// automation scans (with their token services and redirects) name the
	// operator's machine: file:// URLs, local paths and loopback hosts (the
	// operator's --allow-local-urls). Off, a tenant cannot read the operator's disk or
	// services on its loopback interface.
	AllowLocalURLs bool
	// HTTPClient fetches chart repositories and externalSourceRef values;
	// nil uses a default client (tests pass one trusting their servers).
	HTTPClient *http.Client
	// PlainHTTPRegistries are OCI registry hosts reached over plain HTTP.
	PlainHTTPRegistries []string

	// AutomationInterval is the time between two image automation passes
	// over one GitSync; 0 is the default (5m).
	AutomationInterval time.Duration
	// Registry configures image scans (rate limits, cache, insecure hosts,
	// include/exclude). CacheDir defaults to <CacheDir>/registry.
	Registry registry.Options
	// DockerConfig is an operator-wide docker config.json (registry logins
	// for every workload); empty for none.
	DockerConfig []byte
	// DockerConfigOwnNamespaceOnly keeps DockerConfig to the workloads of
	// GitSyncs in the operator's own namespace, the Identity Secret's
	// (--shared-docker-config=false, the lockdown profile).
	DockerConfigOwnNamespaceOnly bool
	// RegistryWebhookToken, when set, authenticates registry notifications.
	RegistryWebhookToken []byte
	// RegistryRescanInterval, when above 0, is the least time between two
	// rescans of one image repository that registry notifications force;
	// 0 is webhook.RescanInterval (webhook.TokenRescanInterval with a token).
	RegistryRescanInterval time.Duration
	// History bounds the git history walk image holds are derived from.
	History automation.HistoryLimits
	// APIToken, when set, must come with every request to the fluxd API.
	APIToken []byte
	// NoFluxdAPI serves the push and registry receivers on Listen but not
	// the fluxd API (--fluxd-api=false): the API acts on every namespace,
	// so a shared cluster without an API token must not serve it.
	NoFluxdAPI bool
	// Identity names the Secret of the operator's SSH deploy key
	// (fluxctl identity); a zero key is helmflux-system/helmflux-git-identity.
	Identity client.ObjectKey
	// IdentityOwnNamespaceOnly keeps the SSH deploy key from GitSyncs and
	// chart.git sources outside the Identity Secret's namespace
	// (--shared-git-identity=false, the lockdown profile).
	IdentityOwnNamespaceOnly bool
	// WatchLabelSelector is the selector the manager's cache was restricted
	// to (Shard), "" for none. A shard's push receiver reads GitSyncs live,
	// so that a push for another shard's GitSync still reaches it, and a
	// HelmRelease whose GitSync the shard does not see is told why.
	WatchLabelSelector string
	// Version is what the fluxd API's /v11/version answers.
	Version string
	// ApplyConcurrency is how many objects a GitSync pass dry-runs or
	// applies at once; 0 is the default (DefaultApplyConcurrency).
	ApplyConcurrency int
	// Notify tunes the delivery of Alerts' messages (queue, workers,
	// retries, timeout); AllowLocalURLs follows the field above.
	Notify notify.Options
}

// ManagerOptions returns the manager options the controllers need, on top
// of base: helmflux's scheme, a client that reads Secrets, ConfigMaps and
// ServiceAccounts (for image pull secrets) live instead of caching every one
// of them in the cluster, and a cache without managed fields.
func ManagerOptions(base ctrl.Options) ctrl.Options {
	base.Scheme = NewScheme()
	base.Client = client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{
		&corev1.Secret{}, &corev1.ConfigMap{}, &corev1.ServiceAccount{},
	}}}
	// Nothing reads managed fields from the cache: without them, thousands
	// of cached HelmReleases and release-record labels take a fraction of
	// the memory.
	base.Cache.DefaultTransform = cache.TransformStripManagedFields()
	return base
}

// Shard makes the manager of base one shard (--watch-label-selector): its
// cache holds only the GitSyncs, HelmReleases and Alerts selector matches,
// so that every controller, image automation (which walks GitSyncs) and the
// fluxd API see those and no others, and its Lease is the shard's own
// (LeaseName). An empty selector changes nothing.
func Shard(base ctrl.Options, selector labels.Selector) ctrl.Options {
	if selector == nil || selector.Empty() {
		return base
	}
	byObject := make(map[client.Object]cache.ByObject, len(base.Cache.ByObject)+3)
	maps.Copy(byObject, base.Cache.ByObject)
	for _, obj := range []client.Object{&helmfluxv1alpha1.GitSync{}, &helmv1.HelmRelease{}, &helmfluxv1alpha1.Alert{}} {
		byObject[obj] = cache.ByObject{Label: selector}
	}
	base.Cache.ByObject = byObject
	base.LeaderElectionID = LeaseName(selector)
	return base
}

// Setup builds what the controllers share and registers them with mgr. cfg is
// the manager's rest config, used for the applier's uncached client.
func Setup(mgr ctrl.Manager, cfg *rest.Config, opts Options) error {
	rec := metrics.Default()
	gitOpts := []git.Option{git.WithObserver(rec.Git())}
	if !opts.AllowLocalURLs {
		gitOpts = append(gitOpts, git.WithoutLocalURLs())
	}
	gitCache, err := git.NewCache(filepath.Join(opts.CacheDir, "git"), gitOpts...)
	if err != nil {
		return fmt.Errorf("open the git cache: %w", err)
	}
	// The work directory holds temporary checkouts only: what is in it at
	// start was left by a process that was killed mid-pass.
	workDir := filepath.Join(opts.CacheDir, "work")
	if err := os.RemoveAll(workDir); err != nil {
		return fmt.Errorf("remove the checkouts a previous run left: %w", err)
	}
	if err := os.MkdirAll(workDir, 0o700); err != nil {
		return fmt.Errorf("make the work directory: %w", err)
	}
	// The applier compares with live objects, so it reads without the cache.
	direct, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return fmt.Errorf("make the apply client: %w", err)
	}
	// Tenants' clients share the scheme and mapper: discovery is the same for
	// everyone, and reading it is no privilege.
	tenants, err := impersonation.New(cfg, client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()}, 0)
	if err != nil {
		return err
	}
	if err := mgr.Add(newCacheSweeper(gitCache, mgr.GetLogger().WithName("cache"), opts)); err != nil {
		return err
	}
	triggers := make(chan event.GenericEvent, 1024)
	notifier, err := setupNotify(mgr, opts)
	if err != nil {
		return err
	}
	if err := setupHelm(mgr, cfg, direct, gitCache, rec, notifier, opts); err != nil {
		return err
	}
	automation, err := setupAutomation(mgr, gitCache, triggers, rec, notifier, opts)
	if err != nil {
		return err
	}
	applier, watcher, err := syncApplier(mgr, cfg)
	if err != nil {
		return err
	}
	syncs := &gitsync.Reconciler{
		Identity:              identityOf(opts),
		Client:                mgr.GetClient(),
		APIReader:             mgr.GetAPIReader(),
		Applier:               applier,
		Watcher:               watcher,
		ApplyConcurrency:      cmp.Or(opts.ApplyConcurrency, DefaultApplyConcurrency),
		Tenants:               tenants,
		DefaultServiceAccount: opts.DefaultServiceAccount,
		Git:                   gitCache,
		Events:                notifier.Recorder(mgr.GetEventRecorder("helmflux-gitsync"), notify.SyncEvents),
		WorkDir:               workDir,
		Triggers:              triggers,
		Concurrency:           opts.Concurrency,
		Loads:                 semaphore.NewWeighted(int64(loadsOf(opts))),
		Metrics:               rec,
	}
	watcher.OnChange(syncs.Heard)
	if err := mgr.Add(watcher); err != nil {
		return err
	}
	err = syncs.SetupWithManager(mgr)
	if err != nil || opts.Listen == "" {
		return err
	}
	// Every replica serves these; only the leader reconciles. A push is
	// written into the cluster (a requestedAt annotation) so that it reaches
	// the leader; what needs the leader's memory is refused elsewhere.
	leading := func() bool {
		select {
		case <-mgr.Elected():
			return true
		default:
			return false
		}
	}
	mux := http.NewServeMux()
	(&webhook.Receiver{Client: mgr.GetClient(), Reader: gitSyncReader(mgr, opts)}).Register(mux)
	(&webhook.RegistryReceiver{Token: opts.RegistryWebhookToken, Rescan: automation.Rescan, Leading: leading, Interval: opts.RegistryRescanInterval}).Register(mux)
	if !opts.NoFluxdAPI {
		api := newFluxAPI(mgr, gitCache, automation, leading, opts)
		rec.JobsQueued(api.Jobs.Queued)
		api.Register(mux)
	}
	srv := &httpServer{addr: opts.Listen, handler: mux}
	if err := mgr.AddReadyzCheck("listen", srv.Ready); err != nil {
		return err
	}
	return mgr.Add(srv)
}

// syncApplier returns the GitSync applier and the Watcher of what it
// applied. The applier's client has no client-side rate limit: a pass
// dry-runs and applies a bounded number of objects at once
// (Options.ApplyConcurrency), and the API server's priority and fairness
// is what spaces them, instead of a cold sync of thousands of objects
// waiting on the --kube-api-qps token bucket.
func syncApplier(mgr ctrl.Manager, cfg *rest.Config) (*apply.Applier, *apply.Watcher, error) {
	unlimited := rest.CopyConfig(cfg)
	unlimited.QPS, unlimited.Burst, unlimited.RateLimiter = -1, 0, nil
	c, err := client.New(unlimited, client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return nil, nil, fmt.Errorf("make the sync client: %w", err)
	}
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("make the metadata client: %w", err)
	}
	return apply.New(c, gitsync.FieldManager), apply.NewWatcher(mc, mgr.GetRESTMapper(), nil), nil
}

// setupNotify registers the Alert controller and the Notifier, whose
// Recorder wraps each controller's EventRecorder.
func setupNotify(mgr ctrl.Manager, opts Options) (*notify.Notifier, error) {
	nopts := opts.Notify
	nopts.AllowLocalURLs = opts.AllowLocalURLs
	n := notify.New(mgr.GetClient(), mgr.GetAPIReader(), mgr.GetLogger().WithName("notify"), nopts)
	if err := mgr.Add(n); err != nil {
		return nil, err
	}
	r := &notify.AlertReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), AllowLocalURLs: opts.AllowLocalURLs}
	return n, r.SetupWithManager(mgr)
}

// setupAutomation registers the image automation controller. After a push it
// wakes the GitSync controller through synced.
func setupAutomation(mgr ctrl.Manager, gitCache *git.Cache, synced chan<- event.GenericEvent, rec *metrics.Recorder, notifier *notify.Notifier, opts Options) (*automation.Reconciler, error) {
	ropts := opts.Registry
	if ropts.Observer == nil {
		ropts.Observer = rec.Registry()
	}
	if ropts.CacheDir == "" {
		ropts.CacheDir = filepath.Join(opts.CacheDir, "registry")
	}
	if ropts.Log.GetSink() == nil {
		ropts.Log = mgr.GetLogger().WithName("registry")
	}
	// Tenants name the images scanned, so their registries are judged like
	// the URLs of their GitSyncs and charts.
	ropts.RefuseLocal = ropts.RefuseLocal || !opts.AllowLocalURLs
	reg, err := registry.New(ropts)
	if err != nil {
		return nil, fmt.Errorf("make the registry client: %w", err)
	}
	var docker registry.Credentials
	if len(opts.DockerConfig) > 0 {
		if docker, err = registry.ParseDockerConfig(opts.DockerConfig); err != nil {
			return nil, fmt.Errorf("docker config: %w", err)
		}
	}
	var dockerNamespace string
	if opts.DockerConfigOwnNamespaceOnly {
		dockerNamespace = identityOf(opts).Namespace
	}
	r := &automation.Reconciler{
		Identity:     identityOf(opts),
		Client:       mgr.GetClient(),
		Git:          gitCache,
		Registry:     reg,
		Events:       notifier.Recorder(mgr.GetEventRecorder("helmflux-automation"), notify.AutomationEvents),
		Interval:     opts.AutomationInterval,
		DockerConfig: docker,
		Synced:       synced,
		Concurrency:  opts.Concurrency,
		APIReader:    mgr.GetAPIReader(),
		History:      opts.History,
		Metrics:      rec,

		DockerConfigNamespace: dockerNamespace,
		NoCrossNamespaceRefs:  opts.NoCrossNamespaceRefs,
	}
	return r, r.SetupWithManager(mgr)
}

// ChartIndexInterval is the default time between two refreshes of a chart
// repository's index for HelmReleases passed over every helmInterval (0 is
// helmrelease.DefaultInterval): a quarter more, so that the shortest
// refresh (10% jitter early) comes later than the longest pass (10% jitter
// late) and a pass over every HelmRelease of a repository asks for its
// index at most once.
func ChartIndexInterval(helmInterval time.Duration) time.Duration {
	if helmInterval <= 0 {
		helmInterval = helmrelease.DefaultInterval
	}
	return helmInterval * 5 / 4
}

// setupHelm registers the HelmRelease controller.
func setupHelm(mgr ctrl.Manager, cfg *rest.Config, direct client.Client, gitCache *git.Cache, rec *metrics.Recorder, notifier *notify.Notifier, opts Options) error {
	runner, err := helm.NewRunner(cfg, mgr.GetLogger().WithName("helm"), helm.WithActionObserver(rec.HelmAction))
	if err != nil {
		return err
	}
	indexInterval := opts.ChartIndexInterval
	if indexInterval <= 0 {
		indexInterval = ChartIndexInterval(opts.HelmInterval)
	}
	chartOpts := []helm.ChartsOption{helm.WithPlainHTTPRegistries(opts.PlainHTTPRegistries...), helm.WithIndexInterval(indexInterval)}
	if !opts.AllowLocalURLs {
		chartOpts = append(chartOpts, helm.WithoutLocalURLs())
	}
	if opts.HTTPClient != nil {
		chartOpts = append(chartOpts, helm.WithHTTPClient(opts.HTTPClient))
	}
	charts, err := helm.NewCharts(filepath.Join(opts.CacheDir, "charts"), gitCache, chartOpts...)
	if err != nil {
		return fmt.Errorf("open the chart cache: %w", err)
	}
	return (&helmrelease.Reconciler{
		Identity:                identityOf(opts),
		Client:                  mgr.GetClient(),
		APIReader:               mgr.GetAPIReader(),
		Runner:                  runner,
		Charts:                  charts,
		Git:                     gitCache,
		Drift:                   apply.New(direct, helmrelease.DriftFieldManager),
		Events:                  notifier.Recorder(mgr.GetEventRecorder("helmflux-helmrelease"), notify.ReleaseEvents),
		Interval:                opts.HelmInterval,
		AllowCrossNamespaceRefs: opts.AllowCrossNamespaceRefs,
		NoCrossNamespaceRefs:    opts.NoCrossNamespaceRefs,
		Concurrency:             opts.Concurrency,
		DefaultServiceAccount:   opts.DefaultServiceAccount,
		WatchLabelSelector:      opts.WatchLabelSelector,
		Metrics:                 rec,
	}).SetupWithManager(context.Background(), mgr)
}

// newFluxAPI builds the fluxd API: it reads through the manager's cache and
// live for workloads, writes through the git cache automation uses, and
// wakes GitSyncs with a requestedAt annotation, which reaches the leader
// from any replica.
func newFluxAPI(mgr ctrl.Manager, gitCache *git.Cache, auto *automation.Reconciler, leading func() bool, opts Options) *fluxapi.Server {
	log := mgr.GetLogger().WithName("fluxapi")
	wake := func(ctx context.Context, key types.NamespacedName) {
		gs := &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := webhook.RequestReconcile(ctx, mgr.GetClient(), gs); err != nil {
			log.Info("Unable to request a sync; the interval syncs it", "gitsync", key, "error", err.Error())
		}
	}
	cluster := &fluxapi.Cluster{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Git: gitCache}
	writer := &fluxapi.Writer{Client: mgr.GetClient(), Git: gitCache, Registry: auto.Registry, Cluster: cluster, Wake: wake, Identity: identityOf(opts)}
	identity := identityOf(opts).ObjectKey
	return &fluxapi.Server{
		Token: opts.APIToken, Version: opts.Version, Cluster: cluster, Writer: writer,
		Images:   &fluxapi.Images{Registry: auto.Registry, Credentials: auto.DockerConfig, Log: log},
		Jobs:     &fluxapi.Jobs{Run: writer.Run, Log: log},
		Identity: &fluxapi.Identity{Client: mgr.GetClient(), Secret: identity},
		Notify:   notifier(gitSyncReader(mgr, opts), auto, leading, wake),
	}
}

// notifier acts on /v11/notify: a git change syncs the GitSyncs of that
// URL (from any replica), an image change rescans the image (on the leader,
// whose automation passes keep the scans; elsewhere fluxapi.ErrNotLeader).
func notifier(c client.Reader, auto *automation.Reconciler, leading func() bool, wake func(context.Context, types.NamespacedName)) func(context.Context, fluxapi.NotifyChange) error {
	return func(ctx context.Context, n fluxapi.NotifyChange) error {
		switch n.Kind {
		case "image":
			var src fluxapi.ImageSource
			if err := json.Unmarshal(n.Source, &src); err != nil || src.Name.Image == "" {
				return nil // nothing to rescan
			}
			if !leading() {
				return fluxapi.ErrNotLeader
			}
			_, err := auto.Rescan(src.Repository())
			return err
		case "git":
			var src fluxapi.GitSource
			if err := json.Unmarshal(n.Source, &src); err != nil || src.URL == "" {
				return nil
			}
			var list helmfluxv1alpha1.GitSyncList
			if err := c.List(ctx, &list); err != nil {
				return err
			}
			for _, gs := range list.Items {
				if sameRepo(gs.Spec.URL, src.URL) {
					wake(ctx, types.NamespacedName{Namespace: gs.Namespace, Name: gs.Name})
				}
			}
		}
		return nil
	}
}

// gitSyncReader reads the GitSyncs a push names: the cache, or, for a shard,
// the API server, whose answer holds the GitSyncs of every shard. A push is
// written on the GitSync (a requestedAt annotation), so one received by any
// shard reaches the shard that reconciles it.
func gitSyncReader(mgr ctrl.Manager, opts Options) client.Reader {
	if opts.WatchLabelSelector != "" {
		return mgr.GetAPIReader()
	}
	return mgr.GetClient()
}

// sameRepo compares repository URLs loosely: a trailing ".git" or "/" does
// not matter.
func sameRepo(a, b string) bool {
	norm := func(u string) string { return strings.TrimSuffix(strings.TrimSuffix(u, "/"), ".git") }
	return norm(a) == norm(b)
}

// DefaultIdentity is the Secret of the operator's SSH key when
// Options.Identity names none.
var DefaultIdentity = client.ObjectKey{Namespace: "helmflux-system", Name: "helmflux-git-identity"}

// identityOf is the operator's SSH identity.
func identityOf(opts Options) gitcreds.Identity {
	if opts.Identity.Name == "" {
		return gitcreds.Identity{ObjectKey: DefaultIdentity, OwnNamespaceOnly: opts.IdentityOwnNamespaceOnly}
	}
	return gitcreds.Identity{ObjectKey: opts.Identity, OwnNamespaceOnly: opts.IdentityOwnNamespaceOnly}
}
