package impersonation

import (
	"fmt"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DefaultSize is how many service accounts' clients are kept by default: a
// client is cheap to rebuild (the HTTP transport underneath is shared), so
// the bound only keeps a cluster with many tenants from growing the cache
// without end.
const DefaultSize = 256

// Username is the user name a ServiceAccount authenticates as, the identity
// RBAC bindings name and API server messages quote.
func Username(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// Clients hands out one client per ServiceAccount, built on demand and kept
// in a bounded LRU cache. Every client it builds shares one rate limiter, so
// many tenants together ask the API server no faster than one would.
type Clients struct {
	base *rest.Config
	opts client.Options

	mu    sync.Mutex
	cache *lru.Cache[types.NamespacedName, client.Client]
}

// New returns Clients impersonating on top of cfg (the operator's own
// identity, which needs the impersonate verb on serviceaccounts). opts gives
// the scheme and REST mapper, shared with the operator's own clients; size
// bounds the cache (0 is DefaultSize).
func New(cfg *rest.Config, opts client.Options, size int) (*Clients, error) {
	if size <= 0 {
		size = DefaultSize
	}
	cache, err := lru.New[types.NamespacedName, client.Client](size)
	if err != nil {
		return nil, fmt.Errorf("make the impersonation cache: %w", err)
	}
	base := rest.CopyConfig(cfg)
	if base.RateLimiter == nil && base.QPS > 0 {
		base.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(base.QPS, max(base.Burst, 1))
	}
	return &Clients{base: base, opts: opts, cache: cache}, nil
}

// Config returns a rest config that acts as the ServiceAccount
// namespace/name, for callers that build their own clients (Helm).
func (c *Clients) Config(namespace, name string) *rest.Config {
	cfg := rest.CopyConfig(c.base)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: Username(namespace, name)}
	return cfg
}

// For returns the client that acts as the ServiceAccount namespace/name. It
// reads live, without a cache.
func (c *Clients) For(namespace, name string) (client.Client, error) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.cache.Get(key); ok {
		return cl, nil
	}
	cl, err := client.New(c.Config(namespace, name), c.opts)
	if err != nil {
		return nil, fmt.Errorf("make a client for service account %s: %w", key, err)
	}
	c.cache.Add(key, cl)
	return cl, nil
}
