package controllers

import (
	"context"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/sweep"
)

// Defaults of the cache and load bounds (the operator's --cache-max-size,
// --cache-max-age, --cache-sweep-interval, --max-concurrent-manifest-loads).
var (
	DefaultCacheMaxSize = resource.MustParse("10Gi")
)

const (
	DefaultCacheMaxAge        = 7 * 24 * time.Hour
	DefaultCacheSweepInterval = 10 * time.Minute
	DefaultMaxConcurrentLoads = 2
)

// registryKeyFile is the registry cache's key of logins (pkg/registry), the
// one entry of its directory that is no cache entry.
const registryKeyFile = "login.key"

func loadsOf(opts Options) int {
	if opts.MaxConcurrentLoads <= 0 {
		return DefaultMaxConcurrentLoads
	}
	return opts.MaxConcurrentLoads
}

// cacheSweeper evicts the entries of the caches under --cache-dir by size
// and age, at start and then every interval: git repositories (least
// recently used first, one in use skipped), chart indexes, archives and
// digests, and registry tag lists (least recently written first). Every
// replica has its own cache, so every replica sweeps, leader or not.
type cacheSweeper struct {
	policy   sweep.Policy
	interval time.Duration
	areas    []sweep.Area
	log      logr.Logger
}

func newCacheSweeper(gitCache *git.Cache, log logr.Logger, opts Options) *cacheSweeper {
	s := &cacheSweeper{
		log:      log,
		policy:   sweep.Policy{MaxSize: opts.CacheMaxSize, MaxAge: opts.CacheMaxAge},
		interval: opts.CacheSweepInterval,
	}
	if s.policy.MaxSize == 0 {
		s.policy.MaxSize = DefaultCacheMaxSize.Value()
	}
	if s.policy.MaxAge == 0 {
		s.policy.MaxAge = DefaultCacheMaxAge
	}
	s.policy.MaxSize, s.policy.MaxAge = max(s.policy.MaxSize, 0), max(s.policy.MaxAge, 0)
	if s.interval <= 0 {
		s.interval = DefaultCacheSweepInterval
	}
	registryDir := opts.Registry.CacheDir
	if registryDir == "" {
		registryDir = filepath.Join(opts.CacheDir, "registry")
	}
	charts := filepath.Join(opts.CacheDir, "charts")
	s.areas = []sweep.Area{
		gitCache.SweepArea(),
		{Dir: filepath.Join(charts, "index")}, {Dir: filepath.Join(charts, "charts")}, {Dir: filepath.Join(charts, "urls")},
		// <sha256 of the repository>/<login>.json, and the key of the logins.
		{Dir: registryDir, Keep: func(name string) bool { return name == registryKeyFile }},
	}
	return s
}

// NeedLeaderElection is false: each replica sweeps its own cache.
func (s *cacheSweeper) NeedLeaderElection() bool { return false }

// Start sweeps until ctx ends.
func (s *cacheSweeper) Start(ctx context.Context) error {
	log := s.log
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		res, err := sweep.Run(s.policy, time.Now(), s.areas...)
		if err != nil {
			log.Error(err, "Cache eviction incomplete")
		}
		if len(res.Removed) > 0 {
			log.Info("Evicted cache entries", "entries", len(res.Removed), "freedBytes", res.Freed, "sizeBytes", res.Size)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
