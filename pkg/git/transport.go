package git

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

func init() {
	// go-git's http(s) transport follows the redirect of the initial
	// /info/refs and then points the whole session at its target, so a
	// check of the URL a tenant wrote is not enough: every request must be
	// judged. go-git's protocol table is global and unsynchronised, so one
	// client is installed here, at init, and each Cache says through the
	// request context what it allows (netPolicy).
	c := &http.Client{Transport: guardedTransport()}
	client.InstallProtocol("http", githttp.NewClient(c))
	client.InstallProtocol("https", githttp.NewClient(c))
}

// WithDialContext makes the Cache open its http(s) connections with dial
// instead of the default dialer. Tests use it to reach a loopback server by
// a name that is not loopback, as an /etc/hosts entry would; the local URL
// refusal judges the name, as it always does.
func WithDialContext(dial func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(c *Cache) { c.dial = dial }
}

// netPolicy is what one Cache allows its http(s) requests; it travels in
// the context of the go-git calls the Cache makes.
type netPolicy struct {
	refuseLocal bool
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
}

type netPolicyKey struct{}

// netContext returns ctx carrying c's network policy for go-git's requests.
func (c *Cache) netContext(ctx context.Context) context.Context {
	if !c.refuseLocal && c.dial == nil {
		return ctx
	}
	return context.WithValue(ctx, netPolicyKey{}, &netPolicy{refuseLocal: c.refuseLocal, dial: c.dial})
}

func policyOf(ctx context.Context) *netPolicy {
	p, _ := ctx.Value(netPolicyKey{}).(*netPolicy)
	if p == nil {
		return &netPolicy{}
	}
	return p
}

// guardedTransport is http.DefaultTransport with a per-request check of the
// request's host against the policy in its context: the initial request,
// every redirect hop, and the upload-pack and receive-pack POSTs that go-git
// sends wherever a redirect moved the session.
//
// The check sits in Proxy, not in a wrapping RoundTripper, because go-git
// needs an *http.Transport to clone when a remote has a CA bundle (it sets
// the clone's RootCAs); a clone keeps Proxy and DialContext, so the check
// and the dialer hold with CA bundles too. It judges the request URL, not
// the address dialled, so an operator-wide proxy on loopback (HTTPS_PROXY)
// still works.
func guardedTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	proxy := tr.Proxy
	tr.Proxy = func(req *http.Request) (*url.URL, error) {
		if policyOf(req.Context()).refuseLocal && IsLoopbackHost(req.URL.Host) {
			return nil, fmt.Errorf("%w: %s is on the operator's machine (a loopback host); a redirect may have led there",
				ErrLocalURL, redactedURL(req.URL))
		}
		if proxy == nil {
			return nil, nil
		}
		return proxy(req)
	}
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if d := policyOf(ctx).dial; d != nil {
			return d(ctx, network, addr)
		}
		return dial(ctx, network, addr)
	}
	return tr
}

// redactedURL is u without userinfo, query and fragment, for messages.
func redactedURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
