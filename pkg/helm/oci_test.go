package helm

import (
	"errors"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

func TestOCIResolveAndLoad(t *testing.T) {
	reg := helmtest.NewRegistry(t)
	digests := map[string]string{}
	for _, v := range []string{"1.0.0", "1.2.0", "1.10.0", "2.0.0-rc.1", "3.0.0+build.7"} {
		digests[v] = reg.Push(t, "charts", helmtest.Simple("app", v))
	}
	c := newCharts(t, WithPlainHTTPRegistries(reg.Host()))

	tests := []struct {
		version  string
		want     string
		requests int64 // registry round trips for the resolution: a HEAD, or a tag list and a HEAD
		wantErr  error
	}{
		{version: "1.2.0", want: "1.2.0", requests: 1},
		{version: "3.0.0+build.7", want: "3.0.0+build.7", requests: 1},
		{version: "1.x", want: "1.10.0", requests: 2},
		{version: ">=1.0 <1.5", want: "1.2.0", requests: 2},
		{version: "", want: "3.0.0+build.7", requests: 2},
		{version: ">=2.0.0-0 <3", want: "2.0.0-rc.1", requests: 2},
		{version: "9.9.9", wantErr: ErrChartNotFound},
		{version: "4.x", wantErr: ErrChartNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			before := c.Stats().RegistryRequests
			ref, err := c.Resolve(testCtx(t), ChartSource{Repository: reg.URL("charts"), Name: "app", Version: tt.version})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ref.Version != tt.want || ref.Revision != tt.want || ref.Digest != digests[tt.want] {
				t.Errorf("resolved %s (revision %s, digest %s), want %s (%s)", ref.Version, ref.Revision, ref.Digest, tt.want, digests[tt.want])
			}
			if n := c.Stats().RegistryRequests - before; n != tt.requests {
				t.Errorf("%d registry requests, want %d", n, tt.requests)
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
	if _, err := c.Resolve(testCtx(t), ChartSource{Repository: reg.URL("charts"), Name: "missing", Version: "1.x"}); !errors.Is(err, ErrChartNotFound) {
		t.Errorf("unknown chart: got %v, want ErrChartNotFound", err)
	}
}

func TestOCILoadDownloadsOnce(t *testing.T) {
	reg := helmtest.NewRegistry(t)
	reg.Push(t, "charts", helmtest.Simple("app", "1.0.0"))
	dir := filepath.Join(t.TempDir(), "charts")
	c := newChartsIn(t, dir, nil, WithPlainHTTPRegistries(reg.Host()))
	src := ChartSource{Repository: reg.URL("charts"), Name: "app", Version: "1.0.0"}
	ref := mustResolve(t, c, src)
	if want := "oci://" + reg.Host() + "/charts/app:1.0.0"; ref.URL != want {
		t.Errorf("URL %s, want %s", ref.URL, want)
	}
	a, err := c.Load(testCtx(t), ref)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Load(testCtx(t), ref)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Error("Load returned a shared chart")
	}
	blobs := reg.BlobDownloads()
	if got := c.Stats().ChartDownloads; got != 1 || blobs != 1 {
		t.Errorf("%d chart downloads, %d blob GETs, want 1 and 1", got, blobs)
	}

	restarted := newChartsIn(t, dir, nil, WithPlainHTTPRegistries(reg.Host()))
	if _, err := restarted.Load(testCtx(t), mustResolve(t, restarted, src)); err != nil {
		t.Fatal(err)
	}
	if n := reg.BlobDownloads(); n != blobs || restarted.Stats().ChartDownloads != 0 {
		t.Errorf("the restarted cache downloaded again (%d blob GETs)", n)
	}
}

func TestOCITTL(t *testing.T) {
	reg := helmtest.NewRegistry(t)
	reg.Push(t, "charts", helmtest.Simple("app", "1.0.0"))
	c := newCharts(t, WithPlainHTTPRegistries(reg.Host()), WithIndexTTL(time.Hour))
	for range 3 {
		mustResolve(t, c, ChartSource{Repository: reg.URL("charts"), Name: "app", Version: "1.x"})
	}
	if n := reg.Requests(http.MethodHead, "/manifests/"); n != 1 {
		t.Errorf("%d manifest HEADs within the TTL, want 1", n)
	}
}

func TestOCIBasicAuth(t *testing.T) {
	const user, pass = "bob", "reg-Pa55word"
	reg := helmtest.NewRegistry(t, helmtest.WithRegistryBasicAuth(user, pass))
	reg.Push(t, "charts", helmtest.Simple("app", "1.0.0"))
	c := newCharts(t, WithPlainHTTPRegistries(reg.Host()))
	src := ChartSource{Repository: reg.URL("charts"), Name: "app", Version: "1.0.0", RepoAuth: &RepoAuth{Username: user, Password: pass}, AllowInsecureHTTP: true}
	if _, err := c.Load(testCtx(t), mustResolve(t, c, src)); err != nil {
		t.Fatal(err)
	}
	for name, auth := range map[string]*RepoAuth{"wrong": {Username: user, Password: "wr0ng-Pa55"}, "none": nil} {
		t.Run(name, func(t *testing.T) {
			s := src
			s.RepoAuth = auth
			s.Version = "1.x" // the tag list needs auth too
			_, err := c.Resolve(testCtx(t), s)
			if !errors.Is(err, ErrAuthentication) {
				t.Fatalf("got %v, want ErrAuthentication", err)
			}
			assertNoSecret(t, err, "wr0ng-Pa55", pass)
		})
	}
}

func TestOCIPlainHTTPNeedsOptIn(t *testing.T) {
	reg := helmtest.NewRegistry(t)
	reg.Push(t, "charts", helmtest.Simple("app", "1.0.0"))
	before := reg.Requests("", "/")
	_, err := newCharts(t).Resolve(testCtx(t), ChartSource{Repository: reg.URL("charts"), Name: "app", Version: "1.0.0"})
	if err == nil {
		t.Fatal("a plain-HTTP registry was used without WithPlainHTTPRegistries")
	}
	t.Log(err)
	if n := reg.Requests("", "/") - before; n != 0 {
		t.Errorf("%d requests went over plain HTTP", n)
	}
}

func TestOCIRefusedArtifacts(t *testing.T) {
	reg := helmtest.NewRegistry(t)
	reg.PushArchive(t, "charts", "app", "1.0.0", helmtest.HostileArchive("traversal"))
	other, err := helmtest.Simple("other", "1.0.0").Package()
	if err != nil {
		t.Fatal(err)
	}
	reg.PushArchive(t, "charts", "impostor", "1.0.0", other)
	// A container image, not a chart.
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(reg.Host()+"/charts/image:1.0.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	c := newCharts(t, WithPlainHTTPRegistries(reg.Host()))
	for chart, want := range map[string]error{"app": ErrHostileChart, "impostor": ErrInvalidChart, "image": ErrInvalidChart} {
		t.Run(chart, func(t *testing.T) {
			ref := mustResolve(t, c, ChartSource{Repository: reg.URL("charts"), Name: chart, Version: "1.0.0"})
			if _, err := c.Load(testCtx(t), ref); !errors.Is(err, want) {
				t.Fatalf("got %v, want %v", err, want)
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		c := newCharts(t, WithPlainHTTPRegistries(reg.Host()), WithMaxArchiveSize(64))
		ref := mustResolve(t, c, ChartSource{Repository: reg.URL("charts"), Name: "impostor", Version: "1.0.0"})
		if _, err := c.Load(testCtx(t), ref); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("got %v, want ErrTooLarge", err)
		}
	})
}
