package git

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/helmflux/helmflux/pkg/git/gittest"
)

func TestIsLocalURL(t *testing.T) {
	local := []string{
		"file:///srv/git/repo.git", "/srv/git/repo.git", "FILE:///srv/repo",
		"http://localhost/repo", "https://LOCALHOST:8443/repo", "http://localhost./repo", "http://git.localhost/repo",
		"http://127.0.0.1/repo", "http://127.0.0.1:3000/repo", "https://127.255.0.9/repo", "http://[::1]/repo", "http://[::1]:8080/repo",
		"http://0.0.0.0/repo", "http://[::]/repo", "http://[::ffff:127.0.0.1]/repo",
		"http://127.1/repo", "http://2130706433/repo", "http://0x7f000001/repo", "http://0177.0.0.1/repo", "http://0/repo",
		"ssh://git@localhost/repo", "ssh://git@127.0.0.1:2222/repo", "git@localhost:org/repo", "git@127.0.0.1:org/repo",
		"https://user:canary@127.0.0.1/repo",
	}
	for _, u := range local {
		if !IsLocalURL(u) {
			t.Errorf("IsLocalURL(%q) = false, want true", u)
		}
	}
	remote := []string{
		"https://example.com/repo", "http://10.0.0.1/repo", "https://[2001:db8::1]/repo", "ssh://git@github.com/org/repo",
		"git@github.com:org/repo", "https://localhost.example.com/repo", "http://128.0.0.1/repo", "http://1.2.3.4/repo",
		"https://127.0.0.1.nip.io.example/repo", "http://0x80000001/repo",
		"", "not a url", "git://localhost/repo", // invalid: refused as such, not as local
	}
	for _, u := range remote {
		if IsLocalURL(u) {
			t.Errorf("IsLocalURL(%q) = true, want false", u)
		}
	}
}

// TestCacheWithoutLocalURLs: a cache that refuses local URLs fetches from
// and pushes to neither a file:// repository nor one served on 127.0.0.1,
// and writes nothing for them; without the option both work.
func TestCacheWithoutLocalURLs(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a.yaml": "a: 1\n"})
	srv := gittest.NewHTTPServer(t, repo.Root())
	edit := func(context.Context, string, Revision) (Edit, error) {
		return Edit{Files: map[string][]byte{"a.yaml": []byte("a: 2\n")}, Message: "edit"}, nil
	}
	for _, url := range []string{repo.URL(), repo.BareDir(), srv.URL(gittest.RepoName)} {
		t.Run(strings.SplitN(url, ":", 2)[0], func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			c, err := NewCache(dir, WithoutLocalURLs())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Fetch(testCtx(t), url, Ref{}, nil); !errors.Is(err, ErrLocalURL) {
				t.Fatalf("Fetch: got %v, want ErrLocalURL", err)
			}
			_, err = c.CommitAndPush(testCtx(t), url, PushOptions{Author: Signature{Name: "t", Email: "t@example.com"}}, edit)
			if !errors.Is(err, ErrLocalURL) {
				t.Fatalf("CommitAndPush: got %v, want ErrLocalURL", err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("the refused URL left %d entries in the cache", len(entries))
			}
			mustFetch(t, newTestCache(t), url, Ref{}, nil)
		})
	}
}

// TestCacheDirsDoNotAlias: URLs that dial different repositories never
// share a cache directory, however they are spelled, and a URL dials the
// repository its cache directory is keyed on.
func TestCacheDirsDoNotAlias(t *testing.T) {
	distinct := [][]string{
		{"https://h/org/repo", "https://h/org/Repo", "https://h/org/repo.git", "https://h/org/../repo", "https://h/org/repo/..",
			"https://h/org/repo%2e%2e", "https://h/org/repo?x=1", "https://h:8443/org/repo", "http://h/org/repo",
			"ssh://git@h/org/repo", "ssh://other@h/org/repo", "git@h:org/repo", "https://h/org%2Frepo/x"},
		{"file:///srv/a/../b", "file:///srv/a/b", "file:///srv/a"},
	}
	for _, group := range distinct {
		dirs := map[string]string{}
		for _, u := range group {
			r, err := parseRemote(u)
			if err != nil {
				t.Fatalf("parseRemote(%q): %v", u, err)
			}
			if o, ok := dirs[r.dirName()]; ok {
				t.Errorf("%q and %q share the cache directory of key %q", u, o, r.key)
			}
			dirs[r.dirName()] = u
		}
	}
	same := [][2]string{
		{"HTTPS://H/org/repo/", "https://h/org/repo"},
		{"https://h:443/org/repo", "https://h/org/repo"},
		{"https://h/%6Frg/repo", "https://h/org/repo"},
		{"https://u:pw@h/org/repo", "https://h/org/repo"},
		{"file:///srv/a/../b/", "file:///srv/b"},
		{"file:///srv//b", "/srv/b"},
	}
	for _, p := range same {
		a, errA := parseRemote(p[0])
		b, errB := parseRemote(p[1])
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		if a.dirName() != b.dirName() {
			t.Errorf("%q and %q: keys %q and %q differ", p[0], p[1], a.key, b.key)
		}
		// Sharing a directory is safe only when both dial the same place.
		if strip(a.fetchURL) != strip(b.fetchURL) {
			t.Errorf("%q and %q share a cache directory but dial %q and %q", p[0], p[1], a.fetchURL, b.fetchURL)
		}
	}
	if len(filepath.Base(mustRemote(t, "file:///x/../../etc").dirName())) != 64 {
		t.Error("a cache directory name is not a hash")
	}
}

// strip drops the userinfo of an http(s) URL, which is a credential, not
// part of which repository it names.
func strip(u string) string {
	if i, j := strings.Index(u, "://"), strings.Index(u, "@"); i > 0 && j > i && !strings.HasPrefix(u, "ssh") {
		return u[:i+3] + u[j+1:]
	}
	return u
}

func mustRemote(t *testing.T, u string) *remote {
	t.Helper()
	r, err := parseRemote(u)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// FuzzRemoteKey: the URL a remote dials is keyed as the remote itself is,
// so a cache directory always holds what its key's URL serves (found: a
// file path holding "%00" was keyed as written but dialed decoded).
func FuzzRemoteKey(f *testing.F) {
	for _, s := range []string{"https://h/a/../b/", "file:///a/./b/../c//", "git@h:a/b/", "ssh://u@h:22/a", "https://h/%2e%2e/x", "/srv//x/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r, err := parseRemote(raw)
		if err != nil || r.scheme == "ssh" {
			return // left out: scp-like spellings, which go-git and git parse alike, are dialed as written
		}
		again, err := parseRemote(r.fetchURL)
		if err != nil {
			t.Fatalf("the dialed URL %q of %q does not parse: %v", r.fetchURL, raw, err)
		}
		if again.key != r.key {
			t.Fatalf("%q is keyed %q but dials %q, keyed %q", raw, r.key, r.fetchURL, again.key)
		}
	})
}

// remoteName is the name under which redirect tests reach a loopback
// server as if it were elsewhere: the cache dials 127.0.0.1 for it
// (WithDialContext), while the URL, all the up-front check judges, names no
// loopback host. httptest's certificate is valid for it.
const remoteName = "example.com"

// dialRemoteName dials 127.0.0.1 for remoteName, like an /etc/hosts entry.
func dialRemoteName(ctx context.Context, network, addr string) (net.Conn, error) {
	if host, port, err := net.SplitHostPort(addr); err == nil && host == remoteName {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// redirector is a git server "elsewhere" that proxies to target, except
// that it redirects what redirect selects to target on 127.0.0.1.
func redirector(t *testing.T, target string, useTLS bool, redirect func(*http.Request) bool) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if redirect(r) {
			http.Redirect(w, r, target+"/"+gittest.RepoName+"/info/refs?"+r.URL.RawQuery, http.StatusFound)
			return
		}
		r.URL.Path = strings.Replace(r.URL.Path, "/moved", "/"+gittest.RepoName, 1)
		proxy.ServeHTTP(w, r)
	})
	var srv *httptest.Server
	if useTLS {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return strings.Replace(srv.URL, "127.0.0.1", remoteName, 1) + "/moved"
}

// TestCacheWithoutLocalURLsRefusesRedirectsToLoopback: a remote that is not
// loopback by its URL but redirects the ref advertisement to a loopback
// server reaches it neither for the fetch nor for the push (go-git would
// send the upload-pack or receive-pack POST there); over https the CA
// bundle still works. Without the refusal the same remote is followed.
func TestCacheWithoutLocalURLsRefusesRedirectsToLoopback(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[useTLS], func(t *testing.T) {
			repo := gittest.NewRepo(t, map[string]string{"a.yaml": "a: 1\n"})
			var srv *gittest.HTTPServer
			if useTLS {
				srv = gittest.NewHTTPSServer(t, repo.Root())
			} else {
				srv = gittest.NewHTTPServer(t, repo.Root())
			}
			target := strings.TrimSuffix(srv.URL(gittest.RepoName), "/"+gittest.RepoName)
			var auth *Auth
			if useTLS {
				auth = &Auth{CABundle: srv.CACert()}
			}
			always := redirector(t, target, useTLS, func(*http.Request) bool { return true })
			onPush := redirector(t, target, useTLS, func(r *http.Request) bool {
				return r.URL.Query().Get("service") == "git-receive-pack"
			})
			edit := func(context.Context, string, Revision) (Edit, error) {
				return Edit{Files: map[string][]byte{"a.yaml": []byte("a: 2\n")}, Message: "edit"}, nil
			}
			push := PushOptions{Author: Signature{Name: "t", Email: "t@example.com"}, Auth: auth}

			refusing := newTestCache(t, WithoutLocalURLs(), WithDialContext(dialRemoteName))
			srv.ResetRequests()
			if _, err := refusing.Fetch(testCtx(t), always, Ref{}, auth); !errors.Is(err, ErrLocalURL) {
				t.Fatalf("Fetch through a redirect to loopback: got %v, want ErrLocalURL", err)
			}
			if n := len(srv.Requests()); n > 0 {
				t.Fatalf("the loopback server got %d requests: %+v", n, srv.Requests())
			}
			// The proxied fetch is fine; the push's redirect is not.
			mustFetch(t, refusing, onPush, Ref{}, auth)
			if _, err := refusing.CommitAndPush(testCtx(t), onPush, push, edit); !errors.Is(err, ErrLocalURL) {
				t.Fatalf("CommitAndPush through a redirect to loopback: got %v, want ErrLocalURL", err)
			}
			if got := repo.FileAt(repo.RemoteHead(gittest.DefaultBranch), "a.yaml"); got != "a: 1\n" {
				t.Fatalf("the refused push changed the repository: a.yaml = %q", got)
			}

			allowing := newTestCache(t, WithDialContext(dialRemoteName))
			mustFetch(t, allowing, always, Ref{}, auth)
			if _, err := allowing.CommitAndPush(testCtx(t), onPush, push, edit); err != nil {
				t.Fatalf("CommitAndPush without the refusal: %v", err)
			}
		})
	}
}
