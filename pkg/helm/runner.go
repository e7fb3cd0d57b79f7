package helm

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// capabilitiesTTL bounds how long the cluster's version and API groups are
// reused without asking again; installing a chart with CRDs refreshes them at once.
const capabilitiesTTL = time.Minute

// Runner runs Helm actions against one cluster, as one identity: the
// operator's, or the user a Runner from As impersonates. It is safe for
// concurrent use; concurrent actions on the same release are the caller's
// to avoid (the controller reconciles each HelmRelease on one worker at a
// time).
type Runner struct {
	strict    *rest.Config // asks the API server to validate every write strictly
	lenient   *rest.Config // for charts with disableOpenAPIValidation
	clientset kubernetes.Interface
	user      string // the impersonated user; "" for cfg's own identity
	log       logr.Logger
	*cluster
}

// cluster is what Runners of one cluster share whoever they act as: the
// discovery cache, REST mappings and capabilities (the API groups every
// authenticated user may discover), so a Runner per service account costs
// no discovery of its own.
type cluster struct {
	discovery discovery.CachedDiscoveryInterface
	mapper    meta.ResettableRESTMapper

	mu     sync.Mutex
	caps   *chartutil.Capabilities
	capsAt time.Time

	// observe is told of every action's end (WithActionObserver).
	observe ActionObserver
	// maxRecord and maxRecords bound the release records Helm decodes
	// (WithRecordLimits).
	maxRecord, maxRecords int64
}

// Action names a Helm action for an ActionObserver.
type Action string

// The actions a Runner runs.
const (
	ActionInstall   Action = "install"
	ActionUpgrade   Action = "upgrade"
	ActionTest      Action = "test"
	ActionRollback  Action = "rollback"
	ActionUninstall Action = "uninstall"
)

// ActionObserver is told how long each action took and how it ended (err
// nil on success), for metrics. It must be quick and safe for concurrent
// use, and must not keep err's text: Helm's errors may quote values.
type ActionObserver func(action Action, took time.Duration, err error)

// RunnerOption configures a Runner.
type RunnerOption func(*cluster)

// WithActionObserver has every action of the Runner, and of the Runners As
// returns, reported to f.
func WithActionObserver(f ActionObserver) RunnerOption {
	return func(c *cluster) { c.observe = f }
}

// observed reports an action that started at start and ended with err.
func (r *Runner) observed(action Action, start time.Time, err error) {
	if r.observe != nil {
		r.observe(action, time.Since(start), err)
	}
}

// NewRunner returns a Runner for the cluster of cfg. Helm's own debug output
// goes to log at V(2); it names objects, never values.
func NewRunner(cfg *rest.Config, log logr.Logger, opts ...RunnerOption) (*Runner, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("make discovery client: %w", err)
	}
	cached := memory.NewMemCacheClient(dc)
	c := &cluster{discovery: cached, mapper: restmapper.NewDeferredDiscoveryRESTMapper(cached)}
	for _, o := range opts {
		o(c)
	}
	return newRunner(cfg, "", log, c)
}

func newRunner(cfg *rest.Config, user string, log logr.Logger, c *cluster) (*Runner, error) {
	lenient := rest.CopyConfig(cfg)
	if user != "" {
		lenient.Impersonate = rest.ImpersonationConfig{UserName: user}
	}
	strict := rest.CopyConfig(lenient)
	strict.Wrap(func(rt http.RoundTripper) http.RoundTripper { return strictValidation{rt} })
	clientset, err := kubernetes.NewForConfig(lenient)
	if err != nil {
		return nil, fmt.Errorf("make clientset: %w", err)
	}
	return &Runner{strict: strict, lenient: lenient, clientset: clientset, user: user, log: log, cluster: c}, nil
}

// As returns a Runner whose every request (actions, release storage, the
// chart's lookup) impersonates user, such as
// "system:serviceaccount:tenant-a:deployer", so a release can do no more
// than that user may. It shares r's discovery and capabilities.
func (r *Runner) As(user string) (*Runner, error) {
	base := rest.CopyConfig(r.lenient)
	base.Impersonate = rest.ImpersonationConfig{}
	return newRunner(base, user, r.log.WithValues("as", user), r.cluster)
}

// User is the user the Runner impersonates; "" when it acts as its config's
// own identity.
func (r *Runner) User() string { return r.user }

// Config returns a copy of the rest config the Runner's requests use
// (impersonating its User), for other clients that must act as the same
// identity, such as drift detection.
func (r *Runner) Config() *rest.Config { return rest.CopyConfig(r.lenient) }

// strictValidation adds fieldValidation=Strict to every write that does not
// say otherwise, so the API server refuses unknown and duplicate fields as
// Helm's client-side OpenAPI validation would, without the schema download.
type strictValidation struct{ next http.RoundTripper }

func (s strictValidation) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		if q := req.URL.Query(); q.Get("fieldValidation") == "" && q.Get("dryRun") == "" {
			req = req.Clone(req.Context())
			q.Set("fieldValidation", "Strict")
			req.URL.RawQuery = q.Encode()
		}
	}
	return s.next.RoundTrip(req)
}

// acting builds the configuration of an action (verb) on release name in
// namespace. Acting as the operator itself (no As), Helm's kube client is
// guarded (see recordGuard): the returned guard tells whether it refused
// something. Acting as a user, that user's RBAC bounds the action and the
// guard is nil.
func (r *Runner) acting(ctx context.Context, verb, namespace, name string, validate bool, t trust) (*action.Configuration, *recordGuard, error) {
	cfg, err := r.configuration(ctx, namespace, validate)
	if err != nil || r.user != "" {
		return cfg, nil, err
	}
	g := &recordGuard{verb: verb, namespace: namespace, release: name, trust: t}
	cfg.KubeClient = guardedClient{reachable: cfg.KubeClient.(reachable), g: g}
	return cfg, g, nil
}

// configuration builds Helm's per-call configuration for the releases of one
// namespace on the Runner's shared clients. Every request of its kube client
// (applies, waits, hooks) carries ctx, so that an action Helm runs without a
// context (rollback, uninstall, test), or one that goes on in the background
// after its context ended (install, upgrade), stops sending requests once
// ctx is done. Release records are written without ctx, so that Helm can
// still mark an interrupted action failed.
func (r *Runner) configuration(ctx context.Context, namespace string, validate bool) (*action.Configuration, error) {
	restCfg := r.lenient
	if validate {
		restCfg = r.strict
	}
	restCfg = withContext(restCfg, ctx)
	getter := &clientGetter{cfg: restCfg, discovery: r.discovery, mapper: r.mapper, namespace: namespace}
	caps, err := r.capabilities()
	if err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) { r.log.V(2).Info(fmt.Sprintf(format, args...)) }
	kc := kube.New(getter)
	kc.Log = logf
	kc.Namespace = namespace
	d := driver.NewSecrets(r.boundedSecrets(r.clientset.CoreV1().Secrets(namespace), namespace))
	d.Log = logf
	store := storage.Init(d)
	store.Log = logf
	cfg := &action.Configuration{
		RESTClientGetter: getter,
		KubeClient:       reachable{kc},
		Releases:         store,
		Capabilities:     caps,
		Log:              logf,
	}
	return cfg, nil
}

// reachable is Helm's kube client without the reachability probe (a GET
// /version before every action): the Runner already reached the cluster for
// its capabilities, and an unreachable cluster fails the action's first
// request anyway. Every other method, and so every optional interface Helm
// looks for, is the embedded client's.
type reachable struct{ *kube.Client }

// IsReachable reports the cluster reachable; see reachable.
func (reachable) IsReachable() error { return nil }

// capabilities returns the cluster's version and API versions, computed once
// per capabilitiesTTL instead of per action.
func (r *cluster) capabilities() (*chartutil.Capabilities, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.caps != nil && time.Since(r.capsAt) < capabilitiesTTL {
		return r.caps, nil
	}
	v, err := r.discovery.ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("read the cluster version: %w", err)
	}
	kv, err := chartutil.ParseKubeVersion(v.GitVersion)
	if err != nil {
		return nil, fmt.Errorf("parse the cluster version %q: %w", v.GitVersion, err)
	}
	apiVersions, err := action.GetVersionSet(r.discovery)
	if err != nil {
		return nil, fmt.Errorf("read the cluster's API versions: %w", err)
	}
	r.caps = &chartutil.Capabilities{
		KubeVersion: *kv,
		APIVersions: apiVersions,
		HelmVersion: chartutil.DefaultCapabilities.HelmVersion,
	}
	r.capsAt = time.Now()
	return r.caps, nil
}

// Invalidate forgets the cached discovery, REST mappings and capabilities, so
// the next action sees kinds that a chart's CRDs just defined.
func (r *cluster) Invalidate() {
	r.discovery.Invalidate()
	r.mapper.Reset()
	r.mu.Lock()
	r.caps = nil
	r.mu.Unlock()
}

// clientGetter hands Helm the Runner's shared clients, scoped to a namespace.
type clientGetter struct {
	cfg       *rest.Config
	discovery discovery.CachedDiscoveryInterface
	mapper    meta.RESTMapper
	namespace string
}

func (g *clientGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.cfg), nil }

func (g *clientGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.discovery, nil
}

func (g *clientGetter) ToRESTMapper() (meta.RESTMapper, error) { return g.mapper, nil }

func (g *clientGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return clientcmd.NewDefaultClientConfig(*clientcmdapi.NewConfig(),
		&clientcmd.ConfigOverrides{Context: clientcmdapi.Context{Namespace: g.namespace}})
}
