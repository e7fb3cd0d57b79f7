package registry

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

// countingObserver counts what a Client reported, by "host code" and host.
type countingObserver struct {
	mu          sync.Mutex
	requests    map[string]int
	rateLimited map[string]int
	throttled   map[string]int
}

func newCountingObserver() *countingObserver {
	return &countingObserver{requests: map[string]int{}, rateLimited: map[string]int{}, throttled: map[string]int{}}
}

func (o *countingObserver) Request(host string, code int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests[host+" "+http.StatusText(code)]++
}

func (o *countingObserver) RateLimited(host string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rateLimited[host]++
}

func (o *countingObserver) Throttled(host string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.throttled[host]++
}

// TestObserverSeesRequestsWaitsAndThrottling: every answer is reported with
// its code under the request's host[:port], a 429 as throttling, a request
// refused while the host pauses and a request that waited for its token as
// rate limited.
func TestObserverSeesRequestsWaitsAndThrottling(t *testing.T) {
	srv := registrytest.NewServer(t)
	srv.PushTags(t, "a", "v1")
	srv.PushTags(t, "b", "v1")
	srv.Fail(func(r *http.Request, _ int) (int, http.Header, string, bool) {
		if r.URL.Path == "/v2/b/tags/list" {
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"60"}}, "", true
		}
		return 0, nil, "", false
	})
	o := newCountingObserver()
	// A burst of 1: the ping takes the token, the tag list waits for the next.
	c := newClient(t, srv, Options{RPS: 50, Burst: 1, Observer: o})
	host := srv.Host()
	if _, err := c.Scan(context.Background(), host+"/a", ScanOptions{}); err != nil {
		t.Fatal(err)
	}
	var ra *RetryAfterError
	if _, err := c.Scan(context.Background(), host+"/b", ScanOptions{}); !errors.As(err, &ra) {
		t.Fatalf("scan of b: %v, want a *RetryAfterError", err)
	}
	if _, err := c.Scan(context.Background(), host+"/b", ScanOptions{}); !errors.As(err, &ra) {
		t.Fatalf("scan of b while paused: %v, want a *RetryAfterError", err)
	}
	if got := o.requests[host+" OK"]; got < 2 {
		t.Errorf("%d answers 200 observed, want the ping and a's list", got)
	}
	if got := o.requests[host+" Too Many Requests"]; got != 1 {
		t.Errorf("%d answers 429 observed, want 1", got)
	}
	if got := o.throttled[host]; got != 1 {
		t.Errorf("throttled %d times, want 1", got)
	}
	// At least one wait for a token, and one refusal while paused.
	if got := o.rateLimited[host]; got < 2 {
		t.Errorf("rate limited %d times, want at least 2 (a wait and a refusal)", got)
	}
	for k := range o.requests {
		if k[:len(host)] != host {
			t.Errorf("request observed under %q, want host %s", k, host)
		}
	}
}
