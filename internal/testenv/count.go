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
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, w := range c.written {
		if strings.Contains(w, part) {
			out = append(out, w)
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
	c.written = nil
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

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
