package gitsync_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/controllers"
)

// The temporary checkouts and scratch files a killed process left in the
// cache directory are removed when the controllers start; the persistent
// caches (git repositories, chart index and archives) are kept.
func TestLeftoversOfACrashAreRemovedAtStart(t *testing.T) {
	dir := t.TempDir()
	write := func(rel string) string {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leftovers := []string{
		write("work/checkout-123/deploy.yaml"),      // operator/gitsync
		write("work/.checkout-9.checkout-1/a.yaml"), // pkg/git's staging of a checkout
		write("git/.tmp/worktree-5/f"),              // pkg/git: fetches and pushes
		write("charts/.tmp/git-7/Chart.yaml"),       // pkg/helm: git charts
	}
	kept := []string{
		write("git/0123abcd/HEAD"),
		write("charts/index/0123abcd.yaml"),
	}

	// An operator that watches one empty namespace, so that it reconciles
	// nothing of the suite's.
	ns := newNamespace(t)
	ctx, cancel := context.WithCancel(context.Background())
	stopped, err := testenv.StartInProcessWith(ctx, restCfg, zap.New(zap.WriteTo(&logs), zap.UseDevMode(true)),
		controllers.Options{Concurrency: 1, CacheDir: dir, AllowLocalURLs: true},
		cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}})
	t.Cleanup(func() {
		cancel()
		if stopped != nil {
			<-stopped
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s: %v, want it removed", p, err)
		}
	}
	for _, p := range kept {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v, want it kept", p, err)
		}
	}
}
