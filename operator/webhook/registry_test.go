package webhook

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRegistryImages(t *testing.T) {
	tests := []struct {
		name, body, want, err string
	}{
		{name: "generic image with tag", body: `{"image":"ghcr.io/acme/web:1.2.3"}`, want: "ghcr.io/acme/web"},
		{name: "generic repository", body: `{"repository":"127.0.0.1:5000/team/app"}`, want: "127.0.0.1:5000/team/app"},
		{name: "digest", body: `{"image":"ghcr.io/acme/web@sha256:abc"}`, want: "ghcr.io/acme/web"},
		{name: "docker hub", body: `{"push_data":{"tag":"latest"},"repository":{"repo_name":"acme/web","namespace":"acme"}}`, want: "acme/web"},
		{name: "distribution", body: `{"events":[{"action":"push","target":{"repository":"team/app","tag":"1.0"},"request":{"host":"reg:5000"}},{"action":"pull","target":{"repository":"other"}},{"action":"push","target":{"repository":"team/app"},"request":{"host":"reg:5000"}}]}`, want: "reg:5000/team/app"},
		{name: "two kinds at once", body: `{"image":"a/b","repository":"c/d"}`, want: "a/b,c/d"},
		{name: "nothing named", body: `{"hello":"world"}`, err: "names no image"},
		{name: "not JSON", body: `image=a`, err: "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RegistryImages([]byte(tt.body))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, %v; want error %q", got, err, tt.err)
				}
				return
			}
			if err != nil || strings.Join(got, ",") != tt.want {
				t.Fatalf("got %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestRegistryReceiverToken(t *testing.T) {
	var rescanned []string
	rr := &RegistryReceiver{Token: []byte("s3cret"), Rescan: func(img string) (int, error) {
		rescanned = append(rescanned, img)
		return 1, nil
	}}
	mux := http.NewServeMux()
	rr.Register(mux)
	n := 0
	post := func(target, auth string) int {
		n++ // a new image each time: one image is rescanned at most once per TokenRescanInterval
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(fmt.Sprintf(`{"image":"ghcr.io/acme/web%d:2"}`, n)))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		return w.Code
	}
	for _, c := range []struct {
		target, auth string
		want         int
	}{
		{RegistryPath, "", http.StatusUnauthorized},
		{RegistryPath, "Bearer wrong", http.StatusUnauthorized},
		{RegistryPath + "?token=wrong", "", http.StatusUnauthorized},
		{RegistryPath, "Bearer s3cret", http.StatusAccepted},
		{RegistryPath + "?token=s3cret", "", http.StatusAccepted},
	} {
		if got := post(c.target, c.auth); got != c.want {
			t.Errorf("POST %s (auth %q): %d, want %d", c.target, c.auth, got, c.want)
		}
	}
	if strings.Join(rescanned, ",") != "ghcr.io/acme/web4,ghcr.io/acme/web5" {
		t.Errorf("rescanned %v", rescanned)
	}
}

// recordingBody is a request body that records whether the handler read it.
type recordingBody struct {
	r    io.Reader
	read bool
}

func (b *recordingBody) Read(p []byte) (int, error) {
	b.read = true
	return b.r.Read(p)
}

func (b *recordingBody) Close() error { return nil }

// A registry notification is authenticated, and refused by a replica that
// does not lead, before its body is read.
func TestRegistryReceiverRefusesBeforeReading(t *testing.T) {
	leading := false
	rr := &RegistryReceiver{Token: []byte("s3cret"), Leading: func() bool { return leading },
		Rescan: func(string) (int, error) { return 1, nil }}
	mux := http.NewServeMux()
	rr.Register(mux)
	for _, c := range []struct {
		name, auth string
		want       int
		read       bool
	}{
		{"no token", "", http.StatusUnauthorized, false},
		{"wrong token", "Bearer nope", http.StatusUnauthorized, false},
		{"not the leader", "Bearer s3cret", http.StatusServiceUnavailable, false},
	} {
		b := &recordingBody{r: strings.NewReader(`{"image":"ghcr.io/acme/web"}`)}
		req := httptest.NewRequest(http.MethodPost, RegistryPath, b)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != c.want || b.read != c.read {
			t.Errorf("%s: answered %d, body read %v; want %d, read %v", c.name, w.Code, b.read, c.want, c.read)
		}
	}
}

// Forced rescans are rate-limited per image repository and overall, with
// a token or without: over the limit a notification is answered 429 with
// Retry-After and the image is not rescanned.
func TestRegistryRescansAreRateLimited(t *testing.T) {
	for _, tc := range []struct {
		name     string
		token    string
		interval time.Duration
		perSec   int
	}{
		{"without a token", "", RescanInterval, RescansPerSecond},
		{"with a token", "s3cret", TokenRescanInterval, TokenRescansPerSecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			rescans := map[string]int{}
			rr := &RegistryReceiver{Token: []byte(tc.token), now: func() time.Time { return now },
				Rescan: func(img string) (int, error) { rescans[img]++; return 1, nil }}
			mux := http.NewServeMux()
			rr.Register(mux)
			post := func(body string) *httptest.ResponseRecorder {
				req := httptest.NewRequest(http.MethodPost, RegistryPath, strings.NewReader(body))
				if tc.token != "" {
					req.Header.Set("Authorization", "Bearer "+tc.token)
				}
				w := httptest.NewRecorder()
				mux.ServeHTTP(w, req)
				return w
			}
			if w := post(`{"image":"ghcr.io/acme/web:1"}`); w.Code != http.StatusAccepted {
				t.Fatalf("first notification: %d %q", w.Code, w.Body.String())
			}
			now = now.Add(tc.interval / 2)
			w := post(`{"image":"ghcr.io/acme/web:2"}`)
			if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
				t.Errorf("second notification within the interval: %d, Retry-After %q; want 429 with Retry-After", w.Code, w.Header().Get("Retry-After"))
			}
			if rescans["ghcr.io/acme/web"] != 1 {
				t.Errorf("rescanned %d times, want once", rescans["ghcr.io/acme/web"])
			}
			now = now.Add(tc.interval / 2)
			if w := post(`{"image":"ghcr.io/acme/web:3"}`); w.Code != http.StatusAccepted || rescans["ghcr.io/acme/web"] != 2 {
				t.Errorf("after the interval: %d, %d rescans; want 202, 2", w.Code, rescans["ghcr.io/acme/web"])
			}

			// Overall: the burst spent on distinct repositories, the next one waits.
			names := make([]string, 0, RescanBurst)
			for i := range RescanBurst {
				names = append(names, fmt.Sprintf(`{"action":"push","target":{"repository":"r%d"},"request":{"host":"reg"}}`, i))
			}
			now = now.Add(time.Hour)
			if w := post(`{"events":[` + strings.Join(names, ",") + `]}`); w.Code != http.StatusAccepted {
				t.Fatalf("a burst of %d repositories: %d %q", RescanBurst, w.Code, w.Body.String())
			}
			if w := post(`{"image":"reg/another"}`); w.Code != http.StatusTooManyRequests || rescans["reg/another"] != 0 {
				t.Errorf("a repository beyond the burst: %d, %d rescans; want 429, 0", w.Code, rescans["reg/another"])
			}
			now = now.Add(time.Second / time.Duration(tc.perSec))
			if w := post(`{"image":"reg/another"}`); w.Code != http.StatusAccepted || rescans["reg/another"] != 1 {
				t.Errorf("once the bucket refilled: %d, %d rescans; want 202, 1", w.Code, rescans["reg/another"])
			}
		})
	}
}

// Interval replaces the least time between two rescans of one repository.
func TestRegistryRescanInterval(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rescans := 0
	rr := &RegistryReceiver{Interval: time.Second, now: func() time.Time { return now },
		Rescan: func(string) (int, error) { rescans++; return 1, nil }}
	mux := http.NewServeMux()
	rr.Register(mux)
	for i, want := range []int{http.StatusAccepted, http.StatusTooManyRequests, http.StatusAccepted} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, RegistryPath, strings.NewReader(`{"image":"ghcr.io/acme/web"}`)))
		if w.Code != want {
			t.Errorf("notification %d: %d, want %d", i+1, w.Code, want)
		}
		now = now.Add(time.Second / 2)
	}
	if rescans != 2 {
		t.Errorf("%d rescans, want 2", rescans)
	}
}
