package impersonation

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func newClients(t *testing.T, size int) *Clients {
	t.Helper()
	opts := client.Options{Scheme: runtime.NewScheme(), Mapper: meta.NewDefaultRESTMapper(nil)}
	c, err := New(&rest.Config{Host: "https://127.0.0.1:1", QPS: 10, Burst: 20}, opts, size)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfigImpersonatesTheServiceAccount(t *testing.T) {
	c := newClients(t, 0)
	cfg := c.Config("tenant-a", "deployer")
	if got, want := cfg.Impersonate.UserName, "system:serviceaccount:tenant-a:deployer"; got != want {
		t.Errorf("impersonates %q, want %q", got, want)
	}
	if c.base.Impersonate.UserName != "" {
		t.Error("Config changed the operator's own config")
	}
	if cfg.RateLimiter == nil || cfg.RateLimiter != c.Config("tenant-b", "deployer").RateLimiter {
		t.Error("the service accounts' clients do not share one rate limiter")
	}
}

func TestForCachesABoundedNumberOfClients(t *testing.T) {
	c := newClients(t, 2)
	get := func(ns string) client.Client {
		t.Helper()
		cl, err := c.For(ns, "deployer")
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	a := get("a")
	if get("a") != a {
		t.Error("a second For built a new client")
	}
	get("b")
	get("c") // evicts a, the least recently used
	if n := c.cache.Len(); n != 2 {
		t.Errorf("cache holds %d clients, want at most 2", n)
	}
	if get("a") == a {
		t.Error("an evicted client came back from the cache")
	}
}
