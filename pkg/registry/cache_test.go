package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

func TestTagTTL(t *testing.T) {
	srv := registrytest.NewServer(t)
	srv.PushTags(t, "app", "v1")
	clock := newFakeClock()
	c := newClient(t, srv, Options{Now: clock.Now, TagTTL: time.Minute})
	image := srv.Host() + "/app"
	scan := func(force bool) Result {
		t.Helper()
		srv.Reset()
		res, err := c.Scan(context.Background(), image, ScanOptions{Force: force})
		if err != nil || !res.Complete {
			t.Fatalf("scan: Complete=%v err=%v", res.Complete, err)
		}
		return res
	}

	first := scan(false)
	if first.FromCache || !first.ScannedAt.Equal(clock.Now()) {
		t.Fatalf("first scan FromCache=%v ScannedAt=%v", first.FromCache, first.ScannedAt)
	}

	clock.Add(59 * time.Second)
	res := scan(false)
	if !res.FromCache || !res.ScannedAt.Equal(first.ScannedAt) || len(srv.Requests()) != 0 {
		t.Fatalf("within TTL: FromCache=%v ScannedAt=%v requests=%d; want the cached list, no request",
			res.FromCache, res.ScannedAt, len(srv.Requests()))
	}

	if res := scan(true); res.FromCache || count(srv.Requests(), "GET", "/tags/list") != 1 {
		t.Fatalf("Force: FromCache=%v, want a listing", res.FromCache)
	}

	clock.Add(61 * time.Second)
	srv.PushTags(t, "app", "v2")
	if res := scan(false); res.FromCache || len(res.Tags) != 2 {
		t.Fatalf("after TTL: FromCache=%v tags=%v, want a new listing with v2", res.FromCache, tagNames(res))
	}
}

func TestNegativeTagTTLAlwaysLists(t *testing.T) {
	srv := registrytest.NewServer(t)
	srv.PushTags(t, "app", "v1")
	c := newClient(t, srv, Options{TagTTL: -1})
	for range 2 {
		if res, err := c.Scan(context.Background(), srv.Host()+"/app", ScanOptions{}); err != nil || res.FromCache {
			t.Fatalf("FromCache=%v err=%v, want a listing every time", res.FromCache, err)
		}
	}
}

func TestForget(t *testing.T) {
	srv := registrytest.NewServer(t)
	srv.Push(t, "app", "v1", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	c := newClient(t, srv, Options{CacheDir: t.TempDir()})
	image := srv.Host() + "/app"
	if _, err := c.Scan(context.Background(), image, ScanOptions{Created: all}); err != nil {
		t.Fatal(err)
	}

	srv.PushTags(t, "app", "v2")
	c.Forget(image)
	srv.Reset()
	res, err := c.Scan(context.Background(), image, ScanOptions{Created: only("v1")})
	if err != nil || res.FromCache || len(res.Tags) != 2 {
		t.Fatalf("after Forget: FromCache=%v tags=%v err=%v; want a new listing", res.FromCache, tagNames(res), err)
	}
	// Times survive Forget: v1's is not read again.
	if n := countContains(srv.Requests(), "", "/manifests/") + countContains(srv.Requests(), "", "/blobs/"); n != 0 {
		t.Errorf("%d manifest/blob requests after Forget, want 0", n)
	}
}

func TestForgetDuringListingExpiresIt(t *testing.T) {
	srv := registrytest.NewServer(t)
	srv.PushTags(t, "app", "v1")
	c := newClient(t, srv, Options{})
	image := srv.Host() + "/app"
	// The webhook arrives while the list request is in flight.
	srv.Fail(func(r *http.Request, n int) (int, http.Header, string, bool) {
		if strings.HasSuffix(r.URL.Path, "/tags/list") {
			c.Forget(image)
		}
		return 0, nil, "", false
	})
	if _, err := c.Scan(context.Background(), image, ScanOptions{}); err != nil {
		t.Fatal(err)
	}
	srv.Fail(nil)
	res, err := c.Scan(context.Background(), image, ScanOptions{})
	if err != nil || res.FromCache {
		t.Fatalf("FromCache=%v err=%v; a listing that raced a Forget must not be served", res.FromCache, err)
	}
}

func TestFileCacheSurvivesRestart(t *testing.T) {
	srv := registrytest.NewServer(t)
	created := time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
	digest := srv.Push(t, "app", "v1", created)
	srv.PushTags(t, "app", "v2")
	dir := t.TempDir()
	clock := newFakeClock()
	image := srv.Host() + "/app"

	before := newClient(t, srv, Options{CacheDir: dir, Now: clock.Now})
	first, err := before.Scan(context.Background(), image, ScanOptions{Created: only("v1")})
	if err != nil {
		t.Fatal(err)
	}

	// A new process, a minute later: nothing is asked of the registry.
	clock.Add(time.Minute)
	srv.Reset()
	after := newClient(t, srv, Options{CacheDir: dir, Now: clock.Now})
	res, err := after.Scan(context.Background(), image, ScanOptions{Created: only("v1")})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests after restart, want 0", n)
	}
	if !res.FromCache || !res.Complete || !res.ScannedAt.Equal(first.ScannedAt) {
		t.Errorf("FromCache=%v Complete=%v ScannedAt=%v, want the stored listing of %v", res.FromCache, res.Complete, res.ScannedAt, first.ScannedAt)
	}
	if got := res.Tags[0]; got.Name != "v1" || got.Digest != digest || !got.Created.Equal(created) {
		t.Errorf("v1 = %+v, want digest %s created %v", got, digest, created)
	}

	// Past the TTL the list is read again, but known times are not.
	clock.Add(time.Hour)
	srv.Reset()
	if _, err := after.Scan(context.Background(), image, ScanOptions{Created: only("v1")}); err != nil {
		t.Fatal(err)
	}
	if reqs := srv.Requests(); countContains(reqs, "", "/manifests/")+countContains(reqs, "", "/blobs/") != 0 {
		t.Errorf("requests %v, want no manifest or blob read for a known digest", reqs)
	}
}

func TestFileCacheLayout(t *testing.T) {
	srv := registrytest.NewServer(t)
	srv.PushTags(t, "app", "v1")
	dir := filepath.Join(t.TempDir(), "cache")
	c := newClient(t, srv, Options{CacheDir: dir})
	if _, err := c.Scan(context.Background(), srv.Host()+"/app", ScanOptions{}); err != nil {
		t.Fatal(err)
	}
	file := cacheFile(dir, srv.Host()+"/app", anonymousLogin)
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatalf("cache file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	di, _ := os.Stat(dir)
	if di.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", di.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 { // the login key and the repository's directory
		t.Errorf("dir holds %d entries, want 2", len(entries))
	}
	entries, _ = os.ReadDir(filepath.Dir(file))
	if len(entries) != 1 {
		t.Errorf("the repository's dir holds %d files, want 1 (no temporary files left)", len(entries))
	}
}

// cacheFile is where a Client with dir keeps repo's listing for login.
func cacheFile(dir, repo, login string) string {
	sum := sha256.Sum256([]byte(repo))
	return filepath.Join(dir, hex.EncodeToString(sum[:]), login+".json")
}

func TestFileCacheUntrustedFilesIgnored(t *testing.T) {
	srv := registrytest.NewServer(t)
	srv.PushTags(t, "app", "v1")
	image := srv.Host() + "/app"

	// A good file to damage in several ways.
	goodDir := t.TempDir()
	good := newClient(t, srv, Options{CacheDir: goodDir})
	if _, err := good.Scan(context.Background(), image, ScanOptions{}); err != nil {
		t.Fatal(err)
	}
	valid, err := os.ReadFile(cacheFile(goodDir, image, anonymousLogin))
	if err != nil {
		t.Fatal(err)
	}
	otherDir := t.TempDir()
	other := newClient(t, srv, Options{CacheDir: otherDir})
	srv.PushTags(t, "other", "v9")
	if _, err := other.Scan(context.Background(), srv.Host()+"/other", ScanOptions{}); err != nil {
		t.Fatal(err)
	}
	forOther, _ := os.ReadFile(cacheFile(otherDir, srv.Host()+"/other", anonymousLogin))

	cases := map[string][]byte{
		"empty":           {},
		"truncated":       valid[:len(valid)/2],
		"garbage":         []byte("\x00\x01not json"),
		"tampered tags":   []byte(strings.Replace(string(valid), `"v1"`, `"v7"`, 1)),
		"other version":   []byte(strings.Replace(string(valid), `"version":2`, `"version":9`, 1)),
		"other repo file": forOther,
	}
	for name2, data := range cases {
		t.Run(name2, func(t *testing.T) {
			dir := t.TempDir()
			path := cacheFile(dir, image, anonymousLogin)
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			srv.Reset()
			c := newClient(t, srv, Options{CacheDir: dir})
			res, err := c.Scan(context.Background(), image, ScanOptions{})
			if err != nil || res.FromCache || len(res.Tags) != 1 || res.Tags[0].Name != "v1" {
				t.Fatalf("FromCache=%v tags=%v err=%v; want a fresh listing of v1", res.FromCache, tagNames(res), err)
			}
			if count(srv.Requests(), "GET", "/tags/list") != 1 {
				t.Error("the registry was not asked")
			}
			// Replaced by a good file another process can use.
			srv.Reset()
			again := newClient(t, srv, Options{CacheDir: dir})
			if res, err := again.Scan(context.Background(), image, ScanOptions{}); err != nil || !res.FromCache {
				t.Errorf("after replacement: FromCache=%v err=%v", res.FromCache, err)
			}
		})
	}
}

func TestMemoryCacheEvictsLeastRecentlyUsed(t *testing.T) {
	srv := registrytest.NewServer(t)
	for _, r := range []string{"a", "b", "c"} {
		srv.PushTags(t, r, "v1")
	}
	scan := func(c *Client, repo string) Result {
		t.Helper()
		res, err := c.Scan(context.Background(), srv.Host()+"/"+repo, ScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	mem := newClient(t, srv, Options{MaxEntries: 2})
	scan(mem, "a")
	scan(mem, "b")
	scan(mem, "a") // a is now more recent than b
	scan(mem, "c") // evicts b
	if !scan(mem, "a").FromCache {
		t.Error("a was evicted, want b evicted")
	}
	if scan(mem, "b").FromCache {
		t.Error("b served from memory, want it evicted")
	}
	if got := mem.cache.mem.Len(); got != 2 {
		t.Errorf("memory holds %d entries, want 2", got)
	}

	// With a directory, evicted entries come back from disk.
	disk := newClient(t, srv, Options{MaxEntries: 1, CacheDir: t.TempDir()})
	scan(disk, "a")
	scan(disk, "b")
	srv.Reset()
	if !scan(disk, "a").FromCache || len(srv.Requests()) != 0 {
		t.Error("evicted entry not read back from its file")
	}
}

func TestCacheNeverStoresIncompleteListing(t *testing.T) {
	dir := t.TempDir()
	c, err := newCache(dir, 10, 10, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	e := &entry{Repository: "r.example/a", Login: anonymousLogin, Complete: false, ScannedAt: time.Now(), Tags: []string{"v1"}}
	if err := c.write(e); err != nil {
		t.Fatal(err)
	}
	if _, err := c.read("r.example/a", anonymousLogin); err == nil {
		t.Error("an entry not marked complete was read back as usable")
	}
}

// TestCacheIsPerLogin: a tag list read with one login is not served to a
// scan with none or another, from memory or from the file cache after a
// restart: those ask the registry, which refuses them. The files hold no
// credential.
func TestCacheIsPerLogin(t *testing.T) {
	const user, canary = "tenant-a", "canary-Pass-5f3e"
	srv := registrytest.NewServer(t, registrytest.WithBasicAuth(user, canary))
	srv.PushTags(t, "private", "v1", "v2")
	login := func(u, p string) Credentials {
		t.Helper()
		c, err := ParseDockerConfig([]byte(fmt.Sprintf(`{"auths":{%q:{"username":%q,"password":%q}}}`, srv.Host(), u, p)))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, other := login(user, canary), login("tenant-b", "other-secret")
	image := srv.Host() + "/private"
	dir := t.TempDir()
	ctx := context.Background()

	c := newClient(t, srv, Options{CacheDir: dir, TagTTL: time.Hour})
	if res, err := c.Scan(ctx, image, ScanOptions{Credentials: a}); err != nil || len(res.Tags) != 2 {
		t.Fatalf("scan with A's login: tags %v, err %v", tagNames(res), err)
	}
	refused := func(c *Client, what string, creds Credentials) {
		t.Helper()
		srv.Reset()
		res, err := c.Scan(ctx, image, ScanOptions{Credentials: creds})
		if err == nil || len(res.Tags) > 0 || res.FromCache {
			t.Errorf("%s: tags %v, fromCache %v, err %v; want the registry's refusal", what, tagNames(res), res.FromCache, err)
		}
		if count(srv.Requests(), "GET", "/tags/list") == 0 && count(srv.Requests(), "GET", "/v2/") == 0 {
			t.Errorf("%s: no request to the registry", what)
		}
	}
	refused(c, "anonymous scan", Credentials{})
	refused(c, "scan with another login", other)
	if res, ok := c.Cached(image, Credentials{}); ok {
		t.Errorf("Cached without a login: %v", tagNames(res))
	}
	if res, ok := c.Cached(image, a); !ok || len(res.Tags) != 2 {
		t.Errorf("Cached with A's login: %v, %v", tagNames(res), ok)
	}

	restarted := newClient(t, srv, Options{CacheDir: dir, TagTTL: time.Hour})
	refused(restarted, "anonymous scan after a restart", Credentials{})
	srv.Reset()
	if res, err := restarted.Scan(ctx, image, ScanOptions{Credentials: a}); err != nil || !res.FromCache || len(res.Tags) != 2 {
		t.Errorf("scan with A's login after a restart: tags %v, fromCache %v, err %v; want the cached list", tagNames(res), res.FromCache, err)
	}

	// Forget reaches every login's listing, also one only on disk.
	again := newClient(t, srv, Options{CacheDir: dir, TagTTL: time.Hour})
	again.Forget(image)
	if res, err := again.Scan(ctx, image, ScanOptions{Credentials: a}); err != nil || res.FromCache {
		t.Errorf("scan with A's login after Forget: fromCache %v, err %v; want a listing", res.FromCache, err)
	}

	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		for _, s := range []string{canary, base64.StdEncoding.EncodeToString([]byte(user + ":" + canary)), user} {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("cache file %s holds a credential", p)
			}
		}
		return nil
	})
}
