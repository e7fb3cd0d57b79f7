package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

func TestRetryAfterBlocksHostUntilExpiry(t *testing.T) {
	srv := registrytest.NewServer(t)
	for _, r := range []string{"app1", "app2", "app3"} {
		srv.PushTags(t, r, "v1")
	}
	var once sync.Once
	srv.Fail(func(r *http.Request, n int) (int, http.Header, string, bool) {
		limited := false
		if r.URL.Path == "/v2/app2/tags/list" {
			once.Do(func() { limited = true })
		}
		if limited {
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"2"}}, "slow down", true
		}
		return 0, nil, "", false
	})
	clock := newFakeClock()
	c := newClient(t, srv, Options{Now: clock.Now})
	ctx := context.Background()
	scan := func(repo string) error {
		_, err := c.Scan(ctx, srv.Host()+"/"+repo, ScanOptions{})
		return err
	}

	if err := scan("app1"); err != nil {
		t.Fatal(err)
	}
	limitedAt := clock.Now()
	err := scan("app2")
	var ra *RetryAfterError
	if !errors.As(err, &ra) || ra.Host != srv.Host() {
		t.Fatalf("err = %v, want a *RetryAfterError for %s", err, srv.Host())
	}
	if want := limitedAt.Add(2 * time.Second); !ra.Until.Equal(want) {
		t.Errorf("blocked until %v, want %v: the 429's Retry-After of 2s", ra.Until, want)
	}
	// Until the Retry-After has passed, every repository of the host fails
	// at once, without a request.
	before := len(srv.Requests())
	for _, at := range []time.Duration{0, time.Second, 2*time.Second - time.Nanosecond} {
		clock.Set(limitedAt.Add(at))
		for _, repo := range []string{"app2", "app3"} {
			if err := scan(repo); !errors.As(err, &ra) {
				t.Fatalf("%s at %v after the 429: err = %v, want a *RetryAfterError", repo, at, err)
			}
		}
	}
	if after := len(srv.Requests()); after != before {
		t.Errorf("%d requests sent to a blocked host", after-before)
	}

	// At the Retry-After, the host is asked again.
	clock.Set(limitedAt.Add(2 * time.Second))
	if err := scan("app2"); err != nil {
		t.Fatalf("at the end of the Retry-After: %v", err)
	}
	// Exactly two lists of app2: the 429 (never retried early) and the success.
	if got := count(srv.Requests(), "GET", "/v2/app2/tags/list"); got != 2 {
		t.Errorf("app2 was listed %d times, want 2", got)
	}
}

func TestTooManyRequestsBodyBlocksHost(t *testing.T) {
	// Docker Hub's pull limit: an error body with code TOOMANYREQUESTS. A
	// 503 would be retried by go-containerregistry's retry layer; it must
	// not be, and with no Retry-After the block lasts 60s.
	srv := registrytest.NewServer(t)
	srv.PushTags(t, "app", "v1")
	var once sync.Once
	srv.Fail(func(r *http.Request, n int) (int, http.Header, string, bool) {
		hit := false
		if strings.HasSuffix(r.URL.Path, "/tags/list") {
			once.Do(func() { hit = true })
		}
		if hit {
			return http.StatusServiceUnavailable, nil, `{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}`, true
		}
		return 0, nil, "", false
	})
	clock := newFakeClock()
	c := newClient(t, srv, Options{Now: clock.Now})
	image := srv.Host() + "/app"

	var ra *RetryAfterError
	if _, err := c.Scan(context.Background(), image, ScanOptions{}); !errors.As(err, &ra) {
		t.Fatalf("err = %v, want a *RetryAfterError", err)
	}
	if want := clock.Now().Add(time.Minute); !ra.Until.Equal(want) {
		t.Errorf("blocked until %v, want %v (60s default)", ra.Until, want)
	}
	if got := count(srv.Requests(), "GET", "/tags/list"); got != 1 {
		t.Errorf("%d list requests, want 1: a rate-limited request must not be retried", got)
	}

	clock.Add(59 * time.Second)
	srv.Reset()
	if _, err := c.Scan(context.Background(), image, ScanOptions{}); !errors.As(err, &ra) || len(srv.Requests()) != 0 {
		t.Fatalf("at 59s: err = %v, %d requests; want the block and none", err, len(srv.Requests()))
	}
	clock.Add(2 * time.Second)
	if _, err := c.Scan(context.Background(), image, ScanOptions{}); err != nil {
		t.Fatalf("after the block: %v", err)
	}
}

func TestRateLimitSpacesRequests(t *testing.T) {
	srv := registrytest.NewServer(t)
	repos := []string{"a", "b", "c", "d"}
	for _, r := range repos {
		srv.PushTags(t, r, "v1")
	}
	c := newClient(t, srv, Options{RPS: 20, Burst: 1})
	for _, r := range repos {
		if _, err := c.Scan(context.Background(), srv.Host()+"/"+r, ScanOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	reqs := srv.Requests()
	if len(reqs) != 5 {
		t.Fatalf("%d requests, want 5 (a ping and 4 lists)", len(reqs))
	}
	// 5 requests at 20/s with a burst of 1 cannot span less than 200ms.
	if span := reqs[4].Time.Sub(reqs[0].Time); span < 180*time.Millisecond {
		t.Errorf("5 requests spanned %v at 20 requests/s, want at least ~200ms", span)
	}
}

func TestRateLimitCountsPingAndTokenRequests(t *testing.T) {
	srv := registrytest.NewServer(t)
	srv.PushTags(t, "a", "v1")
	srv.PushTags(t, "b", "v1")
	bearer(srv)
	// A bucket of 3 that practically never refills: the ping, the token
	// and the list of the first scan use it up.
	c := newClient(t, srv, Options{RPS: 1e-6, Burst: 3})
	if _, err := c.Scan(context.Background(), srv.Host()+"/a", ScanOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := len(srv.Requests()); got != 3 {
		t.Fatalf("%d requests, want 3 (ping, token, list)", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := c.Scan(ctx, srv.Host()+"/b", ScanOptions{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the wait to give up at the context deadline", err)
	}
	if got := len(srv.Requests()); got != 3 {
		t.Errorf("%d requests, want still 3", got)
	}

	// A cancelled context ends a wait too.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := c.Scan(ctx, srv.Host()+"/b", ScanOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"2", 2 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"", time.Minute},
		{"soon", time.Minute},
		{"0", time.Second},
		{"-5", time.Second},
		{"99999999999", time.Hour},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), time.Second},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), time.Hour},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.header, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}

func TestHasTooManyRequests(t *testing.T) {
	for body, want := range map[string]bool{
		`{"errors":[{"code":"TOOMANYREQUESTS","message":"x"}]}`:                    true,
		`{"errors":[{"code":"DENIED"},{"code":"toomanyrequests"}]}`:                true,
		`{"errors":[{"code":"UNAUTHORIZED","message":"TOOMANYREQUESTS in text"}]}`: false,
		`TOOMANYREQUESTS`: false,
		``:                false,
	} {
		if got := hasTooManyRequests([]byte(body)); got != want {
			t.Errorf("hasTooManyRequests(%q) = %v, want %v", body, got, want)
		}
	}
}

func TestCappedBody(t *testing.T) {
	read := func(n int) error {
		b := &cappedBody{r: io.NopCloser(strings.NewReader(strings.Repeat("x", n))), left: 10, cancel: func() {}}
		_, err := io.ReadAll(b)
		return err
	}
	if err := read(10); err != nil {
		t.Errorf("body of exactly the cap: %v", err)
	}
	if err := read(11); !errors.Is(err, errBodyTooLarge) {
		t.Errorf("body over the cap: err = %v, want errBodyTooLarge", err)
	}
}

func TestHostKey(t *testing.T) {
	for in, want := range map[[2]string]string{
		{"https", "Registry.Example:443"}: "registry.example",
		{"http", "registry.example:80"}:   "registry.example",
		{"https", "registry.example:80"}:  "registry.example:80",
		{"https", "127.0.0.1:5000"}:       "127.0.0.1:5000",
		{"https", "[::1]:443"}:            "[::1]",
	} {
		if got := hostKey(in[0], in[1]); got != want {
			t.Errorf("hostKey(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}
