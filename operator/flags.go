package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmflux/helmflux/operator/automation"
	"github.com/helmflux/helmflux/operator/controllers"
	"github.com/helmflux/helmflux/pkg/registry"
)

// automationFlags are the image automation flags, named as fluxd named them
// where fluxd had them.
type automationFlags struct {
	interval       time.Duration
	pollInterval   time.Duration
	rps            float64
	burst          int
	insecure       string
	include        string
	exclude        string
	dockerConfig   string
	sharedDocker   bool
	webhookSecret  string
	rescanInterval time.Duration
	holdCommits    int
	holdAge        time.Duration
}

func (a *automationFlags) bind(fs *flag.FlagSet) {
	fs.DurationVar(&a.interval, "automation-interval", 5*time.Minute, "Time between two image automation passes over one GitSync.")
	fs.DurationVar(&a.pollInterval, "registry-poll-interval", 5*time.Minute, "How long a repository's tag list is reused before the registry is asked again; 0 asks on every pass. A registry webhook rescans at once.")
	fs.Float64Var(&a.rps, "registry-rps", registry.DefaultRPS, "Requests per second to each registry host.")
	fs.IntVar(&a.burst, "registry-burst", registry.DefaultBurst, "Burst of requests to each registry host.")
	fs.StringVar(&a.insecure, "registry-insecure-host", "", "Comma-separated registry hosts (host or host:port) reached over plain HTTP.")
	fs.StringVar(&a.include, "registry-include-image", "", "Comma-separated globs of image repositories to scan (default: all automated images).")
	fs.StringVar(&a.exclude, "registry-exclude-image", "", "Comma-separated globs of image repositories never to scan.")
	fs.StringVar(&a.dockerConfig, "docker-config", "", "Path to a docker config.json with registry logins for every workload (mount a kubernetes.io/dockerconfigjson Secret).")
	fs.BoolVar(&a.sharedDocker, "shared-docker-config", true, "Let workloads of GitSyncs in every namespace use the --docker-config logins; false keeps them to GitSyncs in the operator's own namespace, that of --git-identity-secret (the lockdown profile).")
	fs.StringVar(&a.webhookSecret, "registry-webhook-token-file", "", "File holding the token registry notifications to /registry-hooks must carry; empty accepts any.")
	fs.DurationVar(&a.rescanInterval, "registry-webhook-rescan-interval", 0, "Least time between two rescans of one image repository that /registry-hooks notifications force; 0 is 10s, or 2s with --registry-webhook-token-file.")
	fs.IntVar(&a.holdCommits, "hold-history-commits", automation.DefaultHistoryCommits, "Most commits of a branch's history read to find holds (a person's rollback, a quarantined tag); a hold older than that is not known.")
	fs.DurationVar(&a.holdAge, "hold-history-age", automation.DefaultHistoryAge, "Oldest commit of a branch's history read to find holds.")
}

// apply copies the flags into the controllers' options, reading the files
// they name.
func (a *automationFlags) apply(o *controllers.Options) error {
	o.AutomationInterval = a.interval
	if a.holdCommits <= 0 || a.holdAge <= 0 {
		return fmt.Errorf("--hold-history-commits and --hold-history-age must be positive")
	}
	o.History = automation.HistoryLimits{Commits: a.holdCommits, Age: a.holdAge}
	o.Registry.TagTTL = a.pollInterval
	if a.pollInterval <= 0 {
		o.Registry.TagTTL = -1 // list on every pass
	}
	o.Registry.RPS, o.Registry.Burst = a.rps, a.burst
	o.Registry.Insecure = splitList(a.insecure)
	o.Registry.Include = splitList(a.include)
	o.Registry.Exclude = splitList(a.exclude)
	if a.dockerConfig != "" {
		b, err := os.ReadFile(a.dockerConfig)
		if err != nil {
			return fmt.Errorf("--docker-config: %w", err)
		}
		o.DockerConfig = b
	}
	o.DockerConfigOwnNamespaceOnly = !a.sharedDocker
	o.RegistryRescanInterval = a.rescanInterval
	if a.webhookSecret != "" {
		b, err := os.ReadFile(a.webhookSecret)
		if err != nil {
			return fmt.Errorf("--registry-webhook-token-file: %w", err)
		}
		o.RegistryWebhookToken = []byte(strings.TrimSpace(string(b)))
	}
	return nil
}

// apiFlags reads the fluxd API's flags: the token file, read once at start
// (surrounding white space dropped), and the identity Secret's name.
func apiFlags(o *controllers.Options, tokenFile, identity string) error {
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return fmt.Errorf("--api-token-file: %w", err)
		}
		if o.APIToken = []byte(strings.TrimSpace(string(b))); len(o.APIToken) == 0 {
			return fmt.Errorf("--api-token-file: %s is empty", tokenFile)
		}
	}
	ns, name, ok := strings.Cut(identity, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("--git-identity-secret %q: want <namespace>/<name>", identity)
	}
	o.Identity = client.ObjectKey{Namespace: ns, Name: name}
	return nil
}

// serviceAccountFlag checks --default-service-account: a ServiceAccount
// name, or empty.
func serviceAccountFlag(name string) error {
	if errs := validation.IsDNS1123Subdomain(name); name != "" && len(errs) > 0 {
		return fmt.Errorf("--default-service-account %q: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

// watchLabelSelector parses --watch-label-selector (Kubernetes label
// selector syntax); "" selects everything.
func watchLabelSelector(s string) (labels.Selector, error) {
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("--watch-label-selector %q: %w", s, err)
	}
	return sel, nil
}

// leaseIDFlag sets the Lease's name from --leader-election-id, when given:
// a DNS subdomain, as a Lease's name must be.
func leaseIDFlag(o *ctrl.Options, id string) error {
	if id == "" {
		return nil
	}
	if errs := validation.IsDNS1123Subdomain(id); len(errs) > 0 {
		return fmt.Errorf("--leader-election-id %q: %s", id, strings.Join(errs, "; "))
	}
	o.LeaderElectionID = id
	return nil
}

// leaderFlags are the leader election timings, with the names and defaults
// of Flux's controllers (fluxcd/pkg/runtime/leaderelection).
type leaderFlags struct {
	leaseDuration time.Duration
	renewDeadline time.Duration
	retryPeriod   time.Duration
}

func (l *leaderFlags) bind(fs *flag.FlagSet) {
	fs.DurationVar(&l.leaseDuration, "leader-election-lease-duration", 35*time.Second, "How long a replica waits, after the leader last renewed the Lease, before it takes the lead (a leader that dies without releasing it).")
	fs.DurationVar(&l.renewDeadline, "leader-election-renew-deadline", 30*time.Second, "How long the leader keeps trying to renew the Lease before it stops leading (and exits).")
	fs.DurationVar(&l.retryPeriod, "leader-election-retry-period", 5*time.Second, "Time between two attempts to acquire or renew the Lease.")
}

// apply sets the timings and the release of the Lease on shutdown: a
// replica stopped with SIGTERM (a rolling update, a drain) hands over at
// once instead of after the lease duration. That is safe because main ends
// as soon as the manager has stopped.
func (l *leaderFlags) apply(o *ctrl.Options) error {
	if l.retryPeriod <= 0 || l.renewDeadline <= l.retryPeriod || l.leaseDuration <= l.renewDeadline {
		return fmt.Errorf("want 0 < --leader-election-retry-period (%s) < --leader-election-renew-deadline (%s) < --leader-election-lease-duration (%s)",
			l.retryPeriod, l.renewDeadline, l.leaseDuration)
	}
	o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = &l.leaseDuration, &l.renewDeadline, &l.retryPeriod
	o.LeaderElectionReleaseOnCancel = true
	return nil
}
