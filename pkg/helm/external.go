package helm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
)

// ErrInvalidValuesURL means a values URL is not one FetchValues fetches
// (not https://, no host, too long): only a spec change helps.
var ErrInvalidValuesURL = errors.New("invalid values URL")

// maxValuesRedirects bounds the redirects FetchValues follows.
const maxValuesRedirects = 5

// FetchValues fetches a values document (a HelmRelease's
// externalSourceRef) from an https:// URL, reading at most maxSize bytes.
// It goes through the Charts' HTTP transport and its local URL policy
// (WithoutLocalURLs), so a values URL can reach no more than a chart
// repository can; redirects stay on HTTPS. A 404 matches fs.ErrNotExist
// (an optional source is then skipped); a URL that is not https:// matches
// ErrInvalidValuesURL. Errors never quote the URL, which may carry a token:
// the caller names it, redacted.
func (c *Charts) FetchValues(ctx context.Context, raw string, maxSize int64) ([]byte, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || len(raw) > maxURLLength {
		return nil, fmt.Errorf("%w: want an https:// URL", ErrInvalidValuesURL)
	}
	if err := c.checkLocal(u.Host, "the URL"); err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: c.guardLocal(c.base), CheckRedirect: httpsOnly}
	resp, err := get(ctx, hc, raw, nil) // #nosec G704 -- fetching the URL the HelmRelease names is the feature
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	defer drain(resp)
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("fetch: %s: %w", resp.Status, fs.ErrNotExist)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("fetch: HTTP %s", resp.Status)
	}
	b, err := readAllMax(resp.Body, maxSize)
	if errors.Is(err, ErrTooLarge) {
		return nil, fmt.Errorf("larger than %d bytes: %w", maxSize, ErrTooLarge)
	}
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	return b, nil
}

// httpsOnly follows at most maxValuesRedirects redirects, never to plain
// HTTP.
func httpsOnly(req *http.Request, via []*http.Request) error {
	if req.URL.Scheme != "https" {
		return errors.New("refused a redirect to a non-https URL")
	}
	if len(via) >= maxValuesRedirects {
		return fmt.Errorf("stopped after %d redirects", maxValuesRedirects)
	}
	return nil
}
