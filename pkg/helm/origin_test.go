package helm

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// Repository B's index claiming the digest of a private chart cached from
// repository A does not get A's archive: the cache is keyed by origin as
// well as digest, so the load goes to B (and fails, B's archive not being
// the one its index claims), or fails where B has none. A restart keeps it
// so.
func TestArchiveCacheIsKeyedByOrigin(t *testing.T) {
	const user, pass = "alice", "canary-Origin-71fa"
	private := helmtest.Simple("app", "1.0.0")
	private.Values = "secret: only-in-A\n"
	a := helmtest.NewRepoServer(t, helmtest.WithBasicAuth(user, pass))
	tgzA := a.Add(t, private)
	b := helmtest.NewRepoServer(t)
	tgzB, err := helmtest.Simple("app", "1.0.0").Package()
	if err != nil {
		t.Fatal(err)
	}
	b.AddEntry(t, helmtest.Entry{Name: "app", Version: "1.0.0", Archive: tgzB, Digest: digestOf(tgzA)})
	b.AddEntry(t, helmtest.Entry{Name: "app", Version: "2.0.0", URL: "charts/none.tgz", Digest: digestOf(tgzA)})

	dir := filepath.Join(t.TempDir(), "charts")
	c := newChartsIn(t, dir, nil)
	fromA := mustResolve(t, c, ChartSource{Repository: a.URL(), Name: "app", Version: "1.0.0",
		RepoAuth: &RepoAuth{Username: user, Password: pass}, AllowInsecureHTTP: true})
	if _, err := c.Load(testCtx(t), fromA); err != nil {
		t.Fatal(err)
	}

	for _, charts := range []*Charts{c, newChartsIn(t, dir, nil)} { // the same process, then a restart
		ref := mustResolve(t, charts, ChartSource{Repository: b.URL(), Name: "app", Version: "1.0.0"})
		if ref.Digest != fromA.Digest {
			t.Fatalf("B's index claims %s, want A's digest %s", ref.Digest, fromA.Digest)
		}
		before := b.Requests(helmtest.ChartPath("app", "1.0.0"))
		ch, err := charts.Load(testCtx(t), ref)
		if err == nil {
			t.Fatalf("B's claim of A's digest loaded a chart with values %v", ch.Values)
		}
		if !errors.Is(err, ErrDigestMismatch) {
			t.Errorf("got %v, want ErrDigestMismatch from B's own archive", err)
		}
		if n := b.Requests(helmtest.ChartPath("app", "1.0.0")) - before; n != 1 {
			t.Errorf("B's archive was requested %d times, want 1 (the load must go to B)", n)
		}
		missing := mustResolve(t, charts, ChartSource{Repository: b.URL(), Name: "app", Version: "2.0.0"})
		if ch, err := charts.Load(testCtx(t), missing); err == nil {
			t.Errorf("B's entry without an archive loaded a chart with values %v", ch.Values)
		}
	}
	// A's own chart still comes from the cache.
	downloads := c.Stats().ChartDownloads
	if _, err := c.Load(testCtx(t), fromA); err != nil {
		t.Fatal(err)
	}
	if n := c.Stats().ChartDownloads - downloads; n != 0 {
		t.Errorf("A's chart was downloaded %d more times, want a cache hit", n)
	}
}
