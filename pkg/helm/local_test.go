package helm

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// remoteName is the name under which tests reach their loopback servers as
// if they were elsewhere: the client dials 127.0.0.1 for it, the URL (all
// the local URL check judges) names no loopback host. httptest's TLS
// certificate is valid for it.
const remoteName = "example.com"

// elsewhere rewrites a loopback server URL to name remoteName instead.
func elsewhere(u string) string { return strings.Replace(u, "127.0.0.1", remoteName, 1) }

// remoteClient returns a client that dials 127.0.0.1 for remoteName, on
// top of base (nil: a plain transport), like an /etc/hosts entry would.
func remoteClient(base *http.Client) *http.Client {
	tr := &http.Transport{}
	if base != nil {
		if bt, ok := base.Transport.(*http.Transport); ok {
			tr = bt.Clone()
		}
	}
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil && host == remoteName {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr}
}

func TestWithoutLocalURLsRefusesLoopbackRepositories(t *testing.T) {
	srv := helmtest.NewRepoServer(t)
	srv.Add(t, helmtest.Simple("app", "1.0.0"))
	reg := helmtest.NewRegistry(t)
	reg.Push(t, "charts", helmtest.Simple("app", "1.0.0"))
	pushed := reg.Requests("", "/")
	c := newCharts(t, WithoutLocalURLs(), WithPlainHTTPRegistries(reg.Host()))

	for name, repo := range map[string]string{
		"127.0.0.1":  srv.URL(),
		"localhost":  strings.Replace(srv.URL(), "127.0.0.1", "localhost", 1),
		"127.1":      strings.Replace(srv.URL(), "127.0.0.1", "127.1", 1),
		"oci":        reg.URL("charts"),
		"oci [::1]":  "oci://[::1]:5000/charts",
		"0.0.0.0":    strings.Replace(srv.URL(), "127.0.0.1", "0.0.0.0", 1),
		"with creds": strings.Replace(srv.URL(), "://", "://u:p@", 1),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.Resolve(testCtx(t), ChartSource{Repository: repo, Name: "app", Version: "1.0.0"})
			if !errors.Is(err, ErrLocalURL) {
				t.Fatalf("got %v, want ErrLocalURL", err)
			}
		})
	}
	if n := srv.Requests("/index.yaml"); n != 0 {
		t.Errorf("the loopback repository saw %d index requests", n)
	}
	if n := reg.Requests("", "/") - pushed; n != 0 {
		t.Errorf("the loopback registry saw %d requests", n)
	}
	// Load refuses a reference resolved elsewhere (or before the flag).
	ref := &ChartRef{Source: ChartSource{Repository: srv.URL(), Name: "app"}, Name: "app", Version: "1.0.0",
		URL: srv.URL() + helmtest.ChartPath("app", "1.0.0")}
	if _, err := c.Load(testCtx(t), ref); !errors.Is(err, ErrLocalURL) {
		t.Errorf("load: got %v, want ErrLocalURL", err)
	}

	// The same repository is fine without the option, and when reached by
	// a name that is not loopback.
	mustResolve(t, newCharts(t), ChartSource{Repository: srv.URL(), Name: "app"})
	rc := newCharts(t, WithoutLocalURLs(), WithHTTPClient(remoteClient(nil)))
	if _, err := rc.Load(testCtx(t), mustResolve(t, rc, ChartSource{Repository: elsewhere(srv.URL()), Name: "app"})); err != nil {
		t.Fatal(err)
	}
}

func TestWithoutLocalURLsRefusesIndexesPointingAtLoopback(t *testing.T) {
	local := helmtest.NewRepoServer(t)
	tgz := local.Add(t, helmtest.Simple("app", "1.0.0"))
	archive := helmtest.ChartPath("app", "1.0.0")
	// A repository elsewhere whose index lists the loopback archive, and
	// one that redirects its archive and its index there.
	pointing := helmtest.NewRepoServer(t)
	pointing.AddEntry(t, helmtest.Entry{Name: "app", Version: "1.0.0", Archive: tgz, URL: local.URL() + archive})
	var redirected atomic.Int32
	redirecting := helmtest.NewRepoServer(t, helmtest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == archive {
				redirected.Add(1)
				http.Redirect(w, r, local.URL()+archive, http.StatusFound)
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	redirecting.Add(t, helmtest.Simple("app", "1.0.0"))
	redirectingIndex := httptest.NewServer(http.RedirectHandler(local.URL()+"/index.yaml", http.StatusMovedPermanently))
	t.Cleanup(redirectingIndex.Close)

	c := newCharts(t, WithoutLocalURLs(), WithHTTPClient(remoteClient(nil)))
	src := func(s string) ChartSource {
		return ChartSource{Repository: elsewhere(s), Name: "app", Version: "1.0.0"}
	}

	if _, err := c.Resolve(testCtx(t), src(pointing.URL())); !errors.Is(err, ErrLocalURL) {
		t.Errorf("index entry on loopback: got %v, want ErrLocalURL", err)
	}
	ref := mustResolve(t, c, src(redirecting.URL()))
	if _, err := c.Load(testCtx(t), ref); !errors.Is(err, ErrLocalURL) {
		t.Errorf("archive redirected to loopback: got %v, want ErrLocalURL", err)
	}
	if _, err := c.Resolve(testCtx(t), src(redirectingIndex.URL)); !errors.Is(err, ErrLocalURL) {
		t.Errorf("index redirected to loopback: got %v, want ErrLocalURL", err)
	}
	if n := local.Requests(archive) + local.Requests("/index.yaml"); n != 0 {
		t.Errorf("the loopback repository saw %d requests", n)
	}
	if n := redirected.Load(); n != 1 {
		t.Errorf("the redirecting repository saw %d archive requests, want 1 (the test did not test)", n)
	}
}

func TestFetchValues(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("a: 1"))
	}))
	t.Cleanup(plain.Close)
	var localHits atomic.Int32
	var self string // the TLS server's own (loopback) URL
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Host == "127.0.0.1" || strings.HasPrefix(req.Host, "127.0.0.1:") {
			localHits.Add(1)
		}
		switch req.URL.Path {
		case "/downgrade":
			http.Redirect(w, req, plain.URL, http.StatusFound)
		case "/to-loopback":
			http.Redirect(w, req, self+"/ok", http.StatusFound)
		case "/huge":
			_, _ = w.Write([]byte(strings.Repeat("a", 101)))
		case "/missing":
			http.NotFound(w, req)
		default:
			_, _ = w.Write([]byte("a: 1"))
		}
	}))
	t.Cleanup(tls.Close)
	self = tls.URL
	ctx := testCtx(t)

	open := newCharts(t, WithHTTPClient(tls.Client()))
	if b, err := open.FetchValues(ctx, tls.URL+"/ok", 100); err != nil || string(b) != "a: 1" {
		t.Errorf("https: %q, %v", b, err)
	}
	for name, tc := range map[string]struct {
		url  string
		want error
	}{
		"plain http":       {url: plain.URL, want: ErrInvalidValuesURL},
		"redirect to http": {url: tls.URL + "/downgrade"},
		"oversized":        {url: tls.URL + "/huge", want: ErrTooLarge},
		"missing":          {url: tls.URL + "/missing", want: fs.ErrNotExist},
		"not a URL at all": {url: "::", want: ErrInvalidValuesURL},
		"no host":          {url: "https:///x", want: ErrInvalidValuesURL},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := open.FetchValues(ctx, tc.url, 100)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}

	// Without local URLs: loopback refused before any request, directly or
	// through a redirect from elsewhere.
	closed := newCharts(t, WithoutLocalURLs(), WithHTTPClient(remoteClient(tls.Client())))
	localHits.Store(0)
	for name, u := range map[string]string{
		"direct":   tls.URL + "/ok",
		"redirect": elsewhere(tls.URL) + "/to-loopback",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := closed.FetchValues(ctx, u, 100)
			if !errors.Is(err, ErrLocalURL) {
				t.Errorf("got %v, want ErrLocalURL", err)
			}
		})
	}
	if n := localHits.Load(); n != 0 {
		t.Errorf("%d requests reached the loopback name", n)
	}
	if b, err := closed.FetchValues(ctx, elsewhere(tls.URL)+"/ok", 100); err != nil || string(b) != "a: 1" {
		t.Errorf("https elsewhere: %q, %v", b, err)
	}
}
