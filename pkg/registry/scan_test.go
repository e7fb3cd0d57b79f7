package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

// newClient returns a Client trusting srv's certificate, with opts applied.
func newClient(t *testing.T, srv *registrytest.Server, opts Options) *Client {
	t.Helper()
	if opts.Transport == nil {
		opts.Transport = srv.Transport()
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// count returns how many recorded requests have method and a path ending
// in suffix ("" method = any).
func count(reqs []registrytest.Recorded, method, suffix string) int {
	n := 0
	for _, r := range reqs {
		if (method == "" || r.Method == method) && strings.HasSuffix(r.Path, suffix) {
			n++
		}
	}
	return n
}

func countContains(reqs []registrytest.Recorded, method, part string) int {
	n := 0
	for _, r := range reqs {
		if (method == "" || r.Method == method) && strings.Contains(r.Path, part) {
			n++
		}
	}
	return n
}

func tagNames(res Result) []string {
	var out []string
	for _, t := range res.Tags {
		out = append(out, t.Name)
	}
	return out
}

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

// fakeClock is a settable clock for cache ages and Retry-After expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Add(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

func (f *fakeClock) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = t
}

func all(string) bool { return true }

func only(tags ...string) func(string) bool {
	return func(t string) bool {
		for _, x := range tags {
			if x == t {
				return true
			}
		}
		return false
	}
}

func TestScanFollowsLinkPagination(t *testing.T) {
	srv := registrytest.NewServer(t)
	srv.PushTags(t, "app", numbered("t", 25)...)
	c := newClient(t, srv, Options{PageSize: 10})

	res, err := c.Scan(context.Background(), srv.Host()+"/app", ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := tagNames(res); len(got) != 25 || got[0] != "t000" || got[24] != "t024" {
		t.Fatalf("tags = %v, want t000..t024", got)
	}
	if !res.Complete || res.FromCache {
		t.Fatalf("Complete=%v FromCache=%v, want true, false", res.Complete, res.FromCache)
	}
	reqs := srv.Requests()
	if got := count(reqs, "GET", "/tags/list"); got != 3 {
		t.Errorf("tag list requests = %d, want 3 pages of 10, 10, 5", got)
	}
	if !strings.Contains(reqs[len(reqs)-1].Query, "last=t019") {
		t.Errorf("last page query = %q, want the Link to the page after t019", reqs[len(reqs)-1].Query)
	}
}

func TestScanPagesWithoutLinkHeader(t *testing.T) {
	// go-containerregistry's own registry truncates at ?n= without a Link.
	srv := registrytest.NewServer(t, registrytest.WithoutLinkHeader())
	srv.PushTags(t, "app", numbered("t", 25)...)
	c := newClient(t, srv, Options{PageSize: 10})

	res, err := c.Scan(context.Background(), srv.Host()+"/app", ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(res.Tags); got != 25 || !res.Complete {
		t.Fatalf("got %d tags, Complete=%v; want all 25, not the first page", got, res.Complete)
	}
	if got := count(srv.Requests(), "GET", "/tags/list"); got != 3 {
		t.Errorf("tag list requests = %d, want 3", got)
	}
}

func TestScanNeverTruncatesWhenRegistryIgnoresLast(t *testing.T) {
	// With 20 tags and pages of 10, the bare registry answers ?last=<final
	// tag> with the first page again: the scan must fail, not stop early
	// or loop.
	srv := registrytest.NewServer(t, registrytest.WithoutLinkHeader())
	srv.PushTags(t, "app", numbered("t", 20)...)
	c := newClient(t, srv, Options{PageSize: 10})
	// The bare registry's ?last= bug shows only past the final tag; make
	// every ?last= answer the first page to model a registry ignoring it.
	srv.Fail(func(r *http.Request, n int) (int, http.Header, string, bool) {
		if r.URL.Query().Get("last") != "" {
			return 200, http.Header{"Content-Type": {"application/json"}}, `{"name":"app","tags":["t000","t001","t002","t003","t004","t005","t006","t007","t008","t009"]}`, true
		}
		return 0, nil, "", false
	})
	res, err := c.Scan(context.Background(), srv.Host()+"/app", ScanOptions{})
	if !errors.Is(err, errLastIgnored) || res.Complete || len(res.Tags) != 0 {
		t.Fatalf("Scan = %d tags, Complete=%v, err=%v; want errLastIgnored and no tags", len(res.Tags), res.Complete, err)
	}
}

func TestScanMaxTagsIsAnErrorNotATruncation(t *testing.T) {
	srv := registrytest.NewServer(t)
	srv.PushTags(t, "big", numbered("t", 30)...)
	dir := t.TempDir()
	c := newClient(t, srv, Options{PageSize: 10, MaxTags: 20, CacheDir: dir})

	res, err := c.Scan(context.Background(), srv.Host()+"/big", ScanOptions{})
	if !errors.Is(err, ErrTooManyTags) {
		t.Fatalf("err = %v, want ErrTooManyTags", err)
	}
	if res.Complete || len(res.Tags) != 0 {
		t.Fatalf("Complete=%v with %d tags; want false and none", res.Complete, len(res.Tags))
	}
	// Nothing was cached: no file, and the next scan lists again.
	if _, err := os.Stat(cacheFile(dir, srv.Host()+"/big", anonymousLogin)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cache file after an incomplete listing: %v, want none", err)
	}
	srv.Reset()
	if _, err := c.Scan(context.Background(), srv.Host()+"/big", ScanOptions{}); !errors.Is(err, ErrTooManyTags) {
		t.Fatalf("second scan err = %v, want ErrTooManyTags", err)
	}
	if count(srv.Requests(), "GET", "/tags/list") == 0 {
		t.Error("second scan made no list request: an incomplete listing was cached")
	}
}

func TestScanCreatedTimes(t *testing.T) {
	srv := registrytest.NewServer(t)
	t1 := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	t2 := time.Date(2024, 4, 1, 10, 0, 0, 0, time.UTC)
	d1 := srv.Push(t, "app", "v1", t1)
	d2 := srv.Push(t, "app", "v2", t2)
	srv.Push(t, "app", "latest", t2.Add(time.Hour))
	c := newClient(t, srv, Options{})

	res, err := c.Scan(context.Background(), srv.Host()+"/app", ScanOptions{Created: only("v1", "v2")})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Tag{
		"latest": {Name: "latest"},
		"v1":     {Name: "v1", Digest: d1, Created: t1},
		"v2":     {Name: "v2", Digest: d2, Created: t2},
	}
	if len(res.Tags) != 3 {
		t.Fatalf("tags = %v", res.Tags)
	}
	for _, got := range res.Tags {
		if w := want[got.Name]; got.Digest != w.Digest || !got.Created.Equal(w.Created) {
			t.Errorf("tag %s = %+v, want %+v", got.Name, got, w)
		}
	}
	if !res.Complete {
		t.Error("Complete = false")
	}
	reqs := srv.Requests()
	if m, b := countContains(reqs, "GET", "/manifests/"), countContains(reqs, "GET", "/blobs/"); m != 2 || b != 2 {
		t.Errorf("manifest, blob GETs = %d, %d; want 2, 2 (one each per asked tag)", m, b)
	}

	// A forced rescan of an unchanged list reads no manifest or config.
	srv.Reset()
	res, err = c.Scan(context.Background(), srv.Host()+"/app", ScanOptions{Created: only("v1", "v2"), Force: true})
	if err != nil || !res.Complete {
		t.Fatalf("rescan: Complete=%v err=%v", res.Complete, err)
	}
	reqs = srv.Requests()
	if got := len(reqs); got != 1 || count(reqs, "GET", "/tags/list") != 1 {
		t.Errorf("rescan requests = %v, want the tag list only", reqs)
	}
	if res.Tags[1].Created != t1 {
		t.Errorf("v1 created = %v after rescan, want %v", res.Tags[1].Created, t1)
	}
}

func TestScanCreatedPrefersLabel(t *testing.T) {
	srv := registrytest.NewServer(t)
	label := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	config := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

	img := registrytest.Image(t, config)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Labels[CreatedLabel] = label.Format(time.RFC3339)
	img, _ = mutate.ConfigFile(img, cf)
	srv.PushImage(t, "app", "labelled", img)

	bad := registrytest.Image(t, config)
	cf, _ = bad.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Labels[CreatedLabel] = "last tuesday"
	bad, _ = mutate.ConfigFile(bad, cf)
	srv.PushImage(t, "app", "badlabel", bad)

	c := newClient(t, srv, Options{})
	res, err := c.Scan(context.Background(), srv.Host()+"/app", ScanOptions{Created: all})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Time{}
	for _, tg := range res.Tags {
		got[tg.Name] = tg.Created
	}
	if !got["labelled"].Equal(label) {
		t.Errorf("labelled = %v, want the label's %v", got["labelled"], label)
	}
	if !got["badlabel"].Equal(config) {
		t.Errorf("badlabel = %v, want config.created %v", got["badlabel"], config)
	}
}

func TestScanIndexUsesFirstImage(t *testing.T) {
	srv := registrytest.NewServer(t)
	first := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	second := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: registrytest.Image(t, first)},
		mutate.IndexAddendum{Add: registrytest.Image(t, second)},
	)
	digest := srv.PushIndex(t, "multi", "v1", idx)
	c := newClient(t, srv, Options{})

	res, err := c.Scan(context.Background(), srv.Host()+"/multi", ScanOptions{Created: all})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Tags[0]; got.Digest != digest || !got.Created.Equal(first) {
		t.Fatalf("tag = %+v, want the index digest %s and the first image's time %v", got, digest, first)
	}
	if got := countContains(srv.Requests(), "GET", "/manifests/"); got != 2 {
		t.Errorf("manifest GETs = %d, want 2 (index, first image)", got)
	}
}

func TestScanNoticesMovedTagAfterADay(t *testing.T) {
	srv := registrytest.NewServer(t)
	clock := newFakeClock()
	old := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	moved := time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)
	srv.Push(t, "app", "stable", old)
	c := newClient(t, srv, Options{Now: clock.Now})
	scan := func() Result {
		t.Helper()
		res, err := c.Scan(context.Background(), srv.Host()+"/app", ScanOptions{Created: all, Force: true})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	scan()

	newDigest := srv.Push(t, "app", "stable", moved)
	clock.Add(time.Hour)
	if got := scan().Tags[0].Created; !got.Equal(old) {
		t.Fatalf("within a day: created = %v, want the cached %v (digests are rechecked daily)", got, old)
	}

	clock.Add(24 * time.Hour)
	srv.Reset()
	got := scan().Tags[0]
	if got.Digest != newDigest || !got.Created.Equal(moved) {
		t.Fatalf("after a day: tag = %+v, want digest %s created %v", got, newDigest, moved)
	}
	reqs := srv.Requests()
	if h := count(reqs, "HEAD", "/manifests/stable"); h != 1 {
		t.Errorf("HEADs = %d, want 1", h)
	}

	// Confirmed again: a day later the HEAD finds the same digest and
	// nothing else is read.
	clock.Add(25 * time.Hour)
	srv.Reset()
	scan()
	reqs = srv.Requests()
	// (The host is pinged again too: sessions last an hour.)
	if len(reqs)-count(reqs, "GET", "/v2/") != 2 || count(reqs, "HEAD", "/manifests/stable") != 1 {
		t.Errorf("unchanged tag after a day: requests %v, want the list and one HEAD", reqs)
	}
}

func TestScanReportsTagsWithoutTime(t *testing.T) {
	srv := registrytest.NewServer(t)
	srv.Push(t, "app", "good", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	srv.Fail(func(r *http.Request, n int) (int, http.Header, string, bool) {
		if strings.HasSuffix(r.URL.Path, "/manifests/gone") {
			return 404, nil, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`, true
		}
		if strings.HasSuffix(r.URL.Path, "/tags/list") {
			return 200, nil, `{"name":"app","tags":["good","gone"]}`, true
		}
		return 0, nil, "", false
	})
	c := newClient(t, srv, Options{})
	res, err := c.Scan(context.Background(), srv.Host()+"/app", ScanOptions{Created: all})
	if err == nil || res.Complete {
		t.Fatalf("Complete=%v err=%v; want false and an error", res.Complete, err)
	}
	if !strings.Contains(err.Error(), "tag gone") {
		t.Errorf("err = %v, want it to name tag gone", err)
	}
	if len(res.Tags) != 2 || res.Tags[1].Name != "good" || res.Tags[1].Created.IsZero() {
		t.Errorf("tags = %+v, want both, good with its time", res.Tags)
	}
}

// bearer turns srv into a token-auth registry (like Docker Hub): /v2/
// answers 401 with a Bearer challenge whose realm is srv's /token, which
// issues a token per request; registry routes need one.
func bearer(srv *registrytest.Server) *sync.Map {
	scopes := &sync.Map{} // token → scope
	var n int
	var mu sync.Mutex
	srv.Fail(func(r *http.Request, _ int) (int, http.Header, string, bool) {
		if r.URL.Path == "/token" {
			mu.Lock()
			n++
			tok := fmt.Sprintf("tok-%d", n)
			mu.Unlock()
			scopes.Store(tok, r.URL.Query().Get("scope"))
			return 200, http.Header{"Content-Type": {"application/json"}}, fmt.Sprintf(`{"token":%q,"expires_in":300}`, tok), true
		}
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			if _, known := scopes.Load(tok); known {
				return 0, nil, "", false
			}
		}
		challenge := fmt.Sprintf(`Bearer realm="https://%s/token",service="registrytest"`, r.Host)
		return 401, http.Header{"Www-Authenticate": {challenge}}, `{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}`, true
	})
	return scopes
}

func TestScanManyRepositoriesPingsOnce(t *testing.T) {
	srv := registrytest.NewServer(t)
	const repos = 50
	for i := range repos {
		srv.PushTags(t, fmt.Sprintf("team/app%02d", i), "v1", "v2", "v3")
	}
	c := newClient(t, srv, Options{})
	for i := range repos {
		res, err := c.Scan(context.Background(), fmt.Sprintf("%s/team/app%02d", srv.Host(), i), ScanOptions{})
		if err != nil || len(res.Tags) != 3 {
			t.Fatalf("scan %d: %d tags, err %v", i, len(res.Tags), err)
		}
	}
	reqs := srv.Requests()
	t.Logf("%d repositories: %d requests (%d pings, %d tag lists)", repos, len(reqs), count(reqs, "GET", "/v2/"), count(reqs, "GET", "/tags/list"))
	if len(reqs) > repos+2 {
		t.Errorf("%d requests for %d repositories, want at most %d", len(reqs), repos, repos+2)
	}
	if got := count(reqs, "GET", "/v2/"); got != 1 {
		t.Errorf("pings = %d, want 1", got)
	}
}

func TestScanBearerRegistryTokenPerRepository(t *testing.T) {
	srv := registrytest.NewServer(t)
	const repos = 50
	for i := range repos {
		srv.PushTags(t, fmt.Sprintf("app%02d", i), "v1")
	}
	scopes := bearer(srv)
	c := newClient(t, srv, Options{RPS: 1000, Burst: 1000}) // 150 requests: no rate-limit waits
	scanAll := func(force bool) {
		t.Helper()
		for i := range repos {
			if _, err := c.Scan(context.Background(), fmt.Sprintf("%s/app%02d", srv.Host(), i), ScanOptions{Force: force}); err != nil {
				t.Fatalf("scan %d: %v", i, err)
			}
		}
	}
	scanAll(false)
	reqs := srv.Requests()
	t.Logf("bearer, %d repositories: %d requests (%d pings, %d tokens, %d tag lists)", repos, len(reqs),
		count(reqs, "GET", "/v2/"), count(reqs, "GET", "/token"), count(reqs, "GET", "/tags/list"))
	if got, want := len(reqs), 1+2*repos; got > want {
		t.Errorf("%d requests, want at most %d (one ping, then a token and a list per repository)", got, want)
	}
	scope, _ := scopes.Load("tok-1")
	if want := "repository:app00:pull"; scope != want {
		t.Errorf("first token scope = %q, want %q", scope, want)
	}

	// Tokens are reused while valid: a forced rescan only lists.
	srv.Reset()
	scanAll(true)
	if got := len(srv.Requests()); got != repos {
		t.Errorf("forced rescan: %d requests, want %d", got, repos)
	}
}

func TestScanNotAllowed(t *testing.T) {
	srv := registrytest.NewServer(t)
	c := newClient(t, srv, Options{Include: []string{srv.Host() + "/team/**"}, Exclude: []string{srv.Host() + "/team/secret"}})
	for _, image := range []string{srv.Host() + "/other", srv.Host() + "/team/secret"} {
		_, err := c.Scan(context.Background(), image, ScanOptions{})
		if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), image) {
			t.Errorf("Scan(%s) err = %v, want ErrNotAllowed naming the image", image, err)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests for disallowed images, want 0", n)
	}
}

func TestAllowed(t *testing.T) {
	tests := []struct {
		name             string
		include, exclude []string
		image            string
		want             bool
	}{
		{"empty include allows all", nil, nil, "nginx", true},
		{"star stays in one segment", []string{"docker.io/library/*"}, nil, "nginx", true},
		{"star does not cross slash", []string{"ghcr.io/org/*"}, nil, "ghcr.io/org/a/b", false},
		{"double star is a subtree", []string{"ghcr.io/org/**"}, nil, "ghcr.io/org/a/b", true},
		{"subtree needs a segment below", []string{"ghcr.io/org/**"}, nil, "ghcr.io/org", false},
		{"subtree of another org", []string{"ghcr.io/org/**"}, nil, "ghcr.io/organisation/a", false},
		{"only double star", []string{"**"}, nil, "quay.io/a/b/c", true},
		{"hub alias in pattern", []string{"index.docker.io/library/nginx"}, nil, "docker.io/nginx", true},
		{"registry-1 alias in image", []string{"docker.io/library/nginx"}, nil, "registry-1.docker.io/library/nginx", true},
		{"exclude wins", []string{"ghcr.io/**"}, []string{"ghcr.io/org/private"}, "ghcr.io/org/private", false},
		{"exclude alone", nil, []string{"*.example.com/**"}, "reg.example.com/a", false},
		{"exclude alone other host", nil, []string{"*.example.com/**"}, "ghcr.io/a", true},
		{"host with port", []string{"127.0.0.1:5000/*"}, nil, "127.0.0.1:5000/app", true},
		{"invalid image", nil, nil, "UPPER/Case", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(Options{Include: tt.include, Exclude: tt.exclude})
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Allowed(tt.image); got != tt.want {
				t.Errorf("Allowed(%q) = %v, want %v", tt.image, got, tt.want)
			}
		})
	}
}

func TestNewRejectsBadGlobs(t *testing.T) {
	for _, p := range []string{"ghcr.io/[", "ghcr.io/**/a", "ghcr.io/a**"} {
		if _, err := New(Options{Include: []string{p}}); err == nil {
			t.Errorf("New(Include %q) succeeded, want an error", p)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nginx", "index.docker.io/library/nginx"},
		{"library/nginx", "index.docker.io/library/nginx"},
		{"docker.io/nginx", "index.docker.io/library/nginx"},
		{"registry-1.docker.io/nginx", "index.docker.io/library/nginx"},
		{"index.docker.io/bitnami/redis", "index.docker.io/bitnami/redis"},
		{"ghcr.io/o/a", "ghcr.io/o/a"},
		{"127.0.0.1:5000/app", "127.0.0.1:5000/app"},
		{"localhost/app", "localhost/app"},
		{"GHCR.io/o/a", "ghcr.io/o/a"},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "nginx:1.25", "nginx@sha256:abc", "Upper/Case", "a//b", "host:port:x/a"} {
		if got, err := Normalize(bad); err == nil {
			t.Errorf("Normalize(%q) = %q, want an error", bad, got)
		}
	}
}

func TestScanInsecurePlainHTTP(t *testing.T) {
	plain := registrytest.NewServer(t, registrytest.WithPlainHTTP())
	plain.PushTags(t, "app", "v1")
	image := plain.Host() + "/app"

	c := newClient(t, plain, Options{Insecure: []string{plain.Host()}})
	res, err := c.Scan(context.Background(), image, ScanOptions{})
	if err != nil || len(res.Tags) != 1 {
		t.Fatalf("insecure scan: %v, %v", res.Tags, err)
	}

	// Not listed as insecure: HTTPS only, so nothing reaches the handler.
	plain.Reset()
	c = newClient(t, plain, Options{})
	if _, err := c.Scan(context.Background(), image, ScanOptions{}); err == nil {
		t.Fatal("scan of a plain-HTTP registry not listed as insecure succeeded")
	}
	if n := len(plain.Requests()); n != 0 {
		t.Errorf("%d plain-HTTP requests to a host not listed as insecure", n)
	}

	// "host" without port covers every port of that host.
	host, _, _ := strings.Cut(plain.Host(), ":")
	c = newClient(t, plain, Options{Insecure: []string{host}})
	if _, err := c.Scan(context.Background(), image, ScanOptions{}); err != nil {
		t.Fatalf("insecure by host name: %v", err)
	}

	// A TLS registry listed as insecure is not reached over HTTPS either.
	tls := registrytest.NewServer(t)
	tls.PushTags(t, "app", "v1")
	c = newClient(t, tls, Options{Insecure: []string{tls.Host()}})
	if _, err := c.Scan(context.Background(), tls.Host()+"/app", ScanOptions{}); err == nil {
		t.Fatal("scan of a TLS registry listed as plain HTTP succeeded")
	}
	if n := len(tls.Requests()); n != 0 {
		t.Errorf("%d requests reached a TLS registry over plain HTTP", n)
	}
}

func TestScanCapsResponseBodies(t *testing.T) {
	srv := registrytest.NewServer(t)
	srv.Push(t, "app", "v1", time.Now())
	huge := `{"tags":["` + strings.Repeat("a", maxBody) + `"]}`
	srv.Fail(func(r *http.Request, n int) (int, http.Header, string, bool) {
		if strings.HasSuffix(r.URL.Path, "/tags/list") && r.URL.Query().Get("huge") == "" && strings.Contains(r.URL.Path, "big") {
			return 200, nil, huge, true
		}
		if strings.Contains(r.URL.Path, "/blobs/") {
			return 200, nil, strings.Repeat("{", maxConfigSize+10), true
		}
		return 0, nil, "", false
	})
	c := newClient(t, srv, Options{})
	if _, err := c.Scan(context.Background(), srv.Host()+"/big", ScanOptions{}); !errors.Is(err, errBodyTooLarge) {
		t.Errorf("huge tag list: err = %v, want errBodyTooLarge", err)
	}
	res, err := c.Scan(context.Background(), srv.Host()+"/app", ScanOptions{Created: all})
	if !errors.Is(err, errBodyTooLarge) || res.Complete {
		t.Errorf("huge config: Complete=%v err=%v, want errBodyTooLarge", res.Complete, err)
	}
}

func TestScanRefusesAConfigTheManifestSaysIsTooLarge(t *testing.T) {
	srv := registrytest.NewServer(t)
	srv.PushTags(t, "app", "v1")
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":%d,"digest":"sha256:%064x"},"layers":[]}`, maxConfigSize+1, 1)
	srv.Fail(func(r *http.Request, n int) (int, http.Header, string, bool) {
		if strings.HasSuffix(r.URL.Path, "/manifests/v1") {
			return 200, http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}, manifest, true
		}
		return 0, nil, "", false
	})
	c := newClient(t, srv, Options{})
	res, err := c.Scan(context.Background(), srv.Host()+"/app", ScanOptions{Created: all})
	if !errors.Is(err, errConfigTooLarge) || res.Complete {
		t.Fatalf("Complete=%v err=%v, want errConfigTooLarge", res.Complete, err)
	}
	if n := count(srv.Requests(), "GET", "/blobs/sha256:"+fmt.Sprintf("%064x", 1)); n != 0 {
		t.Errorf("the config was downloaded anyway, %d times", n)
	}
}

func TestScanConcurrentSameRepository(t *testing.T) {
	srv := registrytest.NewServer(t)
	srv.PushTags(t, "app", "v1", "v2")
	c := newClient(t, srv, Options{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := c.Scan(context.Background(), srv.Host()+"/app", ScanOptions{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := count(srv.Requests(), "GET", "/tags/list"); got != 1 {
		t.Errorf("8 concurrent scans made %d list requests, want 1 (the rest from cache)", got)
	}
}

func TestScanStopsOnRepeatedPages(t *testing.T) {
	srv := registrytest.NewServer(t)
	srv.Fail(func(r *http.Request, n int) (int, http.Header, string, bool) {
		if strings.HasSuffix(r.URL.Path, "/tags/list") {
			return 200, http.Header{"Link": {`</v2/loop/tags/list?n=2&last=b>; rel="next"`}}, `{"tags":["a","b"]}`, true
		}
		return 0, nil, "", false
	})
	c := newClient(t, srv, Options{PageSize: 2})
	if _, err := c.Scan(context.Background(), srv.Host()+"/loop", ScanOptions{}); !errors.Is(err, errStalePage) {
		t.Fatalf("a registry linking to its page forever: err = %v, want errStalePage", err)
	}
	if got := count(srv.Requests(), "GET", "/tags/list"); got != 2 {
		t.Errorf("%d list requests, want 2", got)
	}
}

func TestScanStopsAfterAsManyPagesAsTheTagLimit(t *testing.T) {
	// Full, unsorted pages of old tags, without a Link: each ?last= gets
	// the same page, whose first tag sorts after last, so only the page
	// count stops the listing.
	srv := registrytest.NewServer(t)
	srv.Fail(func(r *http.Request, n int) (int, http.Header, string, bool) {
		if strings.HasSuffix(r.URL.Path, "/tags/list") {
			return 200, http.Header{"Content-Type": {"application/json"}}, `{"tags":["z","a"]}`, true
		}
		return 0, nil, "", false
	})
	c := newClient(t, srv, Options{PageSize: 2, MaxTags: 5})
	if _, err := c.Scan(context.Background(), srv.Host()+"/endless", ScanOptions{}); !errors.Is(err, errEndlessPages) {
		t.Fatalf("err = %v, want errEndlessPages", err)
	}
	if got := count(srv.Requests(), "GET", "/tags/list"); got != 6 {
		t.Errorf("%d list requests, want 6 (MaxTags+1 pages)", got)
	}
}

func TestScanRefusesLinkToAnotherHost(t *testing.T) {
	srv := registrytest.NewServer(t)
	srv.Fail(func(r *http.Request, n int) (int, http.Header, string, bool) {
		if strings.HasSuffix(r.URL.Path, "/tags/list") {
			return 200, http.Header{"Link": {`<https://elsewhere.example/v2/x/tags/list?n=2>; rel="next"`}}, `{"tags":["a","b"]}`, true
		}
		return 0, nil, "", false
	})
	c := newClient(t, srv, Options{PageSize: 2})
	if _, err := c.Scan(context.Background(), srv.Host()+"/x", ScanOptions{}); !errors.Is(err, errForeignLink) {
		t.Fatalf("err = %v, want errForeignLink", err)
	}
}

// Cached answers from the cache alone: nothing before a scan, then the
// scanned tags with the times read, and no request either way.
func TestCachedMakesNoRequest(t *testing.T) {
	srv := registrytest.NewServer(t)
	t1 := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	d1 := srv.Push(t, "app", "v1", t1)
	srv.Push(t, "app", "v2", t1.Add(time.Hour))
	c := newClient(t, srv, Options{})
	if res, ok := c.Cached(srv.Host()+"/app", Credentials{}); ok {
		t.Fatalf("before any scan: %+v, want nothing cached", res)
	}
	if _, err := c.Scan(context.Background(), srv.Host()+"/app", ScanOptions{Created: only("v1")}); err != nil {
		t.Fatal(err)
	}
	srv.Reset()
	res, ok := c.Cached(srv.Host()+"/app", Credentials{})
	if !ok || !res.Complete || len(res.Tags) != 2 {
		t.Fatalf("after a scan: %+v, %v; want both tags", res, ok)
	}
	if got := res.Tags[0]; got.Name != "v1" || got.Digest != d1 || !got.Created.Equal(t1) {
		t.Errorf("v1 = %+v, want its digest and time", got)
	}
	if got := res.Tags[1]; got.Name != "v2" || !got.Created.IsZero() {
		t.Errorf("v2 = %+v, want no time (none was asked for)", got)
	}
	if reqs := srv.Requests(); len(reqs) != 0 {
		t.Errorf("Cached made requests: %v", reqs)
	}
}
