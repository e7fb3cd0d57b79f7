package main

import (
	"flag"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/helmflux/helmflux/operator/controllers"
)

// boundsFlags bound the operator's disk and memory: the on-disk caches'
// eviction and the GitSync passes that hold a checkout's objects at once.
type boundsFlags struct {
	cacheMaxSize  string
	cacheMaxAge   time.Duration
	sweepInterval time.Duration
	loads         int
}

func (b *boundsFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&b.cacheMaxSize, "cache-max-size", controllers.DefaultCacheMaxSize.String(), "Most bytes the git repository, chart and index, and registry tag caches under --cache-dir hold together (a Kubernetes quantity, e.g. 10Gi); beyond it the least recently used entries are evicted. 0 is no bound.")
	fs.DurationVar(&b.cacheMaxAge, "cache-max-age", controllers.DefaultCacheMaxAge, "Cache entries unused for longer are evicted; 0 keeps them.")
	fs.DurationVar(&b.sweepInterval, "cache-sweep-interval", controllers.DefaultCacheSweepInterval, "Time between two evictions by --cache-max-size and --cache-max-age (the first runs at start).")
	fs.IntVar(&b.loads, "max-concurrent-manifest-loads", controllers.DefaultMaxConcurrentLoads, "Most GitSync passes that hold a checkout's objects at once (from checkout to the end of the apply), whatever --concurrent says: what bounds the operator's memory with the largest repositories.")
}

// apply copies the flags into the controllers' options.
func (b *boundsFlags) apply(o *controllers.Options) error {
	q, err := resource.ParseQuantity(b.cacheMaxSize)
	if err != nil || q.Sign() < 0 {
		return fmt.Errorf("--cache-max-size %q: not a size", b.cacheMaxSize)
	}
	if b.cacheMaxAge < 0 || b.sweepInterval <= 0 || b.loads <= 0 {
		return fmt.Errorf("--cache-max-age must not be negative, --cache-sweep-interval and --max-concurrent-manifest-loads must be positive")
	}
	o.CacheMaxSize, o.CacheMaxAge, o.CacheSweepInterval, o.MaxConcurrentLoads = q.Value(), b.cacheMaxAge, b.sweepInterval, b.loads
	return nil
}
