package gitsync_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/controllers"
)

// The operator evicts its caches by size and age: filled beyond
// --cache-max-size with chart archives, registry tag lists and git
// repositories, the least recently used go until the rest fit, and an entry
// unused for longer than --cache-max-age goes whatever the size.
func TestCachesAreEvictedBySizeAndAge(t *testing.T) {
	dir := t.TempDir()
	// put writes an entry of an area (a file, or a directory holding
	// one) last used age ago, and returns the entry.
	put := func(area, entry, inside string, size int, age time.Duration) string {
		t.Helper()
		top := filepath.Join(dir, area, entry)
		p := filepath.Join(top, inside)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
		when := time.Now().Add(-age)
		if err := os.Chtimes(top, when, when); err != nil {
			t.Fatal(err)
		}
		return top
	}
	const kib = 1 << 10
	ancient := put("charts/charts", "ancient.tgz", "", kib, 30*24*time.Hour) // over the age bound
	oldest := []string{
		put("git", "aaaa", "objects/pack", 40*kib, 5*time.Hour),
		put("charts/charts", "old.tgz", "", 40*kib, 4*time.Hour),
		put("registry", "0123", "login.json", 40*kib, 3*time.Hour),
	}
	newest := []string{
		put("git", "bbbb", "objects/pack", 40*kib, 2*time.Hour),
		put("charts/index", "new.yaml", "", 40*kib, time.Hour),
		put("registry", "4567", "login.json", 40*kib, time.Minute),
	}

	ns := newNamespace(t)
	ctx, cancel := context.WithCancel(context.Background())
	stopped, err := testenv.StartInProcessWith(ctx, restCfg, zap.New(zap.WriteTo(&logs), zap.UseDevMode(true)),
		controllers.Options{Concurrency: 1, CacheDir: dir, AllowLocalURLs: true,
			CacheMaxSize: 130 * kib, CacheMaxAge: 7 * 24 * time.Hour, CacheSweepInterval: time.Hour},
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
	t.Cleanup(func() {
		if t.Failed() {
			_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
				if err == nil {
					t.Log(p, info.Size(), info.ModTime())
				}
				return nil
			})
		}
	})
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	eventually(t, "the oldest cache entries evicted", func() (bool, string) {
		for _, p := range append([]string{ancient}, oldest...) {
			if exists(p) {
				return false, p + " still there"
			}
		}
		return true, ""
	})
	for _, p := range append(newest, filepath.Join(dir, "registry", "login.key")) {
		if !exists(p) {
			t.Errorf("%s evicted, want it kept (the rest fit)", p)
		}
	}
}
