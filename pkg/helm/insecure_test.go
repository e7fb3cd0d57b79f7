package helm

import (
	"errors"
	"strings"
	"testing"

	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// Credentials for a plain-HTTP repository or registry are refused before
// any request unless the source allows it; the servers record every
// Authorization header that arrives, and there is none.
func TestCredentialsOverPlainHTTPRefused(t *testing.T) {
	const user, pass = "alice", "canary-PlainRepo-3e9a"
	srv := helmtest.NewRepoServer(t, helmtest.WithBasicAuth(user, pass))
	srv.Add(t, helmtest.Simple("app", "1.0.0"))
	reg := helmtest.NewRegistry(t, helmtest.WithRegistryBasicAuth(user, pass))
	reg.Push(t, "charts", helmtest.Simple("app", "1.0.0"))
	pushed := reg.Requests("", "/")
	c := newCharts(t, WithPlainHTTPRegistries(reg.Host()))
	auth := &RepoAuth{Username: user, Password: pass}

	for name, src := range map[string]ChartSource{
		"pull secret":   {Repository: srv.URL(), Name: "app", Version: "1.0.0", RepoAuth: auth},
		"userinfo":      {Repository: strings.Replace(srv.URL(), "://", "://"+user+":"+pass+"@", 1), Name: "app", Version: "1.0.0"},
		"oci plain":     {Repository: reg.URL("charts"), Name: "app", Version: "1.0.0", RepoAuth: auth},
		"oci tag range": {Repository: reg.URL("charts"), Name: "app", Version: "1.x", RepoAuth: auth},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.Resolve(testCtx(t), src)
			if !errors.Is(err, ErrInsecureCredentials) {
				t.Fatalf("resolve: got %v, want ErrInsecureCredentials", err)
			}
			assertNoSecret(t, err, pass)
			// A reference made elsewhere (or before) is refused at Load too.
			ref := &ChartRef{Source: src, Name: "app", Version: "1.0.0", URL: srv.URL() + helmtest.ChartPath("app", "1.0.0"),
				Digest: "sha256:" + strings.Repeat("0", 64)}
			if _, err := c.Load(testCtx(t), ref); !errors.Is(err, ErrInsecureCredentials) {
				t.Fatalf("load: got %v, want ErrInsecureCredentials", err)
			}
		})
	}
	if n := srv.Requests("/index.yaml") + srv.Requests(helmtest.ChartPath("app", "1.0.0")); n != 0 {
		t.Errorf("the repository saw %d requests, want none", n)
	}
	if n := reg.Requests("", "/") - pushed; n != 0 {
		t.Errorf("the registry saw %d requests, want none", n)
	}

	// Allowed, the same sources work and the credentials are sent.
	for _, src := range []ChartSource{
		{Repository: srv.URL(), Name: "app", Version: "1.0.0", RepoAuth: auth, AllowInsecureHTTP: true},
		{Repository: reg.URL("charts"), Name: "app", Version: "1.0.0", RepoAuth: auth, AllowInsecureHTTP: true},
	} {
		if _, err := c.Load(testCtx(t), mustResolve(t, c, src)); err != nil {
			t.Fatalf("%s: %v", src.Repository, err)
		}
	}
	if srv.AuthorizedRequests("/index.yaml") == 0 {
		t.Error("the allowed resolve sent no credentials: the test did not test")
	}
	// Anonymous plain HTTP needs no opt-in (the server refuses it here).
	if _, err := c.Resolve(testCtx(t), ChartSource{Repository: srv.URL(), Name: "app"}); !errors.Is(err, ErrAuthentication) {
		t.Errorf("anonymous: got %v, want ErrAuthentication", err)
	}
}
