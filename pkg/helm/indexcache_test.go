package helm

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// testClock is a clock the test moves.
type testClock struct{ t atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.t.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *testClock) Now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *testClock) Advance(d time.Duration) { c.t.Add(int64(d)) }

// resolveMany resolves src n times, n/2 of them at once, and returns the
// versions they got.
func resolveMany(t *testing.T, c *Charts, src ChartSource, n int) map[string]int {
	t.Helper()
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		got  = map[string]int{}
		errs = make(chan error, n)
	)
	one := func() {
		ref, err := c.Resolve(testCtx(t), src)
		if err != nil {
			errs <- err
			return
		}
		mu.Lock()
		got[ref.Version]++
		mu.Unlock()
	}
	for range n / 2 {
		wg.Go(one)
	}
	for range n - n/2 {
		one()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return got
}

// Many HelmReleases of one repository share its index: within the refresh
// interval no resolution asks the server, each refresh is one conditional
// request whatever the number of resolutions, and a version published
// meanwhile is seen after the next refresh.
func TestRepoIndexRefreshedOncePerInterval(t *testing.T) {
	const (
		interval    = 10 * time.Minute
		resolutions = 200
	)
	srv := helmtest.NewRepoServer(t)
	srv.Add(t, helmtest.Simple("app", "1.0.0"))
	c := newCharts(t, WithIndexInterval(interval))
	clock := newTestClock()
	c.now = clock.Now
	src := ChartSource{Repository: srv.URL(), Name: "app", Version: "1.x"}

	if got := resolveMany(t, c, src, resolutions); got["1.0.0"] != resolutions {
		t.Fatalf("resolved %v, want 1.0.0 %d times", got, resolutions)
	}
	if n := srv.Requests("/index.yaml"); n != 1 {
		t.Fatalf("%d resolutions sent %d index requests, want 1", resolutions, n)
	}

	// Published now, seen after the next refresh only.
	srv.Add(t, helmtest.Simple("app", "1.1.0"))
	clock.Advance(interval * 8 / 10)
	if got := resolveMany(t, c, src, resolutions); got["1.0.0"] != resolutions {
		t.Errorf("within the interval: resolved %v, want the cached 1.0.0", got)
	}
	if n := srv.Requests("/index.yaml"); n != 1 {
		t.Errorf("%d index requests within the interval, want still 1", n)
	}
	clock.Advance(interval * 4 / 10) // 1.2 intervals: past any jitter
	if got := resolveMany(t, c, src, resolutions); got["1.1.0"] != resolutions {
		t.Errorf("after the refresh: resolved %v, want 1.1.0 every time", got)
	}
	if n := srv.Requests("/index.yaml"); n != 2 {
		t.Errorf("%d index requests after one refresh, want 2", n)
	}

	// An unchanged refresh is one 304 and no parsing.
	parses := c.Stats().IndexParses
	clock.Advance(interval * 12 / 10)
	resolveMany(t, c, src, resolutions)
	if n, n304 := srv.Requests("/index.yaml"), srv.Responses("/index.yaml", http.StatusNotModified); n != 3 || n304 != 1 {
		t.Errorf("%d index requests (%d answered 304) after two refreshes, want 3 (1)", n, n304)
	}
	if got := c.Stats().IndexParses; got != parses {
		t.Errorf("an unchanged refresh parsed the index (%d parses, was %d)", got, parses)
	}
}

// The shared index is kept per set of credentials: a private index fetched
// with one user's credentials is never served to a caller without them, or
// with others, however fresh it is; those ask the server, which refuses.
func TestRepoCachedIndexIsNotServedToOtherCredentials(t *testing.T) {
	const user, pass = "alice", "s3cret-Pa55"
	srv := helmtest.NewRepoServer(t, helmtest.WithBasicAuth(user, pass))
	srv.Add(t, helmtest.Simple("app", "1.0.0"))
	c := newCharts(t, WithIndexInterval(time.Hour))
	private := ChartSource{Repository: srv.URL(), Name: "app", RepoAuth: &RepoAuth{Username: user, Password: pass}, AllowInsecureHTTP: true}
	mustResolve(t, c, private)
	mustResolve(t, c, private)
	if n := srv.Requests("/index.yaml"); n != 1 {
		t.Fatalf("%d index requests for two resolutions with the same credentials, want 1", n)
	}

	for i, src := range []ChartSource{
		{Repository: srv.URL(), Name: "app"},
		{Repository: srv.URL(), Name: "app", RepoAuth: &RepoAuth{Username: user, Password: "wr0ng-Pa55"}, AllowInsecureHTTP: true},
		{Repository: srv.URL(), Name: "app", RepoAuth: &RepoAuth{Username: "mallory", Password: pass}, AllowInsecureHTTP: true},
		{Repository: srv.URL(), Name: "app", RepoAuth: &RepoAuth{Username: user, Password: pass, InsecureSkipTLSVerify: true}, AllowInsecureHTTP: true},
	} {
		before := srv.Requests("/index.yaml")
		_, err := c.Resolve(testCtx(t), src)
		if i < 3 && !errors.Is(err, ErrAuthentication) {
			t.Errorf("source %d: got %v, want ErrAuthentication from the server", i, err)
		}
		if srv.Requests("/index.yaml") != before+1 {
			t.Errorf("source %d was answered from another credential's cached index", i)
		}
	}
}

// Refreshes are spread over ±10% of the interval, so repositories first
// fetched together do not refresh together.
func TestIndexRefreshJitter(t *testing.T) {
	const interval = time.Hour
	c := newCharts(t, WithIndexInterval(interval))
	t0 := time.Now()
	lo, hi := time.Duration(1<<62), time.Duration(0)
	for range 1000 {
		d := c.nextRefresh(t0).Sub(t0)
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < interval*9/10 || hi > interval*11/10 {
		t.Errorf("refreshes %s to %s after the last, want within %s ± 10%%", lo, hi, interval)
	}
	if lo > interval*95/100 || hi < interval*105/100 {
		t.Errorf("refreshes %s to %s after the last: not spread over the jitter", lo, hi)
	}
}

// A repository whose index cannot be fetched is asked again at most once
// per indexFailureHold, whatever the number of resolutions: thousands of
// HelmReleases retrying through an outage do not each send a request.
// Callers with other credentials ask at once, and a server that recovered
// is seen after the hold.
func TestFailedIndexFetchIsHeldBriefly(t *testing.T) {
	var failing atomic.Bool
	var sent atomic.Int64
	failing.Store(true)
	srv := helmtest.NewRepoServer(t, helmtest.WithMiddleware(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/index.yaml" {
				sent.Add(1)
			}
			if failing.Load() {
				http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	}))
	srv.Add(t, helmtest.Simple("app", "1.0.0"))
	c := newCharts(t, WithIndexInterval(10*time.Minute))
	clock := newTestClock()
	c.now = clock.Now
	src := ChartSource{Repository: srv.URL(), Name: "app", Version: "1.x"}

	for range 50 {
		if _, err := c.Resolve(testCtx(t), src); err == nil || !strings.Contains(err.Error(), "503") {
			t.Fatalf("err = %v, want the 503", err)
		}
	}
	if n := sent.Load(); n != 1 {
		t.Fatalf("50 resolutions of a failing repository sent %d index requests, want 1", n)
	}
	withAuth := src
	withAuth.RepoAuth, withAuth.AllowInsecureHTTP = &RepoAuth{Username: "someone", Password: "else"}, true
	if _, err := c.Resolve(testCtx(t), withAuth); err == nil {
		t.Fatal("resolved with other credentials while the server fails")
	}
	if n := sent.Load(); n != 2 {
		t.Errorf("other credentials: %d index requests, want their own (2)", n)
	}

	failing.Store(false)
	clock.Advance(indexFailureHold / 2)
	if _, err := c.Resolve(testCtx(t), src); err == nil {
		t.Error("resolved within the hold")
	}
	clock.Advance(indexFailureHold)
	if got := resolveMany(t, c, src, 20); got["1.0.0"] != 20 {
		t.Errorf("after the hold: resolved %v, want 1.0.0", got)
	}
	if n := sent.Load(); n != 3 {
		t.Errorf("%d index requests after the hold, want 3", n)
	}
}
