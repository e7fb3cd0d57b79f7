package testenv

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/rest"
)

// RequestCounter counts the requests a client makes to the API server.
type RequestCounter struct {
	reads, writes, dryRuns atomic.Int64

	mu      sync.Mutex
	written []string // "METHOD path" of every write, oldest first
	read    []string // "GET path" (or "LIST path", "WATCH path") of every read, oldest first
}

// Reads returns the number of GET and LIST requests (watches included).
func (c *RequestCounter) Reads() int64 { return c.reads.Load() }

// Writes returns the number of mutating requests that were not dry-runs: the
// ones that can change what the cluster stores.
func (c *RequestCounter) Writes() int64 { return c.writes.Load() }

// DryRuns returns the number of dry-run requests.
func (c *RequestCounter) DryRuns() int64 { return c.dryRuns.Load() }

// WritesTo returns the writes (as "METHOD path") whose path contains part,
// oldest first: with "/namespaces/<ns>/", what a shared operator wrote for
// the objects of one test's namespace, whatever it did elsewhere meanwhile.
func (c *RequestCounter) WritesTo(part string) []string {
	return c.containing(func() []string { return c.written }, part)
}

// ReadsTo returns the reads whose path contains part, oldest first, as
// "GET path" for an object, "LIST path" for a collection and "WATCH path".
func (c *RequestCounter) ReadsTo(part string) []string {
	return c.containing(func() []string { return c.read }, part)
}

// containing returns the requests of list (c.written or c.read, read under
// the lock) that contain part.
func (c *RequestCounter) containing(list func() []string, part string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range list() {
		if strings.Contains(r, part) {
			out = append(out, r)
		}
	}
	return out
}

// Reset sets every count back to zero.
func (c *RequestCounter) Reset() {
	c.reads.Store(0)
	c.writes.Store(0)
	c.dryRuns.Store(0)
	c.mu.Lock()
	c.written, c.read = nil, nil
	c.mu.Unlock()
}

// Counted returns a copy of cfg whose clients count their requests in the
// returned counter.
func Counted(cfg *rest.Config) (*rest.Config, *RequestCounter) {
	c := &RequestCounter{}
	out := rest.CopyConfig(cfg)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			switch {
			case req.Method == http.MethodGet || req.Method == http.MethodHead:
				c.reads.Add(1)
				c.mu.Lock()
				c.read = append(c.read, readVerb(req)+" "+req.URL.Path)
				c.mu.Unlock()
			case strings.Contains(req.URL.RawQuery, "dryRun="):
				c.dryRuns.Add(1)
			default:
				c.writes.Add(1)
				c.mu.Lock()
				c.written = append(c.written, req.Method+" "+req.URL.Path)
				c.mu.Unlock()
			}
			return rt.RoundTrip(req)
		})
	})
	return out, c
}

// readVerb tells a watch and a list (a path that ends at a resource, not
// an object) from a get, as the API server counts them.
func readVerb(req *http.Request) string {
	if req.URL.Query().Get("watch") == "true" {
		return "WATCH"
	}
	if parts, ok := ResourcePath(req.URL.Path); ok && len(parts) == 1 {
		return "LIST"
	}
	return "GET"
}

// ResourcePath splits an API server path after its group, version and
// namespace: [resource], [resource name] or [resource name subresource...].
// ok is false for a path that names no resource (/version, /metrics).
func ResourcePath(path string) (parts []string, ok bool) {
	parts = strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return nil, false
	}
	if len(parts) >= 3 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	return parts, true
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
