package registry

import (
	"fmt"
	"net/http"

	"github.com/helmflux/helmflux/pkg/git"
)

// ErrLocalURL means a Client with Options.RefuseLocal was asked to reach
// the operator's own machine: an image's registry, the token service its
// challenge names or a redirect on a loopback host. It is git.ErrLocalURL,
// so one errors.Is covers git and chart sources too.
var ErrLocalURL = git.ErrLocalURL

// localGuard refuses every request to a loopback host, judged as pkg/git
// and pkg/helm judge them (git.IsLoopbackHost): one rule for what is the
// operator's machine. It sits under every request a Client makes, so pings,
// token exchanges, blob redirects and tag pages are all judged, not only the
// host an image names.
type localGuard struct{ next http.RoundTripper }

func (g *localGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := refuseLocalHost(req.URL.Host); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	return g.next.RoundTrip(req)
}

// refuseLocalHost is the error for a request to host when it is loopback.
func refuseLocalHost(host string) error {
	if git.IsLoopbackHost(host) {
		return fmt.Errorf("%w: %s is on the operator's machine (a loopback host)", ErrLocalURL, host)
	}
	return nil
}
