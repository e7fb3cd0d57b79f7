package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

// remoteName is the name under which tests reach their loopback registry
// as if it were elsewhere: the transport dials 127.0.0.1 for it, while the
// image, all the up-front check judges, names no loopback host.
// httptest's certificate is valid for it.
const remoteName = "example.com"

// remoteTransport is srv's transport dialling 127.0.0.1 for remoteName.
func remoteTransport(t *testing.T, srv *registrytest.Server) http.RoundTripper {
	t.Helper()
	base, ok := srv.Transport().(*http.Transport)
	if !ok {
		t.Fatalf("registrytest transport is a %T", srv.Transport())
	}
	tr := base.Clone()
	// Every name is checked against the certificate's example.com, so a
	// test may also name the server "localhost".
	tr.TLSClientConfig.ServerName = remoteName
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil && host == remoteName {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return d.DialContext(ctx, network, addr)
	}
	return tr
}

// TestScanRefuseLocal: with RefuseLocal, an image on a loopback registry
// host is refused before any request, and a registry elsewhere whose token
// service or tag list redirect is on loopback is refused at that request;
// without it the same registry is scanned.
func TestScanRefuseLocal(t *testing.T) {
	srv := registrytest.NewServer(t)
	srv.PushTags(t, "app", "v1", "v2")
	_, port, _ := net.SplitHostPort(srv.Host())
	remote := net.JoinHostPort(remoteName, port)
	loopback := "https://" + srv.Host()

	for _, host := range []string{srv.Host(), "localhost:" + port, "127.1:" + port, "[::1]:" + port} {
		c := newClient(t, srv, Options{RefuseLocal: true, Transport: remoteTransport(t, srv)})
		srv.Reset()
		if _, err := c.Scan(context.Background(), host+"/app", ScanOptions{}); !errors.Is(err, ErrLocalURL) {
			t.Errorf("scan %s/app: got %v, want ErrLocalURL", host, err)
		}
		if n := len(srv.Requests()); n > 0 {
			t.Errorf("scan %s/app made %d requests", host, n)
		}
	}

	faults := map[string]func(r *http.Request, _ int) (int, http.Header, string, bool){
		// A bearer challenge naming a token service on loopback
		// (go-containerregistry refuses loopback IP literals itself, not
		// names).
		"token realm": func(r *http.Request, _ int) (int, http.Header, string, bool) {
			if r.URL.Path == "/token" {
				return 200, http.Header{"Content-Type": {"application/json"}}, `{"token":"t","expires_in":300}`, true
			}
			if r.Header.Get("Authorization") == "Bearer t" {
				return 0, nil, "", false
			}
			challenge := fmt.Sprintf(`Bearer realm="https://localhost:%s/token",service="registrytest"`, port)
			return 401, http.Header{"Www-Authenticate": {challenge}}, `{"errors":[{"code":"UNAUTHORIZED"}]}`, true
		},
		// The tag list of the registry elsewhere redirects to loopback.
		"redirect": func(r *http.Request, _ int) (int, http.Header, string, bool) {
			if strings.HasSuffix(r.URL.Path, "/tags/list") && r.Host == remote {
				return http.StatusFound, http.Header{"Location": {loopback + r.URL.RequestURI()}}, "", true
			}
			return 0, nil, "", false
		},
	}
	for name, fault := range faults {
		t.Run(name, func(t *testing.T) {
			srv.Fail(fault)
			t.Cleanup(func() { srv.Fail(nil) })
			refusing := newClient(t, srv, Options{RefuseLocal: true, Transport: remoteTransport(t, srv)})
			if res, err := refusing.Scan(context.Background(), remote+"/app", ScanOptions{}); !errors.Is(err, ErrLocalURL) {
				t.Errorf("scan %s/app: got %v (tags %v), want ErrLocalURL", remote, err, tagNames(res))
			}
			allowing := newClient(t, srv, Options{Transport: remoteTransport(t, srv)})
			if res, err := allowing.Scan(context.Background(), remote+"/app", ScanOptions{}); err != nil || len(res.Tags) != 2 {
				t.Errorf("scan without RefuseLocal: tags %v, err %v", tagNames(res), err)
			}
		})
	}
}
