package registry

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestParseDockerConfig(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		hosts []string
		check map[string]authn.AuthConfig // host → login
	}{
		{
			name:  "dockerconfigjson auth field",
			data:  `{"auths":{"ghcr.io":{"auth":"` + b64("bot:s3cret") + `"}}}`,
			hosts: []string{"ghcr.io"},
			check: map[string]authn.AuthConfig{"ghcr.io": {Username: "bot", Password: "s3cret"}},
		},
		{
			name:  "password with colons",
			data:  `{"auths":{"ghcr.io":{"auth":"` + b64("bot:a:b:c") + `"}}}`,
			check: map[string]authn.AuthConfig{"ghcr.io": {Username: "bot", Password: "a:b:c"}},
		},
		{
			name:  "auth without padding",
			data:  `{"auths":{"ghcr.io":{"auth":"` + strings.TrimRight(b64("bot:pw1"), "=") + `"}}}`,
			check: map[string]authn.AuthConfig{"ghcr.io": {Username: "bot", Password: "pw1"}},
		},
		{
			name:  "username and password",
			data:  `{"auths":{"quay.io":{"username":"u","password":"p","email":"x@example.com"}}}`,
			check: map[string]authn.AuthConfig{"quay.io": {Username: "u", Password: "p"}},
		},
		{
			name:  "auth wins over username and password",
			data:  `{"auths":{"quay.io":{"username":"u","password":"p","auth":"` + b64("v:q") + `"}}}`,
			check: map[string]authn.AuthConfig{"quay.io": {Username: "v", Password: "q"}},
		},
		{
			name:  "identity and registry tokens",
			data:  `{"auths":{"a.example":{"username":"<token>","identitytoken":"idt"},"b.example":{"registrytoken":"rt"}}}`,
			hosts: []string{"a.example", "b.example"},
			check: map[string]authn.AuthConfig{
				"a.example": {Username: "<token>", IdentityToken: "idt"},
				"b.example": {RegistryToken: "rt"},
			},
		},
		{
			name:  "legacy dockercfg",
			data:  `{"registry.example:5000":{"auth":"` + b64("u:p") + `","email":"e"}}`,
			check: map[string]authn.AuthConfig{"registry.example:5000": {Username: "u", Password: "p"}},
		},
		{
			name:  "keys with scheme and path",
			data:  `{"auths":{"https://r1.example/v1/":{"auth":"` + b64("a:1") + `"},"http://r2.example:8080":{"auth":"` + b64("b:2") + `"},"R3.Example/v2/":{"auth":"` + b64("c:3") + `"}}}`,
			hosts: []string{"r1.example", "r2.example:8080", "r3.example"},
		},
		{
			name:  "docker hub legacy key",
			data:  `{"auths":{"https://index.docker.io/v1/":{"auth":"` + b64("hub:pw") + `"}}}`,
			hosts: []string{"index.docker.io"},
			check: map[string]authn.AuthConfig{
				"index.docker.io":      {Username: "hub", Password: "pw"},
				"docker.io":            {Username: "hub", Password: "pw"},
				"registry-1.docker.io": {Username: "hub", Password: "pw"},
			},
		},
		{
			name:  "docker hub aliases are one host, first key in byte order wins",
			data:  `{"auths":{"registry-1.docker.io":{"auth":"` + b64("c:3") + `"},"docker.io":{"auth":"` + b64("a:1") + `"},"https://index.docker.io/v1/":{"auth":"` + b64("b:2") + `"}}}`,
			hosts: []string{"index.docker.io"},
			check: map[string]authn.AuthConfig{"index.docker.io": {Username: "a", Password: "1"}},
		},
		{
			name:  "entries without credentials are skipped",
			data:  `{"auths":{"ghcr.io":{},"quay.io":{"email":"x"},"r.example":{"auth":null}}}`,
			hosts: []string{},
		},
		{
			name:  "empty auths",
			data:  `{"auths":{}}`,
			hosts: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseDockerConfig([]byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if tt.hosts != nil && !slices.Equal(c.Hosts(), tt.hosts) {
				t.Errorf("Hosts() = %v, want %v", c.Hosts(), tt.hosts)
			}
			for host, want := range tt.check {
				got, ok := c.forHost(host)
				if !ok || got != want {
					t.Errorf("login for %s = %+v, %v; want %+v", host, got, ok, want)
				}
			}
		})
	}
}

func TestParseDockerConfigRejectsBrokenInput(t *testing.T) {
	const secret = "Hunter2-secret-99"
	tests := map[string]string{
		"not JSON":               `{"auths":`,
		"array":                  `[1,2]`,
		"auths not an object":    `{"auths":"x"}`,
		"entry not an object":    `{"auths":{"ghcr.io":"x"}}`,
		"auth not base64":        `{"auths":{"ghcr.io":{"auth":"!!` + secret + `!!"}}}`,
		"auth without colon":     `{"auths":{"ghcr.io":{"auth":"` + b64(secret) + `"}}}`,
		"password not a string":  `{"auths":{"ghcr.io":{"password":7,"username":"` + secret + `"}}}`,
		"key not a host":         `{"auths":{"not a host!":{"password":"` + secret + `"}}}`,
		"key is the secret":      `{"auths":{"` + secret + `.example":{"auth":"%%%","password":"` + secret + `"}}}`,
		"type error naming keys": `{"auths":{"` + secret + `.example":{"password":"` + secret + `","username":5}}}`,
		"too large":              `{"auths":{"x":"` + strings.Repeat("a", maxDockerConfigSize) + `"}}`,
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseDockerConfig([]byte(data))
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "Hunter2") {
				t.Errorf("error quotes a secret: %v", err)
			}
		})
	}
}

func TestParseDockerConfigNamesHostInErrors(t *testing.T) {
	_, err := ParseDockerConfig([]byte(`{"auths":{"ghcr.io":{"auth":"%%%"}}}`))
	if err == nil || !strings.Contains(err.Error(), "ghcr.io") {
		t.Errorf("err = %v, want it to name ghcr.io", err)
	}
}

func TestCredentialsMerge(t *testing.T) {
	own, _ := ParseDockerConfig([]byte(`{"auths":{"ghcr.io":{"auth":"` + b64("own:1") + `"}}}`))
	def, _ := ParseDockerConfig([]byte(`{"auths":{"ghcr.io":{"auth":"` + b64("def:2") + `"},"quay.io":{"auth":"` + b64("def:3") + `"}}}`))
	m := own.Merge(def)
	if got := m.Hosts(); !slices.Equal(got, []string{"ghcr.io", "quay.io"}) {
		t.Errorf("Hosts() = %v", got)
	}
	if a, _ := m.forHost("ghcr.io"); a.Username != "own" {
		t.Errorf("ghcr.io login = %s, want own's", a.Username)
	}
	if a, _ := m.forHost("quay.io"); a.Username != "def" {
		t.Errorf("quay.io login = %s, want the default's", a.Username)
	}
	if len(own.Hosts()) != 1 {
		t.Error("Merge changed its receiver")
	}
	var zero Credentials
	if got := zero.Merge(def).Hosts(); len(got) != 2 {
		t.Errorf("zero.Merge = %v", got)
	}
}

func TestCredentialsStayWithTheirHost(t *testing.T) {
	const user, canary = "helm", "canary-Pa55w0rd-7f3e9"
	encoded := b64(user + ":" + canary)
	a := registrytest.NewServer(t, registrytest.WithBasicAuth(user, canary))
	a.PushTags(t, "app", "v1")
	b := registrytest.NewServer(t)
	b.PushTags(t, "app", "v1")
	b.PushTags(t, "other", "v1")

	a.Fail(func(r *http.Request, n int) (int, http.Header, string, bool) {
		switch r.URL.Path {
		case "/v2/moved/tags/list": // A sends the client to B
			return http.StatusTemporaryRedirect, http.Header{"Location": {"https://" + b.Host() + "/v2/app/tags/list"}}, "", true
		case "/v2/echo/tags/list": // a registry that echoes what it got
			return http.StatusForbidden, nil, fmt.Sprintf(`{"errors":[{"code":"DENIED","message":"bad %s, %s"}]}`, r.Header.Get("Authorization"), canary), true
		}
		return 0, nil, "", false
	})

	creds, err := ParseDockerConfig([]byte(fmt.Sprintf(`{"auths":{%q:{"username":%q,"password":%q}}}`, a.Host(), user, canary)))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lines []string
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, prefix+" "+args)
	}, funcr.Options{Verbosity: 1})
	c := newClient(t, a, Options{Log: log})
	ctx := context.Background()
	var errs []error

	// B gets nothing of A's login.
	if _, err := c.Scan(ctx, b.Host()+"/other", ScanOptions{Credentials: creds}); err != nil {
		t.Fatalf("scan on B: %v", err)
	}
	// A works with it.
	if res, err := c.Scan(ctx, a.Host()+"/app", ScanOptions{Credentials: creds}); err != nil || len(res.Tags) != 1 {
		t.Fatalf("scan on A: %v, %v", res.Tags, err)
	}
	if reqs := a.Requests(); !reqs[len(reqs)-1].Authorization {
		t.Error("A's tag list request carried no Authorization")
	}
	// A redirect from A to B does not carry A's Authorization.
	if res, err := c.Scan(ctx, a.Host()+"/moved", ScanOptions{Credentials: creds}); err != nil || len(res.Tags) != 1 {
		t.Fatalf("redirected scan: %v, %v", res.Tags, err)
	}
	if reqs := a.Requests(); !reqs[len(reqs)-1].Authorization {
		t.Error("A's redirecting request carried no Authorization")
	}
	bReqs := b.Requests()
	if count(bReqs, "GET", "/v2/app/tags/list") != 1 {
		t.Fatalf("B requests = %v, want the redirected list", bReqs)
	}
	for _, r := range bReqs {
		if r.Authorization {
			t.Errorf("B received an Authorization header: %s %s", r.Method, r.Path)
		}
	}

	// Failures: no login, an echoing registry, a wrong password.
	_, err = c.Scan(ctx, a.Host()+"/app", ScanOptions{Force: true})
	if err == nil {
		t.Error("anonymous scan of A succeeded")
	}
	errs = append(errs, err)
	_, err = c.Scan(ctx, a.Host()+"/echo", ScanOptions{Credentials: creds})
	if err == nil {
		t.Fatal("echo scan succeeded")
	}
	errs = append(errs, err)
	wrong := registrytest.NewServer(t, registrytest.WithBasicAuth(user, "something-else"))
	wrong.PushTags(t, "app", "v1")
	wrongCreds, _ := ParseDockerConfig([]byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, wrong.Host(), encoded)))
	_, err = c.Scan(ctx, wrong.Host()+"/app", ScanOptions{Credentials: wrongCreds})
	if err == nil {
		t.Fatal("scan with a wrong password succeeded")
	}
	errs = append(errs, err)

	for _, err := range errs {
		if strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), encoded) {
			t.Errorf("error carries the login: %v", err)
		}
	}
	if !strings.Contains(errs[1].Error(), "[redacted]") {
		t.Errorf("echoed login not visibly redacted: %v", errs[1])
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) == 0 {
		t.Fatal("nothing logged: the log check would prove nothing")
	}
	for _, l := range lines {
		if strings.Contains(l, canary) || strings.Contains(l, encoded) {
			t.Errorf("log line carries the login: %s", l)
		}
	}
}
