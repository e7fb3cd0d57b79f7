package testenv

import (
	"net/http"
	"strings"
	"sync/atomic"

	"k8s.io/client-go/rest"
)

// RequestCounter counts the requests a client makes to the API server.
type RequestCounter struct {
	reads, writes, dryRuns atomic.Int64
}

// Reads returns the number of GET and LIST requests (watches included).
func (c *RequestCounter) Reads() int64 { return c.reads.Load() }

// Writes returns the number of mutating requests that were not dry-runs: the
// ones that can change what the cluster stores.
func (c *RequestCounter) Writes() int64 { return c.writes.Load() }

// DryRuns returns the number of dry-run requests.
func (c *RequestCounter) DryRuns() int64 { return c.dryRuns.Load() }

// Reset sets every count back to zero.
func (c *RequestCounter) Reset() {
	c.reads.Store(0)
	c.writes.Store(0)
	c.dryRuns.Store(0)
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
			}
			return rt.RoundTrip(req)
		})
	})
	return out, c
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
