package helm

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestRepoResolveAndLoad(t *testing.T) {
	srv := helmtest.NewRepoServer(t)
	archives := map[string][]byte{}
	for _, v := range []string{"1.0.0", "1.2.0", "1.10.0", "2.0.0-rc.1"} {
		archives[v] = srv.Add(t, helmtest.Simple("app", v))
	}
	srv.Add(t, helmtest.Simple("other", "9.0.0"))
	c := newCharts(t)

	tests := []struct {
		version string
		want    string
		wantErr error
	}{
		{version: "1.2.0", want: "1.2.0"},
		{version: "1.x", want: "1.10.0"},
		{version: ">=1.0 <1.5", want: "1.2.0"},
		{version: "~1.2", want: "1.2.0"},
		{version: "", want: "1.10.0"},
		{version: "2.0.0-rc.1", want: "2.0.0-rc.1"},
		{version: ">=2.0.0-0", want: "2.0.0-rc.1"},
		{version: "3.0.0", wantErr: ErrChartNotFound},
		{version: "9.x", wantErr: ErrChartNotFound},
		{version: "!!", wantErr: ErrInvalidSource},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			ref, err := c.Resolve(testCtx(t), ChartSource{Repository: srv.URL(), Name: "app", Version: tt.version})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ref.Name != "app" || ref.Version != tt.want || ref.Revision != tt.want {
				t.Errorf("resolved %s %s (revision %s), want app %s", ref.Name, ref.Version, ref.Revision, tt.want)
			}
			if ref.Digest != digestOf(archives[tt.want]) {
				t.Errorf("digest %s, want the archive's %s", ref.Digest, digestOf(archives[tt.want]))
			}
			if want := srv.URL() + helmtest.ChartPath("app", tt.want); ref.URL != want {
				t.Errorf("URL %s, want %s", ref.URL, want)
			}
			ch, err := c.Load(testCtx(t), ref)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Name() != "app" || ch.Metadata.Version != tt.want {
				t.Errorf("loaded %s %s", ch.Name(), ch.Metadata.Version)
			}
		})
	}

	if _, err := c.Resolve(testCtx(t), ChartSource{Repository: srv.URL(), Name: "missing"}); !errors.Is(err, ErrChartNotFound) {
		t.Errorf("unknown chart: got %v, want ErrChartNotFound", err)
	}
	if _, err := c.Resolve(testCtx(t), ChartSource{Repository: srv.URL() + "/nowhere", Name: "app"}); !errors.Is(err, ErrRepositoryNotFound) {
		t.Errorf("missing index: got %v, want ErrRepositoryNotFound", err)
	}
}

func TestRepoBasicAuth(t *testing.T) {
	const user, pass = "alice", "s3cret-Pa55"
	srv := helmtest.NewRepoServer(t, helmtest.WithBasicAuth(user, pass))
	srv.Add(t, helmtest.Simple("app", "1.0.0"))
	c := newCharts(t)

	// The test server is plain http://: every source with credentials opts in.
	ref := mustResolve(t, c, ChartSource{Repository: srv.URL(), Name: "app", RepoAuth: &RepoAuth{Username: user, Password: pass}, AllowInsecureHTTP: true})
	if _, err := c.Load(testCtx(t), ref); err != nil {
		t.Fatal(err)
	}
	// Credentials in the URL work too, and stay out of the reference.
	withUserinfo := strings.Replace(srv.URL(), "://", "://"+user+":"+pass+"@", 1)
	ref = mustResolve(t, c, ChartSource{Repository: withUserinfo, Name: "app", AllowInsecureHTTP: true})
	if strings.Contains(ref.URL, pass) {
		t.Errorf("the archive URL %s holds the password", ref.URL)
	}

	for name, src := range map[string]ChartSource{
		"wrong password": {Repository: srv.URL(), Name: "app", RepoAuth: &RepoAuth{Username: user, Password: "wr0ng-Pa55"}, AllowInsecureHTTP: true},
		"wrong in URL":   {Repository: strings.Replace(srv.URL(), "://", "://"+user+":wr0ng-Pa55@", 1), Name: "app", AllowInsecureHTTP: true},
		"anonymous":      {Repository: srv.URL(), Name: "app"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.Resolve(testCtx(t), src)
			if !errors.Is(err, ErrAuthentication) {
				t.Fatalf("got %v, want ErrAuthentication", err)
			}
			assertNoSecret(t, err, "wr0ng-Pa55", pass)
		})
	}
}

func TestRepoTLS(t *testing.T) {
	srv := helmtest.NewRepoServer(t, helmtest.WithTLS())
	srv.Add(t, helmtest.Simple("app", "1.0.0"))
	src := ChartSource{Repository: srv.URL(), Name: "app"}

	if _, err := newCharts(t).Resolve(testCtx(t), src); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an untrusted certificate was accepted: %v", err)
	}
	for name, tc := range map[string]struct {
		auth *RepoAuth
		opts []ChartsOption
	}{
		"CA from the secret":   {auth: &RepoAuth{CAFile: srv.CAPEM()}},
		"client trusting it":   {opts: []ChartsOption{WithHTTPClient(srv.Client())}},
		"verification skipped": {auth: &RepoAuth{InsecureSkipTLSVerify: true}},
	} {
		t.Run(name, func(t *testing.T) {
			c := newCharts(t, tc.opts...)
			s := src
			s.RepoAuth = tc.auth
			if _, err := c.Load(testCtx(t), mustResolve(t, c, s)); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("bad TLS material", func(t *testing.T) {
		for _, a := range []*RepoAuth{{CAFile: []byte("not pem")}, {CertFile: []byte("x"), KeyFile: []byte("y")}} {
			s := src
			s.RepoAuth = a
			if _, err := newCharts(t).Resolve(testCtx(t), s); !errors.Is(err, ErrInvalidSource) {
				t.Errorf("got %v, want ErrInvalidSource", err)
			}
		}
	})
}

func TestRepoConditionalIndexRequests(t *testing.T) {
	srv := helmtest.NewRepoServer(t)
	srv.Add(t, helmtest.Simple("app", "1.0.0"))
	dir := filepath.Join(t.TempDir(), "charts")
	c := newChartsIn(t, dir, nil)
	src := ChartSource{Repository: srv.URL(), Name: "app", Version: "1.x"}

	first := mustResolve(t, c, src)
	second := mustResolve(t, c, src)
	if first.Version != second.Version || first.Digest != second.Digest || first.URL != second.URL {
		t.Errorf("unchanged repository resolved differently: %+v, %+v", first, second)
	}
	if got := c.Stats(); got.IndexRequests != 2 || got.IndexDownloads != 1 || got.IndexParses != 1 {
		t.Errorf("stats %+v, want 2 requests, 1 download, 1 parse", got)
	}
	if n := srv.Responses("/index.yaml", http.StatusNotModified); n != 1 {
		t.Errorf("%d answers were 304, want 1", n)
	}

	// A new version is seen on the next Resolve.
	srv.Add(t, helmtest.Simple("app", "1.1.0"))
	if ref := mustResolve(t, c, src); ref.Version != "1.1.0" {
		t.Errorf("resolved %s after 1.1.0 was added", ref.Version)
	}
	if got := c.Stats(); got.IndexDownloads != 2 || got.IndexParses != 2 {
		t.Errorf("stats %+v, want 2 downloads and 2 parses", got)
	}

	// A restart asks conditionally with the validators kept on disk and
	// parses its disk copy once.
	restarted := newChartsIn(t, dir, nil)
	mustResolve(t, restarted, src)
	mustResolve(t, restarted, src)
	if got := restarted.Stats(); got.IndexRequests != 2 || got.IndexDownloads != 0 || got.IndexParses != 1 {
		t.Errorf("after restart: stats %+v, want 2 requests, no download, 1 parse", got)
	}
}

func TestRepoIndexTTL(t *testing.T) {
	srv := helmtest.NewRepoServer(t)
	srv.Add(t, helmtest.Simple("app", "1.0.0"))
	c := newCharts(t, WithIndexTTL(time.Hour))
	src := ChartSource{Repository: srv.URL(), Name: "app"}
	for range 5 {
		mustResolve(t, c, src)
	}
	if n := srv.Requests("/index.yaml"); n != 1 {
		t.Errorf("%d index requests within the TTL, want 1", n)
	}
}

func TestRepoConcurrentResolvesShareOneRequest(t *testing.T) {
	const callers = 50
	hold := make(chan struct{})
	srv := helmtest.NewRepoServer(t, helmtest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-hold
			next.ServeHTTP(w, r)
		})
	}))
	srv.Add(t, helmtest.Simple("app", "1.0.0"))
	c := newCharts(t)
	var joined atomic.Int64
	allIn := make(chan struct{})
	c.joined = func(key string) {
		if strings.HasPrefix(key, "index\n") && joined.Add(1) == callers {
			close(allIn)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			_, err := c.Resolve(testCtx(t), ChartSource{Repository: srv.URL(), Name: "app"})
			errs <- err
		})
	}
	<-allIn // every caller waits on the one request in flight
	close(hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Requests("/index.yaml"); n != 1 {
		t.Errorf("%d index requests, want 1", n)
	}
	if got := c.Stats(); got.IndexRequests != 1 {
		t.Errorf("stats %+v, want 1 index request", got)
	}
}

func TestRepoLoadDownloadsOnce(t *testing.T) {
	srv := helmtest.NewRepoServer(t)
	srv.Add(t, helmtest.Simple("app", "1.0.0"))
	dir := filepath.Join(t.TempDir(), "charts")
	c := newChartsIn(t, dir, nil)
	ref := mustResolve(t, c, ChartSource{Repository: srv.URL(), Name: "app"})

	a, err := c.Load(testCtx(t), ref)
	if err != nil {
		t.Fatal(err)
	}
	a.Values["replicaCount"] = 9 // Helm's actions mutate charts
	b, err := c.Load(testCtx(t), ref)
	if err != nil {
		t.Fatal(err)
	}
	if a == b || b.Values["replicaCount"] == 9 {
		t.Error("Load returned a shared chart")
	}
	if n := srv.Requests(helmtest.ChartPath("app", "1.0.0")); n != 1 || c.Stats().ChartDownloads != 1 {
		t.Errorf("%d archive requests (stats %+v), want 1", n, c.Stats())
	}

	// After a restart the cached digest is loaded from disk.
	restarted := newChartsIn(t, dir, nil)
	if _, err := restarted.Load(testCtx(t), mustResolve(t, restarted, ChartSource{Repository: srv.URL(), Name: "app"})); err != nil {
		t.Fatal(err)
	}
	if n := srv.Requests(helmtest.ChartPath("app", "1.0.0")); n != 1 || restarted.Stats().ChartDownloads != 0 {
		t.Errorf("the restarted cache downloaded again (%d requests)", n)
	}
}

func TestRepoDigestMismatchRefused(t *testing.T) {
	srv := helmtest.NewRepoServer(t)
	tgz, err := helmtest.Simple("app", "1.0.0").Package()
	if err != nil {
		t.Fatal(err)
	}
	srv.AddEntry(t, helmtest.Entry{Name: "app", Version: "1.0.0", Archive: tgz, Digest: strings.Repeat("ab", 32)})
	c := newCharts(t)
	ref := mustResolve(t, c, ChartSource{Repository: srv.URL(), Name: "app"})
	for range 2 {
		if _, err := c.Load(testCtx(t), ref); !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("got %v, want ErrDigestMismatch", err)
		}
	}
	if n := c.Stats().ChartDownloads; n != 2 {
		t.Errorf("%d downloads, want 2 (a refused archive is not cached)", n)
	}
}

func TestRepoIndexWithoutDigests(t *testing.T) {
	srv := helmtest.NewRepoServer(t)
	tgz, err := helmtest.Simple("app", "1.0.0").Package()
	if err != nil {
		t.Fatal(err)
	}
	srv.AddEntry(t, helmtest.Entry{Name: "app", Version: "1.0.0", Archive: tgz, NoDigest: true})
	dir := filepath.Join(t.TempDir(), "charts")
	c := newChartsIn(t, dir, nil)
	src := ChartSource{Repository: srv.URL(), Name: "app"}

	ref := mustResolve(t, c, src)
	if ref.Digest != "" {
		t.Fatalf("digest %q before any download", ref.Digest)
	}
	if _, err := c.Load(testCtx(t), ref); err != nil {
		t.Fatal(err)
	}
	if ref.Digest != digestOf(tgz) {
		t.Errorf("Load set digest %q, want %s", ref.Digest, digestOf(tgz))
	}
	for _, cc := range []*Charts{c, newChartsIn(t, dir, nil)} {
		again := mustResolve(t, cc, src)
		if again.Digest != digestOf(tgz) {
			t.Errorf("digest %q after a download, want %s", again.Digest, digestOf(tgz))
		}
		if _, err := cc.Load(testCtx(t), again); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Requests(helmtest.ChartPath("app", "1.0.0")); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
}

func TestRepoCredentialsStayOnTheirHost(t *testing.T) {
	const user, pass = "alice", "s3cret"
	cdn := helmtest.NewRepoServer(t)
	tgz := cdn.Add(t, helmtest.Simple("app", "1.0.0"))
	srv := helmtest.NewRepoServer(t, helmtest.WithBasicAuth(user, pass), helmtest.WithAbsoluteURLs())
	srv.Add(t, helmtest.Simple("local", "1.0.0"))
	srv.AddEntry(t, helmtest.Entry{Name: "app", Version: "1.0.0", Archive: tgz, URL: cdn.URL() + helmtest.ChartPath("app", "1.0.0")})
	c := newCharts(t)
	auth := &RepoAuth{Username: user, Password: pass}

	for _, name := range []string{"app", "local"} {
		ref := mustResolve(t, c, ChartSource{Repository: srv.URL(), Name: name, RepoAuth: auth, AllowInsecureHTTP: true})
		if _, err := c.Load(testCtx(t), ref); err != nil {
			t.Fatalf("load %s: %v", name, err)
		}
	}
	if n := cdn.Requests(helmtest.ChartPath("app", "1.0.0")); n != 1 {
		t.Errorf("the CDN saw %d requests, want 1", n)
	}
	if n := cdn.AuthorizedRequests(helmtest.ChartPath("app", "1.0.0")); n != 0 {
		t.Error("credentials were sent to another host")
	}
	if n := srv.AuthorizedRequests(helmtest.ChartPath("local", "1.0.0")); n != 1 {
		t.Errorf("%d authorised requests for an absolute URL on the repository's host, want 1", n)
	}
}

func TestRepoRefusedArchives(t *testing.T) {
	srv := helmtest.NewRepoServer(t)
	srv.AddArchive(t, "app", "1.0.0", helmtest.HostileArchive("symlink"))
	other, err := helmtest.Simple("other", "2.0.0").Package()
	if err != nil {
		t.Fatal(err)
	}
	srv.AddArchive(t, "impostor", "2.0.0", other)
	srv.AddEntry(t, helmtest.Entry{Name: "local", Version: "1.0.0", URL: "file:///etc/passwd", NoDigest: true})
	big := srv.Add(t, helmtest.Simple("big", "1.0.0"))

	tests := []struct {
		name    string
		opts    []ChartsOption
		wantErr error
	}{
		{name: "app", wantErr: ErrHostileChart},
		{name: "impostor", wantErr: ErrInvalidChart},
		{name: "local", wantErr: ErrInvalidChart},
		{name: "big", opts: []ChartsOption{WithMaxArchiveSize(int64(len(big) - 1))}, wantErr: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCharts(t, tt.opts...)
			ref, err := c.Resolve(testCtx(t), ChartSource{Repository: srv.URL(), Name: tt.name})
			if err == nil {
				_, err = c.Load(testCtx(t), ref)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
		})
	}
	if _, err := newCharts(t, WithMaxIndexSize(64)).Resolve(testCtx(t), ChartSource{Repository: srv.URL(), Name: "app"}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized index: got %v, want ErrTooLarge", err)
	}
}

func TestRepoCorruptCacheIsFetchedAgain(t *testing.T) {
	srv := helmtest.NewRepoServer(t)
	srv.Add(t, helmtest.Simple("app", "1.0.0"))
	c := newCharts(t)
	ref := mustResolve(t, c, ChartSource{Repository: srv.URL(), Name: "app"})
	if _, err := c.Load(testCtx(t), ref); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.chartFile(c.originOf(kindRepo, ref.Source), ref.Digest), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Load(testCtx(t), ref); err != nil {
		t.Fatalf("a corrupted cache entry was not fetched again: %v", err)
	}
	if n := c.Stats().ChartDownloads; n != 2 {
		t.Errorf("%d downloads, want 2", n)
	}
}

// BenchmarkRepoResolveUnchanged measures the common pass: a HelmRelease
// resolving a chart whose repository has not changed (one 304).
func BenchmarkRepoResolveUnchanged(b *testing.B) {
	srv := helmtest.NewRepoServer(b)
	for i := range 50 {
		srv.Add(b, helmtest.Simple("app", "1.0."+strconv.Itoa(i)))
	}
	c := newCharts(b)
	src := ChartSource{Repository: srv.URL(), Name: "app", Version: "1.x"}
	mustResolve(b, c, src)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Resolve(testCtx(b), src); err != nil {
			b.Fatal(err)
		}
	}
}
