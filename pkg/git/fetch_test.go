package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/helmflux/helmflux/pkg/git/gittest"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newTestCache(t *testing.T, opts ...Option) *Cache {
	t.Helper()
	c, err := NewCache(filepath.Join(t.TempDir(), "cache"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustFetch(t *testing.T, c *Cache, url string, ref Ref, auth *Auth) Revision {
	t.Helper()
	rev, err := c.Fetch(testCtx(t), url, ref, auth)
	if err != nil {
		t.Fatalf("Fetch(%s, %+v): %v", url, ref, err)
	}
	return rev
}

// packs lists the packfiles of url's cache entry.
func packs(t *testing.T, c *Cache, url string) []string {
	t.Helper()
	r, err := parseRemote(url)
	if err != nil {
		t.Fatal(err)
	}
	p, err := filepath.Glob(filepath.Join(c.repoDir(r), "objects", "pack", "*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// assertNoSecret fails if err's message holds any of the secrets.
func assertNoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error leaks secret %q: %v", s, err)
		}
	}
}

func TestFetchFileBranch(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a.yaml": "a: 1\n"})
	repo.Branch("dev")
	dev := repo.CommitFiles("dev work", map[string]string{"b.yaml": "b: 2\n"})
	repo.Switch(gittest.DefaultBranch)
	head := repo.Head()
	c := newTestCache(t)

	tests := []struct {
		name string
		ref  Ref
		want Revision
	}{
		{"default branch", Ref{}, Revision{Ref: "main", Hash: head}},
		{"branch main", Ref{Branch: "main"}, Revision{Ref: "main", Hash: head}},
		{"branch dev", Ref{Branch: "dev"}, Revision{Ref: "dev", Hash: dev}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustFetch(t, c, repo.URL(), tt.ref, nil)
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}

	_, err := c.Fetch(testCtx(t), repo.URL(), Ref{Branch: "nope"}, nil)
	if !errors.Is(err, ErrRefNotFound) {
		t.Errorf("missing branch: got %v, want ErrRefNotFound", err)
	}
	_, err = c.Fetch(testCtx(t), repo.URL(), Ref{Branch: "main", Tag: "v1"}, nil)
	if !errors.Is(err, ErrInvalidInput) {
		t.Errorf("two refs: got %v, want ErrInvalidInput", err)
	}
}

func TestFetchRemoteHEAD(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a.yaml": "a: 1\n"})
	first := repo.Head()
	repo.Branch("trunk")
	trunk := repo.CommitFiles("trunk work", map[string]string{"a.yaml": "a: 2\n"})
	orphan := repo.CommitFiles("on no branch", nil)
	repo.ResetHard(trunk)
	repo.Commit("trunk again") // orphan is now reachable from no branch
	trunk = repo.Head()
	srv := gittest.NewHTTPServer(t, repo.Root())

	// git http-backend does not name a detached HEAD's target, so go-git
	// guesses the branch at the same commit, as git clone does; go-git's
	// own server (file://) does not advertise a detached HEAD at all.
	fileURL, httpURL := repo.URL(), srv.URL(gittest.RepoName)
	tests := []struct {
		name    string
		url     string
		head    string
		want    Revision
		wantErr error
	}{
		{name: "default branch renamed, file", url: fileURL, head: "trunk", want: Revision{Ref: "trunk", Hash: trunk}},
		{name: "default branch renamed, http", url: httpURL, head: "trunk", want: Revision{Ref: "trunk", Hash: trunk}},
		{name: "detached at a branch tip, http", url: httpURL, head: first, want: Revision{Ref: "main", Hash: first}},
		{name: "detached at a branch tip, file", url: fileURL, head: first, wantErr: ErrRefNotFound},
		{name: "detached elsewhere, http", url: httpURL, head: orphan, wantErr: ErrRefNotFound},
		{name: "detached elsewhere, file", url: fileURL, head: orphan, wantErr: ErrRefNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo.SetRemoteHEAD(tt.head)
			got, err := newTestCache(t).Fetch(testCtx(t), tt.url, Ref{}, nil)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestFetchHTTPBasicAuth(t *testing.T) {
	const user, pass = "flux", "canary-Pa55word-7c1e"
	repo := gittest.NewRepo(t, map[string]string{"a.yaml": "a: 1\n"})
	srv := gittest.NewHTTPServer(t, repo.Root(), gittest.WithBasicAuth(user, pass))
	url := srv.URL(gittest.RepoName)

	c := newTestCache(t)
	// The test server is plain http://: each fetch with credentials opts in.
	rev := mustFetch(t, c, url, Ref{Branch: "main"}, &Auth{Username: user, Password: pass, AllowInsecureHTTP: true})
	if rev.Hash != repo.Head() {
		t.Fatalf("got %s, want %s", rev.Hash, repo.Head())
	}

	tests := []struct {
		name    string
		url     string
		auth    *Auth
		secrets []string
	}{
		{"wrong password", url, &Auth{Username: user, Password: "canary-Wr0ng-9f2d", AllowInsecureHTTP: true}, []string{"canary-Wr0ng-9f2d", pass}},
		{"no credentials", url, nil, []string{pass}},
		{"wrong password in url", strings.Replace(url, "://", "://flux:canary-InUrl-5b3a@", 1), &Auth{AllowInsecureHTTP: true}, []string{"canary-InUrl-5b3a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newTestCache(t).Fetch(testCtx(t), tt.url, Ref{Branch: "main"}, tt.auth)
			if !errors.Is(err, ErrAuthentication) {
				t.Fatalf("got %v, want ErrAuthentication", err)
			}
			assertNoSecret(t, err, tt.secrets...)
		})
	}

	// Credentials in the URL are honoured too, and never stored on disk.
	withCreds := strings.Replace(url, "://", "://"+user+":"+pass+"@", 1)
	c2 := newTestCache(t)
	if rev := mustFetch(t, c2, withCreds, Ref{}, &Auth{AllowInsecureHTTP: true}); rev.Hash != repo.Head() {
		t.Fatalf("url credentials: got %s", rev.Hash)
	}
	assertNoFileContains(t, c2.dir, pass)
}

func assertNoFileContains(t *testing.T, dir, secret string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s contains the secret", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFetchHTTPBearerToken(t *testing.T) {
	const token = "canary-t0ken-41d8"
	repo := gittest.NewRepo(t, map[string]string{"a.yaml": "a: 1\n"})
	srv := gittest.NewHTTPServer(t, repo.Root(), gittest.WithBearerToken(token))
	url := srv.URL(gittest.RepoName)

	rev := mustFetch(t, newTestCache(t), url, Ref{}, &Auth{BearerToken: token, AllowInsecureHTTP: true})
	if rev.Hash != repo.Head() {
		t.Fatalf("got %s, want %s", rev.Hash, repo.Head())
	}
	_, err := newTestCache(t).Fetch(testCtx(t), url, Ref{}, &Auth{BearerToken: "canary-bad-t0ken-0a9b", AllowInsecureHTTP: true})
	if !errors.Is(err, ErrAuthentication) {
		t.Fatalf("wrong token: got %v, want ErrAuthentication", err)
	}
	assertNoSecret(t, err, "canary-bad-t0ken-0a9b", token)
}

func TestFetchHTTPSWithCABundle(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a.yaml": "a: 1\n"})
	srv := gittest.NewHTTPSServer(t, repo.Root(), gittest.WithBasicAuth("u", "p"))
	url := srv.URL(gittest.RepoName)

	_, err := newTestCache(t).Fetch(testCtx(t), url, Ref{}, &Auth{Username: "u", Password: "p"})
	if err == nil {
		t.Fatal("fetch from a server with an untrusted certificate succeeded")
	}
	auth, err := AuthFromSecret(map[string][]byte{"username": []byte("u"), "password": []byte("p"), "ca.crt": srv.CACert()})
	if err != nil {
		t.Fatal(err)
	}
	if rev := mustFetch(t, newTestCache(t), url, Ref{}, auth); rev.Hash != repo.Head() {
		t.Fatalf("got %s, want %s", rev.Hash, repo.Head())
	}
}

func TestFetchSSH(t *testing.T) {
	const passphrase = "canary-passphrase-e3b0"
	repo := gittest.NewRepo(t, map[string]string{"a.yaml": "a: 1\n"})
	plainKey := gittest.NewSSHKey(t, "")
	encKey := gittest.NewSSHKey(t, passphrase)
	strangerKey := gittest.NewSSHKey(t, "")
	srv := gittest.NewSSHServer(t, repo.Root(), plainKey.Public, encKey.Public)
	url := srv.URL(gittest.RepoName)

	otherHost := gittest.NewSSHKey(t, "").Public // some other key, as if the host changed
	unknownHosts := []byte(knownhosts.Line([]string{"[127.0.0.1]:1"}, srv.HostKey()) + "\n")
	mismatchHosts := []byte(knownhosts.Line([]string{srv.Addr()}, otherHost) + "\n")
	fp := ssh.FingerprintSHA256(srv.HostKey())

	tests := []struct {
		name     string
		auth     *Auth
		wantErr  error
		wantText []string
	}{
		{name: "known host", auth: &Auth{Identity: plainKey.PrivatePEM, KnownHosts: srv.KnownHosts()}},
		{name: "encrypted identity", auth: &Auth{Identity: encKey.PrivatePEM, Passphrase: []byte(passphrase), KnownHosts: srv.KnownHosts()}},
		{name: "insecure ignore host key", auth: &Auth{Identity: plainKey.PrivatePEM, InsecureIgnoreHostKey: true}},
		{
			name: "unknown host", auth: &Auth{Identity: plainKey.PrivatePEM, KnownHosts: unknownHosts},
			wantErr: ErrUnknownHostKey, wantText: []string{srv.Addr(), fp},
		},
		{
			name: "host key mismatch", auth: &Auth{Identity: plainKey.PrivatePEM, KnownHosts: mismatchHosts},
			wantErr: ErrHostKeyMismatch, wantText: []string{srv.Addr(), fp},
		},
		{name: "no known_hosts", auth: &Auth{Identity: plainKey.PrivatePEM}, wantErr: ErrInvalidInput, wantText: []string{"known_hosts"}},
		{name: "no identity", auth: &Auth{KnownHosts: srv.KnownHosts()}, wantErr: ErrInvalidInput},
		{name: "key not authorised", auth: &Auth{Identity: strangerKey.PrivatePEM, KnownHosts: srv.KnownHosts()}, wantErr: ErrAuthentication},
		{
			name: "wrong passphrase", auth: &Auth{Identity: encKey.PrivatePEM, Passphrase: []byte("canary-wrong-pass-77aa"), KnownHosts: srv.KnownHosts()},
			wantErr: ErrInvalidInput,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rev, err := newTestCache(t).Fetch(testCtx(t), url, Ref{Branch: "main"}, tt.auth)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if rev.Hash != repo.Head() {
					t.Fatalf("got %s, want %s", rev.Hash, repo.Head())
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			assertNoSecret(t, err, passphrase, "canary-wrong-pass-77aa")
		})
	}
}

// sshConfigMap stands in for ~/.ssh/config: alias -> key -> value.
type sshConfigMap map[string]map[string]string

func (m sshConfigMap) Get(alias, key string) string { return m[alias][key] }

func TestFetchSCPLikeURL(t *testing.T) {
	// scp-like URLs cannot carry a port, so an ssh_config alias maps the
	// host to the test server, as ~/.ssh/config would. Not parallel: it
	// swaps go-git's global ssh_config reader.
	repo := gittest.NewRepo(t, map[string]string{"a.yaml": "a: 1\n"})
	key := gittest.NewSSHKey(t, "")
	srv := gittest.NewSSHServer(t, repo.Root(), key.Public)
	host, port, _ := strings.Cut(srv.Addr(), ":")
	old := gitssh.DefaultSSHConfig
	gitssh.DefaultSSHConfig = sshConfigMap{"gitserver": {"Hostname": host, "Port": port}}
	t.Cleanup(func() { gitssh.DefaultSSHConfig = old })

	rev := mustFetch(t, newTestCache(t), "git@gitserver:"+gittest.RepoName, Ref{}, &Auth{Identity: key.PrivatePEM, KnownHosts: srv.KnownHosts()})
	if rev.Hash != repo.Head() || rev.Ref != "main" {
		t.Fatalf("got %v, want main@%s", rev, repo.Head())
	}
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatal(err)
	}
}

func TestIncrementalFetch(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a.yaml": strings.Repeat("a: 1\n", 1000)})
	srv := gittest.NewHTTPServer(t, repo.Root())
	url := srv.URL(gittest.RepoName)
	c := newTestCache(t)

	first := mustFetch(t, c, url, Ref{}, nil)
	before := packs(t, c, url)
	if len(before) != 1 {
		t.Fatalf("after the first fetch: %d packfiles, want 1", len(before))
	}

	// Unchanged remote: one ref advertisement, no pack negotiation at all.
	srv.ResetRequests()
	if again := mustFetch(t, c, url, Ref{}, nil); again != first {
		t.Fatalf("unchanged remote: got %v, want %v", again, first)
	}
	for _, r := range srv.Requests() {
		if r.Method != "GET" {
			t.Errorf("unchanged remote caused %s %s", r.Method, r.Path)
		}
	}

	// A new commit: the client says what it has and receives one new pack
	// next to the old one, which is untouched (a re-clone would replace it).
	next := repo.CommitFiles("second", map[string]string{"b.yaml": "b: 2\n"})
	srv.ResetRequests()
	got := mustFetch(t, c, url, Ref{}, nil)
	if got.Hash != next {
		t.Fatalf("got %s, want %s", got.Hash, next)
	}
	var negotiated bool
	for _, r := range srv.Requests() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/git-upload-pack") {
			if !bytes.Contains(r.Body, []byte("have "+first.Hash)) {
				t.Errorf("upload-pack request does not send have %s:\n%q", first.Hash, r.Body)
			}
			negotiated = true
		}
	}
	if !negotiated {
		t.Error("no upload-pack request for the new commit")
	}
	after := packs(t, c, url)
	if len(after) != 2 {
		t.Fatalf("after the second fetch: %d packfiles, want 2", len(after))
	}
	if _, err := os.Stat(before[0]); err != nil {
		t.Errorf("first packfile is gone, the cache was re-cloned: %v", err)
	}
}

// TestManyFetchesKeepFewPacks: every fetch adds a packfile, and lookups go
// through all of them, so the cache repacks once it holds more than
// maxPacks; every commit fetched stays readable.
func TestManyFetchesKeepFewPacks(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"n.yaml": "n: 0\n"})
	url := repo.URL()
	c := newTestCache(t)
	var revs []Revision
	for i := 1; i <= 2*maxPacks; i++ {
		repo.CommitFiles(fmt.Sprintf("commit %d", i), map[string]string{"n.yaml": fmt.Sprintf("n: %d\n", i)})
		revs = append(revs, mustFetch(t, c, url, Ref{}, nil))
		if n := len(packs(t, c, url)); n > maxPacks {
			t.Fatalf("after %d fetches: %d packfiles, want at most %d", i, n, maxPacks)
		}
	}
	for i, rev := range revs {
		b, err := c.ReadFile(testCtx(t), url, rev, "n.yaml", 1<<10)
		if err != nil || string(b) != fmt.Sprintf("n: %d\n", i+1) {
			t.Errorf("n.yaml at commit %d after the repacks: %q, %v", i+1, b, err)
		}
	}
}

func TestFetchForcePush(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a.yaml": "v: 1\n"})
	base := repo.Head()
	repo.CommitFiles("two", map[string]string{"a.yaml": "v: 2\n"})
	c := newTestCache(t)
	mustFetch(t, c, repo.URL(), Ref{Branch: "main"}, nil)

	repo.ResetHard(base)
	rewritten := repo.CommitFiles("rewritten", map[string]string{"a.yaml": "v: 3\n"})
	got := mustFetch(t, c, repo.URL(), Ref{Branch: "main"}, nil)
	if got.Hash != rewritten {
		t.Fatalf("after force-push: got %s, want %s", got.Hash, rewritten)
	}
	b, err := c.ReadFile(testCtx(t), repo.URL(), got, "a.yaml", 100)
	if err != nil || string(b) != "v: 3\n" {
		t.Fatalf("ReadFile after force-push = %q, %v", b, err)
	}

	// Moving the branch back to a commit already cached needs no transfer
	// but must still be followed.
	repo.ResetHard(base)
	repo.Commit("empty on base")
	back := mustFetch(t, c, repo.URL(), Ref{Branch: "main"}, nil)
	if back.Hash != repo.Head() {
		t.Fatalf("got %s, want %s", back.Hash, repo.Head())
	}
}

func TestFetchTagAndSemVer(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"v": "0"})
	commits := map[string]string{}
	tag := func(name string, annotated bool) {
		h := repo.CommitFiles("release "+name, map[string]string{"v": name})
		if annotated {
			repo.AnnotatedTag(name, "release "+name)
		} else {
			repo.Tag(name)
		}
		commits[name] = h
	}
	tag("v1.0.0", false)
	tag("v1.2.0", true)
	tag("1.1.5", false)
	tag("v1.3.0-rc.1", false)
	tag("2.0.0", false)
	tag("latest", false)

	tests := []struct {
		name    string
		ref     Ref
		want    string
		wantErr error
	}{
		{name: "lightweight tag", ref: Ref{Tag: "v1.0.0"}, want: "v1.0.0"},
		{name: "annotated tag is peeled", ref: Ref{Tag: "v1.2.0"}, want: "v1.2.0"},
		{name: "highest in range", ref: Ref{SemVer: ">=1.0.0 <2.0.0"}, want: "v1.2.0"},
		{name: "no v prefix", ref: Ref{SemVer: "~1.1"}, want: "1.1.5"},
		{name: "prerelease allowed by range", ref: Ref{SemVer: ">=1.3.0-0 <2.0.0"}, want: "v1.3.0-rc.1"},
		{name: "any", ref: Ref{SemVer: "*"}, want: "2.0.0"},
		{name: "no match", ref: Ref{SemVer: ">=3"}, wantErr: ErrRefNotFound},
		{name: "bad range", ref: Ref{SemVer: "not a range"}, wantErr: ErrInvalidInput},
		{name: "missing tag", ref: Ref{Tag: "v9"}, wantErr: ErrRefNotFound},
	}
	c := newTestCache(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Fetch(testCtx(t), repo.URL(), tt.ref, nil)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Revision{Ref: tt.want, Hash: commits[tt.want]}
			if got != want {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

func TestConcurrentFetchSameURL(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a.yaml": "a: 1\n"})
	other := gittest.NewRepo(t, map[string]string{"b.yaml": "b: 1\n"})
	srv := gittest.NewHTTPServer(t, repo.Root())
	url := srv.URL(gittest.RepoName)
	c := newTestCache(t)

	var wg sync.WaitGroup
	revs := make([]Revision, 8)
	errs := make([]error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := url
			if i%4 == 3 {
				u = other.URL() // a different URL proceeds in parallel
			}
			rev, err := c.Fetch(testCtx(t), u, Ref{}, nil)
			if err == nil {
				err = c.Checkout(testCtx(t), u, rev, filepath.Join(t.TempDir(), "out"))
			}
			revs[i], errs[i] = rev, err
		}()
	}
	wg.Wait()
	for i := range 8 {
		want := repo.Head()
		if i%4 == 3 {
			want = other.Head()
		}
		if errs[i] != nil || revs[i].Hash != want {
			t.Errorf("goroutine %d: %v, %v; want %s", i, revs[i], errs[i], want)
		}
	}
	if n := len(packs(t, c, url)); n != 1 {
		t.Errorf("%d packfiles after concurrent first fetches, want 1 (one clone)", n)
	}
}

func TestFetchRecoversFromCorruptedCache(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, dir string)
	}{
		{"garbage packfiles", func(t *testing.T, dir string) {
			ps, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*"))
			if len(ps) == 0 {
				t.Fatal("no packfiles to corrupt")
			}
			for _, p := range ps {
				if err := os.WriteFile(p, []byte("garbage"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"garbage config", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "config"), []byte("[core\x00"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"objects removed", func(t *testing.T, dir string) {
			if err := os.RemoveAll(filepath.Join(dir, "objects")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := gittest.NewRepo(t, map[string]string{"a.yaml": "a: 1\n"})
			c := newTestCache(t)
			mustFetch(t, c, repo.URL(), Ref{}, nil)
			r, _ := parseRemote(repo.URL())
			tt.corrupt(t, c.repoDir(r))

			next := repo.CommitFiles("next", map[string]string{"a.yaml": "a: 2\n"})
			got := mustFetch(t, c, repo.URL(), Ref{}, nil)
			if got.Hash != next {
				t.Fatalf("got %s, want %s", got.Hash, next)
			}
			b, err := c.ReadFile(testCtx(t), repo.URL(), got, "a.yaml", 100)
			if err != nil || string(b) != "a: 2\n" {
				t.Fatalf("ReadFile = %q, %v", b, err)
			}
			if _, err := gogit.PlainOpen(c.repoDir(r)); err != nil {
				t.Fatalf("cache not usable: %v", err)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a.yaml": "a: 1\n"})
	c := newTestCache(t)
	rev := mustFetch(t, c, repo.URL(), Ref{}, nil)
	if err := c.Remove(testCtx(t), repo.URL()); err != nil {
		t.Fatal(err)
	}
	if len(packs(t, c, repo.URL())) != 0 {
		t.Fatal("cache entry still there")
	}
	if _, err := c.ReadFile(testCtx(t), repo.URL(), rev, "a.yaml", 10); err == nil {
		t.Fatal("read from a removed cache entry succeeded")
	}
	if got := mustFetch(t, c, repo.URL(), Ref{}, nil); got != rev {
		t.Fatalf("fetch after remove: got %v, want %v", got, rev)
	}
}

func TestDamagedEntryIsReclonedAfterFailedCheckout(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"dir/a.yaml": "a: 1\n"})
	c := newTestCache(t)
	rev := mustFetch(t, c, repo.URL(), Ref{}, nil)

	// Keep the commit and its trees as loose objects, drop the packs: the
	// commit still resolves (so Fetch sees nothing wrong) but its blob is gone.
	r, _ := parseRemote(repo.URL())
	cached, err := gogit.PlainOpen(c.repoDir(r))
	if err != nil {
		t.Fatal(err)
	}
	commit, err := cached.CommitObject(plumbing.NewHash(rev.Hash))
	if err != nil {
		t.Fatal(err)
	}
	tree, _ := commit.Tree()
	sub, _ := tree.Tree("dir")
	var objs []plumbing.EncodedObject
	for _, h := range []plumbing.Hash{commit.Hash, tree.Hash, sub.Hash} {
		o, err := cached.Storer.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	for _, p := range packs(t, c, repo.URL()) {
		_ = os.Remove(p)
		_ = os.Remove(strings.TrimSuffix(p, ".pack") + ".idx")
	}
	loose, err := gogit.PlainOpen(c.repoDir(r))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if _, err := loose.Storer.SetEncodedObject(o); err != nil {
			t.Fatal(err)
		}
	}

	if got := mustFetch(t, c, repo.URL(), Ref{}, nil); got != rev {
		t.Fatalf("got %v, want %v", got, rev)
	}
	if err := c.Checkout(testCtx(t), repo.URL(), rev, filepath.Join(t.TempDir(), "out")); err == nil {
		t.Fatal("checkout of a damaged entry succeeded")
	}
	mustFetch(t, c, repo.URL(), Ref{}, nil) // notices the damage, clones again
	if err := c.Checkout(testCtx(t), repo.URL(), rev, filepath.Join(t.TempDir(), "out")); err != nil {
		t.Fatalf("checkout after re-clone: %v", err)
	}
}

func TestFetchHonoursContext(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a.yaml": "a: 1\n"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newTestCache(t).Fetch(ctx, repo.URL(), Ref{}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// Credentials for a plain http:// remote are refused before any request
// unless the Auth allows it: the server records every Authorization header
// that arrives, and there is none.
func TestFetchRefusesCredentialsOverPlainHTTP(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a.yaml": "a: 1\n"})
	backend, err := gittest.Backend(repo.Root())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var requests, authorized int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		if r.Header.Get("Authorization") != "" {
			authorized++
		}
		mu.Unlock()
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	url := srv.URL + "/" + gittest.RepoName
	const pass, token = "canary-Plain-6d1f", "canary-PlainT0ken-2b7e"

	for name, tc := range map[string]struct {
		url  string
		auth *Auth
	}{
		"basic auth":        {url, &Auth{Username: "u", Password: pass}},
		"bearer token":      {url, &Auth{BearerToken: token}},
		"username only":     {url, &Auth{Username: "u"}},
		"password in url":   {strings.Replace(url, "://", "://u:"+pass+"@", 1), nil},
		"other auth fields": {strings.Replace(url, "://", "://u:"+pass+"@", 1), &Auth{InsecureIgnoreHostKey: true}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := newTestCache(t).Fetch(testCtx(t), tc.url, Ref{}, tc.auth)
			if !errors.Is(err, ErrInsecureCredentials) {
				t.Fatalf("got %v, want ErrInsecureCredentials", err)
			}
			assertNoSecret(t, err, pass, token)
			_, err = newTestCache(t).CommitAndPush(testCtx(t), tc.url, PushOptions{Author: testAuthor, Auth: tc.auth}, bumpEdit("9", new(int)))
			if !errors.Is(err, ErrInsecureCredentials) {
				t.Fatalf("push: got %v, want ErrInsecureCredentials", err)
			}
		})
	}
	mu.Lock()
	n, a := requests, authorized
	mu.Unlock()
	if n != 0 || a != 0 {
		t.Fatalf("the server saw %d requests, %d with credentials, want none", n, a)
	}
	// Anonymous is fine, and so are credentials once allowed.
	mustFetch(t, newTestCache(t), url, Ref{}, nil)
	mustFetch(t, newTestCache(t), url, Ref{}, &Auth{Username: "u", Password: pass, AllowInsecureHTTP: true})
	mu.Lock()
	a = authorized
	mu.Unlock()
	if a == 0 {
		t.Error("the allowed fetch sent no credentials: the test did not test")
	}
}
