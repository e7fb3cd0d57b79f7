// Command helmflux-operator is the in-cluster program: it keeps the cluster in step
// with git (GitSync) and drives Helm releases (HelmRelease).
//
// This file only parses flags and wires the manager; the controllers live in
// operator/controllers and everything they build on lives in pkg/.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/helmflux/helmflux/operator/controllers"
)

// version is stamped at build time with -ldflags -X main.version=...
var version = "dev"

func main() {
	var (
		metricsAddr    string
		probeAddr      string
		leaderElect    bool
		leaderNS       string
		printVersion   bool
		concurrency    int
		applyConc      int
		cacheDir       string
		apiQPS         float64
		apiBurst       int
		listen         string
		interval       time.Duration
		indexInterval  time.Duration
		crossNS        bool
		noCrossNS      bool
		sharedIdentity bool
		fluxdAPI       bool
		defaultSA      string
		localURLs      bool
		plainHTTP      string
		auto           automationFlags
		leader         leaderFlags
		bounds         boundsFlags
		apiTokenFile   string
		identitySecret string
		watchSelector  string
		leaseID        string
		pprofAddr      string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address the metrics endpoint binds to; 0 disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the health probes bind to.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "0", "Address of Go's profiling endpoints (/debug/pprof/: heap, goroutines, CPU); 0 disables them. They show the process's memory: bind them to the loopback interface (127.0.0.1:6060) and reach them with kubectl port-forward.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader so that only one replica reconciles.")
	flag.StringVar(&leaderNS, "leader-election-namespace", "", "Namespace of the leader election Lease; empty is the Pod's own namespace (needed only outside a cluster).")
	flag.BoolVar(&printVersion, "version", false, "Print the version and exit.")
	flag.IntVar(&concurrency, "concurrent", 4, "Number of objects of each kind reconciled in parallel.")
	flag.IntVar(&applyConc, "apply-concurrency", controllers.DefaultApplyConcurrency, "Objects one GitSync pass dry-runs or applies at once. These requests are not held to --kube-api-qps: the API server's priority and fairness spaces them.")
	flag.StringVar(&cacheDir, "cache-dir", filepath.Join(os.TempDir(), "helmflux"), "Directory for the git repository cache and temporary checkouts.")
	flag.Float64Var(&apiQPS, "kube-api-qps", 100, "Requests per second to the Kubernetes API.")
	flag.IntVar(&apiBurst, "kube-api-burst", 300, "Burst of requests to the Kubernetes API.")
	flag.StringVar(&listen, "listen", ":3030", "Address of the HTTP API and the push receiver (/hooks/<namespace>/<name>); empty disables them.")
	flag.DurationVar(&interval, "charts-sync-interval", 3*time.Minute, "Time between passes over an unchanged HelmRelease.")
	flag.DurationVar(&indexInterval, "chart-index-interval", 0, "Time between two refreshes of a chart repository's index.yaml (one conditional request per repository URL and credentials, shared by every HelmRelease of it), ±10% jitter; 0 is 1.25 × --charts-sync-interval, so that a pass over every HelmRelease sends at most one.")
	flag.BoolVar(&crossNS, "allow-cross-namespace-refs", false, "Let HelmReleases read values and chart credentials from ConfigMaps and Secrets of other namespaces.")
	flag.BoolVar(&noCrossNS, "no-cross-namespace-refs", false, "Refuse every reference to another namespace than the object's own: valuesFrom and chart Secrets (whatever --allow-cross-namespace-refs says), a HelmRelease targetNamespace, and image pull Secrets of workloads outside their GitSync's namespace. Part of the lockdown profile, as Flux's flag of that name.")
	flag.BoolVar(&sharedIdentity, "shared-git-identity", true, "Let GitSyncs and chart.git sources of every namespace that name no Secret use the operator's SSH deploy key (--git-identity-secret); false keeps it to that Secret's namespace (the lockdown profile).")
	flag.StringVar(&defaultSA, "default-service-account", "", "Service account, in the object's own namespace, that GitSyncs and HelmReleases without spec.serviceAccountName act as (impersonated); empty leaves them to the operator's own identity (single-tenant mode).")
	flag.BoolVar(&localURLs, "allow-local-urls", false, "Let GitSync urls, HelmRelease chart.git and chart.repository (http(s) and oci://, with the archive URLs their indexes name and redirects), externalSourceRef values and the image registries automation scans (their token services and redirects too) name the operator's machine: file:// URLs, local paths and loopback hosts (localhost, 127.0.0.0/8, ::1). For single-user setups and tests; in a shared cluster it lets a tenant read the operator's disk and reach services on its loopback interface.")
	flag.StringVar(&plainHTTP, "plain-http-registries", "", "Comma-separated OCI registry hosts (host or host:port) reached over plain HTTP instead of HTTPS.")
	flag.BoolVar(&fluxdAPI, "fluxd-api", true, "Serve the fluxd API (fluxctl, the helmflux CLI) on --listen. It reads and changes workloads of every namespace: in a shared cluster serve it only with --api-token-file, for admins. The push and registry receivers are served either way.")
	flag.StringVar(&apiTokenFile, "api-token-file", "", "File holding the token every fluxd API request must carry (fluxctl --token); empty accepts any.")
	flag.StringVar(&identitySecret, "git-identity-secret", "helmflux-system/helmflux-git-identity", "<namespace>/<name> of the Secret holding the operator's SSH deploy key (fluxctl identity); made when first asked for.")
	flag.StringVar(&watchSelector, "watch-label-selector", "", "Label selector (Kubernetes syntax) of the GitSyncs, HelmReleases and Alerts this operator reconciles, as Flux's controllers have it: 'sharding.fluxcd.io/key in (shard1)' for a shard, '!sharding.fluxcd.io/key' for the main instance; empty is all of them. A non-empty selector gives the operator a Lease of its own (docs/operations.md, Sharding).")
	flag.StringVar(&leaseID, "leader-election-id", "", "Name of the leader election Lease; empty is helmflux-operator.helmflux.dev, with a suffix derived from --watch-label-selector when that is set (each shard elects its own leader).")
	auto.bind(flag.CommandLine)
	leader.bind(flag.CommandLine)
	bounds.bind(flag.CommandLine)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()

	if printVersion {
		fmt.Println(version)
		return
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")

	// The default lies under $TMPDIR, which a read-only root filesystem does
	// not let us create: name the flag that fixes it before anything else
	// fails deep inside Setup.
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		log.Error(err, "Unable to create the cache directory; point --cache-dir at a writable volume", "cacheDir", cacheDir)
		os.Exit(1)
	}

	selector, err := watchLabelSelector(watchSelector)
	if err != nil {
		log.Error(err, "Invalid --watch-label-selector")
		os.Exit(1)
	}
	cfg := ctrl.GetConfigOrDie()
	cfg.QPS, cfg.Burst = float32(apiQPS), apiBurst
	mgrOpts := ctrl.Options{
		Metrics:                 metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:  probeAddr,
		PprofBindAddress:        pprofAddr,
		LeaderElection:          leaderElect,
		LeaderElectionID:        controllers.LeaderElectionID,
		LeaderElectionNamespace: leaderNS,
		// A running Helm action gets this long to end (failed, not pending) on SIGTERM.
		GracefulShutdownTimeout: ptr.To(30 * time.Second),
	}
	if err := leader.apply(&mgrOpts); err != nil {
		log.Error(err, "Invalid leader election flags")
		os.Exit(1)
	}
	mgrOpts = controllers.Shard(mgrOpts, selector)
	if err := leaseIDFlag(&mgrOpts, leaseID); err != nil {
		log.Error(err, "Invalid --leader-election-id")
		os.Exit(1)
	}
	mgr, err := ctrl.NewManager(cfg, controllers.ManagerOptions(mgrOpts))
	if err != nil {
		log.Error(err, "Unable to create the manager")
		os.Exit(1)
	}
	opts := controllers.Options{
		Concurrency: concurrency, ApplyConcurrency: applyConc, CacheDir: cacheDir, Listen: listen,
		HelmInterval: interval, ChartIndexInterval: indexInterval, AllowCrossNamespaceRefs: crossNS, NoCrossNamespaceRefs: noCrossNS, DefaultServiceAccount: defaultSA, AllowLocalURLs: localURLs,
		PlainHTTPRegistries: splitList(plainHTTP), Version: version, IdentityOwnNamespaceOnly: !sharedIdentity, NoFluxdAPI: !fluxdAPI,
		WatchLabelSelector: selector.String(),
	}
	if crossNS && noCrossNS {
		log.Error(errors.New("--allow-cross-namespace-refs and --no-cross-namespace-refs contradict each other"), "Invalid flags")
		os.Exit(1)
	}
	if err := serviceAccountFlag(defaultSA); err != nil {
		log.Error(err, "Invalid --default-service-account")
		os.Exit(1)
	}
	if err := apiFlags(&opts, apiTokenFile, identitySecret); err != nil {
		log.Error(err, "Invalid fluxd API flags")
		os.Exit(1)
	}
	if err := bounds.apply(&opts); err != nil {
		log.Error(err, "Invalid cache and load flags")
		os.Exit(1)
	}
	if err := auto.apply(&opts); err != nil {
		log.Error(err, "Invalid image automation flags")
		os.Exit(1)
	}
	if err := controllers.Setup(mgr, cfg, opts); err != nil {
		log.Error(err, "Unable to set up the controllers")
		os.Exit(1)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "Unable to add the health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("caches", controllers.CacheSynced(mgr.GetCache())); err != nil {
		log.Error(err, "Unable to add the ready check")
		os.Exit(1)
	}

	log.Info("Starting helmflux-operator", "version", version, "watchLabelSelector", selector.String(), "lease", mgrOpts.LeaderElectionID)
	// The Lease is released when the manager stops (LeaderElectionReleaseOnCancel),
	// so nothing may run after it: another replica leads from that moment on.
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "Manager stopped with an error")
		os.Exit(1)
	}
	log.Info("Stopped")
	os.Exit(0)
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
