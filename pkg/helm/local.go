package helm

import (
	"fmt"
	"net/http"

	"github.com/helmflux/helmflux/pkg/git"
)

// ErrLocalURL means a Charts made WithoutLocalURLs was asked to reach the
// operator's own machine: a chart repository, an archive URL an index
// names, a redirect, an OCI registry (or the token service it names) or a
// values URL on a loopback host. It is git.ErrLocalURL, so one errors.Is
// covers chart.git too.
var ErrLocalURL = git.ErrLocalURL

// WithoutLocalURLs makes the Charts refuse every HTTP request to a loopback
// host, judged as pkg/git judges git URLs (git.IsLoopbackHost): the
// repository or registry a source names, the archive URLs its index points
// at, every redirect and token service on the way, and FetchValues URLs. In
// a shared cluster a tenant must not reach services that listen only on
// the operator's loopback interface, nor have an index send the operator
// there. Git sources follow the git cache's own setting
// (git.WithoutLocalURLs). Errors match ErrLocalURL.
func WithoutLocalURLs() ChartsOption { return func(c *Charts) { c.refuseLocal = true } }

// checkLocal refuses host when c refuses local URLs and host is loopback;
// what names the URL for the message (without credentials).
func (c *Charts) checkLocal(host, what string) error {
	if c.refuseLocal && git.IsLoopbackHost(host) {
		return fmt.Errorf("%w: %s is on the operator's machine (a loopback host)", ErrLocalURL, what)
	}
	return nil
}

// guardLocal wraps rt so that, when c refuses local URLs, no request (a
// redirect or a token service included, which no early check sees) reaches
// a loopback host.
func (c *Charts) guardLocal(rt http.RoundTripper) http.RoundTripper {
	if !c.refuseLocal {
		return rt
	}
	return &localGuard{inner: rt}
}

// localGuard refuses requests to loopback hosts.
type localGuard struct{ inner http.RoundTripper }

func (g *localGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if git.IsLoopbackHost(req.URL.Host) {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("%w: %s is on the operator's machine (a loopback host)", ErrLocalURL, RedactURL(req.URL.String()))
	}
	return g.inner.RoundTrip(req)
}
