package git

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/helmflux/helmflux/pkg/git/gittest"
)

func TestAuthFromSecret(t *testing.T) {
	const pass = "canary-secret-passphrase-1f"
	plain := gittest.NewSSHKey(t, "")
	enc := gittest.NewSSHKey(t, pass)
	srv := gittest.NewSSHServer(t, t.TempDir(), plain.Public)

	tests := []struct {
		name    string
		data    map[string][]byte
		check   func(*Auth) bool
		wantErr error
	}{
		{
			name:  "basic",
			data:  map[string][]byte{"username": []byte("u"), "password": []byte("p")},
			check: func(a *Auth) bool { return a.Username == "u" && a.Password == "p" },
		},
		{
			name:  "bearer",
			data:  map[string][]byte{"bearerToken": []byte("tok")},
			check: func(a *Auth) bool { return a.BearerToken == "tok" },
		},
		{
			name: "ssh with known_hosts, identity.pub ignored",
			data: map[string][]byte{"identity": plain.PrivatePEM, "identity.pub": []byte("garbage"), "known_hosts": srv.KnownHosts()},
			check: func(a *Auth) bool {
				return string(a.Identity) == string(plain.PrivatePEM) && string(a.KnownHosts) == string(srv.KnownHosts())
			},
		},
		{
			name:  "encrypted identity with passphrase",
			data:  map[string][]byte{"identity": enc.PrivatePEM, "passphrase": []byte(pass)},
			check: func(a *Auth) bool { return string(a.Passphrase) == pass },
		},
		{
			name:  "caFile preferred over ca.crt",
			data:  map[string][]byte{"caFile": []byte("A"), "ca.crt": []byte("B")},
			check: func(a *Auth) bool { return string(a.CABundle) == "A" },
		},
		{name: "encrypted identity without passphrase", data: map[string][]byte{"identity": enc.PrivatePEM}, wantErr: ErrInvalidInput},
		{name: "wrong passphrase", data: map[string][]byte{"identity": enc.PrivatePEM, "passphrase": []byte("canary-wrong-2e")}, wantErr: ErrInvalidInput},
		{name: "garbage identity", data: map[string][]byte{"identity": []byte("-----BEGIN canary-garbage")}, wantErr: ErrInvalidInput},
		{name: "bad known_hosts", data: map[string][]byte{"known_hosts": []byte("host ssh-ed25519 !!!notbase64")}, wantErr: ErrInvalidInput},
		{name: "token and password", data: map[string][]byte{"bearerToken": []byte("t"), "password": []byte("p")}, wantErr: ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := AuthFromSecret(tt.data)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				assertNoSecret(t, err, pass, "canary-wrong-2e", "canary-garbage")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(a) {
				t.Fatalf("unexpected Auth %+v", a)
			}
		})
	}
}

func TestParseRemote(t *testing.T) {
	tests := []struct {
		name      string
		url       string
		sameKeyAs string
		fetchURL  string
		display   string
		wantErr   bool
	}{
		{name: "https", url: "https://example.com/org/repo", fetchURL: "https://example.com/org/repo", display: "https://example.com/org/repo"},
		{name: "https normalised", url: "HTTPS://Example.COM:443/org/repo/", sameKeyAs: "https://example.com/org/repo"},
		{name: "password stripped", url: "https://u:canary@example.com/org/repo", sameKeyAs: "https://example.com/org/repo", fetchURL: "https://u@example.com/org/repo", display: "https://example.com/org/repo"},
		{name: "ssh default port", url: "ssh://git@example.com:22/org/repo", sameKeyAs: "ssh://git@example.com/org/repo"},
		{name: "scp-like", url: "git@example.com:org/repo.git", fetchURL: "git@example.com:org/repo.git", display: "example.com:org/repo.git"},
		{name: "file", url: "file:///srv/git/repo.git", fetchURL: "file:///srv/git/repo.git"},
		{name: "file cleaned", url: "file:///srv/git/../git/repo.git", sameKeyAs: "file:///srv/git/repo.git"},
		{name: "unsupported scheme", url: "git://example.com/repo", wantErr: true},
		{name: "relative file", url: "file://repo", wantErr: true},
		{name: "empty", url: "", wantErr: true},
		{name: "space", url: "https://example.com/a b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseRemote(tt.url)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidInput) {
					t.Fatalf("got %v, want ErrInvalidInput", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.fetchURL != "" && r.fetchURL != tt.fetchURL {
				t.Errorf("fetchURL %q, want %q", r.fetchURL, tt.fetchURL)
			}
			if tt.display != "" && r.display != tt.display {
				t.Errorf("display %q, want %q", r.display, tt.display)
			}
			if strings.Contains(r.key+r.display+r.fetchURL, "canary") {
				t.Errorf("password kept in %+v", r)
			}
			if tt.sameKeyAs != "" {
				o, err := parseRemote(tt.sameKeyAs)
				if err != nil {
					t.Fatal(err)
				}
				if o.dirName() != r.dirName() {
					t.Errorf("key %q differs from %q", r.key, o.key)
				}
			}
		})
	}
	a, _ := parseRemote("git@example.com:org/repo")
	b, _ := parseRemote("ssh://git@example.com/org/repo")
	if a.dirName() == b.dirName() {
		t.Error("scp-like (home-relative) and ssh:// (absolute) paths share a cache entry")
	}
}

func TestRevision(t *testing.T) {
	h := strings.Repeat("0123456789", 4)
	tests := []struct {
		in      string
		want    Revision
		str     string
		wantErr bool
	}{
		{in: "main@sha1:" + h, want: Revision{Ref: "main", Hash: h}, str: "main@sha1:" + h},
		{in: "v1.2.0@sha1:" + h, want: Revision{Ref: "v1.2.0", Hash: h}, str: "v1.2.0@sha1:" + h},
		{in: "feature/x@y@sha1:" + h, want: Revision{Ref: "feature/x@y", Hash: h}, str: "feature/x@y@sha1:" + h},
		{in: "sha1:" + h, want: Revision{Hash: h}, str: "sha1:" + h},
		{in: strings.ToUpper(h), want: Revision{Hash: h}, str: "sha1:" + h},
		{in: "main@sha1:abc", wantErr: true},
		{in: "main", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRevision(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want || got.String() != tt.str {
				t.Fatalf("got %v (%q), %v; want %v (%q)", got, got.String(), err, tt.want, tt.str)
			}
		})
	}
}

func TestScrub(t *testing.T) {
	const secret = "s3cr/et+canary"
	tests := []struct {
		name string
		err  error
		kind error
	}{
		{"url userinfo", fmt.Errorf("get https://user:%s@host/repo: %w", "anything", transport.ErrAuthenticationRequired), ErrAuthentication},
		{"raw secret", fmt.Errorf("server said %s", secret), nil},
		{"escaped secret", fmt.Errorf("get https://host/?p=%s", "s3cr%2Fet%2Bcanary"), nil},
		{"ssh auth", errors.New("ssh: handshake failed: ssh: unable to authenticate"), ErrAuthentication},
		{"not found", fmt.Errorf("x: %w", transport.ErrRepositoryNotFound), ErrRepositoryNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := scrub(tt.err, secret)
			for _, s := range []string{secret, "anything", "user:", "s3cr%2Fet%2Bcanary"} {
				if strings.Contains(got.Error(), s) {
					t.Errorf("%q still contains %q", got, s)
				}
			}
			if tt.kind != nil && !errors.Is(got, tt.kind) {
				t.Errorf("%v does not match %v", got, tt.kind)
			}
			if errors.Unwrap(got) != nil {
				t.Error("a scrubbed error must not unwrap to the original")
			}
		})
	}
}

func FuzzConfine(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a/../../x", "/etc", "a//b/./c", ".", "..", "a/..", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		parts, err := confine(name)
		if err != nil {
			return
		}
		for _, p := range parts {
			if p == "" || p == "." || p == ".." || strings.Contains(p, "/") {
				t.Fatalf("confine(%q) = %q", name, parts)
			}
		}
	})
}

func FuzzParseRevision(f *testing.F) {
	f.Add("main@sha1:" + strings.Repeat("a", 40))
	f.Add("sha1:" + strings.Repeat("b", 40))
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRevision(s)
		if err != nil {
			return
		}
		back, err := ParseRevision(r.String())
		if err != nil || back != r {
			t.Fatalf("round trip of %q: %v, %v", s, back, err)
		}
	})
}

func TestSameRepository(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"https://example.com/org/repo", "https://example.com/org/repo", true},
		{"https://example.com/org/repo", "https://Example.COM/org/repo/", true},
		{"https://example.com/org/repo", "https://example.com/org/repo.git", true},
		{"https://example.com/org/repo", "https://example.com:443/org/repo.git/", true},
		{"https://example.com/org/repo", "https://u:canary@example.com/Org/Repo", true},
		{"https://example.com/org/repo", "http://example.com/org/repo", true},
		{"ssh://git@example.com/org/repo", "git@example.com:org/repo.git", true},
		{"ssh://git@example.com:22/org/repo", "ssh://deploy@example.com/org/repo", true},
		{"file:///srv/git/repo.git", "file:///srv/git/../git/repo", true},
		{"https://example.com/org/repo", "https://example.com/org/other", false},
		{"https://example.com/org/repo", "https://example.org/org/repo", false},
		{"https://example.com/org/repo", "https://example.com:8443/org/repo", false},
		{"https://example.com/org/repo", "ssh://git@example.com/org/repo", true},
		{"https://github.com/org/repo", "git@github.com:org/repo.git", true},
		{"http://example.com/org/repo", "ssh://git@example.com:22/org/repo.git", true},
		{"https://example.com/org/repo", "ssh://git@example.com:2222/org/repo", false},
		{"file:///srv/git/Repo", "file:///srv/git/repo", false},
		{"https://example.com/org/repo", "not a url", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := SameRepository(tt.a, tt.b); got != tt.want {
			t.Errorf("SameRepository(%q, %q) = %t, want %t", tt.a, tt.b, got, tt.want)
		}
		if got := SameRepository(tt.b, tt.a); got != tt.want {
			t.Errorf("SameRepository(%q, %q) = %t, want %t", tt.b, tt.a, got, tt.want)
		}
	}
}
