package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
)

const (
	// defaultRetryAfter is how long a host is left alone after a 429 that
	// does not say.
	defaultRetryAfter = time.Minute
	// maxRetryAfter caps what a registry may ask for, so a bogus header
	// cannot stop scanning for days.
	maxRetryAfter = time.Hour
	// maxErrorBody is how much of an error response is read to look for
	// TOOMANYREQUESTS; go-containerregistry reads no more either.
	maxErrorBody = 64 << 10
	// maxBody caps every other response body. The scanner reads only tag
	// lists, manifests, image configs and tokens, never layers, and all of
	// them are far smaller (OCI asks registries to accept manifests up to
	// 4 MiB); anything larger is refused, not truncated.
	maxBody = 4 << 20
	// requestTimeout bounds one HTTP exchange, body included, after its
	// rate-limit wait.
	requestTimeout = time.Minute
	// maxGuardedHosts bounds the per-host state; idle, unblocked hosts are
	// dropped beyond it.
	maxGuardedHosts = 1024
)

// RetryAfterError says a host is rate limited until a time. Scan returns it
// (wrapped) as soon as a registry answers 429 or TOOMANYREQUESTS, and
// without making a request while the host is blocked: Flux v1 kept asking
// and stayed locked out.
type RetryAfterError struct {
	// Host is the rate-limited host ("host" or "host:port").
	Host string
	// Until is when requests to Host may resume.
	Until time.Time
}

// Error implements error.
func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("registry %s is rate limiting requests until %s", e.Host, e.Until.UTC().Format(time.RFC3339))
}

// hostGuard holds the per-host token buckets and Retry-After blocks of one
// Client. Hosts are request hosts: a registry, its token service and its
// blob storage each have their own.
type hostGuard struct {
	rps   float64
	burst int
	now   func() time.Time
	log   logr.Logger

	mu    sync.Mutex
	hosts map[string]*hostState
}

type hostState struct {
	limiter *rate.Limiter
	until   time.Time
}

func newHostGuard(rps float64, burst int, now func() time.Time, log logr.Logger) *hostGuard {
	return &hostGuard{rps: rps, burst: burst, now: now, log: log, hosts: map[string]*hostState{}}
}

func (g *hostGuard) state(host string) *hostState {
	g.mu.Lock()
	defer g.mu.Unlock()
	st, ok := g.hosts[host]
	if !ok {
		if len(g.hosts) >= maxGuardedHosts {
			now := g.now()
			for h, s := range g.hosts {
				if !s.until.After(now) {
					delete(g.hosts, h)
				}
			}
		}
		st = &hostState{limiter: rate.NewLimiter(rate.Limit(g.rps), g.burst)}
		g.hosts[host] = st
	}
	return st
}

// blocked returns the error to fail with while host is rate limited.
func (g *hostGuard) blocked(host string) *RetryAfterError {
	g.mu.Lock()
	defer g.mu.Unlock()
	if st, ok := g.hosts[host]; ok && st.until.After(g.now()) {
		return &RetryAfterError{Host: host, Until: st.until}
	}
	return nil
}

// block stops requests to host until until (a later block wins).
func (g *hostGuard) block(host string, until time.Time) *RetryAfterError {
	st := g.state(host)
	g.mu.Lock()
	if until.After(st.until) {
		st.until = until
	}
	until = st.until
	g.mu.Unlock()
	g.log.Info("Registry rate limit reached, pausing requests", "host", host, "until", until.UTC().Format(time.RFC3339))
	return &RetryAfterError{Host: host, Until: until}
}

// wait takes a token from host's bucket, failing at once if ctx would end
// before one is available. It reports whether it had to wait (or failed).
func (g *hostGuard) wait(ctx context.Context, host string) (waited bool, err error) {
	st := g.state(host)
	if st.limiter.Allow() {
		return false, nil
	}
	if err := st.limiter.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return true, fmt.Errorf("wait for rate limit of %s: %w", host, ctx.Err())
		}
		return true, fmt.Errorf("wait for rate limit of %s: %w", host, context.DeadlineExceeded)
	}
	return true, nil
}

// guardTransport is the innermost RoundTripper of every request a Client
// makes — pings, token exchanges, tag lists, manifests, blobs, redirects —
// so the per-host rules hold for all of them:
//   - the scheme is the configured one: plain HTTP only for Insecure hosts,
//     HTTPS only for the others (go-containerregistry's ping also tries the
//     other scheme; that attempt is refused here without a request);
//   - no request while the host is blocked by a Retry-After;
//   - one token of the host's bucket per request, waiting within ctx;
//   - a 429, or any error whose body carries TOOMANYREQUESTS, blocks the
//     host and becomes a *RetryAfterError, so no retry layer above can
//     repeat it early;
//   - each exchange has a timeout and each body a size cap.
type guardTransport struct {
	guard    *hostGuard
	insecure func(host string) bool
	next     http.RoundTripper
	observe  Observer // nil observes nothing
}

func (t *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	host := hostKey(req.URL.Scheme, req.URL.Host)
	want := "https"
	if t.insecure(host) {
		want = "http"
	}
	if req.URL.Scheme != want {
		closeBody(req)
		return nil, fmt.Errorf("refusing %s to %s: the host is reached over %s only", req.URL.Scheme, host, want)
	}
	if err := t.guard.blocked(host); err != nil {
		closeBody(req)
		t.rateLimited(host)
		return nil, err
	}
	waited, err := t.guard.wait(req.Context(), host)
	if waited {
		t.rateLimited(host)
	}
	if err != nil {
		closeBody(req)
		return nil, err
	}
	// A 429 may have arrived while this request waited for its token.
	if err := t.guard.blocked(host); err != nil {
		closeBody(req)
		return nil, err
	}

	ctx, cancel := context.WithTimeout(req.Context(), requestTimeout)
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		t.requested(host, 0)
		return nil, err
	}
	t.requested(host, resp.StatusCode)
	if resp.StatusCode < 400 {
		resp.Body = &cappedBody{r: resp.Body, left: maxBody, cancel: cancel}
		return resp, nil
	}

	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	cancel()
	if resp.StatusCode == http.StatusTooManyRequests || hasTooManyRequests(body) {
		if t.observe != nil {
			t.observe.Throttled(host)
		}
		now := t.guard.now()
		return nil, t.guard.block(host, now.Add(retryAfter(resp.Header.Get("Retry-After"), now)))
	}
	if rerr != nil {
		return nil, fmt.Errorf("read error response from %s: %w", host, rerr)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

func (t *guardTransport) rateLimited(host string) {
	if t.observe != nil {
		t.observe.RateLimited(host)
	}
}

func (t *guardTransport) requested(host string, code int) {
	if t.observe != nil {
		t.observe.Request(host, code)
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// hostKey is the host a request counts against: lower case, without the
// scheme's default port.
func hostKey(scheme, host string) string {
	host = strings.ToLower(host)
	if h, port, err := net.SplitHostPort(host); err == nil &&
		((scheme == "https" && port == "443") || (scheme == "http" && port == "80")) {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return host
}

// retryAfter reads a Retry-After header (delta-seconds or HTTP-date): absent
// or unreadable means defaultRetryAfter, and the result lies between one
// second and maxRetryAfter.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	d := defaultRetryAfter
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		d = time.Duration(min(max(secs, 0), int64(maxRetryAfter/time.Second))) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(now)
	}
	return min(max(d, time.Second), maxRetryAfter)
}

// hasTooManyRequests reports whether an error body is a registry error
// with code TOOMANYREQUESTS, as Docker Hub sends with its pull limit.
func hasTooManyRequests(body []byte) bool {
	var e struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil {
		return false
	}
	for _, d := range e.Errors {
		if strings.EqualFold(d.Code, "TOOMANYREQUESTS") {
			return true
		}
	}
	return false
}

// errBodyTooLarge is returned by a body that exceeds maxBody.
var errBodyTooLarge = fmt.Errorf("response body exceeds %d bytes", maxBody)

// cappedBody fails a read past its cap instead of truncating, and ends the
// exchange's timeout when closed.
type cappedBody struct {
	r      io.ReadCloser
	left   int64
	cancel context.CancelFunc
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte tells a body of exactly the cap from a longer one.
		var one [1]byte
		for {
			n, err := b.r.Read(one[:])
			if n > 0 {
				return 0, errBodyTooLarge
			}
			if err != nil {
				return 0, err
			}
		}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error {
	err := b.r.Close()
	b.cancel()
	return err
}
